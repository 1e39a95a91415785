"""Download a file with resume, retries and a checksum, and publish it atomically.

Bytes go to ``.<name>.part`` beside the destination. An interrupted transfer (dropped
connection, killed process) resumes from the bytes already on disk with an HTTP ``Range``
request; a server that ignores ``Range`` simply sends the whole file again. The finished
file is checked against ``sha256`` before it is renamed to its final name, so the destination
either does not exist or is complete and verified.

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
from pathlib import Path

from espnet3.errors import Espnet3Error

log = logging.getLogger(__name__)

# Connection-level failures worth another attempt; HTTP errors such as 404 are not.
RETRYABLE = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


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
) -> Path:
    """Fetch ``url`` to ``dest`` unless a verified copy is already there; return ``dest``.

    Up to ``retries`` further attempts follow a connection failure, each resuming where the
    previous one stopped, ``backoff * 2**attempt`` seconds apart. A checksum mismatch is not
    retried: the partial file is deleted and :class:`Espnet3Error` names both digests.
    """
    dest = Path(dest)
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256.lower()):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, chunk_size)
            break
        except RETRYABLE as err:
            if isinstance(err, urllib.error.HTTPError) and err.code < 500:
                raise Espnet3Error(
                    f"downloading {url} failed: HTTP {err.code} {err.reason}; check the URL"
                ) from err
            if attempt == retries:
                raise Espnet3Error(
                    f"downloading {url} failed after {retries + 1} attempts ({err}); "
                    f"{part.stat().st_size if part.exists() else 0} bytes kept in {part}, "
                    "run again to resume"
                ) from err
            log.warning("download of %s interrupted (%s); resuming", url, err)
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


def _fetch(url: str, part: Path, timeout: float, chunk_size: int) -> None:
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
        written = 0
        with open(part, "ab" if resumed else "wb") as f:
            while chunk := response.read(chunk_size):
                f.write(chunk)
                written += len(chunk)
            f.flush()
            os.fsync(f.fileno())
    if expected is not None and written < int(expected):
        raise http.client.IncompleteRead(b"", int(expected) - written)
