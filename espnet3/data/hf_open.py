"""Open a Hugging Face dataset split from a reference that any process can re-open.

A *reference* is ``(dataset, split, load_kwargs, raw_audio)``: ``dataset`` is a
``save_to_disk`` directory or anything ``datasets.load_dataset`` accepts (a hub id when online,
a local data directory). Workers and audio readers open a reference once per process
(:func:`open_reference`); :func:`saved_location` finds the reference of a dataset object that
was loaded unchanged from a ``save_to_disk`` directory.

Example:
    >>> import datasets, tempfile
    >>> d = tempfile.mkdtemp()
    >>> datasets.Dataset.from_dict({"x": [1, 2]}).save_to_disk(d)
    >>> reference = saved_location(datasets.load_from_disk(d))
    >>> reference == (d, None, (), True), len(open_reference(reference))
    (True, 2)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

from espnet3.errors import ConfigError


class Reference(NamedTuple):
    """A dataset split any process can open again: hashable, so it keys per-process caches.

    Example:
        >>> Reference("data/hf", "train")
        Reference(path='data/hf', split='train', load_kwargs=(), raw_audio=True)
    """

    path: str  #: a ``save_to_disk`` directory, a local data directory or a hub id
    split: str | None
    load_kwargs: tuple = ()  #: sorted ``(name, value)`` items for ``datasets.load_dataset``
    raw_audio: bool = True  #: ``Audio`` columns read undecoded


_OPENED: dict[Reference, Any] = {}  # per process: reference -> opened split


def open_split(dataset: Any, split: str | None, raw_audio: bool = True) -> Any:
    """The ``split`` of a dataset object, ``save_to_disk`` directory or ``load_dataset`` id.

    Example:
        >>> import datasets
        >>> len(open_split(datasets.DatasetDict({"a": datasets.Dataset.from_dict({"x": [1]})}), "a"))
        1
    """
    if isinstance(dataset, (str, os.PathLike)):
        return open_reference(Reference(str(dataset), split, (), raw_audio))
    return _prepare(select_split(dataset, split), raw_audio)


def select_split(dataset: Any, split: str | None) -> Any:
    """``dataset[split]`` of a ``DatasetDict``; a ``Dataset`` itself.

    Without ``split``, a ``DatasetDict`` of one split (what ``load_dataset(name)`` returns for
    a dataset with only a train split) is that split; one of several needs ``split``.

    Example:
        >>> import datasets
        >>> only = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"x": [1, 2]})})
        >>> select_split(only, None).num_rows
        2
    """
    if hasattr(dataset, "keys") and not hasattr(dataset, "features"):  # a DatasetDict
        names = sorted(dataset)
        if split is None and len(names) == 1:
            return dataset[names[0]]
        if split is None:
            raise ConfigError(
                f"the dataset has {len(names)} splits {names}: choose one with split= "
                f"(e.g. split={names[0]!r}), or pass dataset[{names[0]!r}]"
            )
        if split not in dataset:
            raise ConfigError(f"split {split!r} is not in the dataset (it has {names}): pick one")
        return dataset[split]
    return dataset


def _prepare(dataset: Any, raw_audio: bool) -> Any:
    """Cast ``Audio`` columns to ``decode=False`` when asked (keeps the original encoding)."""
    if not raw_audio:
        return dataset
    from datasets import Audio

    for name, feature in dataset.features.items():
        if isinstance(feature, Audio) and feature.decode:
            dataset = dataset.cast_column(name, Audio(decode=False))
    return dataset


def open_reference(reference: Reference) -> Any:
    """Open (once per process) a ``save_to_disk`` directory or a ``load_dataset`` id."""
    if reference in _OPENED:
        return _OPENED[reference]
    import datasets

    path, split, load_kwargs, raw_audio = reference
    try:
        if Path(path, "dataset_dict.json").is_file() or Path(path, "state.json").is_file():
            dataset = datasets.load_from_disk(path)
        else:
            dataset = datasets.load_dataset(path, split=split, **dict(load_kwargs))
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"cannot open dataset {path!r} split {split!r}: {exc}: give a save_to_disk "
            "directory, a local data directory, or a hub id (needs network or the HF cache)"
        ) from exc
    _OPENED[reference] = _prepare(select_split(dataset, split), raw_audio)
    return _OPENED[reference]


def saved_location(dataset: Any) -> Reference | None:
    """The reference of a ``Dataset`` loaded unchanged from a ``save_to_disk`` directory.

    ``None`` when its rows live only in memory, or were selected, sliced, filtered or mapped
    since: its row ``i`` must be row ``i`` of the directory (same arrow files, no index
    mapping, same number of rows).
    """
    files = [entry["filename"] for entry in getattr(dataset, "cache_files", None) or []]
    if not files or getattr(dataset, "_indices", None) is not None:
        return None
    folder = os.path.dirname(files[0])
    try:
        with open(os.path.join(folder, "state.json")) as f:
            listed = [
                os.path.join(folder, entry["filename"]) for entry in json.load(f)["_data_files"]
            ]
    except (OSError, KeyError, TypeError, ValueError):
        return None
    reference = Reference(folder, None)
    if listed != files or len(open_reference(reference)) != len(dataset):
        return None  # a contiguous slice keeps the files but not the row numbers
    return reference


def fingerprint(reference: Reference) -> str:
    """The ``datasets`` fingerprint of the referenced split: it changes when its data does."""
    return open_reference(reference)._fingerprint
