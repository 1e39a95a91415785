"""Audio read straight from a row of a Hugging Face dataset: no copy of the audio is made.

A cut made by :func:`~espnet3.data.hf_to_lhotse.cutset_from_huggingface` without an
``audio_dir`` keeps its row's encoded bytes where they are, in the dataset's arrow files. Its
source is a Lhotse ``url`` source naming the row::

    hf-row:<dataset>|<split>|<load_kwargs as JSON>|<fingerprint>|<column>|<row>.<extension>

(each part percent-encoded), which survives ``to_file`` and reads back lazily in any process:
Lhotse opens ``url`` sources through its IO backend, and importing this module (which
``espnet3.data.hf_to_lhotse`` and ``espnet3.data.dataset`` do) puts
:class:`DatasetRowIOBackend` in front of the backend that was in use. A process that reads such
cuts with Lhotse alone needs ``import espnet3.data.row_source`` first. To share cuts with
readers that have only Lhotse, ``to_file`` of the cuts :func:`~espnet3.data.hf_to_lhotse.cutset_from_huggingface` returns
(a :class:`~espnet3.data.sharing.RowCutSet`) and :func:`espnet3.data.sharing.save_lhotse` copy
the rows' audio to files next to the manifest (this process's cuts keep reading the rows). The dataset's
``datasets`` fingerprint is part of the source: a dataset rewritten after the conversion is
refused on read instead of giving another row's audio.

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
from typing import Any
from urllib.parse import quote, unquote

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
    """Put :class:`DatasetRowIOBackend` in front of Lhotse's current IO backend (once)."""
    current = get_current_io_backend()
    if isinstance(current, CompositeIOBackend) and any(
        isinstance(backend, DatasetRowIOBackend) for backend in current.backends
    ):
        return
    set_current_io_backend(CompositeIOBackend([DatasetRowIOBackend(), current]))


install()
