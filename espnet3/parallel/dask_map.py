"""A map on a Dask cluster: adaptive chunks, a bounded number in flight, failures per item.

Dask costs the parent milliseconds per task, so items are sent in chunks. Unless a
``chunk_size`` is given, the chunk size adapts. The first chunks are sent before any per-item
cost is known, one per worker thread with an equal share of the items (up to
:data:`PROBE_ITEMS` items and about :data:`PROBE_BYTES`); their workers stop starting items
once :data:`TARGET_TASK_SECONDS` have passed, and the items they did not reach are sent again.
Cheap items are thus all done by the first chunks, without a round trip spent measuring, and
costly ones cost no more than a chunk's usual time. From the measured run time later chunks
are sized to last about
:data:`TARGET_TASK_SECONDS`, capped so that the last chunks still spread over every worker.
Only a bounded number of chunks is in flight, so a million items never become a million
futures.

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
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from espnet3.errors import ConfigError, Espnet3Error, ItemError
from espnet3.parallel.chunk_task import ItemRaised, Items, run_chunk, running_items
from espnet3.parallel.worker_env import SetupFn

log = logging.getLogger(__name__)

#: How long one chunk should take once the per-item cost is known (seconds). Each chunk costs
#: the parent about 5 ms of CPU (client, scheduler), taken from the workers on a small machine.
TARGET_TASK_SECONDS = 0.5
#: Shortest chunk when the last items are spread over the workers (seconds).
MIN_TASK_SECONDS = 0.05
#: Upper bound on items per chunk, whatever the per-item cost.
MAX_CHUNK_SIZE = 10_000
#: Upper bounds on the items of a chunk sent before the per-item cost is known: in number,
#: and in bytes as the first item pickles (items its worker does not reach are sent twice).
PROBE_ITEMS, PROBE_BYTES = MAX_CHUNK_SIZE, 1 << 20
#: Longest wait of a message from the client to the scheduler while a map runs (seconds).
SEND_INTERVAL = 0.002
#: A chunk is named in a stall warning after this many seconds and this many times its usual.
STALL_SECONDS, STALL_FACTOR = 60.0, 10.0
#: How often the parent looks at chunks still running (seconds).
WATCH_SECONDS = 1.0

#: What ``on_lost(index, item, reason)`` returns is yielded for an item that was lost.
OnLost = Callable[[int, Any, str], Any]

_END = object()  # marks an iterator's end


class ChunkSizer:
    """Chooses the next chunk size from the per-item cost measured so far.

    Before a measurement, a chunk holds ``probe_items`` items, or fewer so that one chunk per
    slot shares the whole input: cheap items are then done in one chunk per worker thread, as
    a process pool's ``map`` does them.

    Example:
        >>> sizer = ChunkSizer(None, slots=2, total=1000)
        >>> sizer.next_size()                  # nothing measured yet
        1
        >>> sizer.observe(1, 0.01)             # 10 ms per item: 50 items last 0.5 s
        >>> sizer.next_size()
        50
        >>> ChunkSizer(None, slots=2, total=1000, probe_items=10_000).next_size()
        500
    """

    def __init__(self, fixed: int | None, slots: int, total: int | None, probe_items: int = 1):
        self.fixed = fixed
        self.slots = slots
        self.remaining = total
        self.per_item: float | None = None
        share = probe_items if total is None else math.ceil(total / slots)
        self.probe_items = max(1, min(probe_items, share))

    @property
    def measured(self) -> bool:
        """Whether chunk sizes follow a measured per-item cost (or are fixed)."""
        return self.fixed is not None or self.per_item is not None

    def observe(self, n_items: int, seconds: float) -> None:
        """Record that a chunk of ``n_items`` took ``seconds`` on a worker."""
        cost = seconds / max(n_items, 1)
        self.per_item = cost if self.per_item is None else 0.5 * (self.per_item + cost)

    def next_size(self) -> int:
        """Items for the next chunk (and count them as sent)."""
        if self.fixed is not None:
            size = self.fixed
        elif self.per_item is None:
            size = self.probe_items
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

    def give_back(self, n_items: int) -> None:
        """Count ``n_items`` that were sent but not run as still to send."""
        if self.remaining is not None:
            self.remaining += n_items


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
    budget: float | None = None  # seconds after which its worker starts no more items

    @property
    def span(self) -> str:
        return f"items {self.start}..{self.start + len(self.items) - 1}"

    def longest(self, per_item: float) -> float:
        """The longest it should run when each item takes up to ``per_item`` seconds."""
        whole = per_item * len(self.items)
        return whole if self.budget is None else min(whole, self.budget + per_item)


#: Attempts of a lone item before it is lost: a worker can also die of something else (the
#: OOM killer acting on another process, a node going away), so an item gets a second chance.
ISOLATED_ATTEMPTS = 2


class _Running(NamedTuple):
    chunk: _Chunk
    since: float
    warned: bool


class _Failed(NamedTuple):
    """A chunk's task that failed as a task (its worker died, its result could not be sent)."""

    error: Exception


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
    yield from ChunkedMap(
        func,
        items,
        client,
        setup,
        kwargs,
        chunk_size=chunk_size,
        max_in_flight=max_in_flight,
        item_timeout=item_timeout,
        on_lost=on_lost,
        first_index=first_index,
    ).run()


class ChunkedMap:
    """One map on a cluster: the chunks out, the items still to send and those to retry alone.

    Example (on an open client)::

        dict(ChunkedMap(len, ["a", "bb"], client, (None, None), {}, chunk_size=1).run())
        # {0: 1, 1: 2}
    """

    def __init__(
        self,
        func: Callable,
        items: Iterable[Any],
        client: Any,
        setup: tuple[str | None, SetupFn | None],
        kwargs: Mapping[str, Any],
        *,
        chunk_size: int | None = None,
        max_in_flight: int | None = None,
        item_timeout: float | None = None,
        on_lost: OnLost | None = None,
        first_index: int = 0,
    ):
        self.func, self.client, self.setup, self.kwargs = func, client, setup, kwargs
        self.item_timeout, self.on_lost = item_timeout, on_lost
        slots = max(sum(client.nthreads().values()), 1)
        send_promptly(client)
        total = len(items) if hasattr(items, "__len__") else None
        self.source: Iterator[Any] | None = iter(items)  # None once it is used up
        probe = self._probe_items() if chunk_size is None else 1
        self.sizer = ChunkSizer(chunk_size, slots, total, probe)
        self.max_in_flight = max_in_flight or max(2 * slots, 4)
        self.first_index = self.next_index = first_index
        self.run_id = uuid.uuid4().hex[:8]  # keeps its task keys apart from other maps'
        self.running: dict[Any, _Running] = {}  # future -> its chunk
        self.retries: deque[_Chunk] = deque()  # the items of failed chunks, one by one
        self.pending: deque[_Chunk] = deque()  # items sent once but not reached, to send again

    def _probe_items(self) -> int:
        """Items a chunk may hold before any is measured: :data:`PROBE_ITEMS`, fewer when the
        first item pickles to more than a share of :data:`PROBE_BYTES`."""
        from distributed.protocol import pickle

        first = next(self.source, _END)
        if first is _END:
            return 1
        self.source = itertools.chain([first], self.source)
        try:
            size = len(pickle.dumps(first))
        except Exception:  # submit names the cause
            return 1
        return max(1, min(PROBE_ITEMS, PROBE_BYTES // max(size, 1)))

    def run(self) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, result)`` as chunks complete; what is still out is cancelled when
        the map stops early (an error, an abandoned generator)."""
        try:
            while self._submit_more():
                done = list(self._wait())
                for future, outcome in zip(done, self._fetch(done), strict=True):
                    yield from self._settle(self.running.pop(future).chunk, outcome)
                for future, culprit in self._overdue():
                    yield from self._stop(future, culprit)
        except (KeyboardInterrupt, SystemExit):
            self.running.clear()  # the cluster is shutting down: cancelling would only log warnings
            raise
        finally:
            if self.running:
                with contextlib.suppress(Exception):
                    self.client.cancel(list(self.running))

    def _submit_more(self) -> bool:
        """Submit chunks up to the bound on those in flight; whether any chunk is out."""
        # Items retried alone run one at a time, once the chunks out before have settled:
        # a worker that dies then takes no innocent item down with it, even while the
        # cluster is one worker short (a dead worker's replacement is still starting).
        isolating = self.retries or any(e.chunk.attempt for e in self.running.values())
        bound = 1 if isolating else self.max_in_flight
        chunks: list[_Chunk] = []
        while len(self.running) + len(chunks) < bound and (chunk := self._next_chunk()):
            chunks.append(chunk)
        if chunks:
            self._submit(chunks)
        return bool(self.running)

    def _next_chunk(self) -> _Chunk | None:
        """An item to retry alone, else items sent before that their chunk did not reach,
        else the next items of the source; None when all are sent."""
        if self.retries:
            return self.retries.popleft()
        budget = None if self.sizer.measured else TARGET_TASK_SECONDS
        if self.pending:
            head, size = self.pending.popleft(), self.sizer.next_size()
            if size < len(head.items):
                self.pending.appendleft(_Chunk(head.start + size, head.items[size:]))
            self.sizer.give_back(max(size - len(head.items), 0))
            return _Chunk(head.start, head.items[:size], budget=budget)
        if self.source is None:
            return None
        batch = list(itertools.islice(self.source, self.sizer.next_size()))
        if not batch:
            self.source = None
            return None
        chunk = _Chunk(self.next_index, batch, budget=budget)
        self.next_index += len(batch)
        return chunk

    def _submit(self, chunks: list[_Chunk]) -> None:
        """Send ``chunks`` in one message: the client batches what it sends to the scheduler,
        and chunks sent one by one would wait for its next batch, their workers with them."""
        if any(c.start == self.first_index and not c.attempt for c in chunks):
            from espnet3.parallel.recipe_imports import share_recipe_packages

            share_recipe_packages(self.client)
            check_loadable(self.client, (self.func, self.setup, self.kwargs))
        n = len(chunks)
        try:  # the tasks are serialised here: pickling errors of all kinds
            futures = self.client.map(
                run_chunk,
                [self.func] * n,
                [c.start for c in chunks],
                [Items(c.items) for c in chunks],
                [self.setup] * n,
                [self.kwargs] * n,
                [c.budget for c in chunks],
                key=[
                    f"espnet3-chunk-{self.run_id}-{c.start}-{len(c.items)}-{c.attempt}"
                    for c in chunks
                ],
                pure=False,
            )
        except Exception as exc:
            if n > 1:  # one by one, to name the chunk at fault
                for chunk in chunks:
                    self._submit([chunk])
                return
            cause = exc.__cause__ or exc
            raise ConfigError(
                f"{chunks[0].span} cannot be sent to the workers: {type(cause).__name__}: "
                f"{cause}: the function, its keyword arguments and the items must pickle; build "
                "objects that do not (models, open files, locks) in setup_fn, once per worker"
            ) from exc
        now = time.monotonic()
        for future, chunk in zip(futures, chunks, strict=True):
            self.running[future] = _Running(chunk, now, False)

    def _wait(self) -> Iterable[Any]:
        """The futures that complete within :data:`WATCH_SECONDS` (perhaps none)."""
        from distributed import wait

        try:
            return wait(list(self.running), WATCH_SECONDS, return_when="FIRST_COMPLETED").done
        except TimeoutError:  # nothing finished in this look: see what overran
            return ()

    def _fetch(self, futures: list[Any]) -> list[Any]:
        """What each completed future holds, in one request when all succeeded; a future that
        failed gives a :class:`_Failed`."""
        if all(future.status == "finished" for future in futures):
            with contextlib.suppress(Exception):  # then future by future, to tell which failed
                return self.client.gather(futures)
        outcomes: list[Any] = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as exc:
                outcomes.append(_Failed(exc))
        return outcomes

    def _settle(self, chunk: _Chunk, outcome: Any) -> Iterable[tuple[int, Any]]:
        """The pairs a completed chunk yields; raises the :class:`ItemError` of an item that
        raised. Items that a chunk with a budget did not reach are sent again."""
        if isinstance(outcome, _Failed):
            if isinstance(outcome.error, Espnet3Error):  # the worker said what failed (setup)
                raise outcome.error
            # the worker died, or a result could not be sent back
            return self._lost(chunk, f"{type(outcome.error).__name__}: {outcome.error}")
        if isinstance(outcome, ItemRaised):
            raise ItemError(
                f"item {outcome.index} failed: {outcome.description}",
                index=outcome.index,
                worker_traceback=outcome.worker_traceback,
            ) from outcome.error
        results, seconds = outcome
        self.sizer.observe(len(results), seconds)
        if len(results) < len(chunk.items):
            self.pending.append(_Chunk(chunk.start + len(results), chunk.items[len(results) :]))
            self.sizer.give_back(len(chunk.items) - len(results))
        return enumerate(results, chunk.start)

    def _lost(self, chunk: _Chunk, reason: str) -> list[tuple[int, Any]]:
        """Retry a failed chunk's items one by one; a lone item that failed is lost: the pair
        ``on_lost`` makes of it, else its :class:`ItemError` raised."""
        if len(chunk.items) > 1 or not chunk.attempt:
            log.warning("%s failed (%s): retrying them one by one", chunk.span, reason)
            self.retries.extend(_Chunk(chunk.start + i, [x], 1) for i, x in enumerate(chunk.items))
            return []
        if chunk.attempt < ISOLATED_ATTEMPTS:
            self.retries.append(chunk._replace(attempt=chunk.attempt + 1))
            return []
        if self.on_lost is None:
            raise ItemError(
                f"item {chunk.start} was lost: {reason} (it failed alone too, so it is the "
                "item's doing: a crash in a C extension, memory, a result that cannot be pickled)",
                index=chunk.start,
            )
        return [(chunk.start, self.on_lost(chunk.start, chunk.items[0], reason))]

    def _stop(self, future: Any, culprit: int | None) -> list[tuple[int, Any]]:
        """Stop a chunk that overran: the item seen running too long is lost at once and the
        rest of the chunk runs again; when no item was seen, the chunk is retried item by item."""
        chunk = self.running.pop(future).chunk
        stop_task(self.client, future)
        reason = f"it ran longer than item_timeout={self.item_timeout:g} s per item"
        if culprit is None:
            return self._lost(chunk, reason)
        offset = culprit - chunk.start
        before, after = chunk.items[:offset], chunk.items[offset + 1 :]
        self.retries.extend(
            chunk._replace(start=start, items=part)
            for start, part in ((chunk.start, before), (culprit + 1, after))
            if part
        )
        return self._lost(_Chunk(culprit, [chunk.items[offset]], ISOLATED_ATTEMPTS), reason)

    def _overdue(self) -> list[tuple[Any, int | None]]:
        """Chunks to stop, each with the item seen running past ``item_timeout`` (or None);
        warns once, naming the item, about chunks far slower than usual.

        Workers are asked which item each chunk is at only when a chunk has been out longer
        than ``item_timeout`` or is about to be warned about.
        """
        timeout, per_item = self.item_timeout, self.sizer.per_item
        now, late, suspects, stalled = time.monotonic(), [], [], []
        for future, entry in self.running.items():
            elapsed, chunk = now - entry.since, entry.chunk
            if timeout is not None and elapsed > timeout:
                # The clock starts at submission: allow for one usual chunk queued ahead.
                ahead = chunk.longest(per_item or 0.0) + TARGET_TASK_SECONDS
                (late if elapsed > chunk.longest(timeout) + ahead else suspects).append(future)
            elif not entry.warned and per_item is not None:
                usual = max(chunk.longest(per_item), TARGET_TASK_SECONDS)
                if elapsed > max(STALL_SECONDS, STALL_FACTOR * usual):
                    stalled.append((future, elapsed, usual))
        at = running_items_on(self.client) if late or suspects or stalled else {}
        for future, elapsed, usual in stalled:
            entry = self.running[future]
            what = f"item {at[future.key][0]}" if future.key in at else entry.chunk.span
            log.warning(
                "%s has run for %.0f s, %.0fx the usual %.2f s: it may hang; set "
                "parallel.item_timeout (or item_timeout=) to give up on such items",
                *(what, elapsed, elapsed / usual, usual),
            )
            self.running[future] = entry._replace(warned=True)
        return [(f, at[f.key][0] if f.key in at else None) for f in late] + [
            (f, at[f.key][0]) for f in suspects if f.key in at and at[f.key][1] > timeout
        ]


def send_promptly(client: Any) -> None:
    """Let ``client`` send its messages to the scheduler every :data:`SEND_INTERVAL`.

    Dask's client sends at most once every 10 ms, so chunks submitted just after any other
    message (the release of the previous map's last results) wait up to 10 ms, and their
    workers with them. A map sends a few messages per chunk, so the shorter interval (the one
    the scheduler uses towards clients) costs nothing measurable.
    """
    comm = getattr(client, "scheduler_comm", None)
    if getattr(comm, "interval", 0) > SEND_INTERVAL:
        comm.interval = SEND_INTERVAL


def running_items_on(client: Any) -> dict[str, tuple[int, float]]:
    """:func:`running_items` of every worker, together (empty when a worker does not answer).

    Example (on an open client)::

        running_items_on(client)   # {'espnet3-chunk-3f2a9c01-0-50-0': (7, 0.4)}
    """
    at: dict[str, tuple[int, float]] = {}
    with contextlib.suppress(Exception):
        for items in client.run(running_items).values():
            at.update(items)
    return at


def stop_task(client: Any, future: Any) -> None:
    """Cancel a chunk that overran and restart its worker (a running thread cannot be stopped)."""
    holders = [w for w, keys in client.processing().items() if future.key in keys]
    with contextlib.suppress(Exception):
        client.cancel([future])
    if holders:
        with contextlib.suppress(Exception):
            client.restart_workers(holders, timeout=60)
