"""stable_hash: one digest for the same work in every process, a different one for other work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from espnet3.utils.hashing import stable_hash

PARTS = ({"shards": [0, 1, 2], "root": "/exp/dump"}, "mini_an4", 4, None, 0.5)


def test_equal_in_another_process_with_another_hash_seed():
    """str hashes differ between processes (PYTHONHASHSEED); a rerun must find the same name."""
    code = (
        "from espnet3.utils.hashing import stable_hash\n"
        "print(stable_hash({'root': '/exp/dump', 'shards': [0, 1, 2]}, 'mini_an4', 4, None, 0.5))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert other.stdout.strip() == stable_hash(*PARTS)


def test_key_order_does_not_matter_but_content_and_position_do():
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert stable_hash({"a": 1, "b": 2}) != stable_hash({"a": 1, "b": 3})
    assert stable_hash("a", "b") != stable_hash("b", "a")
    assert stable_hash(["a", "b"]) != stable_hash("a", "b")


def test_objects_json_cannot_encode_enter_by_repr():
    assert stable_hash(Path("/exp/dump")) == stable_hash(repr(Path("/exp/dump")))
    assert stable_hash(Path("/a")) != stable_hash(Path("/b"))


def test_short_hex():
    digest = stable_hash(*PARTS)
    assert len(digest) == 16
    int(digest, 16)
