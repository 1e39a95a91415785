"""Write files so that readers see either the old content or the complete new one.

Everything espnet3 writes (manifests, results, specs) goes through these helpers: the data is
written to a temporary file in the same directory, flushed to disk, then renamed over the
target, which POSIX makes atomic. A crash leaves at most a stray ``.tmp`` file, never a
half-written target.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_open(d / "list.txt") as f:
    ...     _ = f.write("a\\nb\\n")
    >>> (d / "list.txt").read_text()
    'a\\nb\\n'
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def plain_mode(base: int = 0o666) -> int:
    """The mode ``open()`` (``base`` 0o666) or ``mkdir()`` (0o777) gives under this umask.

    Example:
        >>> plain_mode(0o777) & 0o700
        448
    """
    return base & ~_UMASK


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike,
    mode: str = "w",
    encoding: str | None = "utf-8",
    *,
    durable: bool = True,
) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success rename it to ``path``, else delete it.

    ``durable=False`` skips the flush to disk before the rename: a killed process still never
    leaves a half-written target, but after a power loss the file may be empty. Use it only for
    bulk files a re-run rewrites identically (per-utterance audio); it saves a disk round trip
    per file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    binary = "b" in mode
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode open() would have given.
        os.fchmod(fd, plain_mode())
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path) as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open` for ``durable``)."""
    with atomic_open(path, "wb", durable=durable) as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Write one JSON document per line to ``path`` atomically; return the number of lines.

    A record that JSON cannot encode raises ``TypeError`` naming its type, and the target is
    left untouched.
    """
    count = 0
    with atomic_open(path) as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
