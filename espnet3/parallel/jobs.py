"""Batch jobs as espnet3 handles them: watching a run's jobs, explaining failures, cancelling.

A job's state is a :class:`~espnet3.parallel.schedulers.job_state.JobState`, as its scheduler
reports it. One :class:`JobWatcher` tracks every job of a run and asks the scheduler about all of them in a
single call (its scheduler's :meth:`~espnet3.parallel.schedulers.base.Scheduler.job_states`),
backing off (1, 2, 4, 8 ... then every 60 s) so a thousand jobs do not hammer it. A job that
ends badly becomes a :class:`JobFailedError` carrying its id, state, reason and the tail of
its stderr log.

Example (needs SLURM)::

    from espnet3.parallel.schedulers import scheduler_for
    slurm = scheduler_for("slurm")
    states = slurm.job_states(["4211", "4212"])
    states["4211"].state, states["4211"].reason     # ('PENDING', 'Resources')
    cancel_jobs(["4211", "4212"], slurm.cancel_command)
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from espnet3.errors import Espnet3Error
from espnet3.parallel.schedulers.base import Scheduler
from espnet3.parallel.schedulers.job_state import JobState

log = logging.getLogger(__name__)


def cancel_jobs(job_ids: Iterable[str], command: str) -> None:
    """Cancel every job in one call of ``command`` (``scancel``, ``qdel``, ``bkill`` ...).

    Jobs that already ended are fine; a missing command is logged, never raised, because this
    runs while a process is exiting.

    Example (needs SLURM)::

        cancel_jobs(["4211", "4212"], "scancel")
    """
    ids = [str(j) for j in job_ids]
    if ids and command:
        run_quietly([command, *ids])


def log_tail(path: str | Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, or a note saying why there are none.

    Example:
        >>> log_tail("/nonexistent/worker-1.err")
        '(no log at /nonexistent/worker-1.err)'
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))  # a bounded read: logs can be huge
            text = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(empty log {path})"


class JobFailedError(Espnet3Error):
    """A job ended before doing its work; the message holds its state, reason and log tail.

    ``job`` is its :class:`JobState`; ``stdout``/``stderr`` are the log paths.
    """

    def __init__(self, job: JobState, what: str, stdout: str = "", stderr: str = ""):
        self.job, self.stdout, self.stderr = job, stdout, stderr
        logs = f"stderr log {stderr}" + (f", stdout log {stdout}" if stdout else "")
        tail = log_tail(stderr) if stderr else "(no log file known)"
        super().__init__(f"{job.describe()} {what}; {logs}; last lines:\n{tail}")


@dataclass
class _Tracked:
    job: JobState
    stdout: str
    stderr: str
    submitted: float
    pending_logged: bool = False


class JobWatcher:
    """Tracks the jobs of one run and asks the scheduler about all of them in one call.

    ``scheduler`` (a :class:`~espnet3.parallel.schedulers.base.Scheduler`) answers for the
    jobs: their states in one call (a scheduler espnet3 cannot ask answers ``None``, and its
    jobs are then only cancelled), one job's exit code and log paths for error messages, and
    the cancel command. Thread-safe: jobs are added from the event loop that submits them.

    Example (needs SLURM)::

        watcher = JobWatcher(scheduler_for("slurm"))
        watcher.add("4211", stderr="exp/dask-jobs/x/dask-worker-4211.err")
        watcher.refresh(force=True)["4211"].state
    """

    def __init__(
        self, scheduler: Scheduler, pending_warning: float = 60.0, max_interval: float = 60.0
    ):
        self.scheduler = scheduler
        self.pending_warning = pending_warning
        self.max_interval = max_interval
        self._jobs: dict[str, _Tracked] = {}
        self._lock = threading.Lock()
        self._interval = 1.0
        self._next = 0.0

    def add(self, job_id: str, stdout: str = "", stderr: str = "") -> None:
        """Track ``job_id``; the next :meth:`refresh` asks about it at once."""
        with self._lock:
            self._jobs[str(job_id)] = _Tracked(
                JobState(str(job_id), "PENDING"), stdout, stderr, time.monotonic()
            )
            self._interval, self._next = 1.0, 0.0

    @property
    def job_ids(self) -> list[str]:
        """Every job ever added, in submission order."""
        with self._lock:
            return list(self._jobs)

    def states(self) -> dict[str, JobState]:
        """The last known state of every tracked job, without asking the scheduler."""
        with self._lock:
            return {job_id: t.job for job_id, t in self._jobs.items()}

    def refresh(self, force: bool = False) -> dict[str, JobState]:
        """Ask the scheduler about every unfinished job when the back-off allows (or ``force``).

        Logs the reason of a job pending longer than ``pending_warning`` seconds, once.
        """
        now = time.monotonic()
        with self._lock:
            due = force or now >= self._next
            ask = [j for j, t in self._jobs.items() if not t.job.is_finished]
            if due:
                self._next = now + self._interval
                self._interval = min(self._interval * 2, self.max_interval)
        answers = self.scheduler.job_states(ask) if due and ask else None
        if answers is not None:
            with self._lock:
                for job_id in ask:
                    tracked = self._jobs[job_id]
                    tracked.job = answers.get(job_id, tracked.job)
                    self._warn_if_pending(tracked, now)
        return self.states()

    def failure(self, job_id: str, what: str) -> JobFailedError:
        """A :class:`JobFailedError` for ``job_id`` with the scheduler's details and log tail."""
        with self._lock:
            tracked = self._jobs[job_id]
        details = self.scheduler.job_details(job_id)
        job = details or tracked.job
        # Paths given to add() win: scontrol leaves some patterns (%J) unexpanded.
        stdout = tracked.stdout or (details.stdout if details else "")
        stderr = tracked.stderr or (details.stderr if details else "")
        return JobFailedError(job, what, stdout=stdout, stderr=stderr)

    def cancel_all(self) -> None:
        """Cancel every tracked job that is not known to have finished, in one call."""
        live = [j for j, state in self.states().items() if not state.is_finished]
        cancel_jobs(live, self.scheduler.cancel_command)

    def _warn_if_pending(self, tracked: _Tracked, now: float) -> None:
        waited = now - tracked.submitted
        if tracked.job.is_pending and waited >= self.pending_warning and not tracked.pending_logged:
            tracked.pending_logged = True
            log.warning(
                "job %s still pending after %.0f s: %s",
                tracked.job.job_id,
                waited,
                tracked.job.reason or "no reason given",
            )


def run_quietly(cmd: list[str]) -> str | None:
    """stdout of ``cmd``, or ``None`` (logged) when it fails or does not exist."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", cmd[0], exc)
        return None
    if proc.returncode != 0:
        log.debug("%s exited %d: %s", " ".join(cmd), proc.returncode, proc.stderr.strip())
        return None
    return proc.stdout
