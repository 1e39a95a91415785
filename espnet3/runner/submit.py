"""Submit shard specs as independent scheduler jobs: SLURM job arrays, or local processes.

Every shard job runs the argv of :func:`shard_command` with the Python that Dask workers
would run (:meth:`~espnet3.parallel.config.ParallelConfig.python_command`: the container's,
``parallel.options.python``, or this interpreter). On SLURM the shards of one call go out as job arrays (``--array=0-N%K``), at
most :data:`MAX_ARRAY_SIZE` tasks each, chained so that at most ``K`` shards run at once; job
options come from ``parallel.options`` (``queue``, ``account``, ``cores``, ``memory``,
``walltime``, ``job_name``, ``job_extra_directives``, ``job_script_prologue``,
``log_directory``); other options only concern Dask workers and are ignored here.

Example:
    >>> shard_command("/runs/specs/shard-ab.spec.json", ["python3"])
    ['python3', '-m', 'espnet3.runner.shard', '/runs/specs/shard-ab.spec.json']
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from espnet3.errors import Espnet3Error
from espnet3.parallel import ParallelConfig
from espnet3.runner.class_path import stable_hash
from espnet3.runner.job_records import write_job_record
from espnet3.utils.atomic import atomic_write_json, atomic_write_text

#: SLURM's default MaxArraySize is 1001, so task ids 0..1000.
MAX_ARRAY_SIZE = 1000


def shard_command(spec: str | os.PathLike, python: Sequence[str] | None = None) -> list[str]:
    """The argv of the job that runs one shard spec.

    Example:
        >>> shard_command("s.spec.json", ["apptainer", "exec", "img.sif", "python"])[:5]
        ['apptainer', 'exec', 'img.sif', 'python', '-m']
    """
    return [*(python or [sys.executable]), "-m", "espnet3.runner.shard", str(spec)]


def submit_local(
    names: list[str], specs_dir: Path, log_dir: Path, python: list[str], max_running: int
) -> dict[str, Any]:
    """Start one detached launcher that runs the shards, ``max_running`` at a time.

    Returns once the launcher has written a job record for every shard, so a status query
    right after sees them as pending rather than missing.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    batch = specs_dir / f"local-{stable_hash(names)}.batch.json"
    atomic_write_json(
        batch,
        {
            "names": names,
            "specs_dir": str(specs_dir),
            "log_dir": str(log_dir),
            "python": python,
            "max_running": max_running,
        },
    )
    with open(log_dir / f"{batch.stem}.log", "ab") as launcher_log:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "espnet3.runner.local_launcher", str(batch)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=launcher_log,
            start_new_session=True,  # detached: the shards outlive this process by design
        )
    ready = launcher.stdout.readline().decode().strip()
    launcher.stdout.close()
    if ready != "ready":
        raise Espnet3Error(
            f"the local shard launcher exited before starting (exit code {launcher.wait()}); "
            f"see {log_dir / f'{batch.stem}.log'}"
        )
    return {"scheduler": "local", "launcher": launcher.pid, "shards": len(names)}


def submit_slurm(
    names: list[str], specs_dir: Path, config: ParallelConfig, log_dir: Path, max_running: int
) -> dict[str, Any]:
    """Submit the shards as SLURM job arrays; one ``sbatch`` call per array."""
    log_dir.mkdir(parents=True, exist_ok=True)
    job_ids: list[str] = []
    for start in range(0, len(names), MAX_ARRAY_SIZE):
        part = names[start : start + MAX_ARRAY_SIZE]
        listing = specs_dir / f"array-{stable_hash(part)}.list"
        atomic_write_text(listing, "".join(f"{specs_dir / n}.spec.json\n" for n in part))
        script = slurm_array_script(listing, len(part), config, log_dir, max_running)
        # Chained arrays keep the throttle global: the next starts when the last one ends.
        after = [f"--dependency=afterany:{job_ids[-1]}"] if job_ids else []
        job_id = _sbatch(script, after)
        job_ids.append(job_id)
        for task, name in enumerate(part):
            write_job_record(
                specs_dir,
                name,
                {
                    "scheduler": "slurm",
                    "job_id": f"{job_id}_{task}",
                    "log": str(log_dir / f"{job_id}_{task}.log"),
                },
            )
    return {"scheduler": "slurm", "array_jobs": job_ids, "shards": len(names)}


def slurm_array_script(
    listing: Path, n_tasks: int, config: ParallelConfig, log_dir: Path, max_running: int
) -> str:
    """The batch script of one job array whose task ``i`` runs line ``i + 1`` of ``listing``."""
    options = config.options
    directives = [
        f"--job-name={options.get('job_name') or 'espnet3-shards'}",
        f"--array=0-{n_tasks - 1}%{max_running}",
        f"--output={log_dir}/%A_%a.log",
    ]
    if options.get("queue"):
        directives.append(f"--partition={options['queue']}")
    if options.get("account"):
        directives.append(f"--account={options['account']}")
    if options.get("cores"):
        directives.append(f"--cpus-per-task={options['cores']}")
    if options.get("memory"):
        from dask.utils import parse_bytes
        from dask_jobqueue.slurm import slurm_format_bytes_ceil

        directives.append(f"--mem={slurm_format_bytes_ceil(parse_bytes(options['memory']))}")
    if options.get("walltime"):
        directives.append(f"--time={options['walltime']}")
    directives += list(options.get("job_extra_directives") or [])
    command = shlex.join(shard_command("", shlex.split(config.python_command()))[:-1])
    return "\n".join(
        [
            "#!/usr/bin/env bash",
            *(f"#SBATCH {d}" for d in directives),
            "set -euo pipefail",
            *list(options.get("job_script_prologue") or []),
            f'spec=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(str(listing))})',
            f'exec {command} "$spec"',
            "",
        ]
    )


def _sbatch(script: str, extra: list[str]) -> str:
    try:
        proc = subprocess.run(
            ["sbatch", "--parsable", *extra],
            input=script,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Espnet3Error(f"cannot submit shard jobs with sbatch: {exc}") from None
    if proc.returncode != 0:
        raise Espnet3Error(
            f"sbatch refused the shard job array (exit code {proc.returncode}): "
            f"{proc.stderr.strip()}; check parallel.options (queue, memory, walltime ...)"
        )
    return proc.stdout.strip().split(";")[0]
