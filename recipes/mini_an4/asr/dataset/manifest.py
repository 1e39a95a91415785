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

from collections.abc import Iterable, Iterator
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
    path = _existing(data_dir, split)
    return [
        _entry(f"{path}:{number}", line)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
    ]


def scan_manifest(data_dir: str | Path, split: str) -> Iterator[tuple[int, ManifestEntry]]:
    """``(byte offset, entry)`` of every line, read one line at a time: a corpus of any size
    is walked in constant memory, and a line can be found again by its offset
    (:func:`read_entries`)."""
    path = _existing(data_dir, split)
    offset = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            yield offset, _entry(f"{path}:{number}", _decoded(line))
            offset += len(line)


def read_entries(
    data_dir: str | Path, split: str, offset: int, count: int, first: int
) -> list[ManifestEntry]:
    """The ``count`` entries from byte ``offset`` on (fewer at the end of the file); ``first``
    is the index of the first, for error messages."""
    path = _existing(data_dir, split)
    entries = []
    with open(path, "rb") as f:
        f.seek(offset)
        for number, line in zip(range(first + 1, first + 1 + count), f, strict=False):
            entries.append(_entry(f"{path}:{number}", _decoded(line)))
    return entries


def sample_entries(data_dir: str | Path, split: str, count: int) -> list[ManifestEntry]:
    """Up to ``count`` entries spread evenly over the file (the first line starting at or
    after each of ``count`` equally spaced bytes): only those lines are read, whatever the
    size of the manifest, and the same file always gives the same sample."""
    path = _existing(data_dir, split)
    size = path.stat().st_size
    entries = {}
    with open(path, "rb") as f:
        for k in range(count):
            probe = k * size // count
            f.seek(max(probe - 1, 0))
            if probe:
                f.readline()  # the rest of the line holding byte probe - 1
            offset, line = f.tell(), f.readline()
            if line and offset not in entries:
                entries[offset] = _entry(f"{path} (byte {offset})", _decoded(line))
    return list(entries.values())


def _existing(data_dir: str | Path, split: str) -> Path:
    path = manifest_path(data_dir, split)
    if not path.is_file():
        raise Espnet3Error(
            f"manifest {path} does not exist: run `espnet3 create-dataset` on the recipe first"
        )
    return path


def _decoded(line: bytes) -> str:
    """A line read in binary, without its line end."""
    return line.decode("utf-8").removesuffix("\n").removesuffix("\r")


def _entry(where: str, line: str) -> ManifestEntry:
    fields = line.split("\t")
    if len(fields) != len(ManifestEntry._fields):
        raise Espnet3Error(
            f"{where}: expected 4 tab-separated fields (utt_id, wav, text, speaker), "
            f"got {len(fields)}: rebuild the data directory (espnet3 create-dataset)"
        )
    return ManifestEntry(*fields)
