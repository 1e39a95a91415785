"""Cut manifests written in parts where the cuts are made, combined and read lazily after.

A conversion of a large corpus never gathers its cuts in one process. Each chunk of rows is
written, by the worker that converted it, into ``DIR/parts/``:

- ``cuts.NNNNN.jsonl.gz``: the chunk's cuts, one JSON line each, as one gzip member written
  with ``mtime=0`` (equal cuts give equal bytes);
- ``cuts.NNNNN.json``: the part's record (rows read, cuts, the part's size, the bad rows, how
  many cuts use cached audio, digests of user-given ids), written after the part, so a part
  counts as done only once both are in place and the size matches.

Both are written beside their name and renamed into place, so a killed run leaves whole parts
(and temporary files that :func:`~espnet3.utils.atomic.remove_stale_temps` clears); a re-run
converts only the chunks without a done part. ``DIR/parts/settings.json`` records what the
parts were made with: parts of other settings are replaced, never mixed in.

``DIR/cuts.jsonl.gz`` is the parts' bytes concatenated in order, written aside and renamed:
a multi-member gzip file, which ``gzip`` and Lhotse read as one, made without decoding a cut.
Plain Lhotse reads it, or the parts, lazily (``CutSet.from_jsonl_lazy``, ``CutSet.from_files``).

Example:
    >>> import tempfile
    >>> from lhotse import CutSet, MonoCut
    >>> parts = ManifestParts(tempfile.mkdtemp(), {"rows_per_chunk": 2})
    >>> record = write_part(parts.directory, 0, [MonoCut("a", 0, 1, 0)], rows=1)
    >>> parts.done(0) == record, [c.id for c in CutSet.from_jsonl_lazy(parts.combine(1))]
    (True, ['a'])
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from espnet3.utils.atomic import atomic_open, atomic_write_json, remove_stale_temps

log = logging.getLogger(__name__)

#: The file a directory of Lhotse cuts holds: here, the parts combined.
LHOTSE_CUTS = "cuts.jsonl.gz"
#: Compression of the parts: zlib's default level, several times faster than gzip's 9.
COMPRESS_LEVEL = 6
_COPY_BYTES = 1 << 22


def part_name(number: int) -> str:
    """``cuts.NNNNN.jsonl.gz`` of chunk ``number``.

    Example:
        >>> part_name(7)
        'cuts.00007.jsonl.gz'
    """
    return f"cuts.{number:05d}.jsonl.gz"


def write_part(
    directory: str | os.PathLike,
    number: int,
    cuts: Iterable[Any],
    *,
    rows: int,
    failures: list[dict] | None = None,
    cached: int = 0,
    ids: bytes | None = None,
) -> dict[str, Any]:
    """Write part ``number`` (its cuts, then its record) into ``directory``; return the record.

    ``rows`` is how many rows the chunk read, ``failures`` its bad rows, ``cached`` how many of
    its cuts read audio from the cache, and ``ids`` the :func:`id_digests` of user-given ids.
    """
    path = Path(directory) / part_name(number)
    count = write_jsonl_gz(path, (cut.to_dict() for cut in cuts))
    record = {
        "number": number,
        "rows": rows,
        "cuts": count,
        "bytes": path.stat().st_size,
        "failures": failures or [],
        "cached": cached,
        "ids": None if ids is None else base64.b64encode(ids).decode(),
    }
    with atomic_open(_record_path(directory, number), durable=False) as f:
        json.dump(record, f)
    return record


def write_jsonl_gz(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Write ``records`` as JSON lines in one gzip member, atomically (not flushed to disk by
    itself: a rerun rewrites it); how many. Neither a time nor a file name goes into the gzip
    header, so equal records give equal bytes, and such files joined byte for byte
    (:func:`concatenate`) are one gzip file.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl.gz"
        >>> write_jsonl_gz(path, [{"id": "a"}]), gzip.decompress(path.read_bytes())
        (1, b'{"id": "a"}\\n')
    """
    count = 0
    with (
        atomic_open(path, "wb", durable=False) as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=COMPRESS_LEVEL
        ) as gz,
    ):
        for record in records:
            gz.write((json.dumps(record, ensure_ascii=False) + "\n").encode())
            count += 1
    return count


def concatenate(target: str | os.PathLike, parts: Iterable[str | os.PathLike]) -> None:
    """Write ``target`` atomically as the bytes of ``parts`` one after the other: gzip files
    joined so are one gzip file (nothing is decoded)."""
    with atomic_open(target, "wb") as out:
        for path in parts:
            with open(path, "rb") as part:
                shutil.copyfileobj(part, out, _COPY_BYTES)


def id_digests(ids: Iterable[str]) -> bytes:
    """8-byte digests of utterance ids, concatenated: what a part keeps to find duplicates.

    Example:
        >>> len(id_digests(["a", "b"]))
        16
    """
    return b"".join(hashlib.blake2b(i.encode(), digest_size=8).digest() for i in ids)


class ManifestParts:
    """The parts directory ``DIR/parts`` of a conversion with ``settings`` (JSON values).

    Opening it clears what killed writers left and, when the parts there were made with other
    settings, removes them (with a log line saying what changed).
    """

    def __init__(self, root: str | os.PathLike, settings: dict[str, Any]):
        self.root = Path(root).resolve()
        self.directory = self.root / "parts"
        self.directory.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.directory)
        remove_stale_temps(self.root)
        settings = json.loads(json.dumps(settings))
        stored = _read_json(self.directory / "settings.json")
        if stored != settings:
            if any(self.directory.glob("cuts.*.json")):
                changed = sorted(
                    k
                    for k in {*settings, *(stored or {})}
                    if (stored or {}).get(k) != settings.get(k)
                )
                log.warning(
                    "%s holds parts made with other settings (%s differ): converting again",
                    self.directory,
                    ", ".join(changed) or "its settings file is damaged",
                )
                shutil.rmtree(self.directory)
                self.directory.mkdir()
            atomic_write_json(self.directory / "settings.json", settings)

    def done(self, number: int) -> dict[str, Any] | None:
        """The record of part ``number`` when it is whole, else ``None`` (convert it again)."""
        record = _read_json(_record_path(self.directory, number))
        if not isinstance(record, dict) or record.get("number") != number:
            return None
        try:
            size = (self.directory / part_name(number)).stat().st_size
        except FileNotFoundError:
            return None
        return record if size == record.get("bytes") else None

    def paths(self, count: int) -> list[Path]:
        """The parts ``0..count-1``, in order."""
        return [self.directory / part_name(n) for n in range(count)]

    def combine(self, count: int) -> Path:
        """Write ``DIR/cuts.jsonl.gz``: parts ``0..count-1`` concatenated, renamed into place."""
        target = self.root / LHOTSE_CUTS
        concatenate(target, self.paths(count))
        return target


def whole_parts(root: str | os.PathLike) -> list[tuple[Path, int]] | None:
    """``(part, cuts in it)`` of the parts ``DIR/cuts.jsonl.gz`` was combined from, in order;
    ``None`` when ``root`` holds no parts or they no longer add up to that manifest (a part
    rewritten since, or the manifest written by something else).

    Example:
        >>> import tempfile
        >>> whole_parts(tempfile.mkdtemp()) is None
        True
    """
    root = Path(root)
    parts: list[tuple[Path, int]] = []
    total = 0
    try:
        while isinstance(record := _read_json(_record_path(root / "parts", len(parts))), dict):
            path = root / "parts" / part_name(len(parts))
            if path.stat().st_size != record["bytes"]:
                return None
            parts.append((path, record["cuts"]))
            total += record["bytes"]
        combined = (root / LHOTSE_CUTS).stat().st_size
    except (FileNotFoundError, KeyError, TypeError):
        return None
    return parts if parts and combined == total else None


def duplicate_digest(digests: Iterable[bytes]) -> int | None:
    """A digest that occurs more than once among parts' :func:`id_digests`, else ``None``.

    Holds 8 bytes per id, sorted as one array.

    Example:
        >>> duplicate_digest([id_digests(["a", "b"]), id_digests(["c"])]) is None
        True
        >>> duplicate_digest([id_digests(["a"]), id_digests(["a"])]) is not None
        True
    """
    arrays = [np.frombuffer(d, dtype=np.uint64) for d in digests if d]
    if not arrays:
        return None
    everything = np.sort(np.concatenate(arrays))
    same = np.flatnonzero(everything[1:] == everything[:-1])
    return int(everything[same[0]]) if len(same) else None


def ids_with_digest(cuts: Iterable[Any], digest: int) -> Iterator[str]:
    """The ids among ``cuts`` whose digest is ``digest`` (a lazy set is read once, streamed)."""
    for cut in cuts:
        if int(np.frombuffer(id_digests([cut.id]), dtype=np.uint64)[0]) == digest:
            yield cut.id


def decode_ids(record: dict[str, Any]) -> bytes:
    """The id digests a part's record holds (empty when its ids were row numbers)."""
    return base64.b64decode(record["ids"]) if record.get("ids") else b""


def _record_path(directory: str | os.PathLike, number: int) -> Path:
    return Path(directory) / f"cuts.{number:05d}.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
