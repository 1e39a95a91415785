"""Quieter Dask housekeeping defaults, so that workers spend their core on the tasks.

Idle, a 2-worker ``LocalCluster`` burns about 13 % of one core (parent 5 %, each worker
4 %): the statistical profiler samples every worker thread every 10 ms, the event-loop
watchdog ticks every 20 ms and the system monitor every 0.5 s. On a 2-core machine that is
CPU taken from the tasks (benchmarks/RESULTS.md). espnet3 turns the profiler off and slows the
other two; with them, the idle cost is about 4 % of a core.

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

import dask

#: Dotted Dask config key -> espnet3's default.
DEFAULTS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
}


@functools.cache
def apply_defaults() -> None:
    """Install :data:`DEFAULTS` in this process's Dask config, keeping what the user set."""
    nested: dict = {}
    for key, value in DEFAULTS.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    dask.config.update_defaults(nested)


def worker_exports() -> list[str]:
    """Shell lines giving a batch job's worker the effective values of :data:`DEFAULTS`."""
    apply_defaults()
    return [
        f"export DASK_{key.upper().replace('.', '__').replace('-', '_')}={dask.config.get(key)}"
        for key in DEFAULTS
    ]
