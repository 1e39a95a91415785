"""``env: lsf``: IBM Spectrum LSF, with ``bsub -J "name[1-N]%K"`` job arrays.

Example:
    >>> LSF.parse_submission("Job <4211> is submitted to queue <normal>.\\n", 2)
    ('4211', ['4211[1]', '4211[2]'])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from espnet3.parallel.schedulers.batch import SHARD_JOB_NAME, BatchScheduler, parse_job_id

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings


class Lsf(BatchScheduler):
    envs = ("lsf",)
    cluster_class = "dask_jobqueue.LSFCluster"
    task_variable = "LSB_JOBINDEX"
    first_task = 1
    status_command = "bjobs -A"
    job_variables = ("LSB_", "LSF_")
    job_id_variable = "LSB_JOBID"
    example_options = {"queue": "cpu", "project": "speech", "walltime": "04:00"}
    skipped_directives = ("-J",)  # the array is named in its own -J

    def array_directives(
        self, n_tasks: int, config: ParallelSettings, log_stem: Path, max_running: int
    ) -> list[str]:
        name = config.options.get("job_name") or SHARD_JOB_NAME
        return [f'#BSUB -J "{name}[1-{n_tasks}]%{max_running}"', f"#BSUB -o {log_stem}_%I.lsf"]

    def submit_argv(self, files: Mapping[str, Path], after: str | None) -> list[str]:
        return ["bsub", *(["-w", f"ended({after})"] if after else [])]

    def submit_stdin(self, files: Mapping[str, Path]) -> str:
        return files[".sh"].read_text()  # bsub reads #BSUB directives only from stdin

    def parse_submission(self, output: str, n_tasks: int) -> tuple[str, list[str]]:
        job = parse_job_id(r"Job <(\d+)>", output, "bsub")
        return job, [f"{job}[{task + 1}]" for task in range(n_tasks)]


LSF = Lsf()
SCHEDULERS = (LSF,)
