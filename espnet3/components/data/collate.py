"""Batch ``(uid, sample)`` items into ``(uids, batch)`` the way ESPnet2 models expect.

This follows ESPnet2's ``common_collate_fn`` convention: every array is padded along its first
axis to the longest in the batch (floats with ``0.0``, integers with ``-1``) and its lengths are
added as ``<key>_lengths``; keys ending in ``_lengths`` are therefore reserved. Values that are
not arrays are kept sensibly: numbers become a 1-D tensor, strings and other objects a list.

Example:
    >>> import numpy as np
    >>> uids, batch = CommonCollateFn()([
    ...     ("a", {"speech": np.ones(3, dtype=np.float32), "text": np.array([5, 6]), "spk": 1}),
    ...     ("b", {"speech": np.ones(2, dtype=np.float32), "text": np.array([7]), "spk": 2}),
    ... ])
    >>> uids, batch["speech"].shape, batch["speech_lengths"].tolist()
    (['a', 'b'], torch.Size([2, 3]), [3, 2])
    >>> batch["text"].tolist(), batch["spk"].tolist()
    ([[5, 6], [7, -1]], [1, 2])
"""

from __future__ import annotations

import numbers
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from espnet3.errors import Espnet3Error


class CommonCollateFn:
    """Pad arrays, add ``<key>_lengths``, return ``(uids, batch)``.

    Args:
        float_pad_value: padding for floating-point arrays.
        int_pad_value: padding for integer (and boolean) arrays.
        not_sequence: keys that are stacked as they are, without ``_lengths``
            (all items must then have the same shape).
    """

    def __init__(
        self,
        float_pad_value: float = 0.0,
        int_pad_value: int = -1,
        not_sequence: Collection[str] = (),
    ):
        self.float_pad_value = float_pad_value
        self.int_pad_value = int_pad_value
        self.not_sequence = set(not_sequence)

    def __call__(self, items: Sequence[Any]) -> tuple[list[str], dict[str, Any]]:
        """Collate ``(uid, sample)`` pairs; bare samples get their batch position as uid."""
        if not items:
            raise Espnet3Error("cannot collate an empty batch: check the sampler's batch sizes")
        pairs = [
            it if isinstance(it, tuple) and len(it) == 2 else (str(i), it)
            for i, it in enumerate(items)
        ]
        uids = [str(uid) for uid, _ in pairs]
        samples = [sample for _, sample in pairs]
        keys = _common_keys(uids, samples)
        batch: dict[str, Any] = {}
        for key in keys:
            values = [sample[key] for sample in samples]
            batch.update(self._collate_key(key, values, uids))
        return uids, batch

    def _collate_key(self, key: str, values: list[Any], uids: list[str]) -> dict[str, Any]:
        if all(isinstance(v, np.ndarray | torch.Tensor) for v in values):
            arrays = [v.numpy() if isinstance(v, torch.Tensor) else v for v in values]
            if key in self.not_sequence:
                return {key: torch.from_numpy(_stack(key, arrays, uids))}
            return {
                key: torch.from_numpy(self._pad(key, arrays, uids)),
                f"{key}_lengths": torch.tensor([len(a) for a in arrays], dtype=torch.long),
            }
        if all(isinstance(v, numbers.Number | np.number) for v in values):
            return {key: torch.tensor(np.asarray(values))}
        return {key: list(values)}

    def _pad(self, key: str, arrays: list[np.ndarray], uids: list[str]) -> np.ndarray:
        if any(a.ndim == 0 for a in arrays):
            raise Espnet3Error(
                f"cannot pad key {key!r}: some items hold a 0-d array; list {key!r} in "
                "not_sequence or give it a length axis"
            )
        tails = {a.shape[1:] for a in arrays}
        if len(tails) > 1:
            raise Espnet3Error(
                f"cannot pad key {key!r}: items {uids} have shapes {[a.shape for a in arrays]}, "
                "which differ beyond the first axis"
            )
        dtype = np.result_type(*arrays)
        pad = self.float_pad_value if np.issubdtype(dtype, np.floating) else self.int_pad_value
        out = np.full((len(arrays), max(len(a) for a in arrays), *tails.pop()), pad, dtype=dtype)
        for row, array in zip(out, arrays, strict=True):
            row[: len(array)] = array
        return out


def _stack(key: str, arrays: list[np.ndarray], uids: list[str]) -> np.ndarray:
    try:
        return np.stack(arrays)
    except ValueError:
        raise Espnet3Error(
            f"key {key!r} is in not_sequence but items {uids} have shapes "
            f"{[a.shape for a in arrays]}: remove it from not_sequence to pad it"
        ) from None


def _common_keys(uids: list[str], samples: list[Any]) -> list[str]:
    for uid, sample in zip(uids, samples, strict=True):
        if not isinstance(sample, Mapping):
            raise Espnet3Error(
                f"item {uid!r} is a {type(sample).__name__}, not a mapping of key -> value: "
                "make the dataset or its transform return a dict"
            )
    keys = list(samples[0])
    for uid, sample in zip(uids, samples, strict=True):
        if set(sample) != set(keys):
            raise Espnet3Error(
                f"item {uid!r} has keys {sorted(sample)} but item {uids[0]!r} has "
                f"{sorted(keys)}: every item of a batch needs the same keys"
            )
    reserved = [k for k in keys if str(k).endswith("_lengths")]
    if reserved:
        raise Espnet3Error(
            f"item keys {reserved} end with '_lengths', which the collate function reserves for "
            "lengths it computes: rename them"
        )
    return keys
