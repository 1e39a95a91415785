"""Upstream ESPnet3's import path of the runner: :class:`espnet3.runner.base_runner.BaseRunner`
(one class for both shapes: results in memory, or shards under ``output_dir`` merged by
``merge``) and :func:`concatenate_shard_files`.

Example:
    >>> from espnet3.parallel.base_runner import BaseRunner, concatenate_shard_files
    >>> BaseRunner.__module__, concatenate_shard_files.__module__
    ('espnet3.runner.base_runner', 'espnet3.runner.merge_files')
"""

from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.merge_files import concatenate_shard_files

__all__ = ["BaseRunner", "concatenate_shard_files"]
