"""``get_client`` and the process-wide parallel configuration.

Example:
    >>> with get_client({"env": "local", "n_workers": 2}) as client:   # doctest: +SKIP
    ...     parallel_map(abs, [-1, -2], client)
    [1, 2]
    >>> with get_client() as client:   # nothing configured: sequential, no Dask
    ...     print(client)
    None
"""

from __future__ import annotations

import contextlib
import copy
import logging
import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from espnet3.errors import ConfigError, Espnet3Error
from espnet3.parallel.config import START_MODES, ParallelConfig
from espnet3.parallel.identity import check_worker_identities, process_identity
from espnet3.parallel.worker_env import SetupFn, build_env, setup_key

# Where the work runs and why, once per block: said beside the progress lines.
from espnet3.utils.logging_utils import logging_off
from espnet3.utils.progress import log as progress_log
from espnet3.utils.signals import deferred, handled, raise_deferred

log = logging.getLogger(__name__)

_CONFIG: ParallelConfig = ParallelConfig()


class DeferredCluster:
    """The cluster of a ``get_client(..., start="when_worth_it")`` block, started on demand.

    Until :meth:`start`, the block's maps run in this process; a map whose remaining work is
    measured to exceed :data:`WORTH_A_CLUSTER_SECONDS` starts it (once, for the rest of the
    block), so small runs never pay for starting workers.
    """

    def __init__(self, config: ParallelConfig, setup_fn: SetupFn | None):
        self.config, self.setup_fn = config, setup_fn
        self.client: Any = None
        self.setup_key: str | None = None
        #: Seconds of work the block's maps ran here, measured as not worth a cluster.
        self.ran_here = 0.0
        self._stack = contextlib.ExitStack()

    @property
    def started(self) -> bool:
        return self.client is not None

    def start(self, remaining: float) -> Any:
        """Start the cluster (as :func:`get_client` does) for ``remaining`` seconds of work
        measured here, and return its client."""
        if self.client is None:
            why = f"remaining work about {remaining:.0f} s > {WORTH_A_CLUSTER_SECONDS:g} s"
            self.client, self.setup_key = self._stack.enter_context(
                _cluster_client(self.config, self.setup_fn, why)
            )
        return self.client

    def __enter__(self) -> DeferredCluster:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Close the cluster if started, seeing the block's exception (Ctrl-C: at once)."""
        if exc_info[0] is None and not self.started and self.ran_here:
            progress_log.info(
                "ran in process: the work, about %.1f s, was not worth a cluster (more than "
                "%g s of it is)",
                self.ran_here,
                WORTH_A_CLUSTER_SECONDS,
            )
        self._stack.__exit__(*exc_info)


#: Measured here: starting 2 local workers, their first imports of torch and lhotse, and
#: closing them cost about 2.6 s, so a cluster pays off only for more work than about twice
#: that (benchmarks/RESULTS.md, mini_an4).
WORTH_A_CLUSTER_SECONDS = 5.0


@dataclass(frozen=True, eq=False)  # identity: nested blocks may look alike
class OpenClient:
    """One open :func:`get_client` block: its client (``None`` when sequential) and setup."""

    client: Any
    setup_fn: SetupFn | None = None
    #: The parallel config the block was opened with (its item_timeout, for instance).
    config: ParallelConfig = field(default_factory=ParallelConfig)
    #: Cluster runs: the key under which each worker's plugin built the environment.
    setup_key: str | None = None
    #: Sequential runs: the environment built in this process on enter.
    env: Mapping[str, Any] = field(default_factory=dict)
    #: A block whose cluster starts only when the work is worth it.
    deferred: DeferredCluster | None = None

    @property
    def live_client(self) -> Any:
        """The block's client now (a deferred cluster's once started; else ``None``)."""
        return self.deferred.client if self.deferred is not None else self.client

    @property
    def live_setup_key(self) -> str | None:
        return self.deferred.setup_key if self.deferred is not None else self.setup_key


_OPEN: list[OpenClient] = []


def set_parallel(config: Any) -> ParallelConfig:
    """Make ``config`` (mapping, DictConfig, YAML path, config or ``None``) the default.

    The value is validated and copied; later changes to the caller's object have no effect.

    Example:
        >>> set_parallel({"env": "none"}).env
        'none'
    """
    global _CONFIG
    _CONFIG = ParallelConfig.from_any(config)
    return get_parallel_config()


def get_parallel_config() -> ParallelConfig:
    """A copy of the config set by :func:`set_parallel` (sequential when never set).

    Example:
        >>> get_parallel_config().is_sequential
        True
    """
    return copy.deepcopy(_CONFIG)


def open_client(client: Any = None) -> OpenClient | None:
    """The innermost open :func:`get_client` block (of ``client``, when given), or ``None``.

    A map given a client that a block opened runs with that block's ``setup_fn``.
    """
    if client is None:
        return _OPEN[-1] if _OPEN else None
    return next((entry for entry in reversed(_OPEN) if entry.live_client is client), None)


@dataclass(frozen=True)
class Placement:
    """Where a map or a runner call runs. :func:`placement` is the one place that decides."""

    #: The open :func:`get_client` block the work runs under, if any.
    block: OpenClient | None
    #: That block's config, else the process-wide one (:func:`set_parallel`).
    config: ParallelConfig

    @property
    def client(self) -> Any:
        """The open block's client (``None``: no block, a sequential one, or a deferred
        cluster not started yet)."""
        return self.block.live_client if self.block else None

    @property
    def sequential(self) -> bool:
        """In this process: a sequential block is open, or none is and none is configured."""
        if self.block is None:
            return self.config.is_sequential
        return self.block.client is None and self.block.deferred is None

    @property
    def deferred(self) -> DeferredCluster | None:
        """The block's cluster while it is not started yet (maps then decide)."""
        deferred = self.block.deferred if self.block else None
        return deferred if deferred is not None and not deferred.started else None

    @property
    def needs_cluster(self) -> bool:
        """No block is open but a cluster is configured: one is started for the call."""
        return self.block is None and not self.config.is_sequential


def placement(client: Any = None) -> Placement:
    """Where work given ``client`` (``None``: none given) runs: an open block wins over the
    process-wide config.

    Example:
        >>> with get_client({"env": "none"}):
        ...     placement().sequential
        True
    """
    block = open_client(client)
    return Placement(block, block.config if block else get_parallel_config())


def active_client() -> Any:
    """The client of the innermost open :func:`get_client`, or ``None`` (none open, or sequential).

    Example:
        >>> active_client() is None
        True
    """
    current = open_client()
    return current.live_client if current else None


@contextlib.contextmanager
def get_client(
    config: Any = None, setup_fn: SetupFn | None = None, *, start: str | None = None
) -> Iterator[Any]:
    """Start the configured cluster and a client on enter; close both on exit.

    ``config`` defaults to :func:`get_parallel_config`. A sequential config yields ``None``:
    work then runs in this process, and ``setup_fn`` runs here once. Otherwise ``setup_fn`` is
    registered as a worker plugin so it runs once per worker. Inside the block,
    :func:`~espnet3.parallel.parallel_map` without a client uses this one and injects the setup
    environment. Leaving the block, normally or by an exception, closes the client and the
    cluster, which cancels every job the cluster submitted.

    ``start`` (default ``parallel.start``, else ``"now"``): ``"when_worth_it"`` yields ``None``
    and starts no cluster until a map of the block measures that its remaining work is worth
    one (:class:`DeferredCluster`); maps before that run in this process. Results are the same
    either way.

    Example:
        >>> with get_client({"env": "none"}, setup_fn=lambda: {"k": 1}) as client:
        ...     print(client)
        None
    """
    cfg = get_parallel_config() if config is None else ParallelConfig.from_any(config)
    start = start or cfg.start or "now"
    if start not in START_MODES:
        raise ConfigError(
            f"get_client start must be one of {', '.join(START_MODES)}, got {start!r}"
        )
    if cfg.container is not None and cfg.scheduler.on_this_host:
        log.warning(
            "parallel.container is used by async shards and batch-job workers; env '%s' runs "
            "this map on this host, outside %s",
            cfg.env,
            cfg.container.image,
        )
    if cfg.is_sequential:
        with _opened(OpenClient(None, setup_fn, config=cfg, env=build_env(setup_fn))):
            yield None
        return
    if start == "when_worth_it":
        with (
            DeferredCluster(cfg, setup_fn) as deferred,
            _opened(OpenClient(None, setup_fn, cfg, deferred=deferred)),
        ):
            yield None
        return
    with (
        _cluster_client(cfg, setup_fn, "parallel.start: now") as (client, key),
        _opened(OpenClient(client, setup_fn, cfg, key)),
    ):
        yield client


@contextlib.contextmanager
def _cluster_client(
    cfg: ParallelConfig, setup_fn: SetupFn | None, why: str
) -> Iterator[tuple[Any, str | None]]:
    """The cluster of ``cfg`` and a client, ready, checked and set up; closed on exit. ``why``
    it starts goes into the line that says so."""
    from distributed import Client

    with (
        _signals_exit(),
        _started(cfg) as cluster,
        Client(cluster) as client,
        cfg.scheduler.supervise(cluster, client, cfg) as supervised,  # batch jobs: watched
    ):
        if cfg.scheduler.on_this_host:  # Ctrl-C reaches local workers too
            from espnet3.parallel.worker_plugin import QuietShutdownPlugin

            client.register_plugin(QuietShutdownPlugin())
        if not supervised:
            wait_until_ready(cluster, client, cfg)
            workers = f"{len(client.scheduler_info()['workers'])} {cfg.env} worker(s)"
        else:
            workers = f"{cfg.env}, {cfg.n_workers} worker(s) asked for"
        progress_log.info("cluster started: %s (%s)", workers, why)
        if cfg.container is not None:  # workers in another image fail far from the cause
            _check_identities(client)
        key = setup_key(setup_fn)
        if setup_fn is not None:
            from espnet3.parallel.worker_plugin import SetupPlugin

            client.register_plugin(SetupPlugin(setup_fn, key))
        yield client, key


def build_client(config: Any = None) -> Any:
    """Start the configured cluster and return a client that owns it.

    Closing the client (``client.close()``, or leaving ``with build_client(...) as client:``)
    also closes the cluster and cancels every job it submitted. Prefer :func:`get_client`,
    which closes both for you; this form is for code that keeps a client open across calls.

    Example (starts two worker processes)::

        client = build_client({"env": "local", "n_workers": 2})
        try:
            print(client.gather(client.map(abs, [-1, -2])))
        finally:
            client.close()
    """
    stack = contextlib.ExitStack()
    client = stack.enter_context(get_client(config))
    if client is None:
        stack.close()
        raise ConfigError(
            "build_client needs a cluster, but parallel.env is sequential: set parallel.env "
            "(e.g. local), or use get_client, which runs sequential work in this process"
        )
    close_client = client.close

    def close(*args: Any, **kwargs: Any) -> Any:
        try:
            return close_client(*args, **kwargs)
        finally:
            stack.close()  # the cluster, its jobs and the signal handlers of this client

    client.close = close  # this client owns its cluster; a plain Client does not
    return client


@contextlib.contextmanager
def _started(cfg: ParallelConfig) -> Iterator[Any]:
    """The cluster of ``cfg``, closed on exit; then a batch run's unused log directory goes.

    Ctrl-C or SIGTERM in the block stops the workers at once: the user waits for one line,
    not for a graceful close (workers finish their task for up to 4 s, then log about the
    scheduler gone). Logging stays off until the cluster is closed.
    """
    from espnet3.parallel.housekeeping import apply_defaults
    from espnet3.parallel.jobqueue import discard_unused_logs

    apply_defaults()
    cluster = cfg.scheduler.start_cluster(cfg)
    try:
        try:
            yield cluster
        except (KeyboardInterrupt, SystemExit):
            with logging_off():
                cfg.scheduler.stop_workers_now(cluster)
                _close(cluster, cfg)
            raise
        finally:
            _close(cluster, cfg)  # after an interrupt: already closed, returns at once
    finally:
        discard_unused_logs(cluster)


def _close(cluster: Any, cfg: ParallelConfig) -> None:
    """Close ``cluster`` to the end, even through Ctrl-C: an interrupted close stays
    "closing", and distributed then waits 10 s for it at exit. A signal in the close stops
    the workers at once, and is acted on once the close is done."""
    quiet = contextlib.ExitStack()

    def stop_now() -> None:
        quiet.enter_context(logging_off())
        cfg.scheduler.stop_workers_now(cluster)

    with quiet, deferred(on_first=stop_now) as caught:
        cluster.close()
    raise_deferred(caught)


def _check_identities(client: Any) -> None:
    """Check the workers there are now; the plugin checks those that join later."""
    from espnet3.parallel.worker_plugin import IdentityPlugin

    parent = process_identity()
    workers = check_worker_identities(client, parent)
    client.register_plugin(IdentityPlugin(parent, workers[min(workers)] if workers else None))


@contextlib.contextmanager
def _signals_exit() -> Iterator[None]:
    """Make SIGTERM and Ctrl-C leave the block by an exception, so every job is cancelled.

    SIGTERM raises ``SystemExit(143)``; later SIGTERMs are ignored until the block is left, so
    they cannot cut that cleanup short. SIGINT raises ``KeyboardInterrupt`` even though
    importing dask_jobqueue replaced Python's handler with a bare ``sys.exit()`` (exit status
    0). A signal already ignored stays ignored; only the main thread may set handlers.
    """

    def exit_once(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    with handled({signal.SIGTERM: exit_once, signal.SIGINT: signal.default_int_handler}):
        yield


@contextlib.contextmanager
def _opened(entry: OpenClient) -> Iterator[None]:
    _OPEN.append(entry)
    try:
        yield
    finally:
        _OPEN.remove(entry)


def wait_until_ready(cluster: Any, client: Any, cfg: ParallelConfig) -> None:
    """Block until ``cfg.min_workers`` workers are connected, or fail with a clear message."""
    try:
        client.wait_for_workers(cfg.min_workers, timeout=cfg.startup_timeout)
    except TimeoutError:
        raise Espnet3Error(
            f"only {len(client.scheduler_info()['workers'])} of {cfg.min_workers} worker(s) of "
            f"env '{cfg.env}' connected within parallel.startup_timeout={cfg.startup_timeout:g}s: "
            f"check the cluster, or raise startup_timeout"
        ) from None
