"""Datasets that apply a transform and a preprocessor, and a concatenation of them.

Every item flows ``transform(sample)`` then ``preprocessor(sample)`` (or
``preprocessor(uid, sample)`` for an :class:`~espnet3.components.data.preprocessor.AbsPreprocessor`).
With ``use_espnet_collator=True`` an item is ``(uid, sample)``, the pair ESPnet2's collate
function expects.

The utterance id of an item is ``dataset.uids()[i]`` when the wrapped dataset has a ``uids()``
method returning ids in index order, else the item's index as a string.

Example:
    >>> a = DatasetWithTransform([{"x": 1}, {"x": 2}], transform=lambda s: {"x": s["x"] * 10})
    >>> b = DatasetWithTransform([{"x": 3}])
    >>> both = CombinedDataset([a, b])
    >>> len(both), both[1], both[-1]
    (3, {'x': 20}, {'x': 3})
    >>> both.use_espnet_collator = True
    >>> both[2]
    ('2', {'x': 3})
"""

from __future__ import annotations

import bisect
import functools
import itertools
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from espnet3.components.data.preprocessor import takes_uid
from espnet3.errors import ConfigError


class ShardedDataset(ABC):
    """A dataset split into ``num_shards`` parts; ``shard(i)`` returns part ``i`` as a dataset.

    Example:
        >>> class Halves(ShardedDataset):
        ...     num_shards = 2
        ...     def __init__(self, items): self.items = items
        ...     def shard(self, idx): return Halves(self.items[idx::2])
        ...     def __len__(self): return len(self.items)
        ...     def __getitem__(self, i): return self.items[i]
        >>> Halves([0, 1, 2, 3]).shard(1).items
        [1, 3]
    """

    num_shards: int

    @abstractmethod
    def shard(self, idx: int) -> Any:
        """Return shard ``idx`` (``0 <= idx < num_shards``) as a dataset of the same kind."""


class DatasetWithTransform:
    """``dataset[i]`` passed through ``transform`` then ``preprocessor``."""

    def __init__(
        self,
        dataset: Any,
        transform: Callable | None = None,
        preprocessor: Callable | None = None,
        *,
        use_espnet_collator: bool = False,
    ):
        for label, fn in (("transform", transform), ("preprocessor", preprocessor)):
            if fn is not None and not callable(fn):
                raise ConfigError(f"{label} must be callable, got {type(fn).__name__} {fn!r}")
        self.dataset = dataset
        self.transform = transform
        self.preprocessor = preprocessor
        self.use_espnet_collator = use_espnet_collator
        self._preprocessor_takes_uid = takes_uid(preprocessor)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int | str) -> Any:
        if isinstance(idx, str):
            idx = self.index_of(idx)
        idx = _normalize_index(idx, len(self), type(self).__name__)
        return self.item(idx, self.uid(idx) if self.has_uids else str(idx))

    def item(self, idx: int, uid: str) -> Any:
        """Item ``idx`` (already in range) processed under the utterance id ``uid``."""
        sample = self.transformed(idx)
        if self.preprocessor is not None:
            if self._preprocessor_takes_uid:
                sample = self.preprocessor(uid, sample)
            else:
                sample = self.preprocessor(sample)
        return (uid, sample) if self.use_espnet_collator else sample

    def transformed(self, idx: int) -> Any:
        """Item ``idx`` after the transform only (what key-consistency checks look at)."""
        sample = self.dataset[idx]
        return sample if self.transform is None else self.transform(sample)

    @property
    def has_uids(self) -> bool:
        """True when the wrapped dataset names its items (it has a ``uids()`` method)."""
        return callable(getattr(self.dataset, "uids", None))

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
        raise KeyError(f"utterance id {uid!r} is not in {type(self.dataset).__name__}")

    @functools.cached_property
    def _uids(self) -> Sequence[str]:
        if not self.has_uids:
            return [str(i) for i in range(len(self))]
        return list(self.dataset.uids())

    @functools.cached_property
    def _uid_index(self) -> dict[str, int]:
        return {uid: i for i, uid in enumerate(self.uids())}


class CombinedDataset:
    """Several datasets indexed as one; lookup is a binary search over cumulative lengths.

    ``datasets`` are :class:`DatasetWithTransform` (plain datasets are wrapped). Items of all
    datasets must have the same keys after their transform: the first item of each is checked
    once, here. String indices are utterance ids (or numeric strings). When every dataset is a
    :class:`ShardedDataset` with the same ``num_shards``, :meth:`shard` returns one shard of
    each, combined.
    """

    def __init__(self, datasets: Sequence[Any], *, use_espnet_collator: bool = False):
        self.parts = [
            d if isinstance(d, DatasetWithTransform) else DatasetWithTransform(d) for d in datasets
        ]
        self.offsets = [0, *itertools.accumulate(len(p) for p in self.parts)]
        self.use_espnet_collator = use_espnet_collator
        self._check_keys()

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
        raise KeyError(
            f"utterance id {uid!r} is in none of the {len(self.parts)} combined datasets"
        )

    @functools.cached_property
    def _uid_map(self) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        for part_idx, part in enumerate(self.parts):
            if not part.has_uids:
                continue
            for local, uid in enumerate(part.uids()):
                if uid in found:
                    raise ConfigError(
                        f"utterance id {uid!r} appears in combined datasets {found[uid][0]} and "
                        f"{part_idx}: make ids unique (e.g. prefix them with the corpus name)"
                    )
                found[uid] = (part_idx, local)
        return found

    @property
    def is_sharded(self) -> bool:
        """True when every combined dataset is a :class:`ShardedDataset` (so :meth:`shard` works)."""
        return bool(self.parts) and all(isinstance(p.dataset, ShardedDataset) for p in self.parts)

    @property
    def num_shards(self) -> int:
        """The common shard count of the combined :class:`ShardedDataset` s."""
        counts = {getattr(p.dataset, "num_shards", None) for p in self.parts}
        if not self.is_sharded or len(counts) != 1:
            kinds = ", ".join(type(p.dataset).__name__ for p in self.parts)
            raise ConfigError(
                f"cannot shard a combination of {kinds} with num_shards {sorted(map(str, counts))}: "
                "every dataset must be a ShardedDataset with the same num_shards"
            )
        return counts.pop()

    def shard(self, idx: int) -> CombinedDataset:
        """Shard ``idx`` of every dataset, combined, with the same transforms."""
        if not 0 <= idx < self.num_shards:
            raise IndexError(f"shard {idx} out of range: there are {self.num_shards} shards")
        return CombinedDataset(
            [
                DatasetWithTransform(p.dataset.shard(idx), p.transform, p.preprocessor)
                for p in self.parts
            ],
            use_espnet_collator=self.use_espnet_collator,
        )

    def _check_keys(self) -> None:
        reference: tuple[int, set] | None = None
        for part_idx, part in enumerate(self.parts):
            if len(part) == 0:
                continue
            sample = part.transformed(0)
            keys = set(sample) if isinstance(sample, Mapping) else None
            if reference is None:
                reference = (part_idx, keys)
            elif keys != reference[1]:
                raise ConfigError(
                    f"combined dataset {part_idx} ({type(part.dataset).__name__}) gives items "
                    f"with keys {_show(keys)} but dataset {reference[0]} gives {_show(reference[1])}: "
                    "make their transforms return the same keys"
                )


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
