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
  ``cuts.jsonl.gz``); cuts written in parts (:mod:`espnet3.data.manifest_parts`: a
  ``manifest_dir``, or the lazy set ``cutset_from_huggingface`` returns over it) are read one
  part at a time instead, whatever their number;
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

from collections.abc import Mapping
from typing import Any

from espnet3.data.input_kinds import LHOTSE_CUTS, open_source
from espnet3.errors import Espnet3Error, ItemError


class ESPnet3Dataset:
    """Index a HF dataset, a Lhotse ``CutSet``, a local manifest or a feature store.

    What it can read is :data:`espnet3.data.input_kinds.INPUT_KINDS`, tried in order.

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
        self._reader = open_source(source, split, data_info)

    def __len__(self) -> int:
        return len(self._reader)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        try:
            return self._reader[index]
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

    def uids(self) -> list[str]:
        """Utterance ids in index order.

        Example:
            >>> import tempfile, pathlib
            >>> tsv = pathlib.Path(tempfile.mkdtemp()) / "test.tsv"
            >>> _ = tsv.write_text("fash-an251-b\\tan251.wav\\tyes\\nfash-an253-b\\tan253.wav\\tno\\n")
            >>> ESPnet3Dataset(tsv).uids()
            ['fash-an251-b', 'fash-an253-b']
        """
        return self._reader.uids()


__all__ = ["ESPnet3Dataset", "LHOTSE_CUTS"]
