"""file_lock: exclusive between processes, released when the holder dies."""

from __future__ import annotations

import subprocess
import sys

import pytest

from espnet3.errors import Espnet3Error
from espnet3.utils.locking import file_lock

HOLD = "import sys, time; from espnet3.utils.locking import file_lock\nwith file_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)\n"


def test_lock_held_by_another_process_times_out_then_frees_when_it_dies(tmp_path):
    lock = tmp_path / "locks" / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            Espnet3Error,
            match=f"lock {lock} is still held by another process after 0.3 s.*fuser {lock}",
        ):
            with file_lock(lock, timeout=0.3):
                pass
    finally:
        holder.kill()
        holder.wait()
    with file_lock(lock, timeout=30) as path:
        assert path == lock


def test_lock_is_reentrant_after_release_and_its_file_is_removed(tmp_path):
    with file_lock(tmp_path / "a.lock", timeout=0):
        pass
    assert not (tmp_path / "a.lock").exists()
    with file_lock(tmp_path / "a.lock", timeout=0):
        assert (tmp_path / "a.lock").exists()
    assert not (tmp_path / "a.lock").exists()


WAIT_THEN_HOLD = (
    "import sys, time; from espnet3.utils.locking import file_lock\n"
    "with file_lock(sys.argv[1], timeout=60):\n"
    "    print('held', flush=True); time.sleep(float(sys.argv[2]))\n"
)


def test_a_waiter_whose_file_was_removed_still_excludes_everyone_else(tmp_path):
    """A holds; B waits on A's file; A releases (and removes it); B then holds a fresh file,
    and C cannot take the lock while B has it."""
    lock = tmp_path / "x.lock"
    a = subprocess.Popen(
        [sys.executable, "-c", WAIT_THEN_HOLD, str(lock), "1.5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert a.stdout.readline().strip() == "held"
        b = subprocess.Popen(
            [sys.executable, "-c", WAIT_THEN_HOLD, str(lock), "5"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert b.stdout.readline().strip() == "held"  # after A released
            assert a.wait(timeout=30) == 0
            with pytest.raises(Espnet3Error, match="still held"):
                with file_lock(lock, timeout=0.5):
                    pass
        finally:
            b.kill()
            b.wait()
    finally:
        a.kill()
        a.wait()
