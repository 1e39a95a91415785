"""What every batch scheduler dask-jobqueue drives has in common: Dask workers in jobs, and
``async_mode`` shards as job arrays.

A subclass (one module per scheduler) names its dask-jobqueue class and says how its job
arrays are written and submitted: the array directive and throttle, the variable that holds a
task's index, how the submit command is called and what it prints. Resource directives
(queue, account, cores, memory, walltime, ``job_extra_directives``) come from dask-jobqueue's
own job class, so ``parallel.options`` mean for shards exactly what they mean for workers.

Each array task runs the line of a listing file that matches its index, and appends its
output to ``<log_dir>/<array>_<task>.log`` (``task`` from 0), whatever the scheduler.

Example:
    >>> from espnet3.parallel.schedulers import scheduler_for
    >>> scheduler_for("sge").task_variable, scheduler_for("sge").first_task
    ('SGE_TASK_ID', 1)
"""

from __future__ import annotations

import contextlib
import logging
import re
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from espnet3.errors import ConfigError, Espnet3Error
from espnet3.parallel.jobqueue import (
    config_fallback,
    start_jobqueue_cluster,
    supervise_jobs,
    walltime_as_clock,
)
from espnet3.parallel.schedulers.base import Scheduler, ShardBatch, keyword_chain
from espnet3.utils.atomic import atomic_write_json, atomic_write_text
from espnet3.utils.checks import check_positive

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.job_state import JobState
    from espnet3.parallel.schedulers.settings import ParallelSettings

log = logging.getLogger(__name__)

#: The name shard jobs get when ``options.job_name`` is not set.
SHARD_JOB_NAME = "espnet3-shards"


class BatchScheduler(Scheduler):
    """A batch scheduler driven by dask-jobqueue; subclasses describe its job arrays."""

    package = "dask-jobqueue"
    runs_shards = True
    #: The environment variable holding an array task's index, and the index of the first task.
    task_variable: str = ""
    first_task: int = 0
    #: Tasks per array; more shards go out as several arrays, chained where the scheduler can.
    max_array_size: int = 1000
    #: The command that shows the jobs (for messages).
    status_command: str = ""
    #: Header directives (dask-jobqueue's spelling) that the array directives replace.
    skipped_directives: tuple[str, ...] = ()
    #: The script appends its own output to the task's log (else the array directive does).
    redirects_output: bool = True

    # ----- options and the Dask cluster -----------------------------------------------------
    def extra_options(self, cluster_cls: type) -> set[str]:
        return keyword_chain(cluster_cls.job_cls)  # **job_kwargs build each job

    def check_options(self, env: str, options: Mapping[str, Any]) -> dict[str, Any]:
        options = walltime_as_clock(super().check_options(env, options))
        for key in ("cores", "processes"):
            if options.get(key) is not None:
                check_positive(
                    f"parallel.options.{key}", options[key], f": e.g. {key}: 8", none_ok=False
                )
        memory = options.get("memory")
        if memory is not None:
            from dask.utils import parse_bytes

            try:
                if not isinstance(memory, str) or parse_bytes(memory) <= 0:
                    raise ValueError
            except ValueError:
                raise ConfigError(
                    f"parallel.options.memory must be an amount with its unit, got {memory!r}: "
                    "e.g. memory: 32GB"
                ) from None
        return options

    @property
    def job_cls(self) -> type:
        return self.load().job_cls

    @property
    def cancel_command(self) -> str:  # type: ignore[override]
        return self.job_cls.cancel_command

    def start_cluster(self, config: ParallelSettings) -> Any:
        return start_jobqueue_cluster(config, self)

    @contextlib.contextmanager
    def supervise(self, cluster: Any, client: Any, config: ParallelSettings) -> Iterator[bool]:
        with supervise_jobs(cluster, client, config, self) as supervised:
            yield supervised

    # ----- job arrays ----------------------------------------------------------------------
    def resource_directives(self, config: ParallelSettings) -> list[str]:
        """The job header dask-jobqueue writes for these options (resources, queue, extras)."""
        skip = config.options.get("job_directives_skip") or []
        job = self.shard_job(
            config,
            job_name=config.options.get("job_name") or SHARD_JOB_NAME,
            log_directory=None,
            python="python",
            job_directives_skip=[*skip, *self.skipped_directives],
        )
        return (job.job_header or "").splitlines()

    def shard_job(self, config: ParallelSettings, **overrides: Any) -> Any:
        """A dask-jobqueue job of the options that its job class takes (``overrides`` win),
        whose script espnet3 reads the resource lines from."""
        accepted = keyword_chain(self.job_cls)
        options = {k: v for k, v in config.options.items() if k in accepted} | overrides
        try:
            return self.job_cls(scheduler="tcp://127.0.0.1:8786", name="shard", **options)
        except ValueError as exc:  # no cores or memory, here or in the Dask config
            raise ConfigError(
                f"parallel.options {dict(config.options)} do not describe a {self.name} job "
                f"({exc.args[0].splitlines()[0]}): give e.g. cores: 8 and memory: 32GB"
            ) from None

    def array_directives(
        self, n_tasks: int, config: ParallelSettings, log_stem: Path, max_running: int
    ) -> list[str]:
        """The lines that make the job an array of ``n_tasks`` (and throttle it)."""
        raise NotImplementedError

    def array_files(
        self, listing: Path, n_tasks: int, batch: ShardBatch, config: ParallelSettings
    ) -> dict[str, str]:
        """The files one array is submitted with, by suffix; ``.sh`` is the batch script."""
        log_stem = batch.log_dir / listing.stem
        index = self._task_index()
        task = f"$(( {index} - {self.first_task} ))" if self.first_task else index
        lines = [
            "#!/usr/bin/env bash",
            *self.resource_directives(config),
            *self.array_directives(n_tasks, config, log_stem, batch.max_running),
            "set -euo pipefail",
            f"task={task}",
        ]
        if self.redirects_output:
            lines.append(f'exec >>{shlex.quote(str(log_stem))}_"$task".log 2>&1')
        lines += [
            *list(config_fallback(self.job_cls, config.options, "job-script-prologue") or []),
            f'spec=$(sed -n "$((task + 1))p" {shlex.quote(str(listing))})',
            f'exec {shlex.join(batch.command)} "$spec"',
            "",
        ]
        return {".sh": "\n".join(lines)}

    def _task_index(self) -> str:
        return f"${{{self.task_variable}}}"

    def submit_argv(self, files: Mapping[str, Path], after: str | None) -> list[str]:
        """The command that submits one array (after job ``after``, when given)."""
        raise NotImplementedError

    def submit_stdin(self, files: Mapping[str, Path]) -> str | None:
        """What the submit command reads on stdin (``None``: nothing)."""
        return None

    def parse_submission(self, output: str, n_tasks: int) -> tuple[str, list[str]]:
        """The array's job id and each task's, from what the submit command printed."""
        raise NotImplementedError

    def task_log(self, log_stem: Path, task: int) -> Path:
        return Path(f"{log_stem}_{task}.log")

    def submit_shards(self, batch: ShardBatch, config: ParallelSettings) -> dict[str, Any]:
        """Submit the shards as job arrays of at most :attr:`max_array_size` tasks each,
        chained so that at most ``batch.max_running`` run at once; write each task's record."""
        batch.log_dir.mkdir(parents=True, exist_ok=True)
        tasks = list(batch.tasks)
        arrays: list[str] = []
        for start in range(0, len(tasks), self.max_array_size):
            part = tasks[start : start + self.max_array_size]
            listing = batch.work_dir / f"array-{batch.name}-{start // self.max_array_size}.list"
            atomic_write_text(listing, "".join(f"{task.spec}\n" for task in part))
            files = {}
            for suffix, text in self.array_files(listing, len(part), batch, config).items():
                files[suffix] = listing.with_suffix(suffix)
                atomic_write_text(files[suffix], text)
                files[suffix].chmod(0o755 if suffix == ".sh" else 0o644)
            output = self._submit(files, arrays[-1] if arrays else None)
            array, ids = self.parse_submission(output, len(part))
            arrays.append(array)
            for k, (task, job_id) in enumerate(zip(part, ids, strict=True)):
                atomic_write_json(
                    task.record,
                    {
                        "scheduler": self.name,
                        "job_id": job_id,
                        "log": str(self.task_log(batch.log_dir / listing.stem, k)),
                    },
                )
        return {"scheduler": self.name, "array_jobs": arrays, "shards": len(tasks)}

    def _submit(self, files: Mapping[str, Path], after: str | None) -> str:
        argv = self.submit_argv(files, after)
        stdin = self.submit_stdin(files)
        try:
            proc = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Espnet3Error(f"cannot submit shard jobs with {argv[0]}: {exc}") from None
        if proc.returncode != 0:
            raise Espnet3Error(
                f"{argv[0]} refused the shard job array (exit code {proc.returncode}): "
                f"{proc.stderr.strip()}; check parallel.options (queue, memory, walltime ...)"
            )
        return proc.stdout

    # ----- shard states --------------------------------------------------------------------
    def find_job(self, job_id: str, answers: Mapping[str, JobState]) -> JobState | None:
        """The state of ``job_id`` among the scheduler's answers."""
        return answers.get(job_id)

    def shard_states(self, records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
        answers = self.job_states([str(r["job_id"]) for r in records])
        if answers is None:
            return [
                (
                    "submitted",
                    f"job {r['job_id']}: espnet3 cannot ask {self.name} about it; see "
                    f"`{self.status_command}`",
                )
                for r in records
            ]
        return [self._shard_state(str(r["job_id"]), answers) for r in records]

    def _shard_state(self, job_id: str, answers: Mapping[str, JobState]) -> tuple[str, str]:
        job = self.find_job(job_id, answers)
        if job is None:
            return "failed", f"job {job_id} unknown to {self.name} and left no results"
        if job.is_pending:
            return "pending", job.reason or "waiting in the queue"
        if not job.is_finished:
            return "running", ""
        return "failed", f"{job.describe()} without complete results"


def parse_job_id(pattern: str, output: str, command: str) -> str:
    """The first group of ``pattern`` in ``output``, or an error showing what was printed."""
    match = re.search(pattern, output)
    if match is None:
        raise Espnet3Error(
            f"cannot find the job id in what {command} printed ({output.strip()!r}); "
            "check the scheduler's submit command"
        )
    return match.group(1)
