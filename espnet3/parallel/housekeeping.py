"""Dask defaults that let workers spend their core on the tasks.

**Allocator.** Dask starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes
glibc's mmap threshold at 128 KiB: every array above that size (an utterance's audio, its FFT
frames) is then mapped and unmapped on each use, and the page faults cost as much system time
as the features cost user time (the mini_an4 feature stage ran 2x slower on 2 workers than in
one process). espnet3 adds ``MALLOC_MMAP_THRESHOLD_`` (:data:`MMAP_THRESHOLD`) so such
buffers are reused from the heap; memory is still returned to the system when it is freed at
the top of the heap.

**Housekeeping.**

Idle, a 2-worker ``LocalCluster`` burns about 13 % of one core (parent 5 %, each worker
4 %): the statistical profiler samples every worker thread every 10 ms, the event-loop
watchdog ticks every 20 ms and the system monitor every 0.5 s. On a 2-core machine that is
CPU taken from the tasks (benchmarks/RESULTS.md). espnet3 turns the profiler off and slows the
other two; with them, the idle cost is about 4 % of a core.

**Message log.** Each connection keeps its last batches of messages for debugging
(``distributed.admin.low-level-log-length``, 1000 by default), and those batches hold the
tasks' arguments: a map's chunks of items stayed alive in the parent, about 45 bytes per item
of a 10^7-item map (benchmarks/RESULTS.md, growth). espnet3 keeps the last 50.

**Failed tasks.** A task whose worker dies is not retried by Dask (it would be, three times,
each time killing another worker): espnet3 retries each item of that chunk alone instead,
which finds the item at fault (:mod:`espnet3.parallel.dask_map`).

These are *defaults*: a value set in the user's Dask config (YAML, ``DASK_*`` variables,
``dask.config.set``) wins, and ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=True`` brings the
profiler back for the dashboard.

Example:
    >>> import dask
    >>> apply_defaults()
    >>> dask.config.get("distributed.worker.profile.enabled")
    False
    >>> worker_exports()[0]
    'export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False'
"""

from __future__ import annotations

import functools

#: Allocations below this many bytes come from the heap in worker processes.
MMAP_THRESHOLD = 32 * 2**20
#: Dotted Dask config key -> espnet3's default.
DEFAULTS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.scheduler.allowed-failures": 0,
    "distributed.admin.low-level-log-length": 50,
}


@functools.cache
def apply_defaults() -> None:
    """Install :data:`DEFAULTS` in this process's Dask config, keeping what the user set."""
    import dask

    nested: dict = {}
    for key, value in DEFAULTS.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    dask.config.update_defaults(nested)
    # Environment of worker processes a local nanny spawns (a mapping: case is kept).
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    environ.setdefault("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD)
    dask.config.set({"distributed.nanny.pre-spawn-environ": environ})


def worker_exports() -> list[str]:
    """Shell lines giving a batch job's worker the effective values of these defaults."""
    import dask

    apply_defaults()
    threshold = dask.config.get("distributed.nanny.pre-spawn-environ")["MALLOC_MMAP_THRESHOLD_"]
    return [
        *(
            f"export DASK_{key.upper().replace('.', '__').replace('-', '_')}={dask.config.get(key)}"
            for key in DEFAULTS
        ),
        f"export MALLOC_MMAP_THRESHOLD_={threshold}",
    ]
