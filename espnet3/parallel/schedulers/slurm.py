"""``env: slurm``: SLURM, through ``squeue``, ``scontrol``, ``sbatch --array`` and ``scancel``.

States come from ``squeue --states=all``, which still lists jobs that finished less than
``MinJobAge`` (300 s by default) ago, with ``scontrol show job`` as a fallback and for details
(exit code, log paths); ``sacct`` is not needed.

Example:
    >>> SLURM.parse_submission("4211;cluster\\n", 3)
    ('4211', ['4211_0', '4211_1', '4211_2'])
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from espnet3.parallel.jobs import run_quietly
from espnet3.parallel.schedulers.batch import BatchScheduler
from espnet3.parallel.schedulers.job_state import UNKNOWN, JobState, state_word

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings


class Slurm(BatchScheduler):
    envs = ("slurm",)
    cluster_class = "dask_jobqueue.SLURMCluster"
    task_variable = "SLURM_ARRAY_TASK_ID"
    status_command = "squeue --me"
    job_variables = ("SLURM_",)
    job_id_variable = "SLURM_JOB_ID"
    rank_variable = "SLURM_PROCID"  # srun's task rank
    example_options = {"queue": "cpu", "account": "speech", "walltime": "04:00:00"}
    max_array_size = 1000  # SLURM's default MaxArraySize is 1001: task ids 0..1000
    redirects_output = False  # --output names each task's log
    never_starts = {
        "PartitionConfig": "more cores, memory or nodes than the partition has",
        "PartitionNodeLimit": "more nodes than the partition allows",
        "PartitionTimeLimit": "a walltime above the partition's limit",
        "BadConstraints": "constraints no node satisfies",
        "InvalidAccount": "an account that does not exist or is not yours",
        "InvalidQOS": "a QOS that does not exist or is not allowed",
    }

    def array_directives(
        self, n_tasks: int, config: ParallelSettings, log_stem: Path, max_running: int
    ) -> list[str]:
        return [
            f"#SBATCH --array=0-{n_tasks - 1}%{max_running}",
            f"#SBATCH --output={log_stem}_%a.log",
        ]

    def submit_argv(self, files: Mapping[str, Path], after: str | None) -> list[str]:
        # Chained arrays keep the throttle global: the next starts when the last one ends.
        chain = [f"--dependency=afterany:{after}"] if after else []
        return ["sbatch", "--parsable", *chain, str(files[".sh"])]

    def parse_submission(self, output: str, n_tasks: int) -> tuple[str, list[str]]:
        array = output.strip().split(";")[0]
        return array, [f"{array}_{task}" for task in range(n_tasks)]

    def find_job(self, job_id: str, answers: Mapping[str, JobState]) -> JobState | None:
        """Task ``A_i`` also when squeue folds pending tasks into ``A_[3-9%2]``."""
        if job_id in answers:
            return answers[job_id]
        array, _, task = job_id.partition("_")
        for key, job in answers.items():
            if not key.startswith(f"{array}_["):
                continue
            for part in key[len(array) + 2 :].rstrip("]").split("%")[0].split(","):
                low, _, high = part.partition("-")
                if low.isdigit() and int(low) <= int(task) <= int(high or low):
                    return job
        return None

    def job_states(self, job_ids: Sequence[str]) -> dict[str, JobState]:
        """The state and reason of each job, from one ``squeue`` call (``scontrol`` for the rest).

        Every requested id is a key of the result; a job neither command knows (finished longer
        ago than ``MinJobAge``) is ``UNKNOWN``. Array tasks are reported under the ids ``squeue``
        prints (``123_4``; pending ranges as ``123_[5-9]``); ask for ``123_4`` to get that task.
        """
        ids = [str(j) for j in job_ids]
        if not ids:
            return {}
        # squeue fails as a whole when none of the ids is known any more: that means "fall back".
        out = run_quietly(
            ["squeue", "--noheader", "--states=all", "--jobs", ",".join(ids), "-o", "%i|%T|%r"]
        )
        states: dict[str, JobState] = {}
        for line in (out or "").splitlines():
            job_id, _, rest = line.strip().partition("|")
            state, _, reason = rest.partition("|")
            if job_id:
                states[job_id] = JobState(job_id, state_word(state), _reason(reason))
        for job_id in ids:
            if job_id not in states and not any(k.startswith(f"{job_id}_") for k in states):
                states[job_id] = self.job_details(job_id) or JobState(
                    job_id, UNKNOWN, "no longer known to the scheduler"
                )
        return states

    def job_details(self, job_id: str) -> JobState | None:
        """Everything ``scontrol show job`` says that :class:`JobState` holds, or ``None``.

        Unlike ``squeue`` it gives the exit code, and log paths with most patterns expanded
        (SLURM 22.05 leaves ``%J`` as is).
        """
        out = run_quietly(["scontrol", "show", "job", "--oneliner", str(job_id)])
        if not out:
            return None
        fields = dict(re.findall(r"(\w+)=(\S*)", out.splitlines()[0]))
        return JobState(
            str(job_id),
            state_word(fields.get("JobState", UNKNOWN)),
            _reason(fields.get("Reason", "")),
            fields.get("ExitCode", ""),
            fields.get("StdOut", ""),
            fields.get("StdErr", ""),
        )


def _reason(text: str) -> str:
    """SLURM's reason field, with the "None" it prints for a job without one as ``""``."""
    text = text.strip()
    return "" if text == "None" else text


SLURM = Slurm()
SCHEDULERS = (SLURM,)
