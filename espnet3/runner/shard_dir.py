"""A shard's directory (``split.N``): who is running it (``lock``) and whether it is done (``done``).

**lock.** A process that runs a shard *claims* it first: it creates ``split.N/lock`` (written in
full, then linked into place, so nobody ever reads half a lock) naming its host and pid, and
holds an ``flock`` on it while it runs. The kernel drops that ``flock`` when the process dies,
however it dies, so a later claimer on the same host can tell a live claim from one a
``kill -9`` left behind and takes the latter over. A claim made on another host cannot be
checked that way; its holder refreshes the lock's time every :data:`HEARTBEAT_SECONDS`, and a
lock not refreshed for :data:`STALE_SECONDS` is taken over. A lock espnet3 did not write (an
earlier ESPnet3, a person) is never taken over: the error names the file to delete.

**done.** Written last, atomically, once every output of the shard is closed. It records the
size, time and sha256 of each file in the shard directory, so a shard whose output was
truncated, removed or rewritten afterwards no longer counts as done (:func:`not_done_because`
names the file); a ``done`` that records nothing (written by another tool) is trusted, as
upstream ESPnet3 trusts it.

Example:
    >>> import tempfile, pathlib
    >>> shard = pathlib.Path(tempfile.mkdtemp()) / "split.0"
    >>> claim = ShardClaim.take(shard)
    >>> _ = (shard / "text").write_text("a b\\n")
    >>> mark_done(shard); claim.release()
    >>> is_done(shard), (shard / "lock").exists()
    (True, False)
    >>> _ = (shard / "text").write_text("a")       # damaged after the fact
    >>> is_done(shard)
    False
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from espnet3.errors import SetupError
from espnet3.utils.atomic import atomic_write_json

LOCK = "lock"
DONE = "done"
#: How often a running claim refreshes its lock's time (for claimers on other hosts).
HEARTBEAT_SECONDS = 60.0
#: A claim from another host whose lock was not refreshed for this long is taken over.
STALE_SECONDS = 600.0
#: Files of a shard directory that are not its output.
BOOKKEEPING = frozenset({LOCK, DONE})
_HOST = socket.gethostname()


class ShardLocked(SetupError):
    """Another live process holds the shard (also a ``RuntimeError``, as upstream raises)."""


def lock_path(shard_dir: str | os.PathLike) -> Path:
    """``<shard_dir>/lock``."""
    return Path(shard_dir) / LOCK


def done_path(shard_dir: str | os.PathLike) -> Path:
    """``<shard_dir>/done``."""
    return Path(shard_dir) / DONE


class ShardClaim:
    """This process's claim on one shard directory; :meth:`release` (or exit) ends it."""

    def __init__(self, shard_dir: Path, fd: int):
        self.shard_dir, self.path, self._fd = shard_dir, lock_path(shard_dir), fd
        _HEARTBEAT.add(self)

    @classmethod
    def take(cls, shard_dir: str | os.PathLike, overwrite: bool = False) -> ShardClaim:
        """Claim ``shard_dir`` (created if missing), taking over a claim whose holder is gone;
        :class:`ShardLocked` when a live process (or a lock espnet3 cannot judge) holds it.

        ``overwrite`` (``parallel.allow_overwrite_lock``) also takes over the locks espnet3
        cannot judge: another tool's, and another host's not yet stale. A holder on this host
        that provably still runs is never overridden.
        """
        shard_dir = Path(shard_dir)
        shard_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # another claimer may take over or release between two looks
            fd = _create_locked(shard_dir)
            if fd is not None:
                return cls(shard_dir, fd)
            fd = _take_over(shard_dir, overwrite)
            if fd is not None:
                return cls(shard_dir, fd)
        raise ShardLocked(_locked_message(shard_dir))

    def refresh(self) -> None:
        """Mark the claim alive for claimers on other hosts."""
        with contextlib.suppress(OSError):
            os.utime(self.path)

    def release(self) -> None:
        """Remove the lock (when it is still this claim's) and drop the ``flock``."""
        if self._fd is None:
            return
        _HEARTBEAT.discard(self)
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(self._fd), os.stat(self.path)):
                os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> ShardClaim:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _owner() -> dict[str, Any]:
    return {"by": "espnet3", "host": _HOST, "pid": os.getpid(), "since": time.time()}


def _create_locked(shard_dir: Path) -> int | None:
    """A new lock, written and ``flock``-ed before it appears; ``None`` when one exists."""
    tmp = shard_dir / f".{LOCK}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, (json.dumps(_owner()) + "\n").encode())
        try:
            os.link(tmp, lock_path(shard_dir))
        except FileExistsError:
            os.close(fd)
            return None
        return fd
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _take_over(shard_dir: Path, overwrite: bool) -> int | None:
    """The existing lock, now held by this process, when its holder is gone (or cannot be
    checked, with ``overwrite``); else ``None``."""
    path = lock_path(shard_dir)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None  # released meanwhile: create it again
    owner = _read_owner(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None  # a live holder on a filesystem that shares flocks
    local = owner is not None and owner.get("host") == _HOST
    gone = local or overwrite or (owner is not None and _age(fd) > STALE_SECONDS)
    if not gone or not _same_file(fd, path):
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(_owner()) + "\n").encode(), 0)
    os.utime(path)
    return fd


def holder(shard_dir: str | os.PathLike) -> dict[str, Any] | None:
    """Who holds the shard now (the lock's owner record, ``{}`` for a foreign lock); ``None``
    when nobody does (no lock, or one whose holder is gone). Only looks: takes nothing over.

    Example:
        >>> import tempfile
        >>> holder(tempfile.mkdtemp()) is None
        True
    """
    try:
        fd = os.open(lock_path(shard_dir), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        owner = _read_owner(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return owner or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        if owner is None:
            return {}
        if owner.get("host") == _HOST or _age(fd) > STALE_SECONDS:
            return None
        return owner
    finally:
        os.close(fd)


def _read_owner(fd: int) -> dict[str, Any] | None:
    """The lock's owner when espnet3 wrote it, else ``None`` (an empty or foreign lock)."""
    with contextlib.suppress(OSError, ValueError):
        owner = json.loads(os.pread(fd, 4096, 0))
        if isinstance(owner, dict) and owner.get("by") == "espnet3":
            return owner
    return None


def _age(fd: int) -> float:
    return time.time() - os.fstat(fd).st_mtime


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _locked_message(shard_dir: Path) -> str:
    """Upstream's "Shard is already locked by another runner", with who holds it and what to do."""
    path = lock_path(shard_dir)
    head = f"Shard is already locked by another runner: {shard_dir}"
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return f"{head} (the lock kept changing hands): run again"
    try:
        owner, age = _read_owner(fd), _age(fd)
    finally:
        os.close(fd)
    if owner is None:
        return (
            f"{head}. Its lock {path} was not written by espnet3, so whether its process still "
            "runs cannot be checked: if no run of this shard is going on, delete that file (or "
            "set parallel.allow_overwrite_lock: true) and run again"
        )
    return (
        f"{head}: pid {owner.get('pid')} on host {owner.get('host')} holds it (lock refreshed "
        f"{age:.0f} s ago). Wait for that run to finish; it is taken over by itself "
        f"{STALE_SECONDS:.0f} s after that process stops refreshing it"
    )


# ----- done ---------------------------------------------------------------------------------
def outputs(shard_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``{name: {"size", "mtime_ns", "sha256"}}`` of the shard's output files (top level,
    bookkeeping and temps left out)."""
    found = {}
    with os.scandir(shard_dir) as entries:
        for entry in entries:
            name = entry.name
            if name in BOOKKEEPING or (name.startswith(".") and name.endswith(".tmp")):
                continue
            if entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                found[name] = {
                    "size": info.st_size,
                    "mtime_ns": info.st_mtime_ns,
                    "sha256": _sha256(entry.path),
                }
    return found


def mark_done(shard_dir: str | os.PathLike) -> None:
    """Record the shard as done, with the size, time and checksum of each of its output files
    (atomically, last)."""
    atomic_write_json(done_path(shard_dir), {"files": outputs(shard_dir)})


def clear_done(shard_dir: str | os.PathLike) -> None:
    """Forget that the shard was done (it is about to run again)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(done_path(shard_dir))


def is_done(shard_dir: str | os.PathLike) -> bool:
    """Whether the shard is done and its files are still what its ``done`` recorded."""
    return not_done_because(shard_dir) is None


def not_done_because(shard_dir: str | os.PathLike) -> str | None:
    """Why the shard does not count as done (``None``: it does).

    Every file ``done`` records must have its size; one whose time changed must also have its
    checksum (so the check reads a file only when something touched it). A ``done`` of sizes
    only (earlier espnet3) is checked by size.
    """
    try:
        text = done_path(shard_dir).read_text(encoding="utf-8")
    except FileNotFoundError:
        return "it has no done marker"
    except (OSError, ValueError):  # unreadable, or not text
        return f"its done marker {done_path(shard_dir)} is unreadable"
    try:
        record = json.loads(text)
    except ValueError:  # empty: upstream's marker, trusted; garbled: not done
        return None if not text.strip() else f"its done marker {done_path(shard_dir)} is garbled"
    if not isinstance(record, dict) or not isinstance(record.get("files"), dict):
        return f"its done marker {done_path(shard_dir)} records no files"
    for name, recorded in record["files"].items():
        path = Path(shard_dir) / name
        recorded = recorded if isinstance(recorded, dict) else {"size": recorded}
        try:
            info = os.stat(path)
        except OSError:
            return f"{path} is gone"
        if info.st_size != recorded.get("size"):
            return f"{path} is {info.st_size} bytes, {recorded.get('size')} when it was done"
        if "sha256" in recorded and info.st_mtime_ns != recorded.get("mtime_ns"):
            if _sha256(path) != recorded["sha256"]:
                return f"{path} changed after it was done (its checksum differs)"
    return None


def _sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ----- heartbeat ----------------------------------------------------------------------------
class _Heartbeat:
    """One daemon thread that refreshes every claim this process holds."""

    def __init__(self) -> None:
        self._claims: weakref.WeakSet[ShardClaim] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, claim: ShardClaim) -> None:
        with self._lock:
            self._claims.add(claim)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="espnet3-shard-heartbeat")
                self._thread.daemon = True
                self._thread.start()

    def discard(self, claim: ShardClaim) -> None:
        with self._lock:
            self._claims.discard(claim)

    def _run(self) -> None:
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            with self._lock:
                claims = list(self._claims)
            for claim in claims:
                claim.refresh()


_HEARTBEAT = _Heartbeat()
