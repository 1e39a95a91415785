"""``env: sge``: (Son of) Grid Engine, with ``qsub -t 1-N -tc K`` job arrays.

Example:
    >>> SGE.parse_submission("4211.1-3:1\\n", 3)
    ('4211', ['4211.1', '4211.2', '4211.3'])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from espnet3.parallel.schedulers.batch import BatchScheduler

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings


class Sge(BatchScheduler):
    envs = ("sge",)
    cluster_class = "dask_jobqueue.SGECluster"
    task_variable = "SGE_TASK_ID"
    first_task = 1
    status_command = "qstat -u $USER"
    job_variables = ("SGE_", "JOB_ID", "JOB_NAME", "NSLOTS", "NHOSTS", "PE_HOSTFILE")
    job_id_variable = "JOB_ID"
    example_options = {"queue": "cpu.q", "project": "speech", "walltime": "04:00:00"}

    def array_directives(
        self, n_tasks: int, config: ParallelSettings, log_stem: Path, max_running: int
    ) -> list[str]:
        return [  # dask-jobqueue's header already joins stderr to stdout (-j y)
            f"#$ -o {log_stem.parent}/",
            f"#$ -t 1-{n_tasks}",
            f"#$ -tc {max_running}",
        ]

    def submit_argv(self, files: Mapping[str, Path], after: str | None) -> list[str]:
        chain = ["-hold_jid", after] if after else []
        return ["qsub", "-terse", *chain, str(files[".sh"])]

    def parse_submission(self, output: str, n_tasks: int) -> tuple[str, list[str]]:
        job = output.strip().split(".")[0]
        return job, [f"{job}.{task + 1}" for task in range(n_tasks)]


SGE = Sge()
SCHEDULERS = (SGE,)
