"""Audio read straight from a row of a Hugging Face dataset: no copy of the audio is made.

A cut made by :func:`~espnet3.data.hf_to_lhotse.cutset_from_huggingface` without an
``audio_dir`` keeps its row's encoded bytes where they are, in the dataset's arrow files. Its
source is a Lhotse ``url`` source naming the row::

    hf-row:<dataset>|<split>|<load_kwargs as JSON>|<fingerprint>|<column>|<row>.<extension>

(each part percent-encoded), which survives ``to_file`` and reads back lazily in any process
where :func:`install` ran: Lhotse opens ``url`` sources through its IO backend, and
:func:`install` puts :class:`DatasetRowIOBackend` in front of the backend in use (once per
process). Importing this module changes nothing; espnet3 installs it where such cuts are made
or read: :func:`~espnet3.data.hf_to_lhotse.cutset_from_huggingface` when its cuts name rows,
and :class:`~espnet3.data.dataset.ESPnet3Dataset` when it loads a cut that does
(:func:`install_for`). A process that reads such cuts with Lhotse alone calls
``espnet3.data.row_source.install()`` first. To share cuts with readers that have only Lhotse,
``to_file`` of the cuts :func:`~espnet3.data.hf_to_lhotse.cutset_from_huggingface` returns
(a :class:`~espnet3.data.sharing.RowCutSet`) and :func:`espnet3.data.sharing.save_lhotse` copy
the rows' audio to files next to the manifest (this process's cuts keep reading the rows). The
dataset's ``datasets`` fingerprint is part of the source: a dataset rewritten after the
conversion is refused on read instead of giving another row's audio.

Example:
    >>> url = row_url(Reference("/data/an4", "train"), "9f2c", "audio", 7, "flac")
    >>> url
    'hf-row:%2Fdata%2Fan4|train||9f2c|audio|7.flac'
    >>> parse_row_url(url)
    (Reference(path='/data/an4', split='train', load_kwargs=(), raw_audio=True), '9f2c', 'audio', 7)
"""

from __future__ import annotations

import io
import json
import os
import threading
from typing import Any
from urllib.parse import quote, unquote

from lhotse import AudioSource
from lhotse.serialization import (
    CompositeIOBackend,
    IOBackend,
    get_current_io_backend,
    set_current_io_backend,
)

from espnet3.data.hf_open import Reference, open_reference
from espnet3.errors import ConfigError, Espnet3Error

SCHEME = "hf-row:"
_COLUMNS: dict[tuple[Reference, str], Any] = {}  # per process: one audio column, opened once
_INSTALLING = threading.Lock()  # two DataLoader threads' first reads would wrap twice


def row_url(reference: Reference, fingerprint: str, column: str, row: int, extension: str) -> str:
    """The source string of ``column`` in row ``row`` of the referenced dataset split."""
    path, split, load_kwargs, _ = reference
    options = json.dumps(dict(load_kwargs), sort_keys=True) if load_kwargs else ""
    parts = (path, split or "", options, fingerprint, column)
    return SCHEME + "|".join(quote(part, safe="") for part in parts) + f"|{row}.{extension}"


def parse_row_url(url: str) -> tuple[Reference, str, str, int]:
    """``(reference, fingerprint, column, row)`` of a :func:`row_url` string."""
    try:
        path, split, options, fingerprint, column, last = url[len(SCHEME) :].split("|")
        row = int(last.split(".", 1)[0])
        load_kwargs = tuple(sorted(json.loads(unquote(options)).items())) if options else ()
    except ValueError:
        raise Espnet3Error(
            f"malformed dataset row source {url!r}: expected "
            "hf-row:<dataset>|<split>|<options>|<fingerprint>|<column>|<row>.<extension>"
        ) from None
    reference = Reference(unquote(path), unquote(split) or None, load_kwargs)
    return reference, unquote(fingerprint), unquote(column), row


def read_row_audio(url: str) -> bytes:
    """The encoded audio bytes a :func:`row_url` names (a file it names is read)."""
    reference, expected, column, row = parse_row_url(url)
    key = (reference, column)
    if key not in _COLUMNS:
        _COLUMNS[key] = _open_column(url, reference, expected, column)
    rows = _COLUMNS[key]
    if not 0 <= row < len(rows):
        raise Espnet3Error(
            f"{url}: row {row} is beyond the {len(rows)} rows of dataset {reference.path!r}: "
            "the dataset changed since the cuts were made"
        )
    value = rows[row][column]
    data = value.get("bytes") if isinstance(value, dict) else value
    if data is None and isinstance(value, dict) and value.get("path"):
        with open(value["path"], "rb") as f:
            return f.read()
    if not isinstance(data, bytes):
        raise Espnet3Error(f"{url}: the row holds no encoded audio ({type(value).__name__})")
    return data


def _open_column(url: str, reference: Reference, expected: str, column: str) -> Any:
    try:
        dataset = open_reference(reference)
    except ConfigError as exc:
        raise Espnet3Error(
            f"the dataset these cuts read their audio from cannot be opened ({exc}): put it "
            "back where it was, or convert again"
        ) from None
    if dataset._fingerprint != expected:
        raise Espnet3Error(
            f"{url}: dataset {reference.path!r} changed since the cuts were made (fingerprint "
            f"{dataset._fingerprint}, cuts made from {expected}): convert it again"
        )
    if column not in dataset.column_names:
        raise Espnet3Error(
            f"{url}: dataset {reference.path!r} has no column {column!r} (it has "
            f"{dataset.column_names}): the dataset changed since the cuts were made"
        )
    return dataset.select_columns([column])


class DatasetRowIOBackend(IOBackend):
    """Lhotse IO backend that opens ``hf-row:`` sources; anything else is not its business."""

    def open(self, identifier: str | os.PathLike, mode: str):
        if "r" not in mode:
            raise Espnet3Error(f"{identifier}: dataset rows are read-only")
        return io.BytesIO(read_row_audio(str(identifier)))

    def handles_special_case(self, identifier: str | os.PathLike) -> bool:
        return str(identifier).startswith(SCHEME)

    def is_applicable(self, identifier: str | os.PathLike) -> bool:
        return self.handles_special_case(identifier)


def install() -> None:
    """Put :class:`DatasetRowIOBackend` in front of Lhotse's current IO backend; once: a
    backend that already has it is left as it is.

    Example:
        >>> from lhotse.serialization import get_current_io_backend
        >>> install()
        >>> backend = get_current_io_backend()
        >>> install()
        >>> get_current_io_backend() is backend, type(backend.backends[0]).__name__
        (True, 'DatasetRowIOBackend')
    """
    with _INSTALLING:
        current = get_current_io_backend()
        if isinstance(current, CompositeIOBackend) and any(
            isinstance(backend, DatasetRowIOBackend) for backend in current.backends
        ):
            return
        set_current_io_backend(CompositeIOBackend([DatasetRowIOBackend(), current]))


def names_row(source: AudioSource) -> bool:
    """Whether ``source`` is a :func:`row_url` (audio read from a dataset row).

    Example:
        >>> names_row(AudioSource("url", [0], "hf-row:%2Fdata%2Fan4|train||9f2c|audio|7.flac"))
        True
        >>> names_row(AudioSource("file", [0], "/data/an4/u1.flac"))
        False
    """
    return source.type == "url" and source.source.startswith(SCHEME)


def install_for(cut: Any) -> None:
    """:func:`install` if loading ``cut``'s audio reads a dataset row, so that a process that
    reads only other audio keeps Lhotse's backend as it was.

    Example:
        >>> from lhotse import MonoCut, Recording
        >>> source = AudioSource("file", [0], "/data/an4/u1.flac")
        >>> recording = Recording("u1", [source], 16000, 16000, 1.0)
        >>> install_for(MonoCut("u1", 0.0, 1.0, 0, recording=recording))   # changes nothing
    """
    tracks = getattr(cut, "tracks", None)
    if tracks is not None:  # a MixedCut: the cuts it mixes
        for track in tracks:
            install_for(track.cut)
        return
    recording = getattr(cut, "recording", None)
    if recording is not None and any(names_row(source) for source in recording.sources):
        install()
