"""A map on a Dask cluster: adaptive chunks, a bounded number in flight, failures per item.

Dask costs about a millisecond per task, so items are sent in chunks. Unless a ``chunk_size``
is given, the chunk size adapts: the first chunks hold one item each, and from their measured
run time later chunks are sized to last about :data:`TARGET_TASK_SECONDS`, capped so that the
last chunks still spread over every worker. Only a bounded number of chunks is in flight, so a
million items never become a million futures.

An item that raises is reported by its chunk as that item (the exception travels back as a
value). A chunk that fails in any other way (its worker died, a result could not be sent back)
is retried item by item, one item at a time alone on the cluster, so the item at fault is
found: it is then *lost*, and the map either raises an :class:`~espnet3.errors.ItemError`
naming it or, with ``on_lost``, yields what ``on_lost`` makes of it and goes on. A chunk that
runs past ``item_timeout`` loses the item its worker reports running too long at once, and the
rest of the chunk runs again. Without a timeout, a chunk that runs far longer than chunks
usually do is named in a warning, once.

Example (on an open client)::

    for index, result in dask_for(len, ["a", "bb"], client, (None, None), None, None, {}):
        print(index, result)
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import math
import time
import traceback
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from espnet3.errors import ConfigError, Espnet3Error, ItemError
from espnet3.parallel.worker_env import SetupFn, bind_env, process_env

log = logging.getLogger(__name__)

#: How long one chunk should take once the per-item cost is known (seconds). Each chunk costs
#: the parent about 5 ms of CPU (client, scheduler), taken from the workers on a small machine.
TARGET_TASK_SECONDS = 0.5
#: Shortest chunk when the last items are spread over the workers (seconds).
MIN_TASK_SECONDS = 0.05
#: Upper bound on items per chunk, whatever the per-item cost.
MAX_CHUNK_SIZE = 10_000
#: A chunk is named in a stall warning after this many seconds and this many times its usual.
STALL_SECONDS, STALL_FACTOR = 60.0, 10.0
#: How often the parent looks at chunks still running (seconds).
WATCH_SECONDS = 1.0

#: What ``on_lost(index, item, reason)`` returns is yielded for an item that was lost.
OnLost = Callable[[int, Any, str], Any]


@dataclass(frozen=True)
class ItemRaised:
    """Item ``index`` of a chunk raised: its exception (when it can travel) and traceback."""

    index: int
    error: BaseException | None
    description: str
    worker_traceback: str


def run_chunk(
    func: Callable,
    start: int,
    items: list[Any],
    setup: tuple[str | None, SetupFn | None],
    kwargs: Mapping[str, Any],
) -> tuple[list[Any], float] | ItemRaised:
    """Run one chunk on a worker: its results and the seconds they took, or the item that raised.

    ``setup`` is the ``(key, setup_fn)`` pair naming this worker's environment.
    """
    from distributed import get_worker

    from espnet3.parallel.mapping import add_note

    call = bind_env(func, process_env(*setup), kwargs)
    key = get_worker().get_current_task()
    t0 = time.perf_counter()
    results = []
    try:
        for offset, item in enumerate(items):
            RUNNING_ITEMS[key] = (start + offset, time.monotonic())  # for _overdue to see
            try:
                results.append(call(item))
            except Exception as exc:
                add_note(exc, f"espnet3: raised by item {start + offset} of the map")
                description = f"{type(exc).__name__}: {exc}"
                tb = traceback.format_exc()
                return ItemRaised(start + offset, _sendable(exc), description, tb)
    finally:
        RUNNING_ITEMS.pop(key, None)
    return results, time.perf_counter() - t0


#: In a worker process: the item each running chunk (by task key) is at, and since when.
RUNNING_ITEMS: dict[str, tuple[int, float]] = {}


def running_items() -> dict[str, tuple[int, float]]:
    """On a worker: ``{task key: (index, seconds it has run)}`` of the items running now."""
    now = time.monotonic()
    return {key: (index, now - since) for key, (index, since) in RUNNING_ITEMS.items()}


def _sendable(exc: BaseException) -> BaseException | None:
    """``exc`` if it survives a trip to the client, else without its chained exceptions.

    One link of the ``__cause__``/``__context__`` chain that cannot be unpickled there (a
    library's exception with required arguments) would make the whole exception unreadable.
    ``None`` when even ``exc`` alone cannot travel (its description and traceback still do).
    """
    from distributed.protocol import pickle

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


class _Chunk(NamedTuple):
    start: int
    items: list[Any]
    attempt: int = 0  # > 0: a lone item retried after its chunk failed


#: Attempts of a lone item before it is lost: a worker can also die of something else (the
#: OOM killer acting on another process, a node going away), so an item gets a second chance.
ISOLATED_ATTEMPTS = 2


class _Running(NamedTuple):
    chunk: _Chunk
    since: float
    warned: bool


def dask_for(
    func: Callable,
    items: Iterable[Any],
    client: Any,
    setup: tuple[str | None, SetupFn | None],
    chunk_size: int | None,
    max_in_flight: int | None,
    kwargs: Mapping[str, Any],
    *,
    item_timeout: float | None = None,
    on_lost: OnLost | None = None,
    first_index: int = 0,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, func(item))`` as chunks complete on ``client`` (see the module docstring).

    An item that raised becomes an :class:`ItemError` whose ``__cause__`` is its exception.
    Items are numbered from ``first_index`` (the rest of a map begun in this process).
    """
    from distributed import wait

    slots = max(sum(client.nthreads().values()), 1)
    sizer = ChunkSizer(chunk_size, slots, len(items) if hasattr(items, "__len__") else None)
    source, next_index = iter(items), first_index
    run_id = uuid.uuid4().hex[:8]
    running: dict[Any, _Running] = {}
    retries: deque[_Chunk] = deque()  # the items of failed chunks, one by one

    def submit(chunk: _Chunk) -> None:
        if chunk.start == first_index and not chunk.attempt:
            from espnet3.parallel.recipe_imports import share_recipe_packages

            share_recipe_packages(client)
            check_loadable(client, (func, setup, kwargs))
        try:
            key = f"espnet3-chunk-{run_id}-{chunk.start}-{len(chunk.items)}-{chunk.attempt}"
            args = (run_chunk, func, chunk.start, chunk.items, setup, kwargs)
            future = client.submit(*args, key=key, pure=False)
        except Exception as exc:  # the task is serialised here: pickling errors of all kinds
            cause = exc.__cause__ or exc
            raise ConfigError(
                f"items {chunk.start}..{chunk.start + len(chunk.items) - 1} cannot be sent to "
                f"the workers: {type(cause).__name__}: {cause}: the function, its keyword "
                "arguments and the items must pickle; build objects that do not (models, open "
                "files, locks) in setup_fn, once per worker"
            ) from exc
        running[future] = _Running(chunk, time.monotonic(), False)

    def next_chunk() -> _Chunk | None:
        nonlocal next_index
        if retries:
            return retries.popleft()
        batch = list(itertools.islice(source, sizer.next_size()))
        if not batch:
            return None
        chunk, next_index = _Chunk(next_index, batch), next_index + len(batch)
        return chunk

    limit = max_in_flight or max(2 * slots, 4)
    exhausted = False
    try:
        while True:
            # Items retried alone run one at a time, once the chunks out before have settled:
            # a worker that dies then takes no innocent item down with it, even while the
            # cluster is one worker short (a dead worker's replacement is still starting).
            isolating = retries or any(e.chunk.attempt for e in running.values())
            while not exhausted and len(running) < (1 if isolating else limit):
                chunk = next_chunk()
                if chunk is None:
                    exhausted = True
                    break
                submit(chunk)
            if not running:
                if retries:
                    exhausted = False
                    continue
                return
            try:
                done, _ = wait(list(running), timeout=WATCH_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished in this look: see what overran
                done = set()
            for future in done:
                entry = running.pop(future)
                yield from _settle(future, entry.chunk, sizer, retries, on_lost)
                exhausted = exhausted and not retries
            for future, culprit in _overdue(client, running, sizer, item_timeout):
                entry = running.pop(future)
                stop_task(client, future)
                reason = f"it ran longer than item_timeout={item_timeout:g} s per item"
                yield from _timed_out(entry.chunk, culprit, reason, retries, on_lost)
                exhausted = exhausted and not retries
    except (KeyboardInterrupt, SystemExit):
        running.clear()  # the cluster is being shut down; cancelling would only log warnings
        raise
    finally:
        # An error or an abandoned generator: queued chunks must not run.
        if running:
            with contextlib.suppress(Exception):
                client.cancel(list(running))


def _settle(
    future: Any, chunk: _Chunk, sizer: ChunkSizer, retries: deque, on_lost: OnLost | None
) -> Iterator[tuple[int, Any]]:
    try:
        outcome = future.result()
    except Espnet3Error:  # the worker already said what failed (its setup, its arguments)
        raise
    except Exception as exc:  # the worker died, or a result could not be sent back
        yield from _lost(chunk, f"{type(exc).__name__}: {exc}", retries, on_lost)
        return
    if isinstance(outcome, ItemRaised):
        raise ItemError(
            f"item {outcome.index} failed: {outcome.description}",
            index=outcome.index,
            worker_traceback=outcome.worker_traceback,
        ) from outcome.error
    results, seconds = outcome
    sizer.observe(len(results), seconds)
    yield from enumerate(results, chunk.start)


def _lost(
    chunk: _Chunk, reason: str, retries: deque, on_lost: OnLost | None
) -> Iterator[tuple[int, Any]]:
    """Retry a failed chunk's items one by one; a lone item that failed is lost."""
    if len(chunk.items) > 1 or not chunk.attempt:
        first, last = chunk.start, chunk.start + len(chunk.items) - 1
        log.warning("items %d..%d failed (%s): retrying them one by one", first, last, reason)
        retries.extend(_Chunk(chunk.start + i, [x], 1) for i, x in enumerate(chunk.items))
        return
    if chunk.attempt < ISOLATED_ATTEMPTS:
        retries.append(chunk._replace(attempt=chunk.attempt + 1))
        return
    if on_lost is None:
        raise ItemError(
            f"item {chunk.start} was lost: {reason} (it failed alone too, so it is the item's "
            "doing: a crash in a C extension, memory, a result that cannot be pickled)",
            index=chunk.start,
        )
    yield chunk.start, on_lost(chunk.start, chunk.items[0], reason)


def _timed_out(
    chunk: _Chunk, culprit: int | None, reason: str, retries: deque, on_lost: OnLost | None
) -> Iterator[tuple[int, Any]]:
    """A chunk stopped for overrunning: the item seen running too long is lost at once, the
    rest of the chunk runs again; when no item was seen, the chunk is retried item by item."""
    if culprit is None:
        yield from _lost(chunk, reason, retries, on_lost)
        return
    offset = culprit - chunk.start
    before, after = chunk.items[:offset], chunk.items[offset + 1 :]
    retries.extend(
        _Chunk(start, part, chunk.attempt)
        for start, part in ((chunk.start, before), (culprit + 1, after))
        if part
    )
    lone = _Chunk(culprit, [chunk.items[offset]], ISOLATED_ATTEMPTS)
    yield from _lost(lone, reason, retries, on_lost)


def _overdue(
    client: Any, running: dict[Any, _Running], sizer: ChunkSizer, item_timeout: float | None
) -> list[tuple[Any, int | None]]:
    """Chunks to stop, each with the item seen running past ``item_timeout`` (or None); warns
    once, naming the item, about chunks far slower than usual.

    Workers are asked which item each chunk is at only when a chunk has been out longer than
    ``item_timeout`` or is about to be warned about.
    """
    now, overdue, suspects, stalled = time.monotonic(), [], [], []
    for future, entry in list(running.items()):
        elapsed, n = now - entry.since, len(entry.chunk.items)
        # The clock starts at submission: allow for one usual chunk queued ahead on the thread.
        ahead = (sizer.per_item or 0.0) * n + TARGET_TASK_SECONDS
        if item_timeout is not None and elapsed > item_timeout * n + ahead:
            overdue.append((future, None))
        elif item_timeout is not None and elapsed > item_timeout:
            suspects.append(future)
        elif not entry.warned and sizer.per_item is not None:
            usual = max(sizer.per_item * n, TARGET_TASK_SECONDS)
            if elapsed > max(STALL_SECONDS, STALL_FACTOR * usual):
                stalled.append((future, entry, elapsed, usual))
    at: dict[str, tuple[int, float]] = {}
    if suspects or stalled or overdue:
        with contextlib.suppress(Exception):  # a worker that does not answer names nothing
            for items in client.run(running_items).values():
                at.update(items)
    overdue = [(future, at[future.key][0] if future.key in at else None) for future, _ in overdue]
    overdue += [
        (future, at[future.key][0])
        for future in suspects
        if future.key in at and at[future.key][1] > item_timeout
    ]
    if stalled:
        for future, entry, elapsed, usual in stalled:
            first, last = entry.chunk.start, entry.chunk.start + len(entry.chunk.items) - 1
            what = f"item {at[future.key][0]}" if future.key in at else f"items {first}..{last}"
            log.warning(
                "%s has run for %.0f s, %.0fx the usual %.2f s: it may hang; set "
                "parallel.item_timeout (or item_timeout=) to give up on such items",
                *(what, elapsed, elapsed / usual, usual),
            )
            running[future] = entry._replace(warned=True)
    return overdue


def stop_task(client: Any, future: Any) -> None:
    """Cancel a chunk that overran and restart its worker (a running thread cannot be stopped)."""
    holders = [w for w, keys in client.processing().items() if future.key in keys]
    with contextlib.suppress(Exception):
        client.cancel([future])
    if holders:
        with contextlib.suppress(Exception):
            client.restart_workers(holders, timeout=60)
