"""The one object per scheduler family that answers everything scheduler-specific.

A :class:`Scheduler` says which ``parallel.options`` it takes and checks them, starts the Dask
cluster, chooses the workers' Python (container prefix included) and log directory, asks about
and cancels jobs, submits N shards as one job array and reads each shard's state back. The rest
of espnet3 dispatches through it (:func:`espnet3.parallel.schedulers.scheduler_for`).

Example:
    >>> from espnet3.parallel.schedulers import scheduler_for
    >>> scheduler_for("slurm").cluster_class, scheduler_for("slurm").runs_shards
    ('dask_jobqueue.SLURMCluster', True)
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import shlex
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, SetupError, did_you_mean
from espnet3.parallel.schedulers.job_state import JobState
from espnet3.parallel.schedulers.settings import ParallelSettings

#: Options espnet3 sets from top-level keys of ``parallel:``, and which key to use instead.
MANAGED_OPTIONS = {"n_workers": "n_workers", "security": "security"}


@dataclass(frozen=True)
class ShardTask:
    """One shard job: it runs the batch's command with ``spec``; its job record goes to
    ``record`` (JSON: ``{"scheduler", "job_id", "log", ...}``)."""

    name: str
    spec: Path
    record: Path


@dataclass(frozen=True)
class ShardBatch:
    """Shards to run as detached jobs, at most ``max_running`` at once.

    Task ``i`` runs ``command + [tasks[i].spec]``; ``work_dir`` holds the listing and scripts
    the scheduler writes, named after ``name``; logs go to ``log_dir``.
    """

    name: str
    tasks: Sequence[ShardTask]
    command: Sequence[str]
    work_dir: Path
    log_dir: Path
    max_running: int


class Scheduler:
    """One scheduler family. Subclass it in a module to add a new ``env``.

    The module exposes ``SCHEDULERS = (MyScheduler(),)``; it is found by module discovery in
    this package, or through an ``espnet3.schedulers`` entry point naming the module in another
    distribution (see :mod:`espnet3.parallel.schedulers`). Nothing else needs to change.
    """

    #: The ``parallel.env`` names this object answers for; the first is its name.
    envs: tuple[str, ...] = ()
    #: ``module.Class`` of the Dask cluster it starts ("" when it starts none).
    cluster_class: str = ""
    #: The pip package that provides :attr:`cluster_class`.
    package: str = ""
    #: Modules the class imports only when it starts; checked up front.
    requires: tuple[str, ...] = ()
    #: Whether espnet3 can hand a temporary TLS certificate to every process of the cluster.
    temporary_tls: bool = True
    #: Whether its workers run on this machine (Ctrl-C reaches them; a container is not used).
    on_this_host: bool = False
    #: Whether ``async_mode`` shards can run on it.
    runs_shards: bool = False
    #: The command that cancels its jobs ("" when it has none).
    cancel_command: str = ""
    #: Reasons a pending job gives that no waiting clears, and what they mean.
    never_starts: Mapping[str, str] = {}
    #: Whether work runs in this process, with no Dask at all.
    sequential: bool = False
    #: Environment variables its jobs are given, forwarded into a container and logged with
    #: each stage: names, and prefixes (ending in ``_``) of names.
    job_variables: tuple[str, ...] = ()
    #: The variable that holds the id of the job a process runs in ("" when there is none).
    job_id_variable: str = ""
    #: The variable that holds a process's rank among the tasks of its job ("" when none).
    rank_variable: str = ""
    #: A realistic ``parallel.options`` of this family, in its own option names: its job
    #: scripts are rendered with it for review (``tests/parallel/golden``).
    example_options: Mapping[str, Any] = {}

    @property
    def name(self) -> str:
        return self.envs[0]

    def default_workers(self) -> int:
        """``parallel.n_workers`` when the config does not give it."""
        return 1

    def job_id(self, environ: Mapping[str, str]) -> str:
        """The id of the job whose environment is ``environ`` ("" outside its jobs).

        Example:
            >>> from espnet3.parallel.schedulers import scheduler_for
            >>> scheduler_for("slurm").job_id({"SLURM_JOB_ID": "4211"})
            '4211'
        """
        return environ.get(self.job_id_variable, "") if self.job_id_variable else ""

    # ----- options -------------------------------------------------------------------------
    def load(self) -> Any:
        """Import the cluster class, or fail naming the package that provides it."""
        module, _, attr = self.cluster_class.rpartition(".")
        try:
            for required in self.requires:
                importlib.import_module(required)
            return getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            missing = getattr(exc, "name", None) or module.split(".")[0]
            raise SetupError(
                f"parallel.env needs {self.cluster_class}, which cannot be imported ({exc}). "
                f"Please install {missing} (`pip install {self.package}`)"
            ) from None

    def check_installed(self) -> None:
        """Raise :class:`SetupError` (as :meth:`load` does) when the cluster's package is
        missing, without importing it."""
        import importlib.util

        module = self.cluster_class.rpartition(".")[0]
        for name in (*self.requires, module.split(".")[0]):
            if importlib.util.find_spec(name) is None:
                self.load()  # the message that names the package to install

    def extra_options(self, cluster_cls: type) -> set[str]:
        """Keywords that the cluster class's ``**kwargs`` pass on to what it builds."""
        return set()

    @cached_property
    def accepted_options(self) -> frozenset[str]:
        """Every keyword the cluster class, and what its ``**kwargs`` go to, accepts."""
        cls = self.load()
        return frozenset((keywords(cls) | self.extra_options(cls)) - MANAGED_OPTIONS.keys())

    def check_options(self, env: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` checked against the cluster class (and normalised); a
        :class:`ConfigError` names the first key it does not accept.

        Without options only the package is looked for, not imported: a config read for a run
        that may never start its cluster does not pay for importing it.
        """
        if not options:
            self.check_installed()
            return {}
        accepted = self.accepted_options  # also fails early when the package is missing
        for key in options:
            if key in MANAGED_OPTIONS:
                raise ConfigError(
                    f"parallel.options.{key} is set by espnet3 itself: "
                    f"use parallel.{MANAGED_OPTIONS[key]} instead"
                )
            if key not in accepted:
                raise ConfigError(
                    f"parallel.options.{key} is not an argument of {self.cluster_class}"
                    f"{did_you_mean(key, accepted)}: fix or remove it"
                )
        return dict(options)

    # ----- the Dask cluster ----------------------------------------------------------------
    def cluster_options(self, config: ParallelSettings) -> dict[str, Any]:
        """The keyword arguments the cluster class is given."""
        return dict(config.options)

    def start_cluster(self, config: ParallelSettings) -> Any:
        """Start the cluster of ``config`` with its workers (a context manager: closing it
        stops every worker and cancels every job it submitted)."""
        return self.load()(**self.cluster_options(config))

    @contextlib.contextmanager
    def supervise(self, cluster: Any, client: Any, config: ParallelSettings) -> Iterator[bool]:
        """Watch the cluster's jobs while the block runs; yields whether it waited for workers."""
        yield False

    def python_command(self, config: ParallelSettings, binds: Sequence[str] = ()) -> str:
        """The shell command that runs Python in a worker or shard job; the one place it is
        chosen: the container's python (``binds`` bound into the image) when
        ``parallel.container`` is set, else ``options.python``, else this interpreter.

        Example:
            >>> from espnet3.parallel import ParallelConfig
            >>> from espnet3.parallel.schedulers import scheduler_for
            >>> cfg = ParallelConfig.from_any({"env": "slurm", "options": {"python": "py -X dev"}})
            >>> scheduler_for("slurm").python_command(cfg)
            'py -X dev'
        """
        if config.container is not None:
            return config.container.worker_python(binds)
        return config.options.get("python") or shlex.quote(sys.executable)

    def log_dir(self, config: ParallelSettings, default: Path, per_run: bool = False) -> Path:
        """Where job logs go, created: ``options.log_directory`` as is, else under
        ``parallel.log_dir``, else ``default``; ``per_run`` adds a ``<time>-<pid>`` folder."""
        given = config.options.get("log_directory")
        if given:
            path = Path(given)
        else:
            path = Path(config.log_dir) if config.log_dir else default
            if per_run:
                path = path / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        path.mkdir(parents=True, exist_ok=True)
        return path.resolve()

    def stop_workers_now(self, cluster: Any) -> None:
        """On Ctrl-C or SIGTERM: end the workers at once, before ``cluster`` is closed.

        Closing alone lets workers finish their task and log about the scheduler gone;
        batch jobs are cancelled by the close, so the default does nothing.
        """

    # ----- jobs ----------------------------------------------------------------------------
    def job_states(self, job_ids: Sequence[str]) -> dict[str, JobState] | None:
        """The state of each job, asked in one call; ``None`` when espnet3 cannot ask."""
        return None

    def job_details(self, job_id: str) -> JobState | None:
        """One job with its exit code and log paths, for error messages (``None``: unknown)."""
        return None

    # ----- async shards --------------------------------------------------------------------
    def check_shards(self, config: ParallelSettings) -> None:
        """Raise a :class:`ConfigError` unless ``async_mode`` shards can run on this env."""
        if not self.runs_shards:
            raise ConfigError(
                f"async_mode runs shards as scheduler jobs, but parallel.env '{config.env}' "
                "cannot run them: use env local or a batch scheduler (slurm, pbs, sge, lsf, "
                "htcondor ...), or async_mode=False"
            )

    def submit_shards(self, batch: ShardBatch, config: ParallelSettings) -> dict[str, Any]:
        """Submit the batch and write each task's job record; returns a summary."""
        self.check_shards(config)
        raise NotImplementedError(f"{type(self).__name__}.submit_shards")

    def shard_states(self, records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
        """``(state, detail)`` of each shard job: ``pending``, ``running`` or ``failed``."""
        return [("failed", f"parallel.env '{self.name}' runs no shard jobs")] * len(records)


def keywords(target: Any) -> set[str]:
    """The keyword parameters of ``target`` (a class: of its constructor)."""
    params = inspect.signature(target).parameters.values()
    return {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def keyword_chain(cls: type) -> set[str]:
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
