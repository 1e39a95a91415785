"""Submit shard specs as detached jobs of the configured scheduler.

Every shard job runs the argv of :func:`shard_command` with the Python that Dask workers would
run (:meth:`~espnet3.parallel.schedulers.base.Scheduler.python_command`: the container's,
``parallel.options.python``, or this interpreter). How the jobs go out (one launcher process on
this machine, or job arrays with a throttle on a batch scheduler) is the scheduler's
:meth:`~espnet3.parallel.schedulers.base.Scheduler.submit_shards`; each writes the job record
of every shard it submits.

Example:
    >>> shard_command("/runs/specs/split.0.spec.json", ["python3"])
    ['python3', '-m', 'espnet3.runner.shard', '/runs/specs/split.0.spec.json']
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from typing import Any

from espnet3.parallel import ParallelConfig
from espnet3.parallel.schedulers import ShardBatch, ShardTask
from espnet3.runner.shard_spec import CallFiles
from espnet3.utils.hashing import stable_hash


def shard_command(spec: str | os.PathLike, python: Sequence[str] | None = None) -> list[str]:
    """The argv of the job that runs one shard spec.

    Example:
        >>> shard_command("s.spec.json", ["apptainer", "exec", "img.sif", "python"])[:5]
        ['apptainer', 'exec', 'img.sif', 'python', '-m']
    """
    return [*(python or [sys.executable]), "-m", "espnet3.runner.shard", str(spec)]


def submit_shards(
    shard_ids: list[int], files: CallFiles, config: ParallelConfig, max_running: int
) -> dict[str, Any]:
    """Submit the shards ``shard_ids`` of a call (their specs written) to the scheduler of
    ``config``, at most ``max_running`` at once.

    Logs go to ``options.log_directory`` as is, else under ``parallel.log_dir``, else to
    ``<specs_dir>/logs`` (the rule Dask worker jobs follow). Each task is named
    ``<root name>.split.N`` there, so the logs of several calls can share a directory.
    """
    scheduler = config.scheduler
    python = shlex.split(scheduler.python_command(config))
    batch = ShardBatch(
        name=stable_hash(str(files.root), shard_ids),
        tasks=[
            ShardTask(f"{files.root.name}.split.{k}", files.spec(k), files.job_record(k))
            for k in shard_ids
        ],
        command=shard_command("", python)[:-1],
        work_dir=files.specs_dir,
        log_dir=scheduler.log_dir(config, files.specs_dir / "logs"),
        max_running=max_running,
    )
    return scheduler.submit_shards(batch, config)
