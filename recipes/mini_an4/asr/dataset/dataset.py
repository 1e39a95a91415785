"""The mini AN4 dataset: items ``{utt_id, speech, text, speaker}`` read from a built data
directory.

Example:
    >>> ds = Dataset(split="test", data_dir="recipes/mini_an4/asr/data")   # doctest: +SKIP
    >>> item = ds[0]
    >>> item["utt_id"], item["speaker"], item["speech"].dtype, item["text"]
    ('fcaw-cen8-b', 'fcaw', dtype('float32'), 'ELEVEN TWENTY SEVEN FIFTY SEVEN')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .manifest import ManifestEntry, read_manifest


class Dataset:
    """One split of a data directory written by this recipe's ``DatasetBuilder``.

    ``speech`` is a float32 array in [-1, 1) at 16 kHz. The manifest is read once, at
    construction; audio is read on access, so the dataset is cheap to pickle to workers.
    """

    def __init__(self, split: str, data_dir: str | os.PathLike):
        self.split = split
        self.data_dir = Path(data_dir)
        self.entries = read_manifest(self.data_dir, split)

    def __len__(self) -> int:
        return len(self.entries)

    def uids(self) -> list[str]:
        """Utterance ids in item order: the ids ``DataOrganizer`` batches carry."""
        return [entry.utt_id for entry in self.entries]

    def __getitem__(self, idx: int) -> dict[str, Any]:
        return read_item(self.data_dir, self.entries[idx])


def read_item(data_dir: Path, entry: ManifestEntry) -> dict[str, Any]:
    """The item of one manifest entry, its audio read now."""
    import soundfile

    speech, _ = soundfile.read(data_dir / entry.wav, dtype="float32")
    return {
        "utt_id": entry.utt_id,
        "speech": speech,
        "text": entry.text,
        "speaker": entry.speaker,
    }
