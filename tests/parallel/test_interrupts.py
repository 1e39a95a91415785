"""Ctrl-C and SIGTERM while a local cluster starts or closes: the signal is never lost, the
close is never left half-done, and no worker prints a traceback or outlives the parent.

The signal is sent by a worker itself, from distributed's worker preload (at its start) or a
worker plugin's teardown (at the cluster's close), so it lands inside that step every time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from tests.timing import python_start_seconds

SCRIPT = """
import os, signal, sys, time
import dask
from distributed.diagnostics.plugin import WorkerPlugin
from espnet3.parallel import get_client

mode, to, signame = sys.argv[1:4]
dask.config.set({"distributed.worker.preload": [sys.argv[4]] if mode == "start" else []})

class SignalAtClose(WorkerPlugin):
    def teardown(self, worker):
        with open(os.environ["SIGNAL_STAMP"], "a") as f:
            f.write(f"{time.time()}\\n")
        send = os.killpg if to == "group" else os.kill
        send(os.getpgid(0) if to == "group" else os.getppid(), getattr(signal, signame))

def main():
    try:
        with get_client({"env": "local", "n_workers": 2, "start": "now"}) as client:
            print("pids", *client.run(os.getpid).values(), flush=True)
            if mode == "close":
                client.register_plugin(SignalAtClose())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    print("finished", file=sys.stderr)

if __name__ == "__main__":
    main()
"""

PRELOAD = """
import os, signal, sys

def dask_setup(worker):
    to, signame = os.environ["SIGNAL_TO"], os.environ["SIGNAL_NAME"]
    if to == "group":
        os.killpg(os.getpgid(0), getattr(signal, signame))
    else:
        os.kill(os.getppid(), getattr(signal, signame))
"""


def run(tmp_path, mode: str, to: str, signame: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run the script; returns the process and the seconds from the first signal to exit."""
    script, preload = tmp_path / "script.py", tmp_path / "send_signal.py"
    script.write_text(textwrap.dedent(SCRIPT))
    preload.write_text(textwrap.dedent(PRELOAD))
    stamp = tmp_path / "signalled"
    env = {**os.environ, "SIGNAL_TO": to, "SIGNAL_NAME": signame, "SIGNAL_STAMP": str(stamp)}
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, to, signame, str(preload)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # the group signal stays in this group
    )
    children = []
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    ended = time.time()
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], "a worker outlived it"
    took = ended - min(map(float, stamp.read_text().split())) if stamp.exists() else 0.0
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), took


@pytest.mark.parametrize("to", ["parent", "group"])
def test_ctrl_c_while_workers_start_is_acted_on_once_they_have(tmp_path, to):
    proc, _ = run(tmp_path, "start", to, "SIGINT")
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "interrupted", proc.stderr  # no worker traceback either
    assert "pids" not in proc.stdout  # the block never ran


def test_sigterm_while_workers_start_exits_143(tmp_path):
    proc, _ = run(tmp_path, "start", "parent", "SIGTERM")
    assert proc.returncode == 143, proc.stderr
    assert "Traceback" not in proc.stderr and "pids" not in proc.stdout, proc.stderr


@pytest.mark.parametrize("to", ["parent", "group"])
def test_ctrl_c_while_the_cluster_closes_ends_promptly(tmp_path, to):
    """An interrupted close stayed "closing": the process then waited forever, or 10 s at
    exit. Bound: the time this machine takes now to start Python with torch (idle: 0.3 s
    from the signal to exit, against 10-12 s before, with a baseline of about 2 s)."""
    baseline = python_start_seconds()
    proc, took = run(tmp_path, "close", to, "SIGINT")
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "interrupted", proc.stderr
    assert proc.stdout.startswith("pids ")
    assert 0 < took < baseline, f"{took:.1f} s, baseline {baseline:.1f} s"
