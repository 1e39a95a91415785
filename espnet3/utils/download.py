"""Download a file with resume, retries and a checksum, and publish it atomically.

Bytes go to ``.<name>.part`` beside the destination. An interrupted transfer (dropped
connection, killed process) resumes from the bytes already on disk with an HTTP ``Range``
request; a server that ignores ``Range`` simply sends the whole file again. The finished
file is checked against ``sha256`` before it is renamed to its final name, so the destination
either does not exist or is complete and verified. ``progress`` is told the bytes on disk after
every chunk; :class:`DownloadProgress` logs them as percentages.

Example:
    >>> download("https://example.org/an4.tar.gz", "/data/an4.tar.gz",
    ...          sha256="0f3c...")   # doctest: +SKIP
    PosixPath('/data/an4.tar.gz')
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from espnet3.errors import ConfigError, Espnet3Error

log = logging.getLogger(__name__)

# Connection-level failures worth another attempt; HTTP errors such as 404 are not.
RETRYABLE = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)

#: Called as ``progress(bytes_done, bytes_total)``; the total is ``None`` when the server
#: does not say.
Progress = Callable[[int, int | None], None]


@dataclass
class DownloadProgress:
    """Log a download's progress each time it crosses another ``step_percent`` percent.

    ``update`` is the ``progress`` callback of :func:`download`; calling the object itself
    takes ``urllib.request.urlretrieve``'s ``reporthook`` arguments. ``logger=None`` logs to
    this module's logger.

    Example:
        >>> progress = DownloadProgress(logger=None, name="an4.tar.gz", step_percent=50)
        >>> progress.update(0, 2_000_000)          # logs "Downloading an4.tar.gz: 0% (...)"
        >>> progress.update(1_200_000, 2_000_000)  # logs 60%
        >>> progress.update(1_900_000, 2_000_000)  # still past 50%: nothing
    """

    logger: logging.Logger | None
    name: str
    step_percent: int = 5
    _last_step: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.step_percent, bool) or not 1 <= self.step_percent <= 100:
            raise ConfigError(
                f"step_percent must be a whole percentage from 1 to 100, got {self.step_percent!r}"
            )

    def update(self, done: int, total: int | None) -> None:
        """Log ``done`` of ``total`` bytes if that is a new step (once if ``total`` is unknown)."""
        logger = self.logger or log
        if not total or total <= 0:
            if self._last_step is None:
                self._last_step = -1
                logger.info("Downloading %s: size unknown, %s so far", self.name, _mb(done))
            return
        percent = min(100, done * 100 // total)
        step = percent // self.step_percent
        if step != self._last_step:
            self._last_step = step
            logger.info("Downloading %s: %d%% (%s / %s)", self.name, percent, _mb(done), _mb(total))

    def __call__(self, block_num: int, block_size: int, total_size: int) -> None:
        """``urlretrieve``'s reporthook: ``block_num`` blocks of ``block_size`` bytes so far."""
        self.update(block_num * block_size, total_size)


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}MB"


def sha256_of(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The hex SHA-256 of the file at ``path``.

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as f:
        ...     sha256_of(f.name)[:12]
        'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 1.0,
    chunk_size: int = 1 << 20,
    progress: Progress | None = None,
    hint: str = "",
) -> Path:
    """Fetch ``url`` to ``dest`` unless a verified copy is already there; return ``dest``.

    Up to ``retries`` further attempts follow a connection failure, each resuming where the
    previous one stopped, ``backoff * 2**attempt`` seconds apart. A checksum mismatch is not
    retried: the partial file is deleted and :class:`Espnet3Error` names both digests.
    ``progress(done, total)`` is called as bytes arrive, counting those kept from before.
    ``hint`` ends the message of a download that fails (e.g. how to give a local copy).
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256.lower()):
        log.info("%s is already downloaded; not fetching %s again", dest, url)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, chunk_size, progress)
            break
        except RETRYABLE as err:
            if isinstance(err, urllib.error.HTTPError) and err.code < 500:
                raise Espnet3Error(
                    f"downloading {url} failed: HTTP {err.code} {err.reason}; check the URL"
                ) from err
            kept = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                if kept:
                    what = f"{kept} bytes kept in {part}: run again to resume"
                else:
                    what = "nothing was received: check the network (or proxy)"
                raise Espnet3Error(
                    f"downloading {url} failed after {retries + 1} attempts ({_reason(err)}); "
                    f"{what}{hint}"
                ) from err
            if kept:
                log.warning("download of %s interrupted (%s); resuming", url, _reason(err))
            else:
                log.warning("cannot download %s (%s); trying again", url, _reason(err))
            time.sleep(backoff * 2**attempt)
    if sha256 is not None:
        actual = sha256_of(part)
        if actual != sha256.lower():
            part.unlink()
            raise Espnet3Error(
                f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {actual}; "
                "the file was deleted. Check the expected checksum or the mirror"
            )
    os.replace(part, dest)
    return dest


def _reason(err: BaseException) -> str:
    """``URLError``'s own reason (a DNS failure, a refused connection), else the error."""
    return str(getattr(err, "reason", None) or err)


def _fetch(
    url: str, part: Path, timeout: float, chunk_size: int, progress: Progress | None
) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code != 416:  # 416: nothing left after `have`, i.e. the part is complete
            raise
        return
    with response:
        resumed = response.status == 206
        expected = response.headers.get("Content-Length")
        kept = have if resumed else 0
        total = kept + int(expected) if expected is not None else None
        written = 0
        with open(part, "ab" if resumed else "wb") as f:
            if progress is not None:
                progress(kept, total)
            while chunk := response.read(chunk_size):
                f.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(kept + written, total)
            f.flush()
            os.fsync(f.fileno())
    if expected is not None and written < int(expected):
        raise http.client.IncompleteRead(b"", int(expected) - written)
