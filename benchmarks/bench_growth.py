"""Cost growth: parent wall time and peak RSS of one runner call for 10^3 ... 10^7 items.

Each size runs in a fresh subprocess (so its peak RSS is its own) on a 2-worker LocalCluster
with near-free items, which exposes the per-item cost of the machinery itself. A least-squares
line through (items, seconds) gives the per-item cost and says whether time grows linearly;
the peak RSS above the smallest run's, per item, says whether memory grows with the items
(it should not: the runner streams, holding only what is in flight).

The full run writes the ``growth`` section of RESULTS.md; ``--quick`` (up to 10^5) only prints.

    python benchmarks/bench_growth.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])
)

from benchmarks.common import peak_rss_mb, table, write_section  # noqa: E402


def one_size(n: int) -> dict:
    """Run in the child: start the cluster, time one runner call over ``n`` items."""
    from benchmarks.workloads import SpinProvider, SpinRunner
    from espnet3.parallel import get_client

    with get_client({"env": "local", "n_workers": 2}):
        runner = SpinRunner(SpinProvider({"cost": 0.0}))
        runner(range(100))
        t0 = time.perf_counter()
        count = sum(1 for _ in runner.iter(range(n)))
        seconds = time.perf_counter() - t0
    assert count == n, f"expected {n} results, got {count}"
    peak_mb = peak_rss_mb()
    return {"items": n, "seconds": seconds, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_size(args.child)))
        return
    sizes = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6, 10**7]
    points = []
    for n in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        points.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"[growth] {points[-1]}", flush=True)
    import numpy as np

    xs = np.array([p["items"] for p in points], dtype=float)
    ys = np.array([p["seconds"] for p in points])
    slope, intercept = np.polyfit(xs, ys, 1)
    r2 = float(np.corrcoef(xs, ys)[0, 1] ** 2)
    baseline = points[0]["peak_rss_mb"]
    rows = [
        [
            f"{p['items']:,}",
            f"{p['seconds']:.2f}",
            f"{1e6 * p['seconds'] / p['items']:.1f}",
            f"{p['peak_rss_mb']:.0f}",
            f"{bytes_per_item(p, baseline):.1f}",
        ]
        for p in points
    ]
    header = ["items", "wall (s)", "µs per item", "parent peak RSS (MB)", "RSS bytes per item"]
    text = (
        "## Cost growth (runner on local x2, near-free items, parent process)\n\n"
        + table(header, rows)
        + f"\n\nLeast-squares fit: {1e6 * slope:.1f} µs per item + {intercept:.2f} s fixed, "
        f"R² = {r2:.4f} ({'linear' if r2 > 0.99 else 'not linear'}). Peak RSS is the whole "
        f"parent process: interpreter, Dask and espnet3 imports included (the smallest run, "
        f"{baseline:.0f} MB, is about that baseline). RSS bytes per item is the peak above that "
        "baseline divided by the items: constant means memory grows with the items, falling "
        "towards 0 means it does not."
    )
    print(text)
    if not args.quick:
        write_section("growth", text)


def bytes_per_item(point: dict, baseline_mb: float) -> float:
    """Parent peak RSS above ``baseline_mb``, in bytes per item of ``point``."""
    return (point["peak_rss_mb"] - baseline_mb) * 2**20 / point["items"]


if __name__ == "__main__":
    main()
