"""Shard specs: plain JSON, strictly loaded; the files of a call found from any of its dirs."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from espnet3.errors import ConfigError
from espnet3.runner.shard_run import ShardWork
from espnet3.runner.shard_spec import CallFiles, ShardSpec


def spec(**work) -> ShardSpec:
    shard = ShardWork(shard_id=2, units=[4, [5, 6]], output_dir="/out", **work)
    return ShardSpec("m:R", "m:P", {"a": 1}, {"beam": 2}, asdict(shard))


def test_write_and_load_round_trip(tmp_path):
    written = spec(on_error="skip", lost=((1, "its worker died"),))
    path = written.write(tmp_path / "split.2.spec.json")
    loaded = ShardSpec.load(path)
    assert loaded.shard_work.units == [4, [5, 6]] and loaded.shard_work.on_error == "skip"
    assert dict(loaded.shard_work.lost) == {1: "its worker died"}
    assert loaded.shard_work.shard_dir.as_posix() == "/out/split.2"
    path.write_text('{"format": 2, "name": "x"}')
    with pytest.raises(ConfigError, match="is not a format-3 shard spec"):
        ShardSpec.load(path)
    path.write_text(json.dumps({**json.loads(written.write(path).read_text()), "work": {"x": 1}}))
    with pytest.raises(ConfigError, match="not a valid shard spec"):
        ShardSpec.load(path)


def test_a_call_is_found_from_its_specs_dir_its_root_or_the_async_specs_dir(tmp_path):
    files = CallFiles(tmp_path / "out" / "train", tmp_path / "out" / "train" / "specs")
    files.specs_dir.mkdir(parents=True)
    files.record(work="w")
    assert CallFiles.find(files.specs_dir) == files
    assert CallFiles.find(files.root) == files
    (tmp_path / "out" / "latest.json").write_text(json.dumps({"call": "train/specs"}))
    assert CallFiles.find(tmp_path / "out") == files
    with pytest.raises(ConfigError, match="holds no shards of an async runner call"):
        CallFiles.find(tmp_path)
