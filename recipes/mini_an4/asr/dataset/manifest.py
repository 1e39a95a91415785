"""The recipe's manifests: one ``utt_id<TAB>wav path<TAB>text<TAB>speaker`` line per utterance.

Wav paths are relative to the data directory that holds the manifests, so the directory can
be moved or mounted elsewhere as a whole.

Example:
    >>> import tempfile, pathlib
    >>> data_dir = pathlib.Path(tempfile.mkdtemp())
    >>> write_manifest(data_dir, "test", [ManifestEntry("s1-u1", "wav/test/s1-u1.wav", "HI", "s1")])
    >>> read_manifest(data_dir, "test")
    [ManifestEntry(utt_id='s1-u1', wav='wav/test/s1-u1.wav', text='HI', speaker='s1')]
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from espnet3.errors import Espnet3Error
from espnet3.utils.atomic import atomic_write_text

SPLITS = ("train", "valid", "test")


class ManifestEntry(NamedTuple):
    """One manifest line."""

    utt_id: str
    wav: str
    text: str
    speaker: str


def manifest_path(data_dir: str | Path, split: str) -> Path:
    """Where the manifest of ``split`` lives: ``DATA_DIR/SPLIT.tsv``."""
    if split not in SPLITS:
        raise Espnet3Error(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    return Path(data_dir) / f"{split}.tsv"


def write_manifest(data_dir: str | Path, split: str, entries: Iterable[ManifestEntry]) -> None:
    """Write the manifest of ``split`` atomically."""
    lines = []
    for entry in entries:
        if any(c in field for field in entry for c in "\t\n"):
            raise Espnet3Error(f"utterance {entry.utt_id}: tabs and newlines cannot be stored")
        lines.append("\t".join(entry) + "\n")
    atomic_write_text(manifest_path(data_dir, split), "".join(lines))


def read_manifest(data_dir: str | Path, split: str) -> list[ManifestEntry]:
    """Read the manifest of ``split``; a missing or malformed file raises a clear error."""
    path = manifest_path(data_dir, split)
    if not path.is_file():
        raise Espnet3Error(
            f"manifest {path} does not exist: run `espnet3 create-dataset` on the recipe first"
        )
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) != len(ManifestEntry._fields):
            raise Espnet3Error(
                f"{path}:{number}: expected 4 tab-separated fields (utt_id, wav, text, speaker), "
                f"got {len(fields)}: rebuild the data directory (espnet3 create-dataset)"
            )
        entries.append(ManifestEntry(*fields))
    return entries
