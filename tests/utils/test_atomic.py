"""Atomic writes on a real filesystem: all or nothing, and the permissions open() would give."""

from __future__ import annotations

import os
import stat

import pytest

from espnet3.utils.atomic import atomic_open, atomic_write_jsonl, atomic_write_text


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_written_file_gets_the_mode_of_a_plain_open(tmp_path):
    """mkstemp's private 0600 would hide manifests from the rest of a shared project group."""
    atomic_write_text(tmp_path / "train.tsv", "a\n")
    with open(tmp_path / "plain.tsv", "w") as f:
        f.write("a\n")
    mode = stat.S_IMODE((tmp_path / "train.tsv").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain.tsv").stat().st_mode)
    assert mode == 0o666 & ~current_umask()


@pytest.mark.parametrize("durable", [True, False])
def test_failure_mid_write_keeps_the_old_content_and_no_temp_file(tmp_path, durable):
    target = tmp_path / "manifest.tsv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk gone"):
        with atomic_open(target, durable=durable) as f:
            f.write("half of the new")
            raise RuntimeError("disk gone")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.tsv"]


def test_a_record_json_cannot_encode_leaves_the_target_untouched(tmp_path):
    target = tmp_path / "results.jsonl"
    assert atomic_write_jsonl(target, [{"i": 0}, {"i": 1}]) == 2
    with pytest.raises(TypeError, match="set"):
        atomic_write_jsonl(target, [{"i": 0}, {"i": {1, 2}}])
    assert target.read_text() == '{"i": 0}\n{"i": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]


@pytest.mark.parametrize("durable", [True, False])
def test_bytes_land_whole_in_a_new_directory_and_replace_old_content(tmp_path, durable):
    from espnet3.utils.atomic import atomic_write_bytes

    target = tmp_path / "new" / "dir" / "a.flac"
    payload = os.urandom(3 << 20)  # more than one write() may take
    atomic_write_bytes(target, payload, durable=durable)
    atomic_write_bytes(target, payload[::-1], durable=durable)
    assert target.read_bytes() == payload[::-1]
    assert os.listdir(target.parent) == ["a.flac"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current_umask()


def test_bytes_that_cannot_be_written_leave_no_temp_file(tmp_path):
    from espnet3.utils.atomic import atomic_write_bytes

    with pytest.raises(TypeError):
        atomic_write_bytes(tmp_path / "a.wav", "not bytes")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("durable", [True, False])
def test_a_file_written_by_name_by_h5py_lands_whole_or_not_at_all(tmp_path, durable):
    import h5py
    import numpy as np

    from espnet3.utils.atomic import atomic_path

    target = tmp_path / "feats.h5"
    with atomic_path(target, durable=durable) as tmp, h5py.File(tmp, "w") as f:
        assert not target.exists()
        f["a"] = np.arange(6.0).reshape(2, 3)
    with h5py.File(target) as f:
        assert f["a"][1, 2] == 5.0
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target, durable=durable) as tmp, h5py.File(tmp, "w") as f:
            f["b"] = np.zeros(3)
            raise RuntimeError("killed mid-shard")
    with h5py.File(target) as f:
        assert list(f) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feats.h5"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~current_umask()
