"""What every benchmark shares: fixed-CPU-cost items, timing with repeats, and the report.

Items busy-wait on ``time.thread_time()`` so each costs the same CPU time whatever else the
shared vCPUs are doing; wall time of plain arithmetic swings by a third run to run here.

Example:
    >>> spin(0.0001) is None
    True
    >>> stats = repeat(lambda: None, repeats=3)
    >>> sorted(stats) == ["max", "median", "min", "runs"]
    True
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def spin(seconds: float) -> None:
    """Burn ``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def spin_item(index: int, cost: float = 0.001) -> int:
    """A mappable item of fixed CPU cost; returns its index so results can be checked."""
    spin(cost)
    return index


def repeat(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> dict:
    """Run ``fn`` ``warmup`` + ``repeats`` times; wall-time median, min, max and all runs."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return run_stats(runs)


def alternating(fns: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1) -> dict:
    """Like :func:`repeat` for several contenders at once, run in turns (a, b, a, b, ...) so
    that they share the machine's drift; ``{name: statistics}``."""
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if round_ >= warmup:
                runs[name].append(time.perf_counter() - t0)
    return {name: run_stats(times) for name, times in runs.items()}


def run_stats(runs: list[float]) -> dict:
    """Median, min, max and all of ``runs`` (seconds), as :func:`repeat` reports them."""
    return {
        "median": statistics.median(runs),
        "min": min(runs),
        "max": max(runs),
        "runs": runs,
    }


def repeat_on_local_cluster(
    fn: Callable[[], object], repeats: int = 5, n_workers: int = 2
) -> tuple[float, dict]:
    """Start a ``n_workers`` LocalCluster (its start-up timed apart), ``repeat(fn)`` inside it.

    Returns ``(start-up seconds, repeat() statistics)``.
    """
    from espnet3.parallel import get_client

    t0 = time.perf_counter()
    with get_client({"env": "local", "n_workers": n_workers}):
        startup = time.perf_counter() - t0
        return startup, repeat(fn, repeats)


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB), counted from its ``exec``.

    ``/proc/self/status`` ``VmHWM`` belongs to the address space, which ``exec`` replaces;
    ``ru_maxrss`` is carried over from the process that forked it, so a child of a large
    parent would report the parent's peak.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def machine() -> str:
    """One line naming the machine: cores, memory, Python, OS."""
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def write_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace the section ``name`` of ``path`` (added at the end if new), atomically."""
    from espnet3.utils.atomic import atomic_write_text

    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    lock = path.with_suffix(".lock")
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        text = path.read_text() if path.exists() else "# Benchmark results\n"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        text = (
            pattern.sub(lambda _: block, text)
            if pattern.search(text)
            else f"{text.rstrip()}\n\n{block}\n"
        )
        atomic_write_text(path, text)


def table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def throughput_table(n: int, unit: str, contenders: list[tuple[str, dict]]) -> str:
    """Seconds, ``unit``/s and speed-up over the first contender, from :func:`repeat` stats.

    Example:
        >>> stats = {"median": 2.0, "min": 1.5, "max": 2.5}
        >>> print(throughput_table(10, "items", [("loop", stats)]).splitlines()[-1])
        | loop | 2.00 (1.50-2.50) | 5 | 1.00x |
    """
    base = contenders[0][1]["median"]
    rows = [
        [
            name,
            f"{s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f})",
            f"{n / s['median']:.0f}",
            f"{base / s['median']:.2f}x",
        ]
        for name, s in contenders
    ]
    return table(["method", "seconds", f"{unit}/s", f"x {contenders[0][0]}"], rows)
