"""What runs on a worker for one chunk of a cluster map (:mod:`.dask_map`).

:func:`run_chunk` runs the chunk's items with the worker's environment, recording which item
each chunk is at (:data:`RUNNING_ITEMS`, read by :func:`running_items` when the parent looks
for an item past its timeout), and returns the results or the item that raised. A chunk sent
before the per-item cost is known carries a time budget: it stops starting items once the
budget is spent, and the parent sends the rest again.

Example:
    >>> running_items()                  # in a process that runs no chunk
    {}
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from espnet3.errors import add_note
from espnet3.parallel.worker_env import SetupFn, bind_env, process_env


@dataclass(frozen=True)
class ItemRaised:
    """Item ``index`` of a chunk raised: its exception (when it can travel) and traceback."""

    index: int
    error: BaseException | None
    description: str
    worker_traceback: str


class Items:
    """A chunk's items in a box that Dask does not open.

    Dask looks for futures inside every list given to a task, item by item (a third of a
    microsecond for a number, microseconds for a dict), in the parent; a chunk's items hold
    none.

    Example:
        >>> Items([1, 2]).items
        [1, 2]
    """

    __slots__ = ("items",)

    def __init__(self, items: list[Any]):
        self.items = items

    def __getstate__(self) -> list[Any]:
        return self.items

    def __setstate__(self, items: list[Any]) -> None:
        self.items = items


def run_chunk(
    func: Callable,
    start: int,
    items: list[Any] | Items,
    setup: tuple[str | None, SetupFn | None],
    kwargs: Mapping[str, Any],
    budget: float | None = None,
) -> tuple[list[Any], float] | ItemRaised:
    """Run one chunk on a worker: its results and the seconds they took, or the item that raised.

    ``setup`` is the ``(key, setup_fn)`` pair naming this worker's environment. With a
    ``budget`` (seconds), no item starts once that much time has passed: the results are then
    those of the first items only (at least one).
    """
    from distributed import get_worker

    if isinstance(items, Items):
        items = items.items
    call = bind_env(func, process_env(*setup), kwargs)
    key = get_worker().get_current_task()
    t0 = time.perf_counter()
    stop = math.inf if budget is None else t0 + budget
    results = []
    try:
        for offset, item in enumerate(items):
            if offset and time.perf_counter() >= stop:
                break
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
