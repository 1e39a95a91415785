"""What the batch scheduler says about the jobs this process submitted, and cancelling them.

One :class:`JobWatcher` tracks every job of a run and asks the scheduler about all of them in a
single ``squeue`` call, backing off (1, 2, 4, 8 ... then every 60 s) so a thousand jobs do not
hammer it. A job that ends badly becomes a :class:`JobFailedError` carrying its id, state,
reason and the tail of its stderr log. The small functions below it are usable alone, e.g. for
the status of detached shards.

SLURM has no accounting here (``sacct`` is absent), so states come from ``squeue --states=all``,
which still lists jobs that finished less than ``MinJobAge`` (300 s by default) ago, with
``scontrol show job`` as a fallback and for details (exit code, log paths).

Example (needs SLURM)::

    states = slurm_job_states(["4211", "4212"])
    states["4211"].state, states["4211"].reason     # ('PENDING', 'Resources')
    cancel_jobs(["4211", "4212"])
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from espnet3.errors import Espnet3Error

log = logging.getLogger(__name__)

PENDING_STATES = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
)
RUNNING_STATES = frozenset(
    {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "SUSPENDED", "STOPPED", "RESIZING"}
)
#: Finished, but not because the job's command succeeded.
FAILED_STATES = frozenset(
    {
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "BOOT_FAIL",
        "DEADLINE",
        "PREEMPTED",
        "REVOKED",
        "SPECIAL_EXIT",
    }
)
UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class JobState:
    """One job as the scheduler reports it.

    ``state`` is the scheduler's own word in upper case (``PENDING``, ``RUNNING``, ``FAILED``
    ...; ``UNKNOWN`` when the scheduler no longer knows the job). ``exit_code``, ``stdout`` and
    ``stderr`` are filled only by :func:`slurm_job_details`.

    Example:
        >>> JobState("12", "FAILED", "NonZeroExitCode").is_failed
        True
        >>> JobState("13", "PENDING", "Resources").is_finished
        False
    """

    job_id: str
    state: str
    reason: str = ""
    exit_code: str = ""
    stdout: str = ""
    stderr: str = ""

    @property
    def is_pending(self) -> bool:
        return self.state in PENDING_STATES

    @property
    def is_finished(self) -> bool:
        """Ended for good (or forgotten by the scheduler): it will not run again."""
        return not (self.is_pending or self.state in RUNNING_STATES)

    @property
    def is_failed(self) -> bool:
        """Ended without the job's command succeeding (cancelled, timed out, failed ...)."""
        return self.state in FAILED_STATES

    def describe(self) -> str:
        """``job 12 FAILED (NonZeroExitCode, exit code 1:0)``."""
        details = [self.reason] if self.reason else []
        if self.exit_code and self.exit_code != "0:0":
            details.append(f"exit code {self.exit_code}")
        return f"job {self.job_id} {self.state}" + (f" ({', '.join(details)})" if details else "")


def slurm_job_states(job_ids: Iterable[str]) -> dict[str, JobState]:
    """The state and reason of each job, from one ``squeue`` call (``scontrol`` for the rest).

    Every requested id is a key of the result; a job neither command knows (finished longer ago
    than ``MinJobAge``) is ``UNKNOWN``. Array tasks are reported under the ids ``squeue``
    prints (``123_4``; pending ranges as ``123_[5-9]``); ask for ``123_4`` to get that task.

    Example (needs SLURM)::

        >>> slurm_job_states(["4211"])["4211"].state   # doctest: +SKIP
        'RUNNING'
    """
    ids = [str(j) for j in job_ids]
    if not ids:
        return {}
    # squeue fails as a whole when none of the ids is known any more: that only means "fall back".
    out = _run(["squeue", "--noheader", "--states=all", "--jobs", ",".join(ids), "-o", "%i|%T|%r"])
    states: dict[str, JobState] = {}
    for line in (out or "").splitlines():
        job_id, _, rest = line.strip().partition("|")
        state, _, reason = rest.partition("|")
        if job_id:
            states[job_id] = JobState(job_id, _state_word(state), _reason(reason))
    for job_id in ids:
        if job_id not in states and not any(k.startswith(f"{job_id}_") for k in states):
            states[job_id] = slurm_job_details(job_id) or JobState(
                job_id, UNKNOWN, "no longer known to the scheduler"
            )
    return states


def _reason(text: str) -> str:
    """SLURM's reason field, with the "None" it prints for a job without one as ``""``."""
    text = text.strip()
    return "" if text == "None" else text


def slurm_job_details(job_id: str) -> JobState | None:
    """Everything ``scontrol show job`` says that :class:`JobState` holds, or ``None``.

    Unlike ``squeue`` it gives the exit code, and log paths with most patterns expanded
    (SLURM 22.05 leaves ``%J`` as is).
    """
    out = _run(["scontrol", "show", "job", "--oneliner", str(job_id)])
    if not out:
        return None
    fields = dict(re.findall(r"(\w+)=(\S*)", out.splitlines()[0]))
    return JobState(
        str(job_id),
        _state_word(fields.get("JobState", UNKNOWN)),
        _reason(fields.get("Reason", "")),
        fields.get("ExitCode", ""),
        fields.get("StdOut", ""),
        fields.get("StdErr", ""),
    )


def cancel_jobs(job_ids: Iterable[str], command: str = "scancel") -> None:
    """Cancel every job in one call of ``command`` (``scancel``, ``qdel``, ``bkill`` ...).

    Jobs that already ended are fine; a missing command is logged, never raised, because this
    runs while a process is exiting.

    Example (needs SLURM)::

        cancel_jobs(["4211", "4212"])
    """
    ids = [str(j) for j in job_ids]
    if ids:
        _run([command, *ids])


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

    ``query`` maps job ids to :class:`JobState` (default :func:`slurm_job_states`; ``None``
    for a scheduler espnet3 cannot ask, whose jobs are then only cancelled); ``details`` gives
    one job's exit code and log paths for error messages. Thread-safe: jobs are added from the
    event loop that submits them.

    Example (needs SLURM)::

        watcher = JobWatcher()
        watcher.add("4211", stderr="exp/dask-jobs/x/dask-worker-4211.err")
        watcher.refresh(force=True)["4211"].state
    """

    def __init__(
        self,
        query: Callable[[list[str]], dict[str, JobState]] | None = slurm_job_states,
        details: Callable[[str], JobState | None] | None = slurm_job_details,
        cancel_command: str = "scancel",
        pending_warning: float = 60.0,
        max_interval: float = 60.0,
    ):
        self.query = query
        self.details = details
        self.cancel_command = cancel_command
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
        if due and ask and self.query is not None:
            answers = self.query(ask)
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
        details = self.details(job_id) if self.details is not None else None
        job = details or tracked.job
        # Paths given to add() win: scontrol leaves some patterns (%J) unexpanded.
        stdout = tracked.stdout or (details.stdout if details else "")
        stderr = tracked.stderr or (details.stderr if details else "")
        return JobFailedError(job, what, stdout=stdout, stderr=stderr)

    def cancel_all(self) -> None:
        """Cancel every tracked job that is not known to have finished, in one call."""
        live = [j for j, state in self.states().items() if not state.is_finished]
        cancel_jobs(live, self.cancel_command)

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


def _state_word(state: str) -> str:
    # scontrol says "CANCELLED by 0"; only the first word is the state.
    return (state.split() or [UNKNOWN])[0].upper()


def _run(cmd: list[str]) -> str | None:
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
