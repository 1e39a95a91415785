"""Share a prepared dataset: as a Hugging Face dataset on disk, or as Lhotse manifests.

Both writers build the result beside the target and rename it into place, so a crash never
leaves a half-written dataset that a reader would accept; an existing target is never
overwritten. :class:`~espnet3.data.dataset.ESPnet3Dataset` reads both back.

Example:
    >>> import tempfile, pathlib, numpy as np, soundfile as sf
    >>> from espnet3.data.dataset import ESPnet3Dataset
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> sf.write(d / "u1.wav", np.array([0, 3, -3], np.int16), 8000)
    >>> _ = (d / "list.tsv").write_text("u1\\tu1.wav\\thi\\n")
    >>> save_huggingface(ESPnet3Dataset(d / "list.tsv"), d / "hf")
    >>> shared = ESPnet3Dataset(d / "hf")
    >>> shared[0]["utt_id"], np.rint(shared[0]["speech"] * 32768).tolist()
    ('u1', [0.0, 3.0, -3.0])
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import soundfile as sf

from espnet3.data.audio import to_int16
from espnet3.data.input_kinds import LHOTSE_CUTS
from espnet3.errors import Espnet3Error


def save_huggingface(items: Iterable[dict[str, Any]], path: str | os.PathLike) -> None:
    """Write ESPnet3 items (e.g. an ``ESPnet3Dataset``) as a ``save_to_disk`` dataset.

    Audio is embedded as 16-bit FLAC in an ``Audio(decode=False)`` column, so the directory is
    self-contained; every other field becomes a column.
    """
    import datasets

    columns: dict[str, list] = {}
    for item in items:
        row = dict(item)
        row["audio"] = {"bytes": _flac(row.pop("speech"), row["sampling_rate"]), "path": None}
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    table = datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio(decode=False))
    with _staged(path) as staging:
        table.save_to_disk(staging)


def save_lhotse(cuts: Any, directory: str | os.PathLike) -> None:
    """Write a ``CutSet`` as ``recordings``, ``supervisions`` and ``cuts`` ``.jsonl.gz``.

    The manifests point at the audio where the cuts do (files, or rows of a dataset that
    must stay where it is); :func:`save_huggingface` embeds the audio instead.

    Example:
        >>> save_lhotse(cuts, "data/shared/train")   # doctest: +SKIP
    """
    from lhotse import RecordingSet, SupervisionSet

    cuts = cuts.to_eager()
    recordings = RecordingSet.from_recordings(c.recording for c in cuts)
    supervisions = SupervisionSet.from_segments(s for c in cuts for s in c.supervisions)
    with _staged(directory) as staging:
        staging.mkdir()
        recordings.to_file(staging / "recordings.jsonl.gz")
        supervisions.to_file(staging / "supervisions.jsonl.gz")
        cuts.to_file(staging / LHOTSE_CUTS)


def _flac(speech: Any, sampling_rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, to_int16(speech), sampling_rate, format="FLAC")
    return buffer.getvalue()


class _staged:
    """A fresh path beside ``target``; renamed to ``target`` on success, removed on failure."""

    def __init__(self, target: str | os.PathLike):
        self.target = Path(target)
        if self.target.exists():
            raise Espnet3Error(
                f"{self.target} already exists: remove it or choose another path "
                "(shared datasets are never overwritten)"
            )

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.parent = Path(tempfile.mkdtemp(dir=self.target.parent, prefix=f".{self.target.name}."))
        return self.parent / "data"

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                os.rename(self.parent / "data", self.target)
        finally:
            shutil.rmtree(self.parent, ignore_errors=True)
