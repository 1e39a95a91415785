"""The cluster's life: ``get_client`` starts it (now, or when the work is worth it), checks
and sets up its workers, and closes it, at once on Ctrl-C. What is open is recorded in
:mod:`.context`; where work runs is decided by :mod:`.placement`.

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
import logging
import signal
from collections.abc import Iterator
from typing import Any

from espnet3.errors import ConfigError, Espnet3Error
from espnet3.parallel.config import START_MODES, ParallelConfig
from espnet3.parallel.context import OpenClient, get_parallel_config, opened
from espnet3.parallel.identity import check_worker_identities, process_identity
from espnet3.parallel.worker_env import SetupFn, build_env, setup_key
from espnet3.utils.progress import log as progress_log  # where work ran, beside progress
from espnet3.utils.quiet import logging_off
from espnet3.utils.signals import deferred, handled, raise_deferred

log = logging.getLogger(__name__)


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

    def worth_it(self, seconds: float) -> bool:
        """Whether ``seconds`` of work left is worth starting the cluster for."""
        return seconds > WORTH_A_CLUSTER_SECONDS

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
        with opened(OpenClient(None, setup_fn, config=cfg, env=build_env(setup_fn))):
            yield None
        return
    if start == "when_worth_it":
        with (
            DeferredCluster(cfg, setup_fn) as deferred,
            opened(OpenClient(None, setup_fn, cfg, deferred=deferred)),
        ):
            yield None
        return
    with (
        _cluster_client(cfg, setup_fn, "parallel.start: now") as (client, key),
        opened(OpenClient(client, setup_fn, cfg, key)),
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
