"""Map a function over items: in this process, or on a Dask cluster in adaptive chunks.

Dask costs about a millisecond per task, so items are sent in chunks. Unless a ``chunk_size``
is given, the chunk size adapts: the first chunks hold one item each, and from their measured
run time later chunks are sized to last about :data:`TARGET_TASK_SECONDS`, capped so that the
last chunks still spread over every worker. Only a bounded number of chunks is in flight, so a
million items never become a million futures.

Example:
    >>> def square(x):
    ...     return x * x
    >>> parallel_map(square, range(5))          # no client, no parallel config: in process
    [0, 1, 4, 9, 16]
    >>> sorted(parallel_for(square, [3, 4]))
    [(0, 9), (1, 16)]
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from espnet3.errors import ItemError
from espnet3.parallel.worker_env import SetupFn, call_with_env, process_env, setup_key

#: How long one chunk should take once the per-item cost is known (seconds).
TARGET_TASK_SECONDS = 0.2
#: Upper bound on items per chunk, whatever the per-item cost.
MAX_CHUNK_SIZE = 10_000


def parallel_map(
    func: Callable,
    items: Iterable[Any],
    client: Any = None,
    setup_fn: SetupFn | None = None,
    *,
    chunk_size: int | None = None,
    max_in_flight: int | None = None,
    **kwargs: Any,
) -> list[Any]:
    """Apply ``func`` to every item; return the results in input order.

    ``kwargs`` are passed to every call; the ``setup_fn`` environment is injected by parameter
    name (or whole into ``**kwargs``). On the first failing item the remaining work is
    cancelled and :class:`~espnet3.errors.ItemError` names the item's index.

    Example:
        >>> parallel_map(lambda x, k: x + k, [1, 2], k=10)
        [11, 12]
    """
    results: dict[int, Any] = {}
    for index, result in parallel_for(
        func, items, client, setup_fn, chunk_size=chunk_size, max_in_flight=max_in_flight, **kwargs
    ):
        results[index] = result
    return [results[i] for i in range(len(results))]


def parallel_for(
    func: Callable,
    items: Iterable[Any],
    client: Any = None,
    setup_fn: SetupFn | None = None,
    *,
    chunk_size: int | None = None,
    max_in_flight: int | None = None,
    **kwargs: Any,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, func(item))`` as results complete (any order on a cluster).

    ``client`` is a ``distributed.Client``; when omitted, the client of the innermost open
    :func:`~espnet3.parallel.get_client` is used, else the process-wide
    :func:`~espnet3.parallel.set_parallel` config decides (sequential when unset; otherwise
    a cluster is started for this call and closed after it).

    Example:
        >>> [r for _, r in parallel_for(str.upper, ["a", "b"])]
        ['A', 'B']
    """
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    from espnet3.parallel.client import active_client, get_client, get_parallel_config

    if client is None:
        client = active_client()
    if client is not None:
        yield from _dask_for(func, items, client, setup_fn, chunk_size, max_in_flight, kwargs)
        return
    config = get_parallel_config()
    if config.is_sequential:
        yield from _sequential_for(func, items, setup_fn, kwargs)
        return
    with get_client(config, setup_fn) as started:
        yield from _dask_for(func, items, started, setup_fn, chunk_size, max_in_flight, kwargs)


def _sequential_for(
    func: Callable, items: Iterable[Any], setup_fn: SetupFn | None, kwargs: dict
) -> Iterator[tuple[int, Any]]:
    env = process_env(setup_key(setup_fn), setup_fn)
    for index, item in enumerate(items):
        try:
            result = call_with_env(func, item, env, kwargs)
        except Exception as exc:
            raise _item_error(index, exc) from exc
        yield index, result


def run_chunk(
    func: Callable,
    start: int,
    items: list[Any],
    key: str | None,
    setup_fn: SetupFn | None,
    kwargs: dict,
) -> tuple[list[Any], float]:
    """Run one chunk on a worker; return its results and the seconds they took."""
    env = process_env(key, setup_fn)
    t0 = time.perf_counter()
    results = []
    for offset, item in enumerate(items):
        try:
            results.append(call_with_env(func, item, env, kwargs))
        except Exception as exc:
            raise _item_error(start + offset, exc) from None
    return results, time.perf_counter() - t0


def _item_error(index: int, exc: BaseException) -> ItemError:
    if isinstance(exc, ItemError):  # a setup failure: keep its message and traceback
        return ItemError(f"item {index}: {exc}", index=index, worker_traceback=exc.worker_traceback)
    return ItemError(
        f"item {index} failed: {type(exc).__name__}: {exc}",
        index=index,
        worker_traceback=traceback.format_exc(),
    )


class _ChunkSizer:
    """Chooses the next chunk size from the per-item cost measured so far."""

    def __init__(self, fixed: int | None, slots: int, total: int | None):
        self.fixed = fixed
        self.slots = slots
        self.remaining = total
        self.per_item: float | None = None

    def observe(self, n_items: int, seconds: float) -> None:
        cost = seconds / max(n_items, 1)
        self.per_item = cost if self.per_item is None else 0.5 * (self.per_item + cost)

    def next_size(self) -> int:
        if self.fixed is not None:
            size = self.fixed
        elif self.per_item is None:
            size = 1
        else:
            size = int(TARGET_TASK_SECONDS / max(self.per_item, 1e-7))
            if self.remaining is not None:  # keep every worker busy until the end
                size = min(size, math.ceil(self.remaining / (2 * self.slots)))
            size = max(1, min(size, MAX_CHUNK_SIZE))
        if self.remaining is not None:
            self.remaining = max(self.remaining - size, 0)
        return size


def _dask_for(
    func: Callable,
    items: Iterable[Any],
    client: Any,
    setup_fn: SetupFn | None,
    chunk_size: int | None,
    max_in_flight: int | None,
    kwargs: dict,
) -> Iterator[tuple[int, Any]]:
    from distributed import as_completed

    slots = max(sum(client.nthreads().values()), 1)
    in_flight_limit = max_in_flight or max(2 * slots, 4)
    total = len(items) if hasattr(items, "__len__") else None
    sizer = _ChunkSizer(chunk_size, slots, total)
    key = setup_key(setup_fn)
    source = iter(items)
    next_index = 0
    run_id = uuid.uuid4().hex[:8]
    pending = as_completed(with_results=False)
    spans: dict[str, tuple[int, int]] = {}

    def submit_next() -> bool:
        nonlocal next_index
        chunk = list(itertools.islice(source, sizer.next_size()))
        if not chunk:
            return False
        start = next_index
        next_index += len(chunk)
        future = client.submit(
            run_chunk,
            func,
            start,
            chunk,
            key,
            setup_fn,
            kwargs,
            key=f"espnet3-chunk-{run_id}-{start}",
            pure=False,
        )
        spans[future.key] = (start, len(chunk))
        pending.add(future)
        return True

    exhausted = False
    try:
        for _ in range(in_flight_limit):
            if not submit_next():
                exhausted = True
                break
        for future in pending:
            start, count = spans.pop(future.key)
            try:
                results, seconds = future.result()
            except ItemError:
                raise
            except Exception as exc:
                raise ItemError(
                    f"items {start}..{start + count - 1} failed on the cluster: "
                    f"{type(exc).__name__}: {exc}",
                    index=start,
                ) from exc
            sizer.observe(count, seconds)
            if not exhausted and not submit_next():
                exhausted = True
            for offset, result in enumerate(results):
                yield start + offset, result
            del future
    finally:
        leftovers = list(pending.futures) if hasattr(pending, "futures") else []
        with contextlib.suppress(Exception):
            pending.clear()
        if leftovers:
            with contextlib.suppress(Exception):
                client.cancel(leftovers)
