"""Write files so that readers see either the old content or the complete new one.

Everything espnet3 writes (manifests, results, specs) goes through these helpers: the data is
written to a temporary file in the same directory, flushed to disk, then renamed over the
target, which POSIX makes atomic. A crash leaves at most a stray ``.tmp`` file, never a
half-written target. A new file gets the mode ``open()`` gives under the umask (not a
temporary file's private 0o600); a replaced file keeps its mode.

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
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import time
from collections.abc import Iterable, Iterator
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


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


#: This host, as temporary names carry it (a hash: host names may hold any character).
_HOST_TAG = hashlib.blake2b(socket.gethostname().encode(), digest_size=4).hexdigest()
#: ``.<name>.<random>-<host>-<pid>.tmp``: whose temporary file it is.
_OWNED_TEMP = re.compile(r"\.[0-9a-f]{8}-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)\.tmp$")
#: A temporary file whose owner cannot be checked (another host's, an earlier format) is left
#: alone until nothing has written it for this long.
STALE_TEMP_SECONDS = 3600.0


def temp_name(path: str | os.PathLike) -> str:
    """A new temporary name beside ``path`` that says whose it is: ``.<name>.<random>-<host>-
    <pid>.tmp``, so a later run can tell one a killed process left (:func:`remove_stale_temps`).

    Example:
        >>> temp_name("/data/train.tsv").startswith("/data/.train.tsv.")
        True
    """
    head, name = os.path.split(os.fspath(path))
    return os.path.join(head, f".{name}.{os.urandom(4).hex()}-{_HOST_TAG}-{os.getpid()}.tmp")


def _create_temp(path: str) -> tuple[int, str]:
    """Create a new empty temporary file (:func:`temp_name`) beside ``path``, making its
    directory.

    The file gets the mode ``open()`` would give (0o666 less the umask), not mkstemp's private
    0o600, which would hide manifests from the rest of a project group.
    """
    head = os.path.dirname(path)
    for _ in range(100):
        tmp = temp_name(path)
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o666), tmp
        except FileNotFoundError:
            os.makedirs(head or ".", exist_ok=True)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path!r}")


def _keep_mode(path: str, tmp: str) -> None:
    """Give ``tmp`` the mode of the file ``path`` it replaces, so rewriting a file someone made
    group-writable (or private) keeps it so; a new file keeps the umask's mode it was made
    with."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if stat.S_IMODE(os.stat(tmp).st_mode) != mode:
        os.chmod(tmp, mode)


@contextlib.contextmanager
def _replacing(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """A new temporary file beside ``path``: its descriptor (the block closes it) and name.
    Renamed to ``path`` when the block succeeds, deleted when it fails."""
    path = os.fspath(path)
    fd, tmp = _create_temp(path)
    try:
        yield fd, tmp
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if err.filename is not None or err.errno is None:
            raise
        # os.write names no file: a full disk would say only "[Errno 28] No space left".
        raise type(err)(err.errno, err.strerror, path) from err
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
    binary = "b" in mode
    with _replacing(path) as (fd, _):
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = True) -> Iterator[str]:
    """A temporary path beside ``path``, for libraries that write a file by name (h5py,
    soundfile); renamed to ``path`` when the block succeeds, deleted when it fails.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_path(d / "x.bin", durable=False) as tmp:
        ...     _ = pathlib.Path(tmp).write_bytes(b"12")
        >>> (d / "x.bin").read_bytes(), len(list(d.iterdir()))
        (b'12', 1)
    """
    with _replacing(path) as (fd, tmp):
        os.close(fd)
        yield tmp
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def remove_stale_temps(directory: str | os.PathLike) -> int:
    """Delete what killed writers left in ``directory`` (temporary files and directories of
    :func:`temp_name`); how many. One whose owner still runs is kept, so this is safe beside
    a live writer: an owner on this host is checked by its pid, one elsewhere (or of an earlier
    format) counts as gone after :data:`STALE_TEMP_SECONDS` without a write.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> dead = 2**22 + 1   # above the largest pid Linux gives
        >>> _ = (d / f".out.jsonl.0a1b2c3d-{_HOST_TAG}-{dead}.tmp").write_text("half")
        >>> mine = pathlib.Path(temp_name(d / "mine.jsonl")); _ = mine.write_text("writing")
        >>> remove_stale_temps(d), [p.name for p in d.iterdir()] == [mine.name]
        (1, True)
    """
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(".tmp") and _stale(entry):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed += 1
    return removed


def _stale(entry: os.DirEntry) -> bool:
    owner = _OWNED_TEMP.search(entry.name)
    if owner is not None and owner["host"] == _HOST_TAG:
        try:
            os.kill(int(owner["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's live process
            return False
        return False
    try:
        return time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS
    except FileNotFoundError:
        return False


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path) as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open` for ``durable``).

    Written with plain ``os.write`` calls: this is the per-utterance path, where a Python file
    object per file costs more than the write itself.
    """
    with _replacing(path) as (fd, _):
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_jsonl(
    path: str | os.PathLike, records: Iterable[Any], *, durable: bool = True
) -> int:
    """Write one JSON document per line to ``path`` atomically; return the number of lines.

    A record that JSON cannot encode raises ``TypeError`` naming its type, and the target is
    left untouched. ``durable`` as for :func:`atomic_open`.
    """
    count = 0
    with atomic_open(path, durable=durable) as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
