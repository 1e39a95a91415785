"""Run a batch of shard specs on this machine, a few at a time, detached from the submitter.

``python -m espnet3.runner.local_launcher BATCH.json`` is what the ``local`` async backend
starts. It first records every shard as pending (launcher pid, no shard pid), prints
``ready`` so the submitter can return, then runs each shard as its own process (the argv of
:func:`espnet3.runner.submit.shard_command`), recording that process's pid as the shard's job
id. A shard that dies only fails itself; the others go on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from espnet3.runner.job_records import spec_path, write_job_record
from espnet3.runner.submit import shard_command

POLL_SECONDS = 0.1


def run_batch(batch: dict) -> None:
    """Start the batch's shards, at most ``max_running`` at once, and wait for all of them."""
    specs_dir, log_dir = Path(batch["specs_dir"]), Path(batch["log_dir"])
    launcher = os.getpid()
    for name in batch["names"]:
        write_job_record(specs_dir, name, _record(launcher, None, log_dir, name))
    print("ready", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the submitter stopped reading
    waiting, running = list(batch["names"]), []
    while waiting or running:
        while waiting and len(running) < batch["max_running"]:
            name = waiting.pop(0)
            with open(log_dir / f"{name}.log", "ab") as log:
                proc = subprocess.Popen(
                    shard_command(spec_path(specs_dir, name), batch["python"]),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            write_job_record(specs_dir, name, _record(launcher, proc.pid, log_dir, name))
            running.append(proc)
        time.sleep(POLL_SECONDS)
        running = [proc for proc in running if proc.poll() is None]


def _record(launcher: int, pid: int | None, log_dir: Path, name: str) -> dict:
    return {
        "scheduler": "local",
        "launcher": launcher,
        "job_id": None if pid is None else str(pid),
        "log": str(log_dir / f"{name}.log"),
    }


if __name__ == "__main__":
    run_batch(json.loads(Path(sys.argv[1]).read_text()))
