"""Shard specs: deterministic names, plain JSON, strict loading."""

from __future__ import annotations

import pytest

from espnet3.errors import ConfigError
from espnet3.runner.shard_spec import ShardSpec, split_indices

WORK = dict(
    runner="m:R",
    provider="m:P",
    config={"a": 1},
    params={"beam": 2},
    batch_size=None,
    on_error="raise",
    shard=0,
    n_shards=1,
)


def test_names_depend_on_the_work_only(tmp_path):
    a = ShardSpec.for_work(indices=[1, 2], result_dir=tmp_path, **WORK)
    b = ShardSpec.for_work(indices=[1, 2], result_dir=tmp_path / "elsewhere", **WORK)
    c = ShardSpec.for_work(indices=[1, 3], result_dir=tmp_path, **WORK)
    d = ShardSpec.for_work(indices=[1, 2], result_dir=tmp_path, **{**WORK, "params": {"beam": 3}})
    assert a.name == b.name
    assert len({a.name, c.name, d.name}) == 3


def test_write_and_load_round_trip(tmp_path):
    spec = ShardSpec.for_work(indices=[4, 5], result_dir=tmp_path, **WORK)
    path = spec.write(tmp_path / "specs")
    assert path.name == f"{spec.name}.spec.json"
    assert ShardSpec.load(path) == spec
    path.write_text('{"format": 1, "name": "x"}')
    with pytest.raises(ConfigError, match="is not a format-2 shard spec"):
        ShardSpec.load(path)


def test_split_indices_keeps_order():
    assert split_indices(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]
