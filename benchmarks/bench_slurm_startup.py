"""Time from asking for 2 SLURM workers to both being ready: espnet3 vs raw dask-jobqueue.

Contenders, interleaved round by round on the same SLURM so load drifts hit all alike:

- ``dask_jobqueue.SLURMCluster`` + ``Client.wait_for_workers(2)`` (no TLS, no job watching);
- ``espnet3 get_client`` with its defaults (TLS, per-run log directory, job watching);
- ``espnet3 get_client`` with ``security: none``, to separate the cost of TLS.

Each worker is a 1-core, 1 GB job; traffic stays on 127.0.0.1. Between rounds the script waits
until every job has left ``squeue`` so no contender waits for the previous one's cores. Needs
``bash slurm/local-cluster.sh up``.

    python benchmarks/bench_slurm_startup.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, table, write_section  # noqa: E402
from espnet3.parallel import get_client  # noqa: E402

OPTIONS = {"cores": 1, "memory": "1GB", "interface": "lo", "walltime": "00:10:00"}


def raw_jobqueue(log_dir: str) -> float:
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    t0 = time.perf_counter()
    with (
        SLURMCluster(**OPTIONS, log_directory=log_dir, scheduler_options={"interface": "lo"}) as c,
        Client(c) as client,
    ):
        c.scale(2)
        client.wait_for_workers(2)
        return time.perf_counter() - t0


def espnet3(log_dir: str, security: str) -> float:
    config = {"env": "slurm", "n_workers": 2, "min_workers": 2, "security": security}
    t0 = time.perf_counter()
    with get_client({**config, "log_dir": log_dir, "options": OPTIONS}):
        return time.perf_counter() - t0


def wait_for_empty_queue(seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True)
        if not out.stdout.strip():
            return
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 1 if args.quick else 5
    contenders = {
        "dask_jobqueue.SLURMCluster (raw)": lambda d: raw_jobqueue(d),
        "espnet3 get_client (TLS, default)": lambda d: espnet3(d, "auto"),
        "espnet3 get_client (security: none)": lambda d: espnet3(d, "none"),
    }
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as log_dir:
        for _ in range(rounds):
            for name, measure in contenders.items():
                wait_for_empty_queue()
                runs[name].append(measure(log_dir))
                print(f"{name}: {runs[name][-1]:.2f} s", flush=True)
    raw = statistics.median(runs["dask_jobqueue.SLURMCluster (raw)"])
    rows = [
        [
            name,
            f"{statistics.median(r):.2f}",
            f"{min(r):.2f}",
            f"{max(r):.2f}",
            f"{statistics.median(r) - raw:+.2f}",
        ]
        for name, r in runs.items()
    ]
    write_section(
        "slurm_startup",
        "## SLURM startup: get_client enter to 2 workers ready\n\n"
        f"{machine()}; local SLURM 22.05 (`slurm/local-cluster.sh`), 1-core 1 GB jobs, "
        f"{rounds} interleaved round(s), seconds. Target: espnet3 within +1 s of raw.\n\n"
        + table(["contender", "median", "min", "max", "vs raw (median)"], rows),
    )


if __name__ == "__main__":
    main()
