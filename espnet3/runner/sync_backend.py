"""The two backends that wait for results: in this process, or on a Dask cluster.

Both yield one outcome per unit, in unit order (a list of ``(unit, result)``, or an
:class:`~espnet3.runner.outcomes.ItemFailure`). The cluster one goes through
:func:`espnet3.parallel.map_indexed` (adaptive chunks, a bounded number in flight) with the
provider's worker setup function. Which one runs is chosen in
:mod:`espnet3.runner.backends`.

Example:
    >>> from espnet3.parallel.placement import placement
    >>> from espnet3.runner.provider import EnvironmentProvider
    >>> class Table(EnvironmentProvider):
    ...     def build_env(self):
    ...         return {"dataset": [5, 6, 7]}
    >>> def forward(idx, *, dataset):
    ...     return dataset[idx]
    >>> list(sequential_outcomes(forward, Table(), [2, 0], None, placement()))
    [[(2, 7)], [(0, 5)]]
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from espnet3.parallel.mapping import map_on, with_timeout
from espnet3.parallel.placement import Placement
from espnet3.runner.outcomes import ItemFailure, Unit, find_utt_id, run_unit
from espnet3.runner.provider import EnvironmentProvider, worker_setup_fn

Outcome = list[tuple[int, Any]] | ItemFailure


def sequential_outcomes(
    forward: Callable[..., Any],
    provider: EnvironmentProvider,
    units: Iterable[Unit],
    item_timeout: float | None,
    where: Placement,
) -> Iterator[Outcome]:
    """Every unit run here, in order, with the provider's local environment built once.

    ``item_timeout`` (seconds, default ``parallel.item_timeout``) turns a unit that runs longer
    into a failure.
    """
    env = provider.build_env_local()
    if item_timeout is None:
        item_timeout = where.config.item_timeout
    run = with_timeout(functools.partial(run_unit, runner_forward=forward, **env), item_timeout)
    for unit in units:
        yield run(unit)


def dask_outcomes(
    forward: Callable[..., Any],
    provider: EnvironmentProvider,
    units: Iterable[Unit],
    item_timeout: float | None,
    where: Placement,
) -> Iterator[Outcome]:
    """Every unit run on the cluster of ``where`` (started for the call when none is open),
    yielded in order; each worker builds the environment once.

    A unit that runs past ``item_timeout``, whose worker dies, or whose result cannot be sent
    back is a failure (found by retrying its chunk unit by unit).
    """
    done = map_on(
        where,
        run_unit,
        units,
        worker_setup_fn(provider),
        runner_forward=forward,
        item_timeout=item_timeout,
        on_lost=functools.partial(_lost_unit, provider),
    )
    yield from in_order(done)


def _lost_unit(
    provider: EnvironmentProvider, position: int, unit: Unit, reason: str
) -> ItemFailure:
    """The failure of a unit the cluster lost (its worker died, it ran past its timeout)."""
    indices = list(unit) if isinstance(unit, list) else [unit]
    utt_id = None
    if len(indices) == 1:
        with contextlib.suppress(Exception):  # naming the item must not add a second failure
            utt_id = find_utt_id(provider.build_env_local().get("dataset"), indices[0])
    return ItemFailure(indices, utt_id, "ItemLost", reason, "")


def in_order(tagged: Iterable[tuple[int, Any]]) -> Iterator[Any]:
    """Reorder ``(position, value)`` pairs that arrive in any order into position order.

    Only values that arrive ahead of a missing position are held back.

    Example:
        >>> list(in_order([(1, "b"), (2, "c"), (0, "a")]))
        ['a', 'b', 'c']
    """
    waiting: dict[int, Any] = {}
    expected = 0
    for position, value in tagged:
        waiting[position] = value
        while expected in waiting:
            yield waiting.pop(expected)
            expected += 1
