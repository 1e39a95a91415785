"""What :class:`~espnet3.data.dataset.ESPnet3Dataset` can read: one :class:`InputKind` per
kind of source, tried in order, each opening a :class:`Reader`.

A reader is anything with ``len()``, ``reader[i]`` (the item dict) and ``uids()``. A new kind
of input is one module with a reader and a :func:`register_input_kind` call (built-in kinds
are listed in :data:`INPUT_KINDS`).

Example:
    >>> [kind.name for kind in INPUT_KINDS][:3]
    ['cutset', 'huggingface', 'cut-directory']
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from espnet3.data.fields import plain
from espnet3.data.hdf5_store import HDF5Store, is_hdf5_file
from espnet3.data.hf_open import open_split
from espnet3.data.kaldi_feats import FEATS_SCP, KaldiFeats, is_feats_dir
from espnet3.data.manifest_parts import LHOTSE_CUTS, whole_parts
from espnet3.data.manifests import is_kaldi_dir, read_manifest
from espnet3.data.row_items import convert_to_dataset
from espnet3.data.row_source import install_for
from espnet3.errors import ConfigError

_MANIFEST_INFO = {"audio": "audio", "text": "text", "id": "utt_id"}


class Reader(Protocol):
    """Items by index, and their utterance ids in index order."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict[str, Any]: ...

    def uids(self) -> list[str]: ...


@dataclass(frozen=True)
class InputKind:
    """One kind of source: whether a source is of it, and how to read it."""

    name: str
    #: What it reads, for the message listing every kind (``a lhotse CutSet``).
    what: str
    accepts: Callable[[Any], bool]
    #: ``open(source, split, data_info) -> Reader``.
    open: Callable[[Any, str | None, Mapping[str, Any] | None], Reader]


class CutReader:
    """A Lhotse ``CutSet`` (made eager): audio, text, speaker, language and custom fields."""

    def __init__(self, cuts: Any):
        self.cuts = cuts.to_eager() if cuts.is_lazy else cuts

    def __len__(self) -> int:
        return len(self.cuts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return cut_item(self.cuts[index])

    def uids(self) -> list[str]:
        return list(self.cuts.ids)


def cut_item(cut: Any) -> dict[str, Any]:
    """The item of one cut: its audio, text, speaker, language and custom fields."""
    install_for(cut)  # here, not at open: a DataLoader worker may get the reader pickled
    audio = cut.load_audio()
    speech = audio[0] if audio.shape[0] == 1 else audio.T
    supervisions = cut.supervisions
    item = {
        "utt_id": cut.id,
        "speech": np.ascontiguousarray(speech, dtype=np.float32),
        "sampling_rate": cut.sampling_rate,
        "text": " ".join(s.text for s in supervisions if s.text),
    }
    first = supervisions[0] if supervisions else None
    for name in ("speaker", "language"):
        value = getattr(first, name, None)
        if value is not None:
            item[name] = value
    item.update(plain(dict(cut.custom or {})))
    return item


class PartsReader:
    """Cuts written in parts (:mod:`espnet3.data.manifest_parts`), read lazily: only the
    number of cuts per part is held, and the part an item is in is decompressed when asked
    (the last one is kept), so a corpus of any size opens at once in little memory.
    """

    def __init__(self, parts: list[tuple[Path, int]]):
        self.paths = [path for path, _ in parts]
        self.ends = np.cumsum([count for _, count in parts], dtype=np.int64)
        self._lines: tuple[int, list[bytes]] | None = None  # the part read last

    def __len__(self) -> int:
        return int(self.ends[-1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        from lhotse.serialization import deserialize_item

        part = int(np.searchsorted(self.ends, index, side="right"))
        first = int(self.ends[part - 1]) if part else 0
        return cut_item(deserialize_item(json.loads(self._part(part)[index - first])))

    def _part(self, part: int) -> list[bytes]:
        if self._lines is None or self._lines[0] != part:
            with gzip.open(self.paths[part], "rb") as f:
                self._lines = (part, f.read().splitlines())
        return self._lines[1]

    def uids(self) -> list[str]:
        ids = []
        for path in self.paths:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                ids.extend(json.loads(line)["id"] for line in f)
        return ids

    def __getstate__(self) -> dict[str, Any]:  # a DataLoader worker reads its own parts
        return {**self.__dict__, "_lines": None}


def _open_cuts(cuts: Any) -> Reader:
    """A lazy set read from a manifest combined from parts is read by part; others eagerly."""
    path = getattr(cuts.data, "path", None) if cuts.is_lazy else None
    parts = whole_parts(Path(path).parent) if path and Path(path).name == LHOTSE_CUTS else None
    return PartsReader(parts) if parts else CutReader(cuts)


class HuggingFaceReader:
    """One split of a HF dataset, its rows read through ``data_info`` (every column, under the
    names ``save_huggingface`` writes, when not given)."""

    def __init__(self, source: Any, split: str | None, data_info: Mapping[str, Any] | None):
        self.rows = open_split(source, split)
        self.prefix = f"{split}-" if split else ""
        if data_info is None:
            names = self.rows.column_names
            data_info = {name: name for name in names if name != "utt_id"}
            if "utt_id" in names:
                data_info["id"] = "utt_id"
        self.data_info = data_info

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return convert_to_dataset(self.rows[index], self.data_info, index, id_prefix=self.prefix)

    def uids(self) -> list[str]:
        id_field = self.data_info.get("id")
        if isinstance(id_field, str):
            return [str(v) for v in self.rows[id_field]]
        if callable(id_field):
            return [str(id_field(row)) for row in self.rows]
        return [f"{self.prefix}{i:08d}" for i in range(len(self.rows))]


class ManifestReader:
    """A JSONL/TSV manifest or a Kaldi data directory (:mod:`espnet3.data.manifests`)."""

    def __init__(self, path: Path, data_info: Mapping[str, Any] | None):
        self.rows = read_manifest(path)
        self.data_info = data_info or _MANIFEST_INFO

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        item = convert_to_dataset(row, self.data_info, index)
        item.update((k, v) for k, v in row.items() if k not in ("utt_id", "audio", "text"))
        return item

    def uids(self) -> list[str]:
        return [row["utt_id"] for row in self.rows]


def _is_cutset(source: Any) -> bool:
    from lhotse import CutSet

    return isinstance(source, CutSet)


def _path(test: Callable[[Path], bool]) -> Callable[[Any], bool]:
    """A test of path sources (``str`` or ``os.PathLike``); anything else fails it."""
    import os

    return lambda source: isinstance(source, (str, os.PathLike)) and test(Path(source))


def _is_cut_file(path: Path) -> bool:
    """``*.jsonl.gz``, or a ``*.jsonl`` whose first line is a cut (``recording``), not one of
    our manifest lines (``audio``)."""
    if path.name.endswith(".jsonl.gz"):
        return True
    if path.suffix != ".jsonl" or not path.is_file():
        return False
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    return bool(first.strip()) and "recording" in json.loads(first)


def _is_feats(path: Path) -> bool:
    if path.name == FEATS_SCP and path.is_file():
        return True
    return path.is_dir() and is_feats_dir(path) and not (path / "wav.scp").is_file()


def _cuts_from(path: Path) -> Reader:
    from lhotse import CutSet

    parts = whole_parts(path.parent) if path.name == LHOTSE_CUTS else None
    return PartsReader(parts) if parts else CutReader(CutSet.from_file(path))


INPUT_KINDS: list[InputKind] = [
    InputKind("cutset", "a lhotse CutSet", _is_cutset, lambda s, split, info: _open_cuts(s)),
    InputKind(
        "huggingface",
        "a datasets.Dataset or DatasetDict",
        lambda s: hasattr(s, "features") or hasattr(s, "keys"),  # Dataset, DatasetDict
        lambda s, split, info: HuggingFaceReader(s, split, info),
    ),
    InputKind(
        "cut-directory",
        f"a directory holding {LHOTSE_CUTS}",
        _path(lambda p: p.is_dir() and (p / LHOTSE_CUTS).is_file()),
        lambda s, split, info: _cuts_from(Path(s) / LHOTSE_CUTS),
    ),
    InputKind(
        "cut-manifest", "a cut manifest", _path(_is_cut_file), lambda s, *_: _cuts_from(Path(s))
    ),
    InputKind("hdf5", "an HDF5 file", _path(is_hdf5_file), lambda s, *_: HDF5Store(Path(s))),
    InputKind(
        "kaldi-feats",
        "a Kaldi feats.scp or its directory",
        _path(_is_feats),
        lambda s, *_: KaldiFeats(Path(s)),
    ),
    InputKind(
        "save-to-disk",
        "a save_to_disk directory",
        _path(lambda p: p.is_dir() and not is_kaldi_dir(p)),
        lambda s, split, info: HuggingFaceReader(str(s), split, info),
    ),
    InputKind(
        "manifest",
        "a JSONL/TSV manifest or a Kaldi data directory",
        _path(lambda p: True),
        lambda s, split, info: ManifestReader(Path(s), info),
    ),
]


def register_input_kind(kind: InputKind, before: str = "manifest") -> InputKind:
    """Try ``kind`` before the kind named ``before`` (the catch-all manifest, by default)."""
    names = [k.name for k in INPUT_KINDS]
    if kind.name in names:
        raise ConfigError(f"ESPnet3Dataset input kind '{kind.name}' already exists")
    INPUT_KINDS.insert(names.index(before), kind)
    return kind


def open_source(source: Any, split: str | None, data_info: Mapping[str, Any] | None) -> Reader:
    """The reader of the first kind that accepts ``source``, or an error listing them all."""
    for kind in INPUT_KINDS:
        if kind.accepts(source):
            return kind.open(source, split, data_info)
    raise ConfigError(
        f"ESPnet3Dataset cannot read a {type(source).__name__}: give "
        + ", ".join(k.what for k in INPUT_KINDS)
    )
