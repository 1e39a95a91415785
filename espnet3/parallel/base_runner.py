"""Upstream ESPnet3's import path of :class:`espnet3.runner.base_runner.BaseRunner`.

Example:
    >>> from espnet3.parallel.base_runner import BaseRunner
    >>> BaseRunner.__module__
    'espnet3.runner.base_runner'
"""

from espnet3.runner.base_runner import BaseRunner

__all__ = ["BaseRunner"]
