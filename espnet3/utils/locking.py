"""An exclusive lock between processes on one machine or a shared POSIX filesystem.

``fcntl.flock`` locks are released by the kernel when the holder exits or crashes, so a killed
build never leaves a lock that blocks the next run.

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
    (``fuser PATH``). The lock file itself is left in place: deleting it while another process
    waits on it would let a third process lock a different inode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if deadline is None else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Espnet3Error(
                        f"lock {path} is still held by another process after {timeout:g} s: "
                        f"wait for it to finish, or find it with `fuser {path}`"
                    ) from None
                time.sleep(poll)
        try:
            yield path
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
