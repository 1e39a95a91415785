"""Download the archive once and check its SHA-256.

Example:
    >>> import tempfile, pathlib, hashlib
    >>> path = pathlib.Path(tempfile.mkdtemp(), "a.bin"); _ = path.write_bytes(b"abc")
    >>> verify_sha256(path, hashlib.sha256(b"abc").hexdigest())
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from pathlib import Path

from espnet3.errors import Espnet3Error
from espnet3.utils.atomic import atomic_open


def verify_sha256(path: Path, expected: str) -> None:
    """Raise :class:`Espnet3Error` unless the SHA-256 of ``path`` is ``expected``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected.lower():
        raise Espnet3Error(
            f"{path} has SHA-256 {digest.hexdigest()}, expected {expected}: the file is corrupt "
            "or another version; replace it, or set create_dataset.sha256=null to skip the check"
        )


def download_file(url: str, path: Path, sha256: str | None) -> Path:
    """Download ``url`` to ``path`` (atomically, checked) unless a checked copy is there."""
    if not path.is_file():
        try:
            with urllib.request.urlopen(url, timeout=60) as response, atomic_open(path, "wb") as f:
                shutil.copyfileobj(response, f)
        except OSError as err:
            raise Espnet3Error(
                f"cannot download {url}: {err}; download it by hand and pass "
                "create_dataset.archive=PATH"
            ) from None
    if sha256 is not None:
        verify_sha256(path, sha256)
    return path
