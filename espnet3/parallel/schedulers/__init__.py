"""Every ``parallel.env`` and the :class:`~espnet3.parallel.schedulers.base.Scheduler` behind it.

Each module of this package names its schedulers in ``SCHEDULERS``; they are found when first
asked for, so a new scheduler family is one new file here (or, for code outside espnet3, one
:func:`register` call).

Example:
    >>> scheduler_for("pbs").cluster_class
    'dask_jobqueue.PBSCluster'
    >>> scheduler_for("slrum")
    Traceback (most recent call last):
    ...
    espnet3.errors.ConfigError: Unknown env 'slrum' in parallel.env (did you mean 'slurm'?); supported: none, sequential, local, local_cuda, local_gpu, slurm, pbs, sge, lsf, htcondor, oar, moab, ssh, kube
"""

from __future__ import annotations

import importlib
import pkgutil

from espnet3.errors import ConfigError, did_you_mean
from espnet3.parallel.schedulers.base import Scheduler, ShardBatch, ShardTask

#: The order envs are listed in messages; envs of other modules follow, by module name.
_MODULES = (
    "inprocess",
    "local",
    "slurm",
    "pbs",
    "sge",
    "lsf",
    "htcondor",
    "oar",
    "moab",
    "ssh",
    "kube",
)
_REGISTRY: dict[str, Scheduler] = {}


def register(scheduler: Scheduler) -> Scheduler:
    """Make each of ``scheduler.envs`` a valid ``parallel.env``; returns the scheduler.

    An env already taken is refused, so a plug-in cannot silently replace a built-in one.
    """
    schedulers()
    for env in scheduler.envs:
        if env in _REGISTRY and _REGISTRY[env] is not scheduler:
            raise ConfigError(f"parallel.env '{env}' is already provided by {_REGISTRY[env]!r}")
    for env in scheduler.envs:
        _REGISTRY[env] = scheduler
    return scheduler


def unregister(scheduler: Scheduler) -> None:
    """Take back what :func:`register` gave ``scheduler``."""
    for env in scheduler.envs:
        if _REGISTRY.get(env) is scheduler:
            del _REGISTRY[env]


def schedulers() -> dict[str, Scheduler]:
    """Every env and its scheduler, the modules of this package imported on first use."""
    if not _REGISTRY:
        found = {info.name for info in pkgutil.iter_modules(__path__)} - {
            "base",
            "batch",
            "local_launcher",
        }
        for module in [*_MODULES, *sorted(found - set(_MODULES))]:
            for scheduler in getattr(
                importlib.import_module(f"{__name__}.{module}"), "SCHEDULERS", ()
            ):
                for env in scheduler.envs:
                    _REGISTRY.setdefault(env, scheduler)
    return _REGISTRY


def scheduler_for(env: str) -> Scheduler:
    """The scheduler of ``env``, or a :class:`ConfigError` listing the supported envs.

    Example:
        >>> scheduler_for("local").on_this_host
        True
    """
    known = schedulers()
    try:
        return known[env]
    except KeyError:
        raise ConfigError(
            f"Unknown env '{env}' in parallel.env{did_you_mean(env, known)}; "
            f"supported: {', '.join(known)}"
        ) from None


__all__ = [
    "Scheduler",
    "ShardBatch",
    "ShardTask",
    "register",
    "scheduler_for",
    "schedulers",
    "unregister",
]
