"""``ESPnet3Dataset``: one indexable dataset over HF datasets, Lhotse cuts and local manifests.

Every audio item is a dict with ``utt_id``, ``speech`` (float32 numpy, ``(frames,)`` for
mono, ``(frames, channels)`` otherwise), ``sampling_rate``, ``text`` and the source's other
fields (``speaker``, ``language``, custom metadata). Feature stores give ``feats`` (float32
``(frames, dims)``) instead of ``speech`` and ``sampling_rate``. ``uids()`` lists the ids in index order, which
:class:`~espnet3.components.data.dataset.DatasetWithTransform` uses for ``(uid, sample)``.

Sources:

- a ``datasets.Dataset``, or a ``DatasetDict`` (what ``load_dataset(name)`` returns: its
  only split, or the one ``split`` names), read through ``data_info`` as in
  :func:`~espnet3.data.row_items.convert_to_dataset`;
- a Lhotse ``CutSet`` (lazy ones are made eager), or a path to a cut manifest
  (``*.jsonl.gz``/``*.jsonl`` written by ``CutSet.to_file``, or a directory holding
  ``cuts.jsonl.gz``);
- a ``save_to_disk`` directory;
- a JSONL/TSV manifest or a Kaldi data directory with ``wav.scp`` (see
  :mod:`espnet3.data.manifests`);
- Kaldi features: a data directory with ``feats.scp`` and no ``wav.scp``, or the
  ``feats.scp`` file itself (see :mod:`espnet3.data.kaldi_feats`);
- an HDF5 file (``*.h5``, ``*.hdf5``), one dataset per utterance (see
  :mod:`espnet3.data.hdf5_store`).

Example:
    >>> import tempfile, pathlib, numpy as np, soundfile as sf
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> sf.write(d / "u1.wav", np.zeros(160, np.int16), 16000)
    >>> _ = (d / "list.tsv").write_text("u1\\tu1.wav\\thello\\n")
    >>> ds = ESPnet3Dataset(d / "list.tsv")
    >>> len(ds), ds[0]["utt_id"], ds[0]["speech"].shape, ds[0]["text"]
    (1, 'u1', (160,), 'hello')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from espnet3.data.fields import plain
from espnet3.data.hdf5_store import HDF5Store, is_hdf5_file
from espnet3.data.hf_open import open_split
from espnet3.data.kaldi_feats import FEATS_SCP, KaldiFeats, is_feats_dir
from espnet3.data.manifests import is_kaldi_dir, read_manifest
from espnet3.data.row_items import convert_to_dataset
from espnet3.errors import ConfigError, Espnet3Error, ItemError

_MANIFEST_INFO = {"audio": "audio", "text": "text", "id": "utt_id"}
LHOTSE_CUTS = "cuts.jsonl.gz"


class ESPnet3Dataset:
    """Index a HF dataset, a Lhotse ``CutSet``, a local manifest or a feature store.

    Example:
        >>> import datasets
        >>> rows = {"audio": [{"array": [0.0, 0.5], "sampling_rate": 8000}], "text": ["hi"]}
        >>> loaded = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)})
        >>> ESPnet3Dataset(loaded)[0]["text"]   # its only split, as load_dataset(name) gives
        'hi'
    """

    def __init__(
        self,
        source: Any,
        split: str | None = None,
        data_info: Mapping[str, Any] | None = None,
    ):
        self.split = split
        self.data_info = data_info
        self._cuts = self._rows = self._hf = self._store = None
        if _is_cutset(source):
            self._cuts = source.to_eager() if source.is_lazy else source
        elif isinstance(source, (str, os.PathLike)):
            self._open_path(Path(source))
        elif hasattr(source, "features") or hasattr(source, "keys"):
            self._open_hf(source)
        else:
            raise ConfigError(
                f"ESPnet3Dataset cannot read a {type(source).__name__}: give a datasets.Dataset, "
                "a lhotse CutSet, or a path to a save_to_disk directory, a cut manifest, a "
                "JSONL/TSV manifest, a Kaldi data directory or an HDF5 file"
            )

    def _open_path(self, path: Path) -> None:
        from lhotse import CutSet

        if path.is_dir() and (path / LHOTSE_CUTS).is_file():
            self._cuts = CutSet.from_file(path / LHOTSE_CUTS).to_eager()
        elif path.name.endswith(".jsonl.gz") or (path.suffix == ".jsonl" and _is_cut_jsonl(path)):
            self._cuts = CutSet.from_file(path).to_eager()
        elif is_hdf5_file(path):
            self._store = HDF5Store(path)
        elif (path.name == FEATS_SCP and path.is_file()) or (
            path.is_dir() and is_feats_dir(path) and not (path / "wav.scp").is_file()
        ):
            self._store = KaldiFeats(path)
        elif path.is_dir() and not is_kaldi_dir(path):
            self._open_hf(str(path))
        else:
            self._rows = read_manifest(path)
            self.data_info = self.data_info or _MANIFEST_INFO

    def _open_hf(self, source: Any) -> None:
        self._hf = open_split(source, self.split)
        if self.data_info is None:  # every column, with the names save_huggingface writes
            names = self._hf.column_names
            self.data_info = {name: name for name in names if name != "utt_id"}
            if "utt_id" in names:
                self.data_info["id"] = "utt_id"

    def __len__(self) -> int:
        for source in (self._cuts, self._store, self._rows):
            if source is not None:
                return len(source)
        return len(self._hf)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        try:
            return self._item(index)
        except Exception as err:  # name the item: the reader sees only the index
            reason = str(err) if isinstance(err, Espnet3Error) else f"{type(err).__name__}: {err}"
            raise ItemError(
                f"item {index} (utt_id {self._uid(index)!r}) of the dataset: {reason}",
                index=index,
            ) from err

    def _uid(self, index: int) -> str | None:
        try:
            return self.uids()[index]
        except Exception:  # the ids themselves may be what is broken
            return None

    def _item(self, index: int) -> dict[str, Any]:
        if self._cuts is not None:
            return _cut_item(self._cuts[index])
        if self._store is not None:
            return self._store[index]
        if self._hf is not None:
            return convert_to_dataset(
                self._hf[index], self.data_info, index, id_prefix=self._prefix()
            )
        row = self._rows[index]
        item = convert_to_dataset(row, self.data_info, index)
        item.update((k, v) for k, v in row.items() if k not in ("utt_id", "audio", "text"))
        return item

    def uids(self) -> list[str]:
        """Utterance ids in index order.

        Example:
            >>> ESPnet3Dataset("data/test.tsv").uids()[:2]   # doctest: +SKIP
            ['an251-fash-b', 'an253-fash-b']
        """
        if self._cuts is not None:
            return list(self._cuts.ids)
        if self._store is not None:
            return self._store.uids()
        if self._rows is not None:
            return [row["utt_id"] for row in self._rows]
        id_field = (self.data_info or {}).get("id")
        if isinstance(id_field, str):
            return [str(v) for v in self._hf[id_field]]
        if callable(id_field):
            return [str(id_field(row)) for row in self._hf]
        return [f"{self._prefix()}{i:08d}" for i in range(len(self._hf))]

    def _prefix(self) -> str:
        return f"{self.split}-" if self.split and self._hf is not None else ""


def _is_cutset(source: Any) -> bool:
    from lhotse import CutSet

    return isinstance(source, CutSet)


def _is_cut_jsonl(path: Path) -> bool:
    """A Lhotse cut line has ``type`` and ``recording``; our manifest lines have ``audio``."""
    import json

    with open(path, encoding="utf-8") as f:
        first = f.readline()
    return bool(first.strip()) and "recording" in json.loads(first)


def _cut_item(cut: Any) -> dict[str, Any]:
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
