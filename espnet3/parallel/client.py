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
from collections.abc import Iterator
from typing import Any

from espnet3.parallel.clusters import start_cluster
from espnet3.parallel.config import ParallelConfig
from espnet3.parallel.worker_env import SetupFn, SetupPlugin

_DEFAULT = ParallelConfig()
_CONFIG: ParallelConfig = _DEFAULT
_ACTIVE: list[Any] = []


def set_parallel(config: Any) -> ParallelConfig:
    """Make ``config`` (mapping, DictConfig, YAML path or ``None``) the default of every runner.

    The value is validated and copied; later changes to the caller's object have no effect.
    Returns the stored config.
    """
    global _CONFIG
    _CONFIG = ParallelConfig.from_any(config)
    return _CONFIG


def get_parallel_config() -> ParallelConfig:
    """The config set by :func:`set_parallel` (sequential when never set). It is immutable."""
    return _CONFIG


def active_client() -> Any:
    """The client of the innermost open :func:`get_client`, or ``None``."""
    return _ACTIVE[-1] if _ACTIVE else None


@contextlib.contextmanager
def get_client(config: Any = None, setup_fn: SetupFn | None = None) -> Iterator[Any]:
    """Start the configured cluster and a client on enter; close both on exit.

    ``config`` defaults to :func:`get_parallel_config`. A sequential config yields ``None``
    (work then runs in this process). ``setup_fn`` is registered as a worker plugin so it runs
    once per worker. Leaving the block, normally or by an exception, closes the client and the
    cluster, which cancels every job the cluster submitted.
    """
    cfg = get_parallel_config() if config is None else ParallelConfig.from_any(config)
    if cfg.is_sequential:
        yield None
        return
    from distributed import Client

    with start_cluster(cfg) as cluster, Client(cluster) as client:
        wait_until_ready(cluster, client, cfg)
        if setup_fn is not None:
            client.register_plugin(SetupPlugin(setup_fn))
        _ACTIVE.append(client)
        try:
            yield client
        finally:
            _ACTIVE.remove(client)


def wait_until_ready(cluster: Any, client: Any, cfg: ParallelConfig) -> None:
    """Block until ``cfg.min_workers`` workers are connected, or fail with a clear message."""
    from espnet3.errors import Espnet3Error

    try:
        client.wait_for_workers(cfg.min_workers, timeout=cfg.startup_timeout)
    except TimeoutError:
        raise Espnet3Error(
            f"only {len(client.scheduler_info()['workers'])} of {cfg.min_workers} worker(s) of "
            f"env '{cfg.env}' connected within parallel.startup_timeout={cfg.startup_timeout:g}s: "
            f"check the cluster, or raise startup_timeout"
        ) from None
