"""Submit shard specs as detached jobs of the configured scheduler.

Every shard job runs the argv of :func:`shard_command` with the Python that Dask workers would
run (:meth:`~espnet3.parallel.schedulers.base.Scheduler.python_command`: the container's,
``parallel.options.python``, or this interpreter). How the jobs go out (one launcher process on
this machine, or job arrays with a throttle on a batch scheduler) is the scheduler's
:meth:`~espnet3.parallel.schedulers.base.Scheduler.submit_shards`; each writes the job record
of every shard it submits.

Example:
    >>> shard_command("/runs/specs/shard-ab.spec.json", ["python3"])
    ['python3', '-m', 'espnet3.runner.shard', '/runs/specs/shard-ab.spec.json']
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from espnet3.parallel import ParallelConfig
from espnet3.parallel.schedulers import ShardBatch, ShardTask
from espnet3.runner.class_path import stable_hash
from espnet3.runner.job_records import job_record_path, spec_path


def shard_command(spec: str | os.PathLike, python: Sequence[str] | None = None) -> list[str]:
    """The argv of the job that runs one shard spec.

    Example:
        >>> shard_command("s.spec.json", ["apptainer", "exec", "img.sif", "python"])[:5]
        ['apptainer', 'exec', 'img.sif', 'python', '-m']
    """
    return [*(python or [sys.executable]), "-m", "espnet3.runner.shard", str(spec)]


def submit_shards(
    names: list[str], specs_dir: Path, config: ParallelConfig, max_running: int
) -> dict[str, Any]:
    """Submit the shards ``names`` of ``specs_dir`` to the scheduler of ``config``.

    Logs go to ``options.log_directory`` as is, else under ``parallel.log_dir``, else to
    ``<specs_dir>/logs`` (the rule Dask worker jobs follow).
    """
    scheduler = config.scheduler
    python = shlex.split(scheduler.python_command(config))
    batch = ShardBatch(
        name=stable_hash(names),
        tasks=[
            ShardTask(name, spec_path(specs_dir, name), job_record_path(specs_dir, name))
            for name in names
        ],
        command=shard_command("", python)[:-1],
        work_dir=specs_dir,
        log_dir=scheduler.log_dir(config, specs_dir / "logs"),
        max_running=max_running,
    )
    return scheduler.submit_shards(batch, config)
