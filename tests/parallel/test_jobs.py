"""Job states, cancellation and failure reports, against plain ``sbatch`` jobs on the real SLURM."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import pytest

from espnet3.parallel.jobs import JobFailedError, JobState, JobWatcher, cancel_jobs, log_tail
from espnet3.parallel.schedulers.slurm import SLURM, Slurm


def sbatch(tmp_path: Path, command: str, *args: str) -> tuple[str, Path]:
    """Submit ``command``; return its job id and stderr path."""
    err = tmp_path / "job-%j.err"
    out = subprocess.run(
        ["sbatch", "--parsable", "--mem=100M", "-e", str(err), "-o", "/dev/null", *args],
        input=f"#!/bin/bash\n{command}\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    job_id = out.stdout.strip()
    return job_id, tmp_path / f"job-{job_id}.err"


def wait_for(job_id: str, done, seconds: float = 60.0) -> JobState:
    deadline = time.monotonic() + seconds
    while True:
        state = SLURM.job_states([job_id])[job_id]
        if done(state) or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def test_log_tail_keeps_the_last_lines(tmp_path):
    log = tmp_path / "w.err"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(log, lines=3) == "line 97\nline 98\nline 99"
    assert log_tail(tmp_path / "missing.err") == f"(no log at {tmp_path / 'missing.err'})"


def test_job_state_phases():
    assert JobState("1", "PENDING", "Priority").is_pending
    assert not JobState("1", "COMPLETING").is_finished
    assert JobState("1", "COMPLETED").is_finished and not JobState("1", "COMPLETED").is_failed
    assert JobState("1", "OUT_OF_MEMORY").is_failed
    assert JobState("1", "UNKNOWN").is_finished
    assert JobState("7", "FAILED", "NonZeroExitCode", "3:0").describe() == (
        "job 7 FAILED (NonZeroExitCode, exit code 3:0)"
    )


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_states_of_failed_completed_and_forgotten_jobs_in_one_call(tmp_path):
    failed, _ = sbatch(tmp_path, "exit 3")
    completed, _ = sbatch(tmp_path, "true")
    wait_for(failed, lambda s: s.is_finished)
    wait_for(completed, lambda s: s.is_finished)
    states = SLURM.job_states([failed, completed, "999999"])
    assert states[failed].state == "FAILED"
    assert states[failed].reason == "NonZeroExitCode"
    assert states[completed].state == "COMPLETED"
    assert states["999999"].state == "UNKNOWN"


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_cancel_jobs_cancels_every_job_in_one_call(tmp_path):
    ids = [sbatch(tmp_path, "sleep 600")[0] for _ in range(3)]
    cancel_jobs([*ids, "999999"], SLURM.cancel_command)  # an unknown id does not stop the others
    states = {j: wait_for(j, lambda s: s.is_finished) for j in ids}
    assert {s.state for s in states.values()} == {"CANCELLED"}


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_failure_carries_state_exit_code_and_stderr_tail(tmp_path):
    job_id, err = sbatch(tmp_path, "echo 'cannot open /data/x.flac' >&2; exit 3")
    watcher = JobWatcher(SLURM)
    watcher.add(job_id, stderr=str(err))
    deadline = time.monotonic() + 60
    while not watcher.refresh(force=True)[job_id].is_finished and time.monotonic() < deadline:
        time.sleep(0.5)
    error = watcher.failure(job_id, "ended before doing its work")
    assert isinstance(error, JobFailedError)
    assert error.job.exit_code == "3:0"
    assert str(error) == (
        f"job {job_id} FAILED (NonZeroExitCode, exit code 3:0) ended before doing its work; "
        f"stderr log {err}, stdout log /dev/null; last lines:\ncannot open /data/x.flac"
    )


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_long_pending_job_logs_its_reason_once(tmp_path, caplog):
    job_id, _ = sbatch(tmp_path, "true", "--begin=now+1hour")
    watcher = JobWatcher(SLURM, pending_warning=0)
    watcher.add(job_id)
    try:
        with caplog.at_level(logging.WARNING, logger="espnet3.parallel.jobs"):
            wait_for(job_id, lambda s: s.reason == "BeginTime")
            watcher.refresh(force=True)
            watcher.refresh(force=True)
    finally:
        cancel_jobs([job_id], "scancel")
    pending = [r.getMessage() for r in caplog.records if "pending" in r.getMessage()]
    assert len(pending) == 1
    assert pending[0].startswith(f"job {job_id} still pending after ")
    assert pending[0].endswith(": BeginTime")


@pytest.mark.slurm
@pytest.mark.timeout(120)
def test_refresh_backs_off_between_scheduler_calls(tmp_path):
    """Counts real ``squeue`` calls made through the SLURM scheduler's ``job_states``."""
    calls = []

    class Counted(Slurm):
        def job_states(self, job_ids):
            calls.append(list(job_ids))
            return super().job_states(job_ids)

    job_id, _ = sbatch(tmp_path, "sleep 600")
    watcher = JobWatcher(Counted())
    watcher.add(job_id)
    try:
        for _ in range(20):
            watcher.refresh()
        assert calls == [[job_id]]  # the rest came within the back-off interval
        watcher.refresh(force=True)
        assert len(calls) == 2
        watcher.cancel_all()
        assert wait_for(job_id, lambda s: s.is_finished).state == "CANCELLED"
    finally:
        cancel_jobs([job_id], "scancel")
