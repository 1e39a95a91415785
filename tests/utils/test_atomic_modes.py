"""Modes of the files the atomic writers leave: the umask's for a new file, the old file's for
one they replace (never the 0600 of a private temporary file)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from espnet3.utils.atomic import atomic_path, atomic_write_bytes, atomic_write_text


def write_by_path(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


WRITERS: dict[str, Callable[[Path, bytes], None]] = {
    "text": lambda path, data: atomic_write_text(path, data.decode()),
    "bytes": atomic_write_bytes,
    "path": write_by_path,
}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_a_new_file_gets_the_umasks_mode(tmp_path, writer, umask, expected):
    old = os.umask(umask)
    try:
        WRITERS[writer](tmp_path / "out", b"data")
    finally:
        os.umask(old)
    assert mode(tmp_path / "out") == expected
    assert (tmp_path / "out").read_bytes() == b"data"


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_replaced_file_keeps_its_mode(tmp_path, writer):
    target = tmp_path / "out"
    target.write_bytes(b"old")
    target.chmod(0o640)
    old = os.umask(0o022)
    try:
        WRITERS[writer](target, b"new")
    finally:
        os.umask(old)
    assert (mode(target), target.read_bytes()) == (0o640, b"new")
