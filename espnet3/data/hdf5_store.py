"""HDF5 stores: one HDF5 dataset per utterance, named by its id, read with ``h5py``.

Layout (``*.h5`` or ``*.hdf5``)::

    /<utt_id>                 an HDF5 dataset at the top level, one per utterance
        attrs["sampling_rate"]  present: the dataset is a waveform, (frames,) or
                                (frames, channels), int16/int32 PCM or float in [-1, 1);
                                absent: a feature matrix, (frames, dims)
        attrs["text"], attrs["speaker"], attrs["language"], any other attribute
                                the item's fields of those names

A waveform's item is ``{"utt_id", "speech", "sampling_rate", ...}`` (``speech`` float32 in
[-1, 1), as every ESPnet3 item); a feature matrix's is ``{"utt_id", "feats", ...}``
(float32). Both kinds may share a file. Utterances come in the file's order of names (h5py
lists names alphabetically unless the file was written with ``track_order``).

Why this layout: it is the one ESPnet1 wrote its HDF5 feature archives in (key -> matrix), so
those read as they are; a dataset per utterance is one HDF5 object, where a group per
utterance would be several; attributes keep the small metadata beside its array; and HDF5
finds a name in the file's index, so reading item ``i`` touches only that utterance. The file
is opened once per process (a handle does not survive ``fork`` or pickling), so the store
works in DataLoader and Dask workers.

Example:
    >>> import tempfile, pathlib, numpy as np, h5py
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.h5"
    >>> with h5py.File(path, "w") as f:
    ...     f["u1"] = np.array([0, 8192], np.int16)
    ...     f["u1"].attrs.update({"sampling_rate": 8000, "text": "hi"})
    >>> store = HDF5Store(path)
    >>> item = store[0]
    >>> item["utt_id"], item["speech"].tolist(), item["sampling_rate"], item["text"]
    ('u1', [0.0, 0.25], 8000, 'hi')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from espnet3.data.fields import plain
from espnet3.errors import Espnet3Error

SUFFIXES = (".h5", ".hdf5")


def is_hdf5_file(path: str | os.PathLike) -> bool:
    """True for an existing ``*.h5`` or ``*.hdf5`` file.

    Example:
        >>> is_hdf5_file("/nonexistent.h5")
        False
    """
    return Path(path).suffix in SUFFIXES and Path(path).is_file()


class HDF5Store:
    """The utterances of an HDF5 file in the layout of the module docstring."""

    def __init__(self, path: str | os.PathLike):
        import h5py

        self.path = str(Path(path).resolve())
        try:
            with h5py.File(self.path, "r") as f:
                names = list(f.keys())
                groups = [name for name in names if f.get(name, getclass=True) is not h5py.Dataset]
        except OSError as exc:
            raise Espnet3Error(f"{self.path} is not a readable HDF5 file: {exc}") from None
        if groups:
            raise Espnet3Error(
                f"{self.path}: {groups[:3]} are groups, not datasets: the layout is one "
                "dataset per utterance at the top level, named by its id, with attributes "
                "text, sampling_rate (for waveforms), ... (see espnet3.data.hdf5_store)"
            )
        self._names = names
        self._file: Any = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return len(self._names)

    def __getitem__(self, index: int) -> dict[str, Any]:
        name = self._names[index]
        stored = self._opened()[name]
        attrs = {key: _attribute(value) for key, value in stored.attrs.items()}
        array = stored[()]
        item: dict[str, Any] = {"utt_id": name}
        if "sampling_rate" in attrs:
            item["speech"] = _waveform(array, f"{self.path}:/{name}")
            item["sampling_rate"] = int(attrs.pop("sampling_rate"))
        else:
            item["feats"] = np.asarray(array, dtype=np.float32)
        item.update(attrs)
        return item

    def uids(self) -> list[str]:
        """Utterance ids in item order."""
        return list(self._names)

    def _opened(self) -> Any:
        if self._file is None or self._pid != os.getpid():
            import h5py

            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_pid": None}


def _attribute(value: Any) -> Any:
    """An HDF5 attribute as plain Python (fixed-length strings come back as bytes)."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    return plain(value)


def _waveform(array: np.ndarray, where: str) -> np.ndarray:
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32, copy=False)
    if np.issubdtype(array.dtype, np.signedinteger):
        return (array / float(-np.iinfo(array.dtype).min)).astype(np.float32)
    raise Espnet3Error(
        f"{where}: waveform of dtype {array.dtype} is not supported: store int16/int32 PCM "
        "or float samples in [-1, 1)"
    )
