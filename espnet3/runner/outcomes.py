"""Run one unit of work (an index, or a batch of indices) and report how it went.

A unit never raises for a bad item: it returns its results, or an :class:`ItemFailure` that
carries the index, the item's ``utt_id`` when it has one, and the traceback of the process
that ran it. The caller then applies the error policy (``raise`` or ``skip``) in one place,
whatever backend ran the unit.

Example:
    >>> def forward(idx, *, dataset):
    ...     return {"idx": idx, "value": 10 // dataset[idx]}
    >>> run_unit(1, runner_forward=forward, dataset=[0, 5])
    [(1, {'idx': 1, 'value': 2})]
    >>> run_unit([1], runner_forward=lambda idx, **env: len(idx))
    [([1], 1)]
    >>> run_unit(0, runner_forward=forward, dataset=[0, 5]).exc_type
    'ZeroDivisionError'
"""

from __future__ import annotations

import operator
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from espnet3.errors import ConfigError, ItemError

Unit = int | list[int]


@dataclass(frozen=True)
class ItemFailure:
    """Why ``forward`` failed on ``indices`` (one index, or a whole batch)."""

    indices: list[int]
    utt_id: str | None
    exc_type: str
    message: str
    traceback: str
    #: The exception's class, so that the error raised for it is of that type too.
    error_class: type | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """``index 7 (utt_id 'a01')`` or ``indices [4, 5, 6]``."""
        if len(self.indices) == 1:
            utt = f" (utt_id {self.utt_id!r})" if self.utt_id is not None else ""
            return f"index {self.indices[0]}{utt}"
        return f"indices {self.indices}"

    def to_error(self) -> ItemError:
        """The error the ``raise`` policy raises: names the item and keeps the traceback."""
        return ItemError.caused_by(
            self.error_class,
            f"forward failed on {self.describe()}: {self.exc_type}: {self.message}",
            index=self.indices[0],
            worker_traceback=self.traceback,
        )

    def records(self) -> list[dict[str, Any]]:
        """One errors-JSONL record per failed index."""
        base = {
            "utt_id": self.utt_id,
            "exc_type": self.exc_type,
            "message": self.message,
            "traceback": self.traceback,
        }
        return [{"index": index, **base} for index in self.indices]


def run_unit(
    unit: Unit, *, runner_forward: Callable[..., Any], **env: Any
) -> list[tuple[Unit, Any]] | ItemFailure:
    """Call ``runner_forward(unit, **env)``; pair the result with its unit, or return the failure.

    A batch (a list of indices) gives one result, whatever ``forward`` returns for it.
    """
    indices = list(unit) if isinstance(unit, list) else [unit]
    try:
        result = runner_forward(unit, **env)
    except Exception as exc:
        utt_id = find_utt_id(env.get("dataset"), indices[0]) if len(indices) == 1 else None
        return ItemFailure(
            indices, utt_id, type(exc).__name__, str(exc), traceback.format_exc(), type(exc)
        )
    return [(unit, result)]


def find_utt_id(dataset: Any, index: int) -> str | None:
    """The ``utt_id`` of ``dataset[index]`` when the item names one, else ``None``.

    Items are ``{"utt_id": ...}`` mappings, objects with ``.utt_id``, or ESPnet's
    ``(utt_id, data)`` pairs. Looking can itself fail (that may be why the item failed): then
    there is no ``utt_id`` to report.

    Example:
        >>> find_utt_id([{"utt_id": "a01"}], 0), find_utt_id([("b02", {})], 0), find_utt_id([3], 0)
        ('a01', 'b02', None)
    """
    if dataset is None:
        return None
    try:
        item = dataset[index]
    except Exception:
        return None
    if isinstance(item, Mapping):
        value = item.get("utt_id")
    elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        value = item[0]
    else:
        value = getattr(item, "utt_id", None)
    return None if value is None else str(value)


def as_index(position: int, value: Any) -> int:
    """``value`` as an ``int`` index, or an error naming its position among the indices.

    Example:
        >>> as_index(0, 7)
        7
    """
    try:
        return operator.index(value)
    except TypeError:
        raise ConfigError(
            f"indices must be integers, got {value!r} ({type(value).__name__}) at position {position}"
        ) from None


def as_units(indices: Iterable[Any], batch_size: int | None) -> list[Unit]:
    """``indices`` as the units a call runs: indices, or lists of up to ``batch_size`` of them.

    Without ``batch_size``, an element that is already a list of indices is one unit (a batch
    made by the caller), as upstream ESPnet3 accepts.

    Example:
        >>> as_units(range(5), 2), as_units([[0, 1], [2]], None)
        ([[0, 1], [2, 3], [4]], [[0, 1], [2]])
    """
    if batch_size is None:
        return [_as_unit(position, value) for position, value in enumerate(indices)]
    checked = [as_index(position, value) for position, value in enumerate(indices)]
    return [checked[i : i + batch_size] for i in range(0, len(checked), batch_size)]


def _as_unit(position: int, value: Any) -> Unit:
    if isinstance(value, (list, tuple)):
        return [as_index(position, i) for i in value]
    return as_index(position, value)
