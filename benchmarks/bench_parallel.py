"""parallel_map on a 2-worker LocalCluster against a plain loop, its rivals and the hardware ceiling.

For items of fixed CPU cost (~50 us, ~1 ms, ~10 ms) and a real workload (log-mel fbank of 1-s
audio), one run times:

- ``loop``: a plain Python loop in this process (the baseline of every ratio);
- ``parallel_map``: :func:`espnet3.parallel.parallel_map` on ``env: local`` with 2 workers;
- ``naive``: one Dask future per item (``client.map`` + ``gather``) on the same cluster;
- ``lhotse``: ``lhotse.parallel.parallel_map(fn, items, num_jobs=2)``;
- ``ceiling``: a bare ``multiprocessing.Pool(2)`` with two large chunks.

Ratios are speedups over the loop (median of the repeats, and their spread), each method
having run once unmeasured first (a warm-up that also checks its results). Cluster and pool
start-up are excluded from the ratios and reported separately. The full run writes the
``parallel`` section of RESULTS.md; ``--quick`` (few items, one repeat) only prints.

    python benchmarks/bench_parallel.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.common import machine, repeat, spin_item, table, write_section  # noqa: E402

COSTS = {"50 us": 5e-5, "1 ms": 1e-3, "10 ms": 1e-2}
#: Targets of the issue: minimum speedup over the loop per item cost.
TARGETS = {"50 us": 1.0, "1 ms": 1.5, "10 ms": 1.8}
METHODS = ("parallel_map", "naive", "lhotse", "ceiling")


def fbank_item(samples: np.ndarray) -> np.ndarray:
    """80-dim log-mel filterbank of one utterance, on one thread as in a data-prep worker."""
    import torch
    from lhotse import Fbank

    torch.set_num_threads(1)
    return Fbank().extract(samples, 16000)


def audio_items(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(16000).astype(np.float32) * 0.1 for _ in range(n)]


def contenders(client, pool) -> dict[str, Callable[[Callable, list], list]]:
    """Each way of mapping ``fn`` over ``items``, returning results in order."""
    from lhotse.parallel import parallel_map as lhotse_map

    from espnet3.parallel import parallel_map

    return {
        "loop": lambda fn, items: [fn(x) for x in items],
        "parallel_map": lambda fn, items: parallel_map(fn, items, client),
        "naive": lambda fn, items: client.gather(client.map(fn, items, pure=False)),
        "lhotse": lambda fn, items: list(lhotse_map(fn, items, num_jobs=2)),
        "ceiling": lambda fn, items: pool.map(fn, items, chunksize=-(-len(items) // 2)),
    }


def measure(workloads, client, pool, repeats: int, warmup: int) -> list[dict]:
    runs = contenders(client, pool)
    rows = []
    for name, fn, items in workloads:
        expected = runs["loop"](fn, items[:3])
        stats = {}
        for method, run in runs.items():
            result = run(fn, items)
            if not _same(result[:3], expected):
                raise RuntimeError(f"{method} returned wrong results for {name}")
            stats[method] = repeat(
                functools.partial(run, fn, items), repeats=repeats, warmup=warmup
            )
            print(f"  {name:>12} {method:>12}: {stats[method]['median']:.3f} s", flush=True)
        rows.append({"name": name, "n": len(items), "stats": stats})
    return rows


def _same(a: list, b: list) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))


def speedup(loop: dict, other: dict) -> tuple[float, float, float]:
    """Median speedup over the loop, and the range over the repeats."""
    base = loop["median"]
    ratios = [base / run for run in other["runs"]]
    return statistics.median(ratios), min(ratios), max(ratios)


def report(rows: list[dict], startup: dict[str, float], quick: bool) -> str:
    header = ["items", "n", "loop (s)", *(f"{m} (x loop)" for m in METHODS)]
    lines = []
    for row in rows:
        stats = row["stats"]
        cells = []
        for method in METHODS:
            med, lo, hi = speedup(stats["loop"], stats[method])
            cells.append(f"{med:.2f} ({lo:.2f}-{hi:.2f})")
        lines.append([row["name"], row["n"], f"{stats['loop']['median']:.2f}", *cells])
    checks = []
    for row in rows:
        target = TARGETS.get(row["name"])
        if target is None:
            continue
        ours = speedup(row["stats"]["loop"], row["stats"]["parallel_map"])[0]
        ceiling = speedup(row["stats"]["loop"], row["stats"]["ceiling"])[0]
        verdict = "met" if ours >= target else "MISSED"
        checks.append(f"- {row['name']}: {ours:.2f}x, target >= {target}x: {verdict}")
        if row["name"] == "10 ms":
            share = ours / ceiling
            verdict = "met" if share >= 0.95 else "MISSED"
            checks.append(f"- 10 ms: {share:.0%} of the Pool ceiling, target >= 95%: {verdict}")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join(
        [
            "## parallel: parallel_map on a 2-worker LocalCluster",
            "",
            f"{'Quick smoke run' if quick else 'Measured'} {when} on {machine()}. Speedup over "
            "a plain loop, median of the repeats (range). Items busy-wait a fixed CPU time "
            "(benchmarks.common.spin_item); fbank is lhotse's 80-dim Fbank of 1-s random audio. "
            "Start-up, excluded from the ratios: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in startup.items())
            + ".",
            "",
            table(header, lines),
            "",
            "Targets:",
            *checks,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few items, one repeat; print only")
    args = parser.parse_args(argv)
    n_items, n_audio, repeats, warmup = (200, 40, 1, 0) if args.quick else (4000, 1000, 3, 0)

    from espnet3.parallel import get_client

    workloads = [
        (name, functools.partial(spin_item, cost=cost), list(range(n_items)))
        for name, cost in COSTS.items()
    ]
    workloads.append(("fbank 1 s", fbank_item, audio_items(n_audio)))

    startup = {}
    t0 = time.perf_counter()
    with get_client({"env": "local", "n_workers": 2}) as client:
        startup["LocalCluster"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            startup["Pool"] = time.perf_counter() - t0
            rows = measure(workloads, client, pool, repeats, warmup)
    text = report(rows, startup, args.quick)
    print(text)
    if not args.quick:
        write_section("parallel", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
