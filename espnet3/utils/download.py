"""Download a file with resume, retries and a checksum, and publish it atomically.

Bytes go to ``.<name>.part`` beside the destination. An interrupted transfer (dropped
connection, killed process) resumes from the bytes already on disk with an HTTP ``Range``
request, but only as a continuation of the very file it started: ``If-Range`` carries the
ETag (else Last-Modified) of the first answer, kept in ``.<name>.part.json``, and the answer's
``Content-Range`` must start where the part ends, in a file of the same length. A server that
has a new version (or ignores ``Range``) sends the whole file, which replaces the part; a part
nothing identifies is not resumed. The finished
file is checked against ``sha256`` before it is renamed to its final name, so the destination
either does not exist or is complete and verified. ``progress`` is told the bytes on disk after
every chunk; :class:`DownloadProgress` logs them as percentages.

Example:
    >>> download("https://example.org/an4.tar.gz", "/data/an4.tar.gz",
    ...          sha256="0f3c...")   # doctest: +SKIP
    PosixPath('/data/an4.tar.gz')
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, Espnet3Error
from espnet3.utils.atomic import atomic_write_json

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
    with contextlib.suppress(FileNotFoundError):
        _state_path(part).unlink()
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
    """Fetch ``url`` into ``part``, resuming it only when the server proves it is the same file."""
    have = part.stat().st_size if part.exists() else 0
    known = _validator(part, url) if have else None
    headers = {"Range": f"bytes={have}-", "If-Range": known["if_range"]} if known else {}
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as err:
        if err.code != 416 or known is None:
            raise
        if _range_total(err.headers.get("Content-Range")) == have == known.get("length"):
            return  # nothing after `have`, and the server says the file is `have` bytes long
        _start_over(part, "the server's file is shorter than the part kept")
        return _fetch(url, part, timeout, chunk_size, progress)
    with response:
        resumed = response.status == 206
        if resumed and known is None:
            raise Espnet3Error(
                f"downloading {url}: the server sent part of the file (HTTP 206) to a request "
                "for all of it; try another mirror"
            )
        if resumed and not _continues(response.headers.get("Content-Range"), have, known):
            _start_over(part, "the server answered a resume with another range")
            return _fetch(url, part, timeout, chunk_size, progress)
        if not resumed:
            _remember(part, url, response.headers)
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


def _state_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _remember(part: Path, url: str, headers: Any) -> None:
    """Keep what identifies the file being fetched (its ETag, else its Last-Modified, and its
    length), so that a later resume can ask the server for this very file (``If-Range``)."""
    if_range = headers.get("ETag") or headers.get("Last-Modified")
    length = headers.get("Content-Length")
    state = {"url": url, "if_range": if_range, "length": int(length) if length else None}
    atomic_write_json(_state_path(part), state)


def _validator(part: Path, url: str) -> dict[str, Any] | None:
    """What identifies the file ``part`` holds the start of, or ``None`` when nothing does
    (then the download starts again: a part of unknown origin cannot be trusted)."""
    try:
        state = json.loads(_state_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = None
    if not isinstance(state, dict) or state.get("url") != url or not state.get("if_range"):
        _start_over(part, "nothing identifies the file it was part of")
        return None
    return state


def _continues(content_range: str | None, have: int, known: dict[str, Any] | None) -> bool:
    """Whether a 206 answer's ``Content-Range`` starts at ``have`` of a file as long as the
    one the part came from."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", (content_range or "").strip())
    if match is None or known is None or int(match.group(1)) != have:
        return False
    total = match.group(3)
    return known.get("length") is None or total == "*" or int(total) == known["length"]


def _range_total(content_range: str | None) -> int | None:
    """The length in a 416 answer's ``Content-Range: bytes */LENGTH``."""
    match = re.fullmatch(r"bytes \*/(\d+)", (content_range or "").strip())
    return int(match.group(1)) if match else None


def _start_over(part: Path, why: str) -> None:
    if part.exists():
        log.warning("not resuming %s: %s; downloading it again", part, why)
    for path in (part, _state_path(part)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
