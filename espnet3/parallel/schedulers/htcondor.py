"""``env: htcondor``: HTCondor, with ``queue N`` in a submit description and
``max_materialize`` as the throttle.

dask-jobqueue writes HTCondor jobs as submit descriptions, not shell scripts: an array is
a description (``.sub``) that runs the task script (``.sh``) with ``$(ProcId)``.

Example:
    >>> HTCONDOR.parse_submission("4211.0 - 4211.2\\n", 3)
    ('4211', ['4211.0', '4211.1', '4211.2'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from espnet3.parallel.schedulers.base import ShardBatch
from espnet3.parallel.schedulers.batch import SHARD_JOB_NAME, BatchScheduler

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings


class HTCondor(BatchScheduler):
    envs = ("htcondor",)
    cluster_class = "dask_jobqueue.HTCondorCluster"
    status_command = "condor_q"
    max_array_size = 100_000  # no chaining: HTCondor has no plain job dependencies
    redirects_output = False  # Output/Error in the description name each task's log
    job_variables = ("_CONDOR_",)
    example_options = {"disk": "10GB"}

    def job_id(self, environ: Mapping[str, str]) -> str:
        """``cluster.proc`` from the job ad HTCondor writes for each job (no variable holds it).

        Example:
            >>> HTCONDOR.job_id({})
            ''
        """
        try:
            ad = Path(environ["_CONDOR_JOB_AD"]).read_text()
        except (KeyError, OSError):
            return ""
        fields = dict(re.findall(r"^(ClusterId|ProcId) = (\d+)$", ad, re.MULTILINE))
        return ".".join(fields[k] for k in ("ClusterId", "ProcId") if k in fields)

    def array_files(
        self, listing: Path, n_tasks: int, batch: ShardBatch, config: ParallelSettings
    ) -> dict[str, str]:
        script = super().array_files(listing, n_tasks, batch, config)[".sh"]
        log_stem = batch.log_dir / listing.stem
        description = [
            *self._resources(config),
            f"batch_name = {config.options.get('job_name') or SHARD_JOB_NAME}",
            f"executable = {listing.with_suffix('.sh')}",
            "arguments = $(ProcId)",
            f"output = {log_stem}_$(ProcId).log",
            f"error = {log_stem}_$(ProcId).log",
            f"max_materialize = {batch.max_running}",
            *list(config.options.get("job_extra_directives") or []),
            f"queue {n_tasks}",
            "",
        ]
        return {".sh": script, ".sub": "\n".join(description)}

    def resource_directives(self, config: ParallelSettings) -> list[str]:
        return []  # they go into the description

    def array_directives(
        self, n_tasks: int, config: ParallelSettings, log_stem: Path, max_running: int
    ) -> list[str]:
        return []

    def _resources(self, config: ParallelSettings) -> list[str]:
        """dask-jobqueue's resource lines (cpus, memory, disk), without its worker's own."""
        job = self.shard_job(config, job_extra_directives=[])  # they follow in the description
        keep = ("Request", "MY.DaskWorkerCores", "MY.DaskWorkerMemory", "MY.DaskWorkerDisk")
        return [line for line in job.job_script().splitlines() if line.startswith(keep)]

    def _task_index(self) -> str:
        return "$1"  # the script's first argument: $(ProcId)

    def submit_argv(self, files: Mapping[str, Path], after: str | None) -> list[str]:
        return ["condor_submit", "-terse", str(files[".sub"])]

    def parse_submission(self, output: str, n_tasks: int) -> tuple[str, list[str]]:
        cluster = output.strip().split(".")[0]
        return cluster, [f"{cluster}.{task}" for task in range(n_tasks)]


HTCONDOR = HTCondor()
SCHEDULERS = (HTCONDOR,)
