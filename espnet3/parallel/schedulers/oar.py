"""``env: oar``: OAR, with ``oarsub --array N`` (OAR arrays have no throttle).

Example:
    >>> OAR.parse_submission("OAR_JOB_ID=11\\nOAR_JOB_ID=12\\nOAR_ARRAY_ID=11\\n", 2)
    ('11', ['11', '12'])
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from espnet3.parallel.schedulers.batch import BatchScheduler, parse_job_id

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings

log = logging.getLogger(__name__)


class Oar(BatchScheduler):
    envs = ("oar",)
    cluster_class = "dask_jobqueue.OARCluster"
    task_variable = "OAR_ARRAY_INDEX"
    first_task = 1
    status_command = "oarstat -u"
    job_variables = ("OAR_",)
    job_id_variable = "OAR_JOB_ID"
    example_options = {"queue": "default", "project": "speech", "walltime": "04:00:00"}

    def array_directives(
        self, n_tasks: int, config: ParallelSettings, log_stem: Path, max_running: int
    ) -> list[str]:
        if max_running < n_tasks:
            log.warning(
                "OAR job arrays have no throttle: all %d shards may run at once, not %d",
                n_tasks,
                max_running,
            )
        return [
            f"#OAR --array {n_tasks}",
            f"#OAR -O {log_stem}_%jobid%.oar",
            f"#OAR -E {log_stem}_%jobid%.oar",
        ]

    def submit_argv(self, files: Mapping[str, Path], after: str | None) -> list[str]:
        return ["oarsub", *(["-a", after] if after else []), "-S", str(files[".sh"])]

    def parse_submission(self, output: str, n_tasks: int) -> tuple[str, list[str]]:
        jobs = re.findall(r"OAR_JOB_ID=(\d+)", output)
        array = parse_job_id(r"OAR_ARRAY_ID=(\d+)", output, "oarsub") if n_tasks > 1 else jobs[0]
        return array, jobs


OAR = Oar()
SCHEDULERS = (OAR,)
