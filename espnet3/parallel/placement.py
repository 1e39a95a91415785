"""Where a map or a runner call runs, decided once by :func:`placement`, as an executor.

There are four answers, each a :class:`Placement` with one operation, :meth:`Placement.run`:

- :class:`InProcess`: a sequential block is open, or none is and nothing is configured;
- :class:`OnCluster`: on the open block's cluster (or on the client the caller gave);
- :class:`ForTheCall`: no block is open but a cluster is configured: one is started for
  this call and closed after it;
- :class:`WhenWorthIt`: the open block's cluster is not started yet: items run here, timed,
  until the rest is measured to be worth it
  (:meth:`~espnet3.parallel.client.DeferredCluster.worth_it`); then it starts and takes the
  rest.

The work is given both ways: ``here()`` returns a function ``call(index, item)`` that runs
one item in this process (its environment built once), and ``there(client, items, first_index)`` yields
``(index, result)`` pairs from a cluster. Maps (:mod:`.mapping`) and runner calls
(:mod:`espnet3.runner.backends`) both go through this one decision.

Example:
    >>> where = placement()                      # nothing configured: in this process
    >>> type(where).__name__, where.sequential
    ('InProcess', True)
    >>> list(where.run(["a", "b"], lambda: lambda index, item: item.upper(), None))
    [(0, 'A'), (1, 'B')]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

from espnet3.errors import SetupError
from espnet3.parallel.client import get_client
from espnet3.parallel.config import ParallelConfig
from espnet3.parallel.context import OpenClient, get_parallel_config, open_client
from espnet3.parallel.worker_env import SetupFn

#: Builds the function that runs one item in this process: ``call(index, item)``.
Here = Callable[[], Callable[[int, Any], Any]]
#: ``(client, items, first_index)``: runs items on a cluster, yields ``(index, result)``.
There = Callable[[Any, Iterable[Any], int], Iterator[tuple[int, Any]]]


class Placement:
    """Where work runs: under ``block`` (the open :func:`get_client` block, if any) with
    ``config`` (that block's, else the process-wide one)."""

    #: The work runs in this process from start to end.
    sequential: ClassVar[bool] = False

    def __init__(self, block: OpenClient | None, config: ParallelConfig, client: Any = None):
        self.block, self.config, self.client = block, config, client

    def run(
        self, items: Iterable[Any], here: Here, there: There, setup_fn: SetupFn | None = None
    ) -> Iterator[tuple[int, Any]]:
        """Run every item; yield ``(index, result)`` as results come (any order on a cluster).

        ``setup_fn`` builds the environment of a cluster started for the call on each worker
        as it joins (else the first task there builds it).
        """
        raise NotImplementedError


class InProcess(Placement):
    sequential = True

    def run(
        self, items: Iterable[Any], here: Here, there: There, setup_fn: SetupFn | None = None
    ) -> Iterator[tuple[int, Any]]:
        call = here()
        for index, item in enumerate(items):
            yield index, call(index, item)


class OnCluster(Placement):
    def run(
        self, items: Iterable[Any], here: Here, there: There, setup_fn: SetupFn | None = None
    ) -> Iterator[tuple[int, Any]]:
        if getattr(self.client, "status", None) != "running":
            raise SetupError(
                f"the client given to this map is not running (status "
                f"{getattr(self.client, 'status', None)!r}): pass the client of an open "
                "get_client() block, or none to use the configured cluster"
            )
        yield from there(self.client, items, 0)


class ForTheCall(Placement):
    def run(
        self, items: Iterable[Any], here: Here, there: There, setup_fn: SetupFn | None = None
    ) -> Iterator[tuple[int, Any]]:
        with get_client(self.config, setup_fn) as client:
            yield from there(client, items, 0)


class WhenWorthIt(Placement):
    def run(
        self, items: Iterable[Any], here: Here, there: There, setup_fn: SetupFn | None = None
    ) -> Iterator[tuple[int, Any]]:
        """Items run here until the rest is worth the cluster; the first item's time counts
        only when it is the only one (it pays for imports and the environment)."""
        deferred = self.block.deferred
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        source, done, spent, first, call = iter(items), 0, 0.0, 0.0, None
        while True:
            if done:
                per_item = (spent - first) / (done - 1) if done > 1 else first
                left = (total - done) * per_item if total is not None else spent
                if (done > 1 or deferred.worth_it(first)) and deferred.worth_it(left):
                    break
            try:
                item = next(source)
            except StopIteration:
                deferred.ran_here += spent
                return
            call = call or here()
            started = time.perf_counter()
            result = call(done, item)
            took = time.perf_counter() - started
            spent, first = spent + took, first or took
            yield done, result
            done += 1
        client = deferred.start(left)
        rest = source if total is None else _Counted(source, total - done)
        yield from there(client, rest, done)


class _Counted:
    """The rest of an iterator whose length is known (so a cluster can size its chunks)."""

    def __init__(self, source: Iterator[Any], length: int):
        self.source, self.length = source, length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Any]:
        return self.source


def placement(client: Any = None) -> Placement:
    """Where work given ``client`` (``None``: none given) runs: a given client, else the
    innermost open block, else the process-wide config.

    Example:
        >>> from espnet3.parallel import get_client
        >>> with get_client({"env": "none"}):
        ...     placement().sequential
        True
    """
    block = open_client(client)
    config = block.config if block else get_parallel_config()
    if client is not None:
        return OnCluster(block, config, client)
    if block is None:
        return (InProcess if config.is_sequential else ForTheCall)(None, config)
    if block.deferred is not None and not block.deferred.started:
        return WhenWorthIt(block, config)
    if block.live_client is None:
        return InProcess(block, config)
    return OnCluster(block, config, block.live_client)
