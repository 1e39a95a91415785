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
start-up are excluded from the ratios and reported separately. A profile of the parent during
the 50 us map (:func:`parent_profile`) says where its time goes, next to the same profile of
the chunking as of commit 56ff65a (:data:`EARLIER_PROFILE`). The full run writes the
``parallel`` section of RESULTS.md; ``--quick`` (few items, one repeat) only prints.

    python benchmarks/bench_parallel.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import statistics
import sys
import threading
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
#: Items of the profiled 50 us map (as many as the full run's).
PROFILE_ITEMS = 4000
#: :func:`parent_profile` of the 50 us map with the chunking as of commit 56ff65a (four
#: one-item probe chunks, then chunks of ~1000 items), measured on this machine.
EARLIER_PROFILE = {
    "wall": 0.1789,
    "main thread": 0.0095,
    "event loop": 0.0470,
    "chunks": 9.1,
    "first item": 0.0099,
    "after last item": 0.0067,
    "workers idle": 0.1122,
}


def fbank_item(samples: np.ndarray) -> np.ndarray:
    """80-dim log-mel filterbank of one utterance, on one thread as in a data-prep worker."""
    import torch
    from lhotse import Fbank

    torch.set_num_threads(1)
    return Fbank().extract(samples, 16000)


def stamped_item(index: int, cost: float) -> tuple[int, float, float]:
    """:func:`spin_item` that also returns when it started and ended (``time.time()``)."""
    started = time.time()
    spin_item(index, cost)
    return index, started, time.time()


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


def report(rows: list[dict], startup: dict[str, float], quick: bool, profile: dict) -> str:
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
            "",
            "### Where the parent's time goes in the 50 us map",
            "",
            f"Per map, over {profile['maps']} maps of {profile['items']} items that report when "
            "they ran (benchmarks.bench_parallel.parent_profile): CPU time of the parent's "
            "threads read from /proc (the event-loop thread runs Dask's client and, the cluster "
            "being local, its scheduler), the tasks sent, and the medians of the waits. The "
            "chunking as of 56ff65a (median of 3 such profiles on this machine) sent four "
            "one-item probe chunks and sized the rest (~1000 items) from the first result: the "
            "workers idled through that round trip, and each of the ~9 tasks cost the event "
            "loop about 5 ms of CPU (its messages to and from the scheduler and the workers, "
            "TLS included, its result fetched through the scheduler), taken from the workers on "
            "2 cores. Now the first chunks split the items over the worker threads and stop "
            "starting items after 0.5 s (what they did not reach is sent again, sized): cheap "
            "items take one task per worker thread, sent in one message, and the client's sends "
            "to the scheduler are no longer held back up to 10 ms.",
            "",
            profile_table(profile),
        ]
    )


def parent_profile(client, repeats: int, n_items: int, cost: float = COSTS["50 us"]) -> dict:
    """Where the parent's time goes in a ``parallel_map`` of ``n_items`` items of ``cost``, per
    map over ``repeats`` maps (seconds; ``chunks`` is the tasks sent).

    CPU time is read per thread from ``/proc`` over all the maps (its resolution is 10 ms),
    for the main thread (the map's own code, the progress count) and Dask's event-loop thread
    (the client's messages and, the cluster being local, the whole scheduler). The items report
    when they ran: ``first item`` is the median time from the call to the first item starting
    on a worker, ``after last item`` from the last item's end to the call's return, and
    ``workers idle`` the worker threads' time during the call not spent in an item.
    """
    from espnet3.parallel import parallel_map

    fn = functools.partial(stamped_item, cost=cost)
    items = list(range(n_items))
    parallel_map(fn, items, client)
    threads = sum(client.nthreads().values())
    waits: dict[str, list[float]] = {
        "wall": [],
        "first item": [],
        "after last item": [],
        "workers idle": [],
    }
    before, sent = _thread_cpu(), _tasks_sent(client)
    for _ in range(repeats):
        t0 = time.time()
        stamps = parallel_map(fn, items, client)
        t1 = time.time()
        waits["wall"].append(t1 - t0)
        waits["first item"].append(min(s[1] for s in stamps) - t0)
        waits["after last item"].append(t1 - max(s[2] for s in stamps))
        waits["workers idle"].append(threads * (t1 - t0) - sum(s[2] - s[1] for s in stamps))
    after, sent = _thread_cpu(), _tasks_sent(client) - sent
    spent = {name: (after[name] - before.get(name, 0.0)) / repeats for name in after}
    return {
        **{key: statistics.median(values) for key, values in waits.items()},
        "main thread": spent.get("MainThread", 0.0),
        "event loop": spent.get("IO loop", 0.0),
        "chunks": sent / repeats,
        "maps": repeats,
        "items": n_items,
    }


def _thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each named thread of this process, from ``/proc``."""
    ticks = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    spent: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = names.get(int(tid), "other")
        spent[name] = spent.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return spent


def _tasks_sent(client) -> int:
    """Tasks the (local, in-process) scheduler has sent to workers so far."""
    return client.cluster.scheduler.n_tasks


def profile_table(now: dict) -> str:
    """The 50 us profile of the current chunking next to :data:`EARLIER_PROFILE`."""
    rows = []
    for key, unit in (
        ("wall", "ms"),
        ("main thread", "ms CPU"),
        ("event loop", "ms CPU"),
        ("chunks", "tasks"),
        ("first item", "ms"),
        ("after last item", "ms"),
        ("workers idle", "ms"),
    ):
        scale = 1 if unit == "tasks" else 1000
        rows.append(
            [f"{key} ({unit})", f"{scale * EARLIER_PROFILE[key]:.1f}", f"{scale * now[key]:.1f}"]
        )
    return table(["per 50 us map", "as of 56ff65a", "now"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few items, one repeat; print only")
    args = parser.parse_args(argv)
    n_items, n_audio, repeats, warmup = (200, 40, 1, 0) if args.quick else (4000, 1000, 3, 0)
    profile_maps = 3 if args.quick else 20

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
        profile = parent_profile(client, profile_maps, PROFILE_ITEMS)
    text = report(rows, startup, args.quick, profile)
    print(text)
    if not args.quick:
        write_section("parallel", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
