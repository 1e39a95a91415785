"""Map a function over items: in this process, or on a Dask cluster (:mod:`.dask_map`).

A task's exception reaches the caller with its own type, with a note naming the item
(:pep:`678`), as upstream ESPnet3's maps raise it. Inside espnet3, :func:`map_indexed` is the
engine: it yields ``(index, result)`` pairs and wraps a failure in
:class:`~espnet3.errors.ItemError` (the task's exception as its ``__cause__``).

Example:
    >>> def square(x):
    ...     return x * x
    >>> parallel_map(square, range(5))          # no client, no parallel config: in process
    [0, 1, 4, 9, 16]
    >>> sorted(parallel_for(square, [3, 4]))
    [9, 16]
"""

from __future__ import annotations

import logging
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from espnet3.errors import ItemError, add_note
from espnet3.parallel.dask_map import dask_for
from espnet3.parallel.placement import Placement, placement
from espnet3.parallel.worker_env import SetupFn, bind_env, build_env, setup_key
from espnet3.utils.checks import check_positive, check_seconds
from espnet3.utils.progress import progress

log = logging.getLogger(__name__)


def parallel_map(
    func: Callable,
    items: Iterable[Any],
    client: Any = None,
    setup_fn: SetupFn | None = None,
    **kwargs: Any,
) -> list[Any]:
    """Apply ``func`` to every item; return the results in input order.

    ``kwargs`` are passed to every call (except ``chunk_size`` and ``max_in_flight``, which
    tune the map: see :func:`map_indexed`, also for ``client``); the ``setup_fn`` environment
    is injected by parameter name (or whole into ``**kwargs``). On the first failing item the
    remaining work is cancelled and the item's exception is raised, noted with its index.

    Example:
        >>> parallel_map(lambda x, k: x + k, [1, 2], k=10)
        [11, 12]
    """
    results = dict(
        _counted(func, items, _task_errors(map_indexed(func, items, client, setup_fn, **kwargs)))
    )
    return [results[i] for i in range(len(results))]


def parallel_for(
    func: Callable,
    items: Iterable[Any],
    client: Any = None,
    setup_fn: SetupFn | None = None,
    **kwargs: Any,
) -> Iterator[Any]:
    """Yield ``func(item)`` for every item as results complete (any order on a cluster).

    Arguments as for :func:`parallel_map`. To know which item a result belongs to, return
    the index with it, or use :func:`map_indexed`.

    Example:
        >>> list(parallel_for(str.upper, ["a", "b"]))
        ['A', 'B']
    """
    pairs = _task_errors(map_indexed(func, items, client, setup_fn, **kwargs))
    for _, result in _counted(func, items, pairs):
        yield result


def _counted(
    func: Callable, items: Iterable[Any], pairs: Iterator[tuple[int, Any]]
) -> Iterator[tuple[int, Any]]:
    """``pairs``, counted for the user (:mod:`espnet3.utils.progress`)."""
    total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
    what = getattr(func, "__qualname__", type(func).__name__)
    with progress(total, what) as bar:
        for pair in pairs:
            bar.update()
            yield pair


def map_indexed(
    func: Callable,
    items: Iterable[Any],
    client: Any = None,
    setup_fn: SetupFn | None = None,
    *,
    chunk_size: int | None = None,
    max_in_flight: int | None = None,
    item_timeout: float | None = None,
    on_lost: Callable[[int, Any, str], Any] | None = None,
    **kwargs: Any,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, func(item))`` as results complete; a failure is an :class:`ItemError`.

    ``client`` is a ``distributed.Client``; when omitted, the innermost open
    :func:`~espnet3.parallel.get_client` block is used, else the
    :func:`~espnet3.parallel.set_parallel` config decides: sequential when unset, otherwise a
    cluster is started for this call and closed after it. A client opened by ``get_client``
    brings that block's ``setup_fn`` unless one is given here. ``chunk_size`` fixes the items
    per task (adaptive when ``None``); ``max_in_flight`` bounds the tasks submitted at once
    (default: twice the worker threads, at least 4). Items are read lazily, so ``items`` may
    be an endless generator consumed in step with the results.

    ``item_timeout`` (seconds; default ``parallel.item_timeout``) gives up on an item that runs
    longer; on a cluster its worker is restarted, in this process the item is interrupted
    (main thread only). On a cluster, an item whose worker dies or whose result cannot be sent
    back is found by retrying its chunk item by item; it is then an ItemError, or, given
    ``on_lost(index, item, reason)``, what that returns is yielded for it (see
    :mod:`.dask_map`).

    Example:
        >>> list(map_indexed(str.upper, ["a", "b"]))
        [(0, 'A'), (1, 'B')]
    """
    check_positive("chunk_size", chunk_size)
    check_positive("max_in_flight", max_in_flight)
    item_timeout = check_seconds("item_timeout", item_timeout)
    yield from map_on(
        placement(client),
        func,
        items,
        setup_fn,
        chunk_size=chunk_size,
        max_in_flight=max_in_flight,
        item_timeout=item_timeout,
        on_lost=on_lost,
        **kwargs,
    )


def map_on(
    where: Placement,
    func: Callable,
    items: Iterable[Any],
    setup_fn: SetupFn | None = None,
    /,
    *,
    chunk_size: int | None = None,
    max_in_flight: int | None = None,
    item_timeout: float | None = None,
    on_lost: Callable[[int, Any, str], Any] | None = None,
    **kwargs: Any,
) -> Iterator[tuple[int, Any]]:
    """:func:`map_indexed` where ``where`` (a :func:`~espnet3.parallel.placement.placement`
    answer) says; a map under an open block without a ``setup_fn`` of its own uses the
    block's. The first four are positional-only, so the function's own keyword arguments may
    use their names (``where=...``).

    Example:
        >>> from espnet3.parallel.placement import placement
        >>> list(map_on(placement(), pow, [2, 3], exp=2))
        [(0, 4), (1, 9)]
    """
    block = where.block
    inherited = block is not None and setup_fn is None
    fn = block.setup_fn if inherited else setup_fn
    if item_timeout is None:
        item_timeout = where.config.item_timeout

    def here() -> Callable[[int, Any], Any]:
        env = block.env if inherited and block.env is not None else build_env(fn)
        return _noted(with_timeout(bind_env(func, env, kwargs), item_timeout))

    def there(client: Any, rest: Iterable[Any], first: int) -> Iterator[tuple[int, Any]]:
        key = block.live_setup_key if inherited else setup_key(fn)
        return dask_for(
            func,
            rest,
            client,
            (key, fn),
            chunk_size,
            max_in_flight,
            kwargs,
            item_timeout=item_timeout,
            on_lost=on_lost,
            first_index=first,
        )

    return where.run(items, here, there, fn)


def _task_errors(pairs: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """``pairs``, with a failed item's own exception raised in place of its ItemError."""
    try:
        yield from pairs
        return
    except ItemError as err:
        cause = err.__cause__
        if cause is None:
            raise
        if cause.__traceback__ is None and err.worker_traceback:  # it came back as a value
            add_note(cause, f"espnet3: on the worker:\n{err.worker_traceback.rstrip()}")
    raise cause


def _noted(call: Callable[[Any], Any]) -> Callable[[int, Any], Any]:
    """``call`` of item ``index``; its failure is an ItemError naming the item."""

    def noted(index: int, item: Any) -> Any:
        try:
            return call(item)
        except Exception as exc:
            add_note(exc, f"espnet3: raised by item {index} of the map")
            raise ItemError(
                f"item {index} failed: {type(exc).__name__}: {exc}",
                index=index,
                worker_traceback=traceback.format_exc(),
            ) from exc

    return noted


def with_timeout(call: Callable[[Any], Any], seconds: float | None) -> Callable[[Any], Any]:
    """``call``, interrupted with ``TimeoutError`` after ``seconds`` (main thread only).

    Example:
        >>> with_timeout(abs, 5.0)(-2)
        2
    """
    if seconds is None:
        return call
    if threading.current_thread() is not threading.main_thread():
        log.warning("item_timeout works in the main thread only; items here run without it")
        return call

    def interrupt(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the item ran longer than item_timeout={seconds:g} s")

    def timed(item: Any) -> Any:
        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return call(item)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    return timed
