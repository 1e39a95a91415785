"""Datasets that apply a transform and a preprocessor, and a concatenation of them.

Every item flows ``transform(sample)`` then ``preprocessor(sample)``, or
``preprocessor(uid, sample)`` for an ESPnet-style preprocessor (an
:class:`~espnet3.components.data.preprocessor.AbsPreprocessor`, or any preprocessor when
``use_espnet_preprocessor=True``). With ``use_espnet_collator=True`` an item is
``(uid, sample)``, the pair ESPnet2's collate function expects.

A dataset names its items in one of two ways: a ``uids()`` method returning ids in index order
(items are read by integer), or, for a dataset that cannot be read by integer, a ``keys()``
method (items are read by key, in ``keys()`` order). Without either, an item's id is its index
as a string.

Example:
    >>> a = DatasetWithTransform([{"x": 1}, {"x": 2}], transform=lambda s: {"x": s["x"] * 10})
    >>> both = CombinedDataset([a, [{"x": 3}]])
    >>> len(both), both[1], both[-1]
    (3, {'x': 20}, {'x': 3})
    >>> both.use_espnet_collator = True
    >>> both[2]
    ('2', {'x': 3})
    >>> by_key = CombinedDataset([{"utt1": {"x": 4}}], [(do_nothing, None)])
    >>> by_key["utt1"], by_key[0]
    ({'x': 4}, {'x': 4})
"""

from __future__ import annotations

import bisect
import copy
import functools
import itertools
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from espnet3.components.data.preprocessor import apply_preprocessor, takes_uid
from espnet3.errors import ConfigError, ContractError, SetupError, UnknownIdError


def do_nothing(*x: Any) -> Any:
    """The identity: one argument back as it is, several as a tuple (a no-op transform).

    Example:
        >>> do_nothing({"a": 1}), do_nothing("uid", {"a": 1})
        ({'a': 1}, ('uid', {'a': 1}))
    """
    return x[0] if len(x) == 1 else x


class ShardedDataset(ABC):
    """A dataset split into ``total_shards`` parts; ``shard(i)`` returns part ``i``.

    Set ``total_shards`` (how many parts) and ``dist_world_size`` (the distributed world size
    the sharding was planned for; the loader checks it against the real one).

    Example:
        >>> class Halves(ShardedDataset):
        ...     total_shards, dist_world_size = 2, 1
        ...     def __init__(self, items): self.items = items
        ...     def shard(self, idx): return Halves(self.items[idx::2])
        ...     def __len__(self): return len(self.items)
        ...     def __getitem__(self, i): return self.items[i]
        >>> Halves([0, 1, 2, 3]).shard(1).items
        [1, 3]
    """

    total_shards: int
    dist_world_size: int

    @abstractmethod
    def shard(self, idx: int) -> Any:
        """Return shard ``idx`` as a dataset."""


class DatasetWithTransform:
    """``dataset[i]`` passed through ``transform`` then ``preprocessor``.

    ``use_espnet_preprocessor`` decides whether the preprocessor gets ``(uid, sample)``;
    ``None`` (the default) decides from its type (see the module docstring).
    """

    def __init__(
        self,
        dataset: Any,
        transform: Callable | None = None,
        preprocessor: Callable | None = None,
        use_espnet_preprocessor: bool | None = None,
        *,
        use_espnet_collator: bool = False,
    ):
        for label, fn in (("transform", transform), ("preprocessor", preprocessor)):
            if fn is not None and not callable(fn):
                raise ContractError(
                    f"{label} must be callable, got {type(fn).__name__} {fn!r}: give a function "
                    "or a _target_ config of a callable class"
                )
        self.dataset = dataset
        self.transform = transform
        self.preprocessor = preprocessor
        self.use_espnet_preprocessor = (
            takes_uid(preprocessor) if use_espnet_preprocessor is None else use_espnet_preprocessor
        )
        self.use_espnet_collator = use_espnet_collator
        self._by_key = _read_by_key(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int | str) -> Any:
        if isinstance(idx, str):
            idx = self.index_of(idx)
        idx = _normalize_index(idx, len(self), type(self).__name__)
        return self.item(idx, self.uid(idx) if self.has_uids else str(idx))

    def item(self, idx: int, uid: str) -> Any:
        """Item ``idx`` (already in range) processed under the utterance id ``uid``."""
        sample = apply_preprocessor(
            self.preprocessor, uid, self.transformed(idx), self.use_espnet_preprocessor
        )
        return (uid, sample) if self.use_espnet_collator else sample

    def raw(self, idx: int) -> Any:
        """Item ``idx`` as the wrapped dataset gives it (by key for a keyed dataset)."""
        return self.dataset[self.uids()[idx]] if self._by_key else self.dataset[idx]

    def transformed(self, idx: int) -> Any:
        """Item ``idx`` after the transform only (what key-consistency checks look at)."""
        sample = self.raw(idx)
        return sample if self.transform is None else self.transform(sample)

    @property
    def has_uids(self) -> bool:
        """True when the wrapped dataset names its items (``uids()``, or ``keys()``)."""
        return self._by_key or callable(getattr(self.dataset, "uids", None))

    def uid(self, idx: int) -> str:
        """The wrapped dataset's id of item ``idx`` (requires :attr:`has_uids`)."""
        return self.uids()[idx]

    def uids(self) -> Sequence[str]:
        """The wrapped dataset's ids in index order (read once), else the indices as strings."""
        return self._uids

    def index_of(self, uid: str) -> int:
        """The index of the item named ``uid``; a numeric string is taken as an index."""
        if self.has_uids and uid in self._uid_index:
            return self._uid_index[uid]
        if uid.lstrip("-").isdigit():
            return int(uid)
        raise UnknownIdError(
            f"Utterance ID {uid!r} is not in {type(self.dataset).__name__} "
            f"({len(self)} items): check the id, or the dataset it should come from"
        )

    @functools.cached_property
    def _uids(self) -> Sequence[str]:
        if self._by_key:
            keys = list(self.dataset.keys())
            bad = next((k for k in keys if not isinstance(k, str)), None)
            if bad is not None:
                raise ContractError(
                    f"{type(self.dataset).__name__}.keys() must give string utterance ids, got "
                    f"{bad!r} ({type(bad).__name__})"
                )
            return keys
        if not self.has_uids:
            return [str(i) for i in range(len(self))]
        return list(self.dataset.uids())

    @functools.cached_property
    def _uid_index(self) -> dict[str, int]:
        return {uid: i for i, uid in enumerate(self.uids())}


class CombinedDataset:
    """Several datasets indexed as one; lookup is a binary search over cumulative lengths.

    ``transforms`` gives one ``(transform, preprocessor)`` pair per dataset (either may be
    ``None``); without it, a dataset is used as it is (a :class:`DatasetWithTransform` keeps
    its own). Items of all datasets must have the same keys after their transform: the first
    item of each is checked once, here, as are utterance ids (unique across datasets) and
    sharding (every dataset a :class:`ShardedDataset` with the same ``total_shards`` and
    ``dist_world_size``, or none). String indices are utterance ids (or numeric strings).
    """

    def __init__(
        self,
        datasets: Sequence[Any],
        transforms: Sequence[tuple[Callable | None, Callable | None]] | None = None,
        use_espnet_preprocessor: bool | None = None,
        *,
        use_espnet_collator: bool = False,
    ):
        if transforms is not None and len(transforms) != len(datasets):
            raise ConfigError(
                f"CombinedDataset got {len(datasets)} datasets but {len(transforms)} "
                "(transform, preprocessor) pairs: give one pair per dataset"
            )
        self.use_espnet_preprocessor = use_espnet_preprocessor
        self.parts = [
            _part(d, None if transforms is None else transforms[i], use_espnet_preprocessor)
            for i, d in enumerate(datasets)
        ]
        self.offsets = [0, *itertools.accumulate(len(p) for p in self.parts)]
        self.use_espnet_collator = use_espnet_collator
        self._check_keys()
        self._uid_map = self._collect_uids()
        self.total_shards, self.dist_world_size = self._shard_layout()

    @property
    def datasets(self) -> list[Any]:
        """The combined datasets, as given (without their transforms)."""
        return [p.dataset for p in self.parts]

    @property
    def transforms(self) -> list[tuple[Callable | None, Callable | None]]:
        """The ``(transform, preprocessor)`` pair of each dataset."""
        return [(p.transform, p.preprocessor) for p in self.parts]

    @property
    def use_espnet_collator(self) -> bool:
        """Whether items are ``(uid, sample)`` pairs; setting it applies to every dataset."""
        return self._use_espnet_collator

    @use_espnet_collator.setter
    def use_espnet_collator(self, value: bool) -> None:
        self._use_espnet_collator = value
        for part in self.parts:
            part.use_espnet_collator = value

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, idx: int | str) -> Any:
        if isinstance(idx, str):
            part_idx, local = self.locate_uid(idx)
        else:
            part_idx, local = self.locate(idx)
        part = self.parts[part_idx]
        uid = part.uid(local) if part.has_uids else str(self.offsets[part_idx] + local)
        return part.item(local, uid)

    def locate(self, idx: int) -> tuple[int, int]:
        """``(dataset number, index inside it)`` of global index ``idx`` (negative allowed)."""
        idx = _normalize_index(idx, len(self), type(self).__name__)
        part_idx = bisect.bisect_right(self.offsets, idx) - 1
        return part_idx, idx - self.offsets[part_idx]

    def locate_uid(self, uid: str) -> tuple[int, int]:
        """``(dataset number, index inside it)`` of the item named ``uid``."""
        if uid in self._uid_map:
            return self._uid_map[uid]
        if uid.lstrip("-").isdigit():
            return self.locate(int(uid))
        raise UnknownIdError(
            f"Utterance ID {uid!r} is in none of the {len(self.parts)} combined datasets: "
            "check the id, or the dataset it should come from"
        )

    @property
    def is_sharded(self) -> bool:
        """True when every combined dataset is a :class:`ShardedDataset` (so :meth:`shard` works)."""
        return self.total_shards is not None

    def shard(self, idx: int) -> CombinedDataset:
        """Shard ``idx`` of every dataset, combined, with the same transforms."""
        missing = [
            type(d).__name__ for d in self.datasets if not callable(getattr(d, "shard", None))
        ]
        if missing or not self.parts:
            raise SetupError(
                f"cannot shard this CombinedDataset: {', '.join(missing) or 'it is empty'} has no "
                "shard(); make every dataset a ShardedDataset"
            )
        return CombinedDataset(
            [
                DatasetWithTransform(
                    p.dataset.shard(idx), p.transform, p.preprocessor, p.use_espnet_preprocessor
                )
                for p in self.parts
            ],
            use_espnet_collator=self.use_espnet_collator,
        )

    def _check_keys(self) -> None:
        reference: tuple[int, set | None] | None = None
        for part_idx, part in enumerate(self.parts):
            if len(part) == 0:
                continue
            # A copy: a transform that edits its input must not edit the dataset's own item.
            sample = copy.deepcopy(part.raw(0))
            if part.transform is not None:
                sample = part.transform(sample)
            keys = set(sample) if isinstance(sample, Mapping) else None
            if reference is None:
                reference = (part_idx, keys)
            elif keys != reference[1]:
                raise ContractError(
                    f"combined dataset {part_idx} ({type(part.dataset).__name__}) gives items "
                    f"with keys {_show(keys)} but dataset {reference[0]} gives "
                    f"{_show(reference[1])}: make their transforms return the same keys"
                )

    def _collect_uids(self) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        for part_idx, part in enumerate(self.parts):
            if not part.has_uids:
                continue
            for local, uid in enumerate(part.uids()):
                if uid in found:
                    raise ConfigError(
                        f"Duplicate utterance ID {uid!r}: it is in combined datasets "
                        f"{found[uid][0]} and {part_idx}; make ids unique (e.g. prefix them "
                        "with the corpus name)"
                    )
                found[uid] = (part_idx, local)
        return found

    def _shard_layout(self) -> tuple[int | None, int | None]:
        sharded = [isinstance(d, ShardedDataset) for d in self.datasets]
        if not any(sharded):
            return None, None
        if not all(sharded):
            kinds = ", ".join(type(d).__name__ for d in self.datasets)
            raise SetupError(
                "If any dataset is a subclass of ShardedDataset, every dataset must be one, "
                f"got {kinds}: shard the others too, or combine them without sharding"
            )
        layouts = {
            (getattr(d, "total_shards", None), getattr(d, "dist_world_size", None))
            for d in self.datasets
        }
        if any(None in layout for layout in layouts):
            raise SetupError(
                "ShardedDataset requires total_shards and dist_world_size to be set on every "
                f"dataset, got (total_shards, dist_world_size) {sorted(layouts, key=str)}"
            )
        if len(layouts) != 1:
            raise SetupError(
                "All sharded datasets must share the same total_shards and dist_world_size, got "
                f"(total_shards, dist_world_size) {sorted(layouts)}"
            )
        return layouts.pop()


def _part(
    dataset: Any,
    pair: tuple[Callable | None, Callable | None] | None,
    use_espnet_preprocessor: bool | None,
) -> DatasetWithTransform:
    if pair is not None:
        transform, preprocessor = pair
        return DatasetWithTransform(dataset, transform, preprocessor, use_espnet_preprocessor)
    if isinstance(dataset, DatasetWithTransform):
        return dataset
    return DatasetWithTransform(dataset, use_espnet_preprocessor=use_espnet_preprocessor)


def _read_by_key(dataset: Any) -> bool:
    """True for a dataset read by string key: it has ``keys()`` and no integer access."""
    if callable(getattr(dataset, "uids", None)) or not callable(getattr(dataset, "keys", None)):
        return False
    if isinstance(dataset, Mapping):
        return True
    try:
        if len(dataset) == 0:
            return False
        dataset[0]
    except Exception:  # a dataset of string ids refuses 0 in its own way
        return True
    return False


def _normalize_index(idx: int, length: int, what: str) -> int:
    try:
        idx = operator.index(idx)
    except TypeError:
        raise TypeError(
            f"{what} indices must be integers or utterance ids, not {type(idx).__name__}"
        ) from None
    if not -length <= idx < length:
        raise IndexError(f"index {idx} out of range for {what} of length {length}")
    return idx + length if idx < 0 else idx


def _show(keys: set | None) -> str:
    return "(not a mapping)" if keys is None else str(sorted(keys))
