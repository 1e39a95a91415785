"""What TLS costs a local cluster: start-up and per task, TLS (the default) against no TLS.

Every cluster gets TLS with a temporary certificate, loopback included (loopback is shared by
every user of the machine). One run measures, on ``env: local`` with 2 workers, for
``security: auto`` (TLS) and ``security: none`` (plain TCP), in turns:

- ``start-up``: ``get_client`` enter to 2 workers ready, and its exit;
- ``per task``: 2000 one-item Dask tasks (``client.map`` + ``gather`` of a no-op), the
  worst case for a per-message cost, divided by the task count;
- ``parallel_map``: 20000 near-free items through :func:`espnet3.parallel.parallel_map`
  (adaptive chunks), what a data-preparation map pays.

Medians of the repeats (and their range). The full run writes the ``tls`` section of
RESULTS.md; ``--quick`` only prints.

    python benchmarks/bench_tls.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, table, write_section  # noqa: E402

MODES = {"TLS (security: auto, the default)": "auto", "no TLS (security: none)": "none"}


def noop(x: int) -> int:
    return x


def one_run(security: str, tasks: int, items: int) -> dict[str, float]:
    from espnet3.parallel import get_client, parallel_map

    config = {"env": "local", "n_workers": 2, "security": security}
    t0 = time.perf_counter()
    with get_client(config) as client:
        started = time.perf_counter() - t0
        assert client.scheduler.address.startswith("tls://" if security == "auto" else "tcp://")
        t1 = time.perf_counter()
        assert client.gather(client.map(noop, range(tasks), pure=False)) == list(range(tasks))
        per_task = (time.perf_counter() - t1) / tasks
        t2 = time.perf_counter()
        assert parallel_map(noop, range(items)) == list(range(items))
        mapped = time.perf_counter() - t2
        t3 = time.perf_counter()
    stopped = time.perf_counter() - t3
    return {"start": started, "stop": stopped, "task": per_task, "map": mapped}


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    scaled = [v * scale for v in values]
    return f"{statistics.median(scaled):.{digits}f} ({min(scaled):.{digits}f}-{max(scaled):.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat; print only")
    args = parser.parse_args(argv)
    repeats, tasks, items = (1, 200, 2000) if args.quick else (5, 2000, 20000)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in MODES}
    for security in MODES.values():  # warm-up, unmeasured
        one_run(security, tasks // 10, items // 10)
    for _ in range(repeats):  # in turns, so slow drifts hit both alike
        for name, security in MODES.items():
            runs[name].append(one_run(security, tasks, items))
    rows = [
        [
            name,
            spread([r["start"] for r in got]),
            spread([r["stop"] for r in got]),
            spread([r["task"] for r in got], 1000, 3),
            spread([r["map"] for r in got]),
        ]
        for name, got in runs.items()
    ]
    tls, plain = (statistics.median(r["start"] for r in runs[n]) for n in MODES)
    tls_task, plain_task = (statistics.median(r["task"] for r in runs[n]) for n in MODES)
    text = "\n".join(
        [
            "## TLS on a 2-worker LocalCluster: what the default costs",
            "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}. "
            f"`python benchmarks/bench_tls.py`; median (range) of {repeats} run(s) per mode, "
            f"in turns, after one warm-up each. Per task: {tasks} one-item Dask tasks; "
            f"parallel_map: {items} near-free items.",
            "",
            table(
                ["security", "start-up (s)", "shutdown (s)", "per task (ms)", "parallel_map (s)"],
                rows,
            ),
            "",
            f"TLS adds {tls - plain:+.2f} s to start-up and {1000 * (tls_task - plain_task):+.3f} "
            "ms per one-item task (the handshake is once per connection; messages are then "
            "encrypted).",
        ]
    )
    print(text)
    if not args.quick:
        write_section("tls", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
