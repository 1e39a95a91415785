"""``env: local`` (and ``local_cuda``): Dask worker processes on this machine.

Shards of ``async_mode`` run as detached processes started by
:mod:`espnet3.parallel.schedulers.local_launcher`, ``max_running`` at a time.

Example:
    >>> from espnet3.parallel.config import ParallelConfig
    >>> opts = LOCAL.cluster_options(ParallelConfig(env="local", n_workers=2))
    >>> opts["host"], opts["n_workers"], opts["dashboard_address"], "security" in opts
    ('127.0.0.1', 2, '127.0.0.1:0', True)
"""

from __future__ import annotations

import contextlib
import copy
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from espnet3.errors import ConfigError, Espnet3Error
from espnet3.parallel.schedulers.base import Scheduler, ShardBatch, keywords
from espnet3.parallel.security import LOOPBACK, check_exposure, temporary_tls_options, wants_tls
from espnet3.utils.atomic import atomic_write_json
from espnet3.utils.quiet import logging_off
from espnet3.utils.signals import deferred, raise_deferred

if TYPE_CHECKING:
    from espnet3.parallel.schedulers.settings import ParallelSettings


class Local(Scheduler):
    envs = ("local",)
    cluster_class = "distributed.LocalCluster"
    package = "distributed"
    on_this_host = True
    runs_shards = True

    def default_workers(self) -> int:
        """One worker per core of this machine."""
        return os.cpu_count() or 1

    def extra_options(self, cluster_cls: type) -> set[str]:
        from distributed import Nanny, Worker  # **worker_kwargs build each Nanny and its Worker

        return keywords(Nanny) | keywords(Worker)

    def check_options(self, env: str, options: Mapping[str, Any]) -> dict[str, Any]:
        options = super().check_options(env, options)
        listen_host(options)  # an interface this machine does not have fails here
        return options

    def cluster_options(self, config: ParallelSettings) -> dict[str, Any]:
        options = copy.deepcopy(dict(config.options))
        if "interface" not in options:  # distributed refuses host and interface together
            options.setdefault("host", LOOPBACK)
        options.setdefault("threads_per_worker", 1)
        options.setdefault("processes", True)
        # The dashboard shows task code and data: loopback only unless asked for.
        options.setdefault("dashboard_address", f"{LOOPBACK}:0")
        options["n_workers"] = config.n_workers
        if wants_tls(config):
            options.update(temporary_tls_options())
        return options

    def start_cluster(self, config: ParallelSettings) -> Any:
        with _environ_restored(), deferred() as caught, _spawned_ignoring_sigint():
            cluster = super().start_cluster(config)
        if caught:  # Ctrl-C or SIGTERM came while the workers started: stop them, then act
            with logging_off():
                self.stop_workers_now(cluster)
                cluster.close()
            raise_deferred(caught)
        check_exposure(cluster, config)
        return cluster

    def stop_workers_now(self, cluster: Any) -> None:
        kill_worker_processes(cluster)

    def submit_shards(self, batch: ShardBatch, config: ParallelSettings) -> dict[str, Any]:
        """Start one detached launcher that runs the shards, ``max_running`` at a time.

        Returns once the launcher has recorded every shard, so a status query right after
        sees them as pending rather than missing.
        """
        batch.log_dir.mkdir(parents=True, exist_ok=True)
        plan = batch.work_dir / f"local-{batch.name}.batch.json"
        atomic_write_json(
            plan,
            {
                "scheduler": self.name,
                "command": list(batch.command),
                "tasks": [
                    {
                        "spec": str(task.spec),
                        "record": str(task.record),
                        "log": str(batch.log_dir / f"{task.name}.log"),
                    }
                    for task in batch.tasks
                ],
                "max_running": batch.max_running,
            },
        )
        launcher_log = batch.log_dir / f"{plan.stem}.log"
        with open(launcher_log, "ab") as log:
            launcher = subprocess.Popen(
                [sys.executable, "-m", "espnet3.parallel.schedulers.local_launcher", str(plan)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # detached: the shards outlive this process by design
            )
        ready = launcher.stdout.readline().decode().strip()
        launcher.stdout.close()
        if ready != "ready":
            raise Espnet3Error(
                f"the local shard launcher exited before starting (exit code {launcher.wait()}); "
                f"see {launcher_log}"
            )
        return {"scheduler": self.name, "launcher": launcher.pid, "shards": len(batch.tasks)}

    def shard_states(self, records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
        return [_process_state(record) for record in records]


class LocalCuda(Local):
    envs = ("local_cuda", "local_gpu")  # local_gpu: upstream's name
    cluster_class = "dask_cuda.LocalCUDACluster"
    package = "dask-cuda"

    def default_workers(self) -> int:
        """One worker per visible GPU, as ``LocalCUDACluster`` itself counts them."""
        from dask_cuda.utils import get_n_gpus

        return get_n_gpus()


LOCAL = Local()
SCHEDULERS = (LOCAL, LocalCuda())


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


def kill_worker_processes(cluster: Any) -> None:
    """Kill the worker processes of a local ``cluster`` at once (SIGKILL), for an interrupt.

    Closing the cluster would let each worker finish its task for up to 4 s and then log
    about the scheduler gone. Each nanny is first told the exit is wanted, so that it does
    not start a new worker; closing the cluster afterwards only tidies up. Workers in this
    process (``processes: false``) have no process of their own and are left to that close.

    Example:
        >>> from distributed import LocalCluster
        >>> with LocalCluster(n_workers=1, processes=True) as cluster:  # doctest: +SKIP
        ...     kill_worker_processes(cluster)
    """
    from distributed import Nanny

    for server in list(cluster.workers.values()):
        pid = server.pid if isinstance(server, Nanny) else None
        if pid is not None:
            server.close_gracefully(reason="espnet3-interrupted")
            with contextlib.suppress(ProcessLookupError):  # it has just ended on its own
                os.kill(pid, signal.SIGKILL)


def _process_state(record: Mapping[str, Any]) -> tuple[str, str]:
    """A local shard: running while its process lives, pending while its launcher does."""
    pid = record.get("job_id")
    if pid is not None:
        if _alive(int(pid), str(record.get("spec", ""))):
            return "running", ""
        return "failed", f"process {pid} ended without complete results"
    if record.get("launcher") and _alive(int(record["launcher"]), "local_launcher"):
        return "pending", ""
    return "failed", f"launcher {record.get('launcher')} ended before starting the shard"


def _alive(pid: int, needle: str) -> bool:
    """Whether ``pid`` runs a command line containing ``needle`` (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()  # empty for a zombie
    except OSError:
        return False
    return needle.encode() in cmdline


@contextlib.contextmanager
def _spawned_ignoring_sigint() -> Iterator[None]:
    """Processes ``multiprocessing`` spawns in the block ignore SIGINT from their first step.

    Ctrl-C reaches every process of the terminal's foreground group; each worker would print
    its own KeyboardInterrupt traceback around the parent's one line, and the parent alone
    shuts them down. An ignored signal is the one disposition a new program inherits, and
    the parent must not ignore it itself (one sent to it alone would be lost), so workers
    are started through a shell script, in a private temporary directory, that ignores
    SIGINT and runs the same Python. Workers a nanny restarts later are covered by
    :class:`~espnet3.parallel.worker_plugin.QuietShutdownPlugin`.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # another thread's spawns must not change underneath it
        return
    from multiprocessing import spawn

    python = os.fsdecode(spawn.get_executable())
    with tempfile.TemporaryDirectory(prefix="espnet3-spawn-") as folder:  # mode 0700
        wrapper = Path(folder, "python")
        wrapper.write_text(f"#!/bin/sh\ntrap '' INT\nexec {shlex.quote(python)} \"$@\"\n")
        wrapper.chmod(0o700)
        spawn.set_executable(str(wrapper))
        try:
            yield
        finally:
            spawn.set_executable(python)


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


__all__ = ["LOCAL", "Local", "LocalCuda", "SCHEDULERS", "kill_worker_processes", "listen_host"]
