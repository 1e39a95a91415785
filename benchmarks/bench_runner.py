"""BaseRunner against a plain loop: its overhead in process, its speedup on 2 workers, its memory.

One run measures, with fixed-CPU-cost items (:func:`benchmarks.common.spin`):

- ``overhead``: ``SpinRunner(...)(range(N))`` on the sequential backend against a plain loop
  over the same 1 ms items (target: at most 5 % slower);
- ``speedup``: the same runner on ``env: local`` with 2 workers against the plain loop, 10 ms
  items (target: at least 1.8x); cluster start-up is excluded and reported apart;
- ``peak RSS``: the parent's peak resident memory (``resource.getrusage`` in a fresh
  subprocess) while streaming ``runner.iter`` over 10^6 tiny items on 2 local workers, beside
  the same process's peak before any item runs (target: at most 300 MB).

Ratios are medians of the repeats, after one unmeasured warm-up run that also checks results.
The full run writes the ``runner`` section of RESULTS.md; ``--quick`` (small sizes, one
repeat) only prints.

    python benchmarks/bench_runner.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, repeat, spin_item, table, write_section  # noqa: E402
from benchmarks.workloads import SpinProvider, SpinRunner  # noqa: E402
from espnet3.parallel import get_client, set_parallel  # noqa: E402

LOCAL = {"env": "local", "n_workers": 2}

#: Runs in a fresh interpreter so that its peak RSS is the runner's alone.
RSS_PROBE = """
import json, resource, sys
sys.path.insert(0, {root!r})
from benchmarks.workloads import SpinProvider, SpinRunner
from espnet3.parallel import get_client
runner = SpinRunner(SpinProvider({{"cost": 0.0}}))
with get_client({local!r}):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    count = sum(1 for _ in runner.iter(range({n})))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"count": count, "before_kb": before, "after_kb": after}}))
"""


def plain_loop(n: int, cost: float) -> list[int]:
    return [spin_item(i, cost) for i in range(n)]


def measure_overhead(n: int, repeats: int) -> dict:
    set_parallel(None)
    runner = SpinRunner(SpinProvider({"cost": 1e-3}))
    assert runner(range(n)) == list(range(n))
    loop = repeat(lambda: plain_loop(n, 1e-3), repeats)
    ran = repeat(lambda: runner(range(n)), repeats)
    return {
        "n": n,
        "loop": loop["median"],
        "runner": ran["median"],
        "overhead": ran["median"] / loop["median"] - 1,
    }


def measure_speedup(n: int, repeats: int) -> dict:
    import time

    runner = SpinRunner(SpinProvider({"cost": 1e-2}))
    loop = repeat(lambda: plain_loop(n, 1e-2), repeats)
    t0 = time.perf_counter()
    with get_client(LOCAL):
        startup = time.perf_counter() - t0
        assert runner(range(n)) == list(range(n))
        ran = repeat(lambda: runner(range(n)), repeats, warmup=0)
    return {
        "n": n,
        "loop": loop["median"],
        "runner": ran["median"],
        "startup": startup,
        "speedup": loop["median"] / ran["median"],
    }


def measure_rss(n: int) -> dict:
    root = str(Path(__file__).resolve().parents[1])
    code = RSS_PROBE.format(root=root, local=LOCAL, n=n)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    probe = json.loads(out.stdout.strip().splitlines()[-1])
    assert probe["count"] == n, probe
    return {"n": n, "before_mb": probe["before_kb"] / 1024, "peak_mb": probe["after_kb"] / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat, no write")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else 5
    overhead = measure_overhead(100 if args.quick else 2000, repeats)
    speedup = measure_speedup(40 if args.quick else 1000, repeats)
    rss = measure_rss(10**5 if args.quick else 10**6)
    rows = [
        [
            "overhead, sequential, 1 ms items",
            f"{overhead['n']}",
            f"{overhead['loop']:.3f} s",
            f"{overhead['runner']:.3f} s",
            f"{100 * overhead['overhead']:+.1f} %",
            "<= +5 %",
        ],
        [
            "speedup, local 2 workers, 10 ms items",
            f"{speedup['n']}",
            f"{speedup['loop']:.3f} s",
            f"{speedup['runner']:.3f} s",
            f"{speedup['speedup']:.2f}x",
            ">= 1.8x",
        ],
        [
            "parent peak RSS, local 2 workers, tiny items",
            f"{rss['n']}",
            f"{rss['before_mb']:.0f} MB before items",
            "",
            f"{rss['peak_mb']:.0f} MB",
            "<= 300 MB",
        ],
    ]
    report = "\n\n".join(
        [
            f"`python benchmarks/bench_runner.py` on {machine()}; medians of {repeats} run(s); "
            f"cluster start-up {speedup['startup']:.1f} s (excluded).",
            table(["measure", "items", "plain loop", "runner", "result", "target"], rows),
        ]
    )
    print(report)
    if not args.quick:
        write_section("runner", "## Runner\n\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
