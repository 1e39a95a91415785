"""An exclusive lock between processes on one machine or a shared POSIX filesystem.

``fcntl.flock`` locks are released by the kernel when the holder exits or crashes, so a killed
build never leaves a lock that blocks the next run. The holder removes the lock file when it
releases it, so lock files do not pile up; a waiter that then holds the lock of a removed file
opens the path again.

Example:
    >>> import tempfile, pathlib
    >>> lock = pathlib.Path(tempfile.mkdtemp(), "build.lock")
    >>> with file_lock(lock):
    ...     print("only one process gets here at a time")
    only one process gets here at a time
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from espnet3.errors import Espnet3Error


@contextlib.contextmanager
def file_lock(
    path: str | os.PathLike, timeout: float | None = None, poll: float = 0.2
) -> Iterator[Path]:
    """Hold an exclusive lock on ``path`` (created if missing) for the duration of the block.

    ``timeout=None`` waits as long as it takes; otherwise :class:`Espnet3Error` is raised after
    ``timeout`` seconds, naming the lock file so the user can see who holds it
    (``fuser PATH``). The file is removed on release (see the module docstring).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _acquire(fd, path, timeout, deadline, poll)
            if _same_file(fd, path):  # else its holder removed it while we waited: again
                try:
                    yield path
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)  # still holding it: no one else can lock this inode
                    fcntl.flock(fd, fcntl.LOCK_UN)
                return
        finally:
            os.close(fd)


def _acquire(fd: int, path: Path, timeout: float | None, deadline: float | None, poll: float):
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise Espnet3Error(
                    f"lock {path} is still held by another process after {timeout:g} s: "
                    f"wait for it to finish, or find it with `fuser {path}`"
                ) from None
            time.sleep(poll)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False
