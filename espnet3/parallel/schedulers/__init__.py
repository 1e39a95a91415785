"""Every ``parallel.env`` and the :class:`~espnet3.parallel.schedulers.base.Scheduler` behind it.

A scheduler family is a module whose ``SCHEDULERS`` names its schedulers. The modules of this
package are found when first asked for, so a new family here is one new file. A family in
another distribution joins through the ``espnet3.schedulers`` entry-point group: each entry
point names such a module, under the env it provides::

    [project.entry-points."espnet3.schedulers"]
    mysched = "mypackage.mysched"

Entry points are imported lazily, once each: when an env is asked for that no family loaded so
far provides (the entry point named after it first), or when every env is listed. One that
fails to import is a one-line :class:`~espnet3.errors.SetupError` naming it and its
distribution. Python code can also :func:`register` a scheduler object directly.

Example:
    >>> scheduler_for("pbs").cluster_class
    'dask_jobqueue.PBSCluster'
    >>> scheduler_for("slrum")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    espnet3.errors.ConfigError: Unknown env 'slrum' in parallel.env (did you mean 'slurm'?); supported: none, sequential, local, ...
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
from collections.abc import Mapping

from espnet3.errors import ConfigError, SetupError, did_you_mean
from espnet3.parallel.schedulers.base import Scheduler, ShardBatch, ShardTask

#: The entry-point group through which other distributions add scheduler families.
ENTRY_POINT_GROUP = "espnet3.schedulers"
_REGISTRY: dict[str, Scheduler] = {}
#: Entry points imported so far, by (distribution, name, value).
_LOADED: set[tuple[str, str, str]] = set()


def register(scheduler: Scheduler) -> Scheduler:
    """Make each of ``scheduler.envs`` a valid ``parallel.env``; returns the scheduler.

    An env already taken is refused, so a plug-in cannot silently replace a built-in one.
    """
    _add(scheduler, "")
    return scheduler


def unregister(scheduler: Scheduler) -> None:
    """Take back what :func:`register` gave ``scheduler``."""
    for env in scheduler.envs:
        if _REGISTRY.get(env) is scheduler:
            del _REGISTRY[env]


def schedulers() -> dict[str, Scheduler]:
    """Every env and its scheduler: this package's families (in-process, then local, then
    batch, then the rest), then those of every entry point."""
    _load_entry_points()
    return _builtin()


def scheduler_for(env: str) -> Scheduler:
    """The scheduler of ``env``, or a :class:`ConfigError` listing the supported envs.

    Example:
        >>> scheduler_for("local").on_this_host
        True
    """
    known = _builtin()
    if env not in known:
        _load_entry_points(wanted=env)
    try:
        return known[env]
    except KeyError:
        raise ConfigError(
            f"Unknown env '{env}' in parallel.env{did_you_mean(env, known)}; "
            f"supported: {', '.join(known)}"
        ) from None


def job_variables() -> tuple[str, ...]:
    """The job variables (names, and prefixes ending in ``_``) of every family, for logs.

    Example:
        >>> "SLURM_" in job_variables()
        True
    """
    found = (name for scheduler in _families() for name in scheduler.job_variables)
    return tuple(dict.fromkeys(found))


def rank_variables() -> tuple[str, ...]:
    """The variables in which some family's jobs give a process its rank.

    Example:
        >>> "SLURM_PROCID" in rank_variables()
        True
    """
    return tuple(dict.fromkeys(s.rank_variable for s in _families() if s.rank_variable))


def job_here(environ: Mapping[str, str] = os.environ) -> str:
    """The id of the batch job this process runs in, as its family names it ("" outside one).

    Example:
        >>> job_here({"PBS_JOBID": "4211.pbs01"})
        '4211.pbs01'
    """
    return next((job for s in _families() if (job := s.job_id(environ))), "")


def _families() -> list[Scheduler]:
    """Each scheduler once, in listing order."""
    return list(dict.fromkeys(schedulers().values()))


def _builtin() -> dict[str, Scheduler]:
    """The registry, with the families of this package's modules imported on first use."""
    if not _REGISTRY:
        found = []
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            found += getattr(module, "SCHEDULERS", ())
        for scheduler in sorted(found, key=_listing_order):
            for env in scheduler.envs:
                _REGISTRY.setdefault(env, scheduler)
    return _REGISTRY


def _listing_order(scheduler: Scheduler) -> tuple[bool, bool, bool, str]:
    """In process first, then on this host, then batch (shard-running) ones, then the rest."""
    return (
        not scheduler.sequential,
        not scheduler.on_this_host,
        not scheduler.runs_shards,
        scheduler.name,
    )


def _load_entry_points(wanted: str | None = None) -> None:
    """Import the entry points not imported yet; with ``wanted``, the one named so first, and
    stop as soon as env ``wanted`` is provided."""
    known = _builtin()
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for point in sorted(points, key=lambda p: p.name != wanted):
        if wanted in known:
            return
        key = (_distribution(point), point.name, point.value)
        if key not in _LOADED:
            _load(point)
            _LOADED.add(key)


def _load(point: importlib.metadata.EntryPoint) -> None:
    dist = _distribution(point)
    where = f"scheduler entry point '{point.name} = {point.value}' of distribution {dist}"
    try:
        module = point.load()
    except Exception as exc:  # whatever the plugin raises on import: one line naming it
        detail = (str(exc).strip().splitlines() or [""])[0]
        raise SetupError(
            f"{where} cannot be imported ({type(exc).__name__}: {detail}): fix or uninstall {dist}"
        ) from None
    found = getattr(module, "SCHEDULERS", None)
    if not found or not all(isinstance(s, Scheduler) for s in found):
        raise SetupError(f"{where}: its module needs SCHEDULERS = (MyScheduler(),)")
    for scheduler in found:
        _add(scheduler, f"{where}: ")


def _add(scheduler: Scheduler, source: str) -> None:
    known = _builtin()
    for env in scheduler.envs:
        if env in known and known[env] is not scheduler:
            raise ConfigError(f"{source}parallel.env '{env}' is already provided by {known[env]!r}")
    for env in scheduler.envs:
        known[env] = scheduler


def _distribution(point: importlib.metadata.EntryPoint) -> str:
    return point.dist.name if point.dist is not None else "(unknown)"


__all__ = [
    "ENTRY_POINT_GROUP",
    "Scheduler",
    "ShardBatch",
    "ShardTask",
    "job_here",
    "job_variables",
    "rank_variables",
    "register",
    "scheduler_for",
    "schedulers",
    "unregister",
]
