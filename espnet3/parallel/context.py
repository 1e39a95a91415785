"""Where work runs, as state: the process-wide ``parallel`` config and the open blocks.

:func:`set_parallel` (or, for a block of code, :func:`use_parallel`) sets the default that
maps and runners follow when no :func:`~espnet3.parallel.get_client` block is open; each open
block is an :class:`OpenClient` on a stack, the innermost first. Only this module changes
that state; :func:`espnet3.parallel.placement.placement` reads it to decide where work runs.

Example:
    >>> with use_parallel({"env": "none"}) as config:
    ...     config.is_sequential, get_parallel_config().env
    (True, 'none')
    >>> active_client() is None
    True
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from espnet3.parallel.config import ParallelConfig

_CONFIG: ParallelConfig = ParallelConfig()


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


@contextlib.contextmanager
def use_parallel(config: Any) -> Iterator[ParallelConfig]:
    """Make ``config`` the default inside the block; the previous default comes back after.

    Example:
        >>> with use_parallel({"env": "local", "n_workers": 2}):
        ...     get_parallel_config().n_workers
        2
        >>> get_parallel_config().env
        'none'
    """
    global _CONFIG
    previous = _CONFIG
    _CONFIG = ParallelConfig.from_any(config)
    try:
        yield get_parallel_config()
    finally:
        _CONFIG = previous


@dataclass(frozen=True, eq=False)  # identity: nested blocks may look alike
class OpenClient:
    """One open :func:`get_client` block: its client (``None`` when sequential) and setup."""

    client: Any
    #: Builds the environment of the block's tasks (:mod:`espnet3.parallel.worker_env`).
    setup_fn: Callable[[], Mapping[str, Any]] | None = None
    #: The parallel config the block was opened with (its item_timeout, for instance).
    config: ParallelConfig = field(default_factory=ParallelConfig)
    #: Cluster runs: the key under which each worker's plugin built the environment.
    setup_key: str | None = None
    #: Sequential runs: the environment built in this process on enter (else ``None``).
    env: Mapping[str, Any] | None = None
    #: A block whose cluster starts only when the work is worth it
    #: (:class:`~espnet3.parallel.client.DeferredCluster`).
    deferred: Any = None

    @property
    def live_client(self) -> Any:
        """The block's client now (a deferred cluster's once started; else ``None``)."""
        return self.deferred.client if self.deferred is not None else self.client

    @property
    def live_setup_key(self) -> str | None:
        return self.deferred.setup_key if self.deferred is not None else self.setup_key


_OPEN: list[OpenClient] = []


@contextlib.contextmanager
def opened(entry: OpenClient) -> Iterator[OpenClient]:
    """``entry`` is the innermost open block inside this one."""
    _OPEN.append(entry)
    try:
        yield entry
    finally:
        _OPEN.remove(entry)


def open_client(client: Any = None) -> OpenClient | None:
    """The innermost open :func:`get_client` block (of ``client``, when given), or ``None``.

    A map given a client that a block opened runs with that block's ``setup_fn``.
    """
    if client is None:
        return _OPEN[-1] if _OPEN else None
    return next((entry for entry in reversed(_OPEN) if entry.live_client is client), None)


def active_client() -> Any:
    """The client of the innermost open :func:`get_client`, or ``None`` (none open, or sequential).

    Example:
        >>> active_client() is None
        True
    """
    current = open_client()
    return current.live_client if current else None
