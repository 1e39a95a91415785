"""Map a function over items: in this process, or on a Dask cluster in adaptive chunks.

Dask costs about a millisecond per task, so items are sent in chunks. Unless a ``chunk_size``
is given, the chunk size adapts: the first chunks hold one item each, and from their measured
run time later chunks are sized to last about :data:`TARGET_TASK_SECONDS`, capped so that the
last chunks still spread over every worker. Only a bounded number of chunks is in flight, so a
million items never become a million futures.

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

import contextlib
import hashlib
import itertools
import math
import time
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from espnet3.errors import ConfigError, ItemError
from espnet3.parallel.worker_env import SetupFn, bind_env, build_env, process_env, setup_key
from espnet3.utils.config import check_positive

#: How long one chunk should take once the per-item cost is known (seconds). Each chunk costs
#: the parent about 5 ms of CPU (client, scheduler), taken from the workers on a small machine.
TARGET_TASK_SECONDS = 0.5
#: Shortest chunk when the last items are spread over the workers (seconds).
MIN_TASK_SECONDS = 0.05
#: Upper bound on items per chunk, whatever the per-item cost.
MAX_CHUNK_SIZE = 10_000


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
    results = dict(_task_errors(map_indexed(func, items, client, setup_fn, **kwargs)))
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
    for _, result in _task_errors(map_indexed(func, items, client, setup_fn, **kwargs)):
        yield result


def map_indexed(
    func: Callable,
    items: Iterable[Any],
    client: Any = None,
    setup_fn: SetupFn | None = None,
    *,
    chunk_size: int | None = None,
    max_in_flight: int | None = None,
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

    Example:
        >>> list(map_indexed(str.upper, ["a", "b"]))
        [(0, 'A'), (1, 'B')]
    """
    check_positive("chunk_size", chunk_size)
    check_positive("max_in_flight", max_in_flight)
    from espnet3.parallel.client import get_client, get_parallel_config, open_client

    current = open_client(client)
    if client is None and current is None and not get_parallel_config().is_sequential:
        # Nothing open but a cluster configured: start one for this call only.
        with get_client(None, setup_fn):
            yield from map_indexed(
                func, items, chunk_size=chunk_size, max_in_flight=max_in_flight, **kwargs
            )
        return
    inherited = current is not None and setup_fn is None
    if current is not None:
        client = current.client
    if client is None:
        env = current.env if inherited else build_env(setup_fn)
        yield from enumerate(_apply(bind_env(func, env, kwargs), 0, items))
        return
    if inherited:
        setup_fn, key = current.setup_fn, current.setup_key
    else:
        key = setup_key(setup_fn)
    yield from _dask_for(func, items, client, (key, setup_fn), chunk_size, max_in_flight, kwargs)


def _task_errors(pairs: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """``pairs``, with a failed item's own exception raised in place of its ItemError."""
    try:
        yield from pairs
        return
    except ItemError as err:
        cause = err.__cause__
        if cause is None:
            raise
    raise cause


def add_note(exc: BaseException, note: str) -> None:
    """Attach ``note`` to ``exc`` (:pep:`678`; tracebacks show it on Python 3.11 and later)."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10: kept where 3.11 keeps it, for code that reads __notes__
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]


def _apply(call: Callable[[Any], Any], start: int, items: Iterable[Any]) -> Iterator[Any]:
    for offset, item in enumerate(items):
        try:
            result = call(item)
        except Exception as exc:
            add_note(exc, f"espnet3: raised by item {start + offset} of the map")
            raise ItemError(
                f"item {start + offset} failed: {type(exc).__name__}: {exc}",
                index=start + offset,
                worker_traceback=traceback.format_exc(),
            ) from exc
        yield result


def run_chunk(
    func: Callable,
    start: int,
    items: list[Any],
    setup: tuple[str | None, SetupFn | None],
    kwargs: Mapping[str, Any],
) -> tuple[list[Any], float]:
    """Run one chunk on a worker; return its results and the seconds they took.

    ``setup`` is the ``(key, setup_fn)`` pair naming this worker's environment.
    """
    call = bind_env(func, process_env(*setup), kwargs)
    t0 = time.perf_counter()
    try:
        return list(_apply(call, start, items)), time.perf_counter() - t0
    except ItemError as err:  # chaining does not travel: send the item's own exception
        failure = _sendable(err.__cause__)
        if failure is None:
            raise
    # Raised outside the handler, so the exception keeps no reference back to the ItemError
    # (a cycle that pickling it to the client cannot follow).
    raise failure


def _sendable(exc: BaseException | None) -> BaseException | None:
    """``exc`` if it survives a trip to the client, else without its chained exceptions.

    The client re-raises a task's exception with its ``__cause__``/``__context__`` chain; one
    link that cannot be unpickled there (a library's exception with required arguments) would
    replace the whole error by a bare ``Exception(repr)``. ``None`` when even ``exc`` alone
    cannot travel (the ItemError, which names the item, is sent instead).
    """
    from distributed.protocol import pickle

    if exc is None:
        return None
    for attempt in range(2):
        if attempt:
            exc.__cause__ = exc.__context__ = None
        try:
            pickle.loads(pickle.dumps(exc))
            return exc
        except Exception:
            continue
    return None


class ChunkSizer:
    """Chooses the next chunk size from the per-item cost measured so far.

    Example:
        >>> sizer = ChunkSizer(None, slots=2, total=1000)
        >>> sizer.next_size()                  # nothing measured yet
        1
        >>> sizer.observe(1, 0.01)             # 10 ms per item: 50 items last 0.5 s
        >>> sizer.next_size()
        50
    """

    def __init__(self, fixed: int | None, slots: int, total: int | None):
        self.fixed = fixed
        self.slots = slots
        self.remaining = total
        self.per_item: float | None = None

    def observe(self, n_items: int, seconds: float) -> None:
        """Record that a chunk of ``n_items`` took ``seconds`` on a worker."""
        cost = seconds / max(n_items, 1)
        self.per_item = cost if self.per_item is None else 0.5 * (self.per_item + cost)

    def next_size(self) -> int:
        """Items for the next chunk (and count them as sent)."""
        if self.fixed is not None:
            size = self.fixed
        elif self.per_item is None:
            size = 1
        else:
            per_item = max(self.per_item, 1e-7)
            size = int(TARGET_TASK_SECONDS / per_item)
            if self.remaining is not None:  # keep every worker busy until the end
                spread = math.ceil(self.remaining / (2 * self.slots))
                size = min(size, max(spread, int(MIN_TASK_SECONDS / per_item)), self.remaining)
            size = max(1, min(size, MAX_CHUNK_SIZE))
        if self.remaining is not None:
            self.remaining = max(self.remaining - size, 0)
        return size


_LOADABLE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # client -> checked digests


def check_loadable(client: Any, payload: Any) -> None:
    """Fail at once when a worker cannot unpickle ``payload`` (the function and its arguments).

    A worker that cannot unpickle a task, typically a function from a module only this
    process can import, does not fail that task: Dask's message handler on the worker dies and
    the map waits forever. Each distinct payload is tried once per client on the workers
    connected now.

    Example (a module put on ``sys.path`` after the workers started)::

        check_loadable(client, (onlyhere.f, {}))
        # ConfigError: ... cannot be loaded on worker tcp://127.0.0.1:40125 ...
    """
    from distributed.protocol import pickle

    try:
        blob = pickle.dumps(payload)
    except Exception:
        return  # unpicklable here: submit names the cause
    digest = hashlib.sha1(blob).digest()
    checked = _LOADABLE.setdefault(client, set())
    if digest in checked:
        return
    answers = client.run(_loads_error, blob)
    problems = {worker: error for worker, error in answers.items() if error}
    if problems:
        worker, error = min(problems.items())
        raise ConfigError(
            f"the function or its arguments cannot be loaded on worker {worker} "
            f"({len(problems)} worker(s) fail): {error}: make that module importable where the "
            "workers run (installed, or on their PYTHONPATH), or move the code into such a module"
        )
    if answers:  # workers that join later are tried by the next new payload
        checked.add(digest)


def _loads_error(blob: bytes) -> str | None:
    from distributed.protocol import pickle

    try:
        pickle.loads(blob)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _dask_for(
    func: Callable,
    items: Iterable[Any],
    client: Any,
    setup: tuple[str | None, SetupFn | None],
    chunk_size: int | None,
    max_in_flight: int | None,
    kwargs: Mapping[str, Any],
) -> Iterator[tuple[int, Any]]:
    from distributed import as_completed

    slots = max(sum(client.nthreads().values()), 1)
    total = len(items) if hasattr(items, "__len__") else None
    sizer = ChunkSizer(chunk_size, slots, total)
    source = iter(items)
    next_index = 0
    run_id = uuid.uuid4().hex[:8]
    pending = as_completed(loop=client.loop)  # this client's loop, not the default one's
    spans: dict[str, tuple[int, int]] = {}

    def submit_next() -> bool:
        nonlocal next_index
        chunk = list(itertools.islice(source, sizer.next_size()))
        if not chunk:
            return False
        start = next_index
        next_index += len(chunk)
        if start == 0:
            from espnet3.parallel.recipe_imports import share_recipe_packages

            share_recipe_packages(client)
            check_loadable(client, (func, setup, kwargs))
        try:
            future = client.submit(
                run_chunk,
                func,
                start,
                chunk,
                setup,
                kwargs,
                key=f"espnet3-chunk-{run_id}-{start}",
                pure=False,
            )
        except Exception as exc:  # the task is serialised here: pickling errors of all kinds
            cause = exc.__cause__ or exc
            raise ConfigError(
                f"items {start}..{next_index - 1} cannot be sent to the workers: "
                f"{type(cause).__name__}: {cause}: the function, its keyword arguments and the "
                "items must pickle; build objects that do not (models, open files, locks) in "
                "setup_fn, once per worker"
            ) from exc
        spans[future.key] = (start, len(chunk))
        pending.add(future)
        return True

    try:
        exhausted = not all(submit_next() for _ in range(max_in_flight or max(2 * slots, 4)))
        for future in pending:
            start, count = spans.pop(future.key)
            try:
                results, seconds = future.result()
            except ItemError:  # the worker already said what failed (its setup)
                raise
            except Exception as exc:
                raise ItemError(
                    f"items {start}..{start + count - 1} failed on the cluster: "
                    f"{type(exc).__name__}: {exc}",
                    index=start,
                ) from exc
            sizer.observe(count, seconds)
            exhausted = exhausted or not submit_next()
            yield from enumerate(results, start)
    finally:
        # An error or an abandoned generator: queued chunks must not run.
        leftovers = list(pending.futures)
        pending.clear()
        if leftovers:
            with contextlib.suppress(Exception):
                client.cancel(leftovers)
