"""``env: pbs``: PBS Pro / OpenPBS, with ``qsub -J`` job arrays throttled by
``max_run_subjobs``.

Example:
    >>> PBS.parse_submission("4211[].pbs01\\n", 2)
    ('4211[].pbs01', ['4211[0].pbs01', '4211[1].pbs01'])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from espnet3.parallel.schedulers.batch import BatchScheduler

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings


class Pbs(BatchScheduler):
    envs = ("pbs",)
    cluster_class = "dask_jobqueue.PBSCluster"
    task_variable = "PBS_ARRAY_INDEX"
    status_command = "qstat -t -u $USER"
    job_variables = ("PBS_",)
    job_id_variable = "PBS_JOBID"
    example_options = {"queue": "cpu", "account": "speech", "walltime": "04:00:00"}

    def array_directives(
        self, n_tasks: int, config: ParallelSettings, log_stem: Path, max_running: int
    ) -> list[str]:
        # PBS refuses an array of one subjob; that one runs as a plain job, as task 0.
        lines = ["#PBS -j oe", f"#PBS -o {log_stem.parent}/"]
        if n_tasks > 1:
            lines += [f"#PBS -J 0-{n_tasks - 1}", f"#PBS -W max_run_subjobs={max_running}"]
        return lines

    def _task_index(self) -> str:
        return f"${{{self.task_variable}:-0}}"

    def submit_argv(self, files: Mapping[str, Path], after: str | None) -> list[str]:
        chain = ["-W", f"depend=afterany:{after}"] if after else []
        return ["qsub", *chain, str(files[".sh"])]

    def parse_submission(self, output: str, n_tasks: int) -> tuple[str, list[str]]:
        job = output.strip()
        if "[]" not in job:
            return job, [job]
        return job, [job.replace("[]", f"[{task}]") for task in range(n_tasks)]


PBS = Pbs()
SCHEDULERS = (PBS,)
