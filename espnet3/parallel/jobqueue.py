"""Clusters of batch-scheduler jobs (SLURM, PBS, SGE, LSF, HTCondor, OAR, Moab).

Workers run in jobs submitted by dask-jobqueue, ``options.processes`` of them per job (1 by
default), as many jobs as ``n_workers`` needs. What espnet3 adds:

- every job id is recorded the moment the scheduler accepts it (:class:`~espnet3.parallel.jobs.JobWatcher`),
  so :func:`supervise_jobs` can fail fast on a job that dies before its worker connects, replace
  jobs that end while the run goes on, and cancel every job on exit;
- a refused submission surfaces the scheduler's own words (``sbatch: error: ...``);
- job logs go to one directory per run, ``./exp/dask-jobs/<timestamp>-<pid>`` by default (under
  ``parallel.log_dir`` when set; ``options.log_directory`` is used as is), logged once;
- workers retire a few minutes before the walltime (``--lifetime`` with a stagger), so their
  tasks move to fresh jobs instead of dying with a killed job;
- TLS by default, with the worker half of a temporary certificate written, readable by the owner
  only, into the log directory: jobs on other hosts must reach a scheduler beyond loopback.

Example (needs a batch scheduler)::

    cfg = ParallelConfig.from_any({"env": "slurm", "n_workers": 2,
                                   "options": {"cores": 1, "memory": "1GB", "interface": "lo"}})
    slurm = scheduler_for("slurm")
    with start_jobqueue_cluster(cfg, slurm) as cluster, Client(cluster) as client:
        with supervise_jobs(cluster, client, cfg, slurm):
            ...
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, Espnet3Error
from espnet3.parallel.housekeeping import worker_exports
from espnet3.parallel.jobs import JobWatcher
from espnet3.parallel.schedulers.base import Scheduler
from espnet3.parallel.schedulers.settings import ParallelSettings
from espnet3.parallel.security import temporary_tls_options, wants_tls

log = logging.getLogger(__name__)

#: Seconds a worker waits for a lost scheduler before exiting, which ends its job: a parent that
#: died without cancelling its jobs leaves them running at most this long. It also bounds the
#: worker's own start (imports from a loaded node or a shared filesystem took over 60 s here).
DEATH_TIMEOUT = 120
_RUNS: weakref.WeakKeyDictionary[Any, _Run] = weakref.WeakKeyDictionary()


class _Run:
    """The jobs of one cluster: their watcher, refused submissions and log directory."""

    def __init__(self, env: str, watcher: JobWatcher, log_dir: Path):
        self.env, self.watcher, self.log_dir = env, watcher, log_dir
        self.refused: list[str] = []

    def submitted(self, job_id: str, job_name: str | None) -> None:
        # dask-jobqueue names a job's logs <job name>-<job id>.out/.err in its log directory.
        stem = self.log_dir / f"{job_name or 'worker'}-{job_id}"
        self.watcher.add(job_id, stdout=f"{stem}.out", stderr=f"{stem}.err")

    def raise_if_refused(self) -> None:
        if self.refused:
            raise Espnet3Error(
                f"the scheduler refused a worker job of parallel.env '{self.env}':\n"
                f"{self.refused[0]}\nfix parallel.options (queue, account, walltime, memory ...)"
            )


def start_jobqueue_cluster(config: ParallelSettings, scheduler: Scheduler) -> Any:
    """Build the dask-jobqueue cluster of ``config`` (``scheduler``'s cluster class) and submit
    the jobs of ``config.n_workers`` workers."""
    log_dir = scheduler.log_dir(config, Path.cwd() / "exp" / "dask-jobs", per_run=True)
    log.info("worker job logs of this run: %s", log_dir)
    scheduler_options, options = worker_job_options(config, scheduler, log_dir)
    cluster_cls = scheduler.load()
    run = _Run(config.env, JobWatcher(scheduler), log_dir)
    try:
        cluster = cluster_cls(
            scheduler_options=scheduler_options,
            job_cls=_tracked(cluster_cls.job_cls, run),
            **options,
        )
    except (TypeError, ValueError) as exc:  # e.g. no cores at all
        discard_unused_logs(log_dir)
        raise ConfigError(
            f"parallel.options {config.options} were refused by dask_jobqueue."
            f"{cluster_cls.__name__}: {exc}: give e.g. cores: 8 and memory: 32GB"
        ) from exc
    _RUNS[cluster] = run
    cluster.scale(config.n_workers)
    return cluster


def worker_job_options(
    config: ParallelSettings, scheduler: Scheduler, log_dir: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``scheduler_options`` and job options of the dask-jobqueue cluster of ``config``,
    whose job logs go to ``log_dir`` (and TLS files beside it, see :func:`tls_dir`)."""
    options = dict(config.options)
    job_cls = scheduler.load().job_cls  # the dask-jobqueue job class the cluster submits
    scheduler_options = dict(options.pop("scheduler_options", None) or {})
    # The dashboard shows task code and data: keep it off, or on loopback when asked for.
    scheduler_options.setdefault("dashboard", False)
    scheduler_options.setdefault("dashboard_address", "127.0.0.1:0")
    if "interface" in options and "interface" not in scheduler_options:
        scheduler_options["interface"] = options["interface"]
    options["log_directory"] = str(log_dir)
    secrets = tls_dir(config, log_dir)
    options["python"] = scheduler.python_command(config, [str(log_dir), str(secrets)])
    options.setdefault("death_timeout", DEATH_TIMEOUT)
    options["job_script_prologue"] = [
        *worker_exports(),
        *(config_fallback(job_cls, options, "job-script-prologue") or []),
    ]
    walltime = config_fallback(job_cls, options, "walltime")
    extra = list(options.get("worker_extra_args") or [])
    if not any(arg.startswith("--lifetime") for arg in extra):
        options["worker_extra_args"] = extra + lifetime_args(walltime)
    # Jobs run on other hosts, so the scheduler listens beyond loopback: TLS unless refused.
    if wants_tls(config):
        options.update(temporary_tls_options())
        secrets.mkdir(mode=0o700, exist_ok=True)
        options.setdefault("shared_temp_directory", str(secrets))
    return scheduler_options, options


def discard_unused_logs(where: Any) -> None:
    """Remove a run's own log directory (or a closed cluster's) that no job wrote into.

    A cluster that never got a job to run (refused, never scheduled) leaves nothing to read
    there; keeping its directory would only pile up empty ones. A ``log_directory`` the user
    named is never removed.
    """
    run = _RUNS.get(where) if not isinstance(where, Path) else None
    log_dir = run.log_dir if run is not None else where
    if isinstance(log_dir, Path) and log_dir.is_dir() and not any(log_dir.iterdir()):
        with contextlib.suppress(OSError):
            log_dir.rmdir()


def tls_dir(config: ParallelSettings, log_dir: Path) -> Path:
    """Where a run's temporary TLS files go: ``.tls`` beside the runs' log directories (in
    the ``log_directory`` the user named), on the filesystem the jobs share."""
    return (log_dir if config.options.get("log_directory") else log_dir.parent) / ".tls"


def lifetime_args(walltime: str | None) -> list[str]:
    """dask-worker arguments that retire a worker before the scheduler kills its job.

    The worker leaves ``margin`` (10 % of the walltime, 30 s to 5 min) plus up to ``stagger``
    (5 %, at most 2 min) before the walltime, so its tasks move to other workers in time and
    the workers of a run do not all leave at once. Walltimes under ~2 min get no lifetime.

    Example:
        >>> lifetime_args("01:00:00")
        ['--lifetime', '3180s', '--lifetime-stagger', '120s']
        >>> lifetime_args(None)
        []
    """
    if not walltime:
        return []
    seconds = parse_walltime(walltime)
    margin, stagger = min(300, max(30, seconds // 10)), min(120, seconds // 20)
    lifetime = seconds - margin - stagger
    if lifetime < 60:
        return []
    return ["--lifetime", f"{lifetime}s", "--lifetime-stagger", f"{stagger}s"]


def walltime_as_clock(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with an integer ``walltime`` written as ``HH:MM:SS``, and the walltime checked.

    YAML 1.1 (which OmegaConf follows) reads ``walltime: 30:00`` as the base-60 number 1800;
    passed on as is, SLURM would read ``-t 1800`` as 1800 minutes. An integer walltime is
    therefore taken as seconds, the value YAML computed.

    Example:
        >>> walltime_as_clock({"walltime": 1800})
        {'walltime': '00:30:00'}
    """
    options = dict(options)
    walltime = options.get("walltime")
    if isinstance(walltime, int) and not isinstance(walltime, bool):
        hours, rest = divmod(walltime, 3600)
        options["walltime"] = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    elif walltime is not None:
        parse_walltime(walltime)  # a walltime the scheduler cannot read fails now, not at start
    return options


def parse_walltime(text: str) -> int:
    """Seconds in a SLURM/PBS walltime: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``.

    Example:
        >>> parse_walltime("1-02:00:00"), parse_walltime("90"), parse_walltime("00:30:00")
        (93600, 5400, 1800)
    """
    days, _, clock = str(text).strip().rpartition("-")
    try:
        parts = [int(p) for p in clock.split(":")]
        if days:
            hours, minutes, seconds = (parts + [0, 0])[:3]
            return ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
        if len(parts) <= 3:
            scale = [60] if len(parts) == 1 else [60, 1] if len(parts) == 2 else [3600, 60, 1]
            return sum(p * s for p, s in zip(parts, scale, strict=True))
    except ValueError:
        pass
    raise ConfigError(
        f"parallel.options.walltime {text!r} is not a walltime: use HH:MM:SS or D-HH:MM:SS"
    )


@contextlib.contextmanager
def supervise_jobs(
    cluster: Any, client: Any, config: ParallelSettings, scheduler: Scheduler
) -> Iterator[bool]:
    """Wait for workers while watching their jobs, keep the jobs of ``n_workers`` workers
    running, cancel all on exit.

    Yields ``False`` (and does nothing) for a cluster :func:`start_jobqueue_cluster` did not
    start. Raises :class:`~espnet3.parallel.jobs.JobFailedError` when a job ends before its
    worker connects, :class:`Espnet3Error` when a submission is refused or
    ``config.min_workers`` do not connect within ``config.startup_timeout``.
    """
    run = _RUNS.get(cluster)
    if run is None:
        yield False
        return
    stop = threading.Event()
    monitor = threading.Thread(
        target=_keep_jobs, args=(cluster, run, config.n_workers, stop), daemon=True
    )
    try:
        _wait_for_workers(cluster, client, run, config, scheduler.never_starts)
        monitor.start()
        yield True
    finally:
        stop.set()
        if monitor.is_alive():
            monitor.join()
        run.watcher.cancel_all()


def _wait_for_workers(
    cluster: Any, client: Any, run: _Run, config: ParallelSettings, never_starts: Mapping[str, str]
) -> None:
    deadline = time.monotonic() + config.startup_timeout
    while True:
        connected, workers = _connected_jobs(cluster, client)
        if workers >= config.min_workers:
            return
        run.raise_if_refused()
        for job_id, state in run.watcher.refresh().items():
            if state.is_finished and job_id not in connected:
                raise run.watcher.failure(job_id, "ended before its Dask worker connected")
            if state.is_pending and state.reason in never_starts:
                raise Espnet3Error(
                    f"job {job_id} of parallel.env '{config.env}' can never start: the scheduler "
                    f"holds it for {state.reason} ({never_starts[state.reason]}): fix "
                    "parallel.options (cores, memory, walltime, queue, account)"
                )
        if time.monotonic() > deadline:
            pending = {j: s.reason for j, s in run.watcher.states().items() if s.is_pending}
            raise Espnet3Error(
                f"only {workers} of {config.min_workers} worker(s) of parallel.env "
                f"'{config.env}' connected within parallel.startup_timeout="
                f"{config.startup_timeout:g}s; pending jobs and reasons: {pending or 'none'}; "
                f"job logs in {run.log_dir}"
            )
        time.sleep(0.1)


def _connected_jobs(cluster: Any, client: Any) -> tuple[set[str], int]:
    """Ids of the jobs with a connected worker, and how many worker processes are connected.

    A job runs ``processes`` workers (named ``<job name>-<i>``) when that option is above 1.
    """
    names = [str(w["name"]) for w in client.scheduler_info()["workers"].values()]
    jobs, workers = set(), 0
    for name, job in list(cluster.workers.items()):
        mine = [n for n in names if n == str(name) or n.startswith(f"{name}-")]
        if job.job_id and mine:
            jobs.add(job.job_id)
            workers += len(mine)
    return jobs, workers


def _keep_jobs(cluster: Any, run: _Run, n_workers: int, stop: threading.Event) -> None:
    """While the run goes on: report jobs that end and ask for replacements."""
    reported: set[str] = set()
    while not stop.wait(1.0):
        try:
            while run.refused:
                log.error("the scheduler refused a replacement job: %s", run.refused.pop())
            states = run.watcher.refresh()
            for job_id, state in states.items():
                if state.is_finished and job_id not in reported:
                    reported.add(job_id)
                    if state.is_failed:
                        failure = run.watcher.failure(job_id, "ended while the run went on")
                        log.warning("%s\na new job replaces it", failure)
                    else:  # a worker that reached its --lifetime retires and ends its job
                        log.info("job %s ended; a new job replaces it", job_id)
            # A lost worker leaves cluster.workers after distributed's lost-worker-timeout;
            # from then on scale() resubmits its job, and before then it is a no-op.
            if sum(not s.is_finished for s in states.values()) < _jobs_for(cluster, n_workers):
                cluster.scale(n_workers)
        except Exception:  # a monitor that dies silently would stop replacing jobs
            log.exception("watching the jobs of parallel.env '%s' failed", run.env)


def _jobs_for(cluster: Any, n_workers: int) -> int:
    """Jobs that hold ``n_workers`` workers (dask-jobqueue puts ``processes`` in each)."""
    per_job = getattr(getattr(cluster, "_dummy_job", None), "worker_processes", 1) or 1
    return math.ceil(n_workers / per_job)


def _tracked(job_cls: type, run: _Run) -> type:
    """``job_cls`` recording each job id into ``run`` as soon as the scheduler accepts it."""
    from distributed.core import Status

    async def start(self: Any) -> None:
        try:
            await job_cls.start(self)
        except RuntimeError as exc:  # dask-jobqueue: the submit command exited non-zero
            # Kept for supervise_jobs to raise (or log) in the user's thread; raising here would
            # only reach the event loop's log, and a job left "created" breaks cluster.close().
            refusal = str(exc).partition("stderr:\n")[2].strip() or str(exc)
            run.refused.append(refusal)
            self.status = Status.failed
        finally:
            if self.job_id:
                run.submitted(self.job_id, self.job_name)

    return type(job_cls.__name__, (job_cls,), {"start": start})


def config_fallback(job_cls: type, options: Mapping[str, Any], key: str) -> Any:
    """``key`` (``job-script-prologue``) from ``options`` (``job_script_prologue``), else from
    the Dask config section the job reads: ``options.config_name`` when given, as
    dask-jobqueue's jobs take it, else the family's (``jobqueue.slurm``).

    Example:
        >>> import dask
        >>> from dask_jobqueue.slurm import SLURMJob
        >>> with dask.config.set({"jobqueue.mine.walltime": "00:20:00"}):
        ...     config_fallback(SLURMJob, {"config_name": "mine"}, "walltime")
        '00:20:00'
    """
    import dask

    given = options.get(key.replace("-", "_"))
    if given:
        return given
    section = options.get("config_name") or job_cls.default_config_name()
    return dask.config.get(f"jobqueue.{section}.{key}", None)
