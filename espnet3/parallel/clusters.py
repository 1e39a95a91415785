"""Which Dask cluster class each ``env`` names, how its options are checked, how it starts.

The classes are imported only when used, so an optional one (``kube``, ``local_cuda``) costs
nothing until asked for, and then fails with the package to install.

Example:
    >>> cluster_kind("slurm").qualname
    'dask_jobqueue.SLURMCluster'
    >>> cluster_kind("slrum")
    Traceback (most recent call last):
    ...
    espnet3.errors.ConfigError: Unknown env 'slrum' in parallel.env (did you mean 'slurm'?); supported: none, sequential, local, local_cuda, local_gpu, slurm, pbs, sge, lsf, htcondor, oar, moab, ssh, kube
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import os
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from espnet3.errors import ConfigError, SetupError, did_you_mean

#: Where workers, scheduler and client talk when nothing else is asked for.
LOOPBACK = "127.0.0.1"
LOOPBACK_HOSTS = (LOOPBACK, "localhost", "::1")


@dataclass(frozen=True)
class ClusterKind:
    """One supported ``env``: its cluster class and the family that decides how it starts."""

    family: str  # "sequential" | "local" | "jobqueue" | "ssh" | "kube"
    module: str = ""
    attr: str = ""
    package: str = ""
    #: Modules the class imports only when it starts; checked up front.
    requires: tuple[str, ...] = ()
    #: Whether espnet3 can hand a temporary TLS certificate to every process of the cluster.
    temporary_tls: bool = True

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.attr}"

    def load(self) -> Any:
        """Import the cluster class, or fail naming the package that provides it."""
        try:
            for module in self.requires:
                importlib.import_module(module)
            return getattr(importlib.import_module(self.module), self.attr)
        except ImportError as exc:
            missing = getattr(exc, "name", None) or self.module.split(".")[0]
            raise SetupError(
                f"parallel.env needs {self.qualname}, which cannot be imported ({exc}). "
                f"Please install {missing} (`pip install {self.package}`)"
            ) from None

    @cached_property
    def accepted_options(self) -> frozenset[str]:
        """Every keyword the cluster class, and what its ``**kwargs`` go to, accepts."""
        cls = self.load()
        names = _keywords(cls)
        if self.family == "jobqueue":  # **job_kwargs build each job
            names |= _keyword_chain(cls.job_cls)
        elif self.family == "local":  # **worker_kwargs build each Nanny and its Worker
            from distributed import Nanny, Worker

            names |= _keywords(Nanny) | _keywords(Worker)
        elif self.family == "ssh":  # **kwargs go to SpecCluster
            from distributed import SpecCluster

            names |= _keywords(SpecCluster)
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
        accepted = self.accepted_options  # also fails early when the package is missing
        for key in options:
            if key in _MANAGED_OPTIONS:
                raise ConfigError(
                    f"parallel.options.{key} is set by espnet3 itself: "
                    f"use parallel.{_MANAGED_OPTIONS[key]} instead"
                )
            if key not in accepted:
                raise ConfigError(
                    f"parallel.options.{key} is not an argument of {self.qualname}"
                    f"{did_you_mean(key, accepted)}: fix or remove it"
                )


def _keywords(target: Any) -> set[str]:
    params = inspect.signature(target).parameters.values()
    return {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _keyword_chain(cls: type) -> set[str]:
    """Keywords of ``cls.__init__`` and of the base ``__init__``\\ s its ``**kwargs`` reach."""
    names: set[str] = set()
    for base in inspect.getmro(cls):
        init = base.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return names - {"self"}


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
    "local_gpu": ClusterKind("local", "dask_cuda", "LocalCUDACluster", "dask-cuda"),  # upstream's
    **{
        env: ClusterKind("jobqueue", "dask_jobqueue", attr, "dask-jobqueue")
        for env, attr in _JOBQUEUE.items()
    },
    # SSHCluster starts remote processes that cannot receive a temporary certificate.
    "ssh": ClusterKind(
        "ssh", "distributed", "SSHCluster", "asyncssh", ("asyncssh",), temporary_tls=False
    ),
    "kube": ClusterKind(
        "kube", "dask_kubernetes.operator", "KubeCluster", "dask-kubernetes", temporary_tls=False
    ),
}


def cluster_kind(env: str) -> ClusterKind:
    """The :class:`ClusterKind` of ``env``, or a :class:`ConfigError` listing supported envs.

    Example:
        >>> cluster_kind("local").family
        'local'
    """
    try:
        return KINDS[env]
    except KeyError:
        raise ConfigError(
            f"Unknown env '{env}' in parallel.env{did_you_mean(env, KINDS)}; "
            f"supported: {', '.join(KINDS)}"
        ) from None


def wants_tls(config: Any, listen_host: str | None) -> bool:
    """Whether the scheduler must use TLS: asked for, or ``auto`` and not only on loopback.

    Example:
        >>> from espnet3.parallel.config import ParallelConfig
        >>> wants_tls(ParallelConfig(env="local"), "0.0.0.0"), wants_tls(ParallelConfig(), LOOPBACK)
        (True, False)
    """
    if config.security == "tls":
        return True
    if config.security == "none":
        return False
    return listen_host not in LOOPBACK_HOSTS


def listen_host(options: Mapping[str, Any]) -> str:
    """The address a local cluster's scheduler will bind, from wherever the options set it.

    ``scheduler_kwargs`` (host, then interface) win over the cluster's own host and interface;
    loopback when none is set.

    Example:
        >>> listen_host({"host": "127.0.0.1", "scheduler_kwargs": {"host": "0.0.0.0"}})
        '0.0.0.0'
        >>> listen_host({"interface": "lo"})
        '127.0.0.1'
    """
    for source in (options.get("scheduler_kwargs") or {}, options):
        if source.get("host"):
            return str(source["host"])
        if source.get("interface"):
            from distributed.utils import get_ip_interface

            try:
                return get_ip_interface(source["interface"])
            except ValueError as err:
                raise ConfigError(
                    f"parallel.options interface {source['interface']!r} is not usable here "
                    f"({err}): name a network interface of this machine, e.g. lo"
                ) from None
    return LOOPBACK


def check_exposure(cluster: Any, config: Any) -> None:
    """Refuse a scheduler that listens beyond loopback without TLS (unless security: none).

    The decision before the start (:func:`wants_tls`) reads the options; this reads the
    address the scheduler really bound, whatever set it.
    """
    scheme, _, location = str(cluster.scheduler_address).partition("://")
    host = location.rsplit(":", 1)[0].strip("[]")
    if config.security == "none" or scheme == "tls" or host in LOOPBACK_HOSTS:
        return
    cluster.close()
    raise SetupError(
        f"the scheduler of parallel.env '{config.env}' listens on {cluster.scheduler_address} "
        "without TLS, so anyone who can reach it can run code here: set parallel.security: tls "
        "(or leave it auto and say where it listens in options.host), or listen on 127.0.0.1"
    )


def cluster_options(config: Any) -> dict[str, Any]:
    """The keyword arguments :func:`start_cluster` gives the class of a local, ssh or kube env.

    Example:
        >>> from espnet3.parallel.config import ParallelConfig
        >>> opts = cluster_options(ParallelConfig(env="local", n_workers=2))
        >>> opts["host"], opts["n_workers"], opts["dashboard_address"], "security" in opts
        ('127.0.0.1', 2, '127.0.0.1:0', False)
    """
    family = cluster_kind(config.env).family
    options = copy.deepcopy(dict(config.options))
    if family == "local":
        if "interface" not in options:  # distributed refuses host and interface together
            options.setdefault("host", LOOPBACK)
        options.setdefault("threads_per_worker", 1)
        options.setdefault("processes", True)
        # The dashboard shows task code and data: loopback only unless asked for.
        options.setdefault("dashboard_address", f"{LOOPBACK}:0")
        options["n_workers"] = config.n_workers
        if wants_tls(config, listen_host(options)):
            options.update(_tls_options())
    elif family == "ssh":
        scheduler_options = options.setdefault("scheduler_options", {})
        scheduler_options.setdefault("dashboard", False)
    return options


def start_cluster(config: Any) -> Any:
    """Start the cluster ``config`` describes and ask it for ``config.n_workers`` workers.

    The returned cluster is a context manager; closing it stops every worker and, for batch
    schedulers, cancels every job it submitted.

    Example (starts two worker processes)::

        with start_cluster(ParallelConfig.from_any({"env": "local", "n_workers": 2})) as c:
            ...
    """
    from espnet3.parallel.housekeeping import apply_defaults

    kind = cluster_kind(config.env)
    if kind.family == "sequential":
        raise ConfigError(f"parallel.env '{config.env}' runs in process and starts no cluster")
    apply_defaults()
    if kind.family == "jobqueue":
        from espnet3.parallel.jobqueue import start_jobqueue_cluster

        return start_jobqueue_cluster(config, kind)
    if kind.family == "local":
        with _environ_restored(), _children_ignore_sigint():
            cluster = kind.load()(**cluster_options(config))
        check_exposure(cluster, config)
        return cluster
    cluster = kind.load()(**cluster_options(config))
    if kind.family == "kube":
        cluster.scale(config.n_workers)
    return cluster


@contextlib.contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Start local workers with Ctrl-C ignored: the parent alone handles it, and shuts them down.

    Ctrl-C reaches every process of the terminal's foreground group; each worker would print
    its own KeyboardInterrupt traceback around the parent's one line. An ignored SIGINT is
    inherited by the worker processes (workers a nanny restarts later are covered by
    :class:`~espnet3.parallel.worker_plugin.QuietShutdownPlugin`).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _environ_restored() -> Iterator[None]:
    """Undo what starting local workers writes into this process's environment.

    A local nanny lives in this process and sets ``distributed.nanny.pre-spawn-environ``
    (``OMP_NUM_THREADS=1``, ``MALLOC_*``) in ``os.environ`` so that the workers it spawns
    inherit it; left there, every later child of this process (a tool run by a sequential
    stage, a training run) would be pinned to one thread too. (A nanny that restarts a dead
    worker later writes them once more.)
    """
    before = dict(os.environ)
    try:
        yield
    finally:
        for name in [name for name in os.environ if name not in before]:
            del os.environ[name]
        os.environ.update(before)


def _tls_options() -> dict[str, Any]:
    """A fresh temporary certificate: only holders (this client, our workers) may connect."""
    from distributed.security import Security

    return {"security": Security.temporary(), "protocol": "tls://"}
