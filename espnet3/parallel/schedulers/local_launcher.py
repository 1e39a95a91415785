"""Run a batch of shard jobs on this machine, a few at a time, detached from the submitter.

``python -m espnet3.parallel.schedulers.local_launcher BATCH.json`` is what the ``local``
scheduler starts for ``async_mode`` shards. It first records every task as pending (launcher
pid, no job id), prints ``ready`` so the submitter can return, then runs each task as its own
process (the batch's command and the task's spec), recording that process's pid as the task's
job id. A task that dies only fails itself; the others go on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from espnet3.utils.atomic import atomic_write_json

POLL_SECONDS = 0.1


def run_batch(batch: dict[str, Any]) -> None:
    """Start the batch's tasks, at most ``max_running`` at once, and wait for all of them."""
    launcher = os.getpid()
    for task in batch["tasks"]:
        _record(batch, task, launcher, None)
    print("ready", flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # the submitter stopped reading
    waiting, running = list(batch["tasks"]), []
    while waiting or running:
        while waiting and len(running) < batch["max_running"]:
            task = waiting.pop(0)
            Path(task["log"]).parent.mkdir(parents=True, exist_ok=True)
            with open(task["log"], "ab") as log:
                proc = subprocess.Popen(
                    [*batch["command"], task["spec"]],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            _record(batch, task, launcher, proc.pid)
            running.append(proc)
        time.sleep(POLL_SECONDS)
        running = [proc for proc in running if proc.poll() is None]


def _record(batch: dict[str, Any], task: dict[str, Any], launcher: int, pid: int | None) -> None:
    atomic_write_json(
        task["record"],
        {
            "scheduler": batch["scheduler"],
            "launcher": launcher,
            "job_id": None if pid is None else str(pid),
            "log": task["log"],
            "spec": task["spec"],
        },
    )


if __name__ == "__main__":
    run_batch(json.loads(Path(sys.argv[1]).read_text()))
