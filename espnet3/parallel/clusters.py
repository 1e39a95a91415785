"""Which Dask cluster class each ``env`` names, how its options are checked, how it starts.

The classes are imported only when used, so an optional one (``kube``, ``local_cuda``) costs
nothing until asked for, and then fails with the package to install.

Example:
    >>> cluster_kind("slurm").qualname
    'dask_jobqueue.SLURMCluster'
    >>> cluster_kind("slrum")
    Traceback (most recent call last):
    ...
    espnet3.errors.ConfigError: parallel.env 'slrum' is not supported (did you mean 'slurm'?); supported: none, sequential, local, local_cuda, slurm, pbs, sge, lsf, htcondor, oar, moab, ssh, kube
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from espnet3.errors import ConfigError, did_you_mean

#: Where workers, scheduler and client talk when nothing else is asked for.
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ClusterKind:
    """One supported ``env``: its cluster class and the family that decides how it starts."""

    family: str  # "sequential" | "local" | "jobqueue" | "ssh" | "kube"
    module: str = ""
    attr: str = ""
    package: str = ""

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.attr}"

    def load(self) -> type:
        """Import the cluster class, or fail naming the package that provides it."""
        try:
            return getattr(importlib.import_module(self.module), self.attr)
        except ImportError as exc:
            raise ConfigError(
                f"parallel.env needs {self.qualname}, but {self.module!r} cannot be imported "
                f"({exc}): install it with `pip install {self.package}`"
            ) from None

    @cached_property
    def accepted_options(self) -> frozenset[str]:
        """Every keyword the cluster class (and what it forwards ``**kwargs`` to) accepts."""
        cls = self.load()
        targets: list[Any] = list(inspect.getmro(cls))
        if self.family == "jobqueue":
            targets += inspect.getmro(cls.job_cls)
        elif self.family in ("local", "ssh"):
            from distributed import Nanny, Worker

            targets += [Nanny, Worker]
        names: set[str] = set()
        for target in targets:
            init = target.__dict__.get("__init__")
            if init is None:
                continue
            params = inspect.signature(init).parameters
            names.update(
                name
                for name, p in params.items()
                if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
            )
        return frozenset(names - _MANAGED_OPTIONS.keys())

    def check_options(self, env: str, options: Mapping[str, Any]) -> None:
        """Raise :class:`ConfigError` naming the first key ``env``'s cluster does not accept."""
        if self.family == "sequential":
            if options:
                raise ConfigError(
                    f"parallel.options {sorted(options)} given for env '{env}', which starts no "
                    f"cluster: remove them or choose env: local"
                )
            return
        for key in options:
            if key in _MANAGED_OPTIONS:
                raise ConfigError(
                    f"parallel.options.{key} is set by espnet3 itself: use parallel.{_MANAGED_OPTIONS[key]}"
                )
            if key not in self.accepted_options:
                raise ConfigError(
                    f"parallel.options.{key} is not an argument of {self.qualname}"
                    f"{did_you_mean(key, self.accepted_options)}"
                )


#: Options espnet3 sets from top-level keys of ``parallel:``, and which key to use instead.
_MANAGED_OPTIONS = {"n_workers": "n_workers", "security": "security"}

_JOBQUEUE = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "htcondor": "HTCondorCluster",
    "oar": "OARCluster",
    "moab": "MoabCluster",
}

KINDS: dict[str, ClusterKind] = {
    "none": ClusterKind("sequential"),
    "sequential": ClusterKind("sequential"),
    "local": ClusterKind("local", "distributed", "LocalCluster", "distributed"),
    "local_cuda": ClusterKind("local", "dask_cuda", "LocalCUDACluster", "dask-cuda"),
    **{
        env: ClusterKind("jobqueue", "dask_jobqueue", attr, "dask-jobqueue")
        for env, attr in _JOBQUEUE.items()
    },
    "ssh": ClusterKind("ssh", "distributed", "SSHCluster", "distributed asyncssh"),
    "kube": ClusterKind("kube", "dask_kubernetes.operator", "KubeCluster", "dask-kubernetes"),
}


def cluster_kind(env: str) -> ClusterKind:
    """The :class:`ClusterKind` of ``env``, or a :class:`ConfigError` listing supported envs."""
    try:
        return KINDS[env]
    except KeyError:
        raise ConfigError(
            f"parallel.env '{env}' is not supported{did_you_mean(env, KINDS)}; "
            f"supported: {', '.join(KINDS)}"
        ) from None


def wants_tls(config: Any, listen_host: str | None) -> bool:
    """Whether the scheduler must use TLS: asked for, or ``auto`` and not only on loopback."""
    if config.security == "tls":
        return True
    if config.security == "none":
        return False
    return listen_host not in (LOOPBACK, "localhost", "::1")


def start_cluster(config: Any) -> Any:
    """Start the cluster ``config`` describes and ask it for ``config.n_workers`` workers.

    The returned cluster is a context manager; closing it stops every worker and, for batch
    schedulers, cancels every job it submitted.
    """
    kind = cluster_kind(config.env)
    if kind.family == "sequential":
        raise ConfigError(f"parallel.env '{config.env}' runs in process and starts no cluster")
    if kind.family == "jobqueue":
        from espnet3.parallel.jobqueue import start_jobqueue_cluster

        return start_jobqueue_cluster(config, kind)
    options = dict(config.options)
    if kind.family == "local":
        options.setdefault("host", LOOPBACK)
        options.setdefault("threads_per_worker", 1)
        options.setdefault("processes", True)
        options.setdefault("dashboard_address", None)
        options["n_workers"] = config.n_workers
        if wants_tls(config, options["host"]):
            options.update(_tls_options())
        return kind.load()(**options)
    if kind.family == "ssh":
        if wants_tls(config, None):
            options.update(_tls_options())
        return kind.load()(**options)
    cluster = kind.load()(**options)
    cluster.scale(config.n_workers)
    return cluster


def _tls_options() -> dict[str, Any]:
    from distributed.security import Security

    return {"security": Security.temporary(), "protocol": "tls://"}
