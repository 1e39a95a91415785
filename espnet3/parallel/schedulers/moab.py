"""``env: moab``: Moab over Torque, with ``msub -t 0-N%K`` job arrays.

Example:
    >>> MOAB.parse_submission("\\n4211\\n", 2)
    ('4211', ['4211[0]', '4211[1]'])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from espnet3.parallel.schedulers.batch import BatchScheduler

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings


class Moab(BatchScheduler):
    envs = ("moab",)
    cluster_class = "dask_jobqueue.MoabCluster"
    task_variable = "PBS_ARRAYID"
    status_command = "showq -u $USER"
    job_variables = ("MOAB_", "PBS_")  # Torque runs the jobs Moab schedules
    job_id_variable = "MOAB_JOBID"
    example_options = {"queue": "cpu", "account": "speech", "walltime": "04:00:00"}

    def array_directives(
        self, n_tasks: int, config: ParallelSettings, log_stem: Path, max_running: int
    ) -> list[str]:
        return [
            "#PBS -j oe",
            f"#PBS -o {log_stem.parent}/",
            f"#PBS -t 0-{n_tasks - 1}%{max_running}",
        ]

    def submit_argv(self, files: Mapping[str, Path], after: str | None) -> list[str]:
        chain = ["-l", f"depend=afterany:{after}"] if after else []
        return ["msub", *chain, str(files[".sh"])]

    def parse_submission(self, output: str, n_tasks: int) -> tuple[str, list[str]]:
        job = output.strip().splitlines()[-1].strip()
        return job, [f"{job}[{task}]" for task in range(n_tasks)]


MOAB = Moab()
SCHEDULERS = (MOAB,)
