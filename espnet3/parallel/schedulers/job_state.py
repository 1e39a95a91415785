"""One batch job as its scheduler reports it: :class:`JobState` and the state words it knows.

Schedulers answer :meth:`~espnet3.parallel.schedulers.base.Scheduler.job_states` with these;
:mod:`espnet3.parallel.jobs` watches, explains and cancels jobs with them.

Example:
    >>> JobState("12", state_word("CANCELLED by 0")).is_failed
    True
"""

from __future__ import annotations

from dataclasses import dataclass

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
    ``stderr`` are filled only by a scheduler's ``job_details``.

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


def state_word(state: str) -> str:
    """The state word of a scheduler's state field: ``"CANCELLED by 0"`` is ``CANCELLED``."""
    return (state.split() or [UNKNOWN])[0].upper()


__all__ = ["FAILED_STATES", "JobState", "PENDING_STATES", "RUNNING_STATES", "UNKNOWN", "state_word"]
