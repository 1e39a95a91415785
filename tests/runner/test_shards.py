"""Upstream ESPnet3's shard runner (``output_dir``, writer hooks, ``merge``), rule by rule, in
process and on a real 2-worker ``LocalCluster``; detached shards on ``env: local``.

Every run writes real files; what ran is counted from a file every process appends to.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_toys import (
    LinesRunner,
    ToyProvider,
    holding_a_claim,
    kill_a_worker_when_it_runs,
    ran_items,
)

from espnet3.errors import IncompleteError, ItemError
from espnet3.parallel import get_client, set_parallel
from espnet3.parallel.base_runner import BaseRunner, concatenate_shard_files
from espnet3.runner.shard_dir import ShardClaim, ShardLocked
from espnet3.runner.shard_plan import plan_shards

CFG = {"n": 40, "scale": 3, "bias": 1}
WHERE = {"none": {"env": "none"}, "local": {"env": "local", "n_workers": 2}}


def expected(indices, skip=()):
    return [{"idx": i, "utt_id": f"utt{i:03d}", "y": 3 * i + 1} for i in indices if i not in skip]


def without_pid(results):
    return [{k: v for k, v in r.items() if k != "pid"} for r in results]


def runner(tmp_path, cls=LinesRunner, params=None, **kwargs):
    params = {"ran": str(tmp_path / "ran.log"), **(params or {})}
    kwargs.setdefault("output_dir", tmp_path / "out")
    return cls(ToyProvider(CFG, params), **kwargs)


class FourShards(LinesRunner):
    """Plans four shards whatever the backend (upstream's tests patch ``_plan_shards`` too)."""

    def _plan_shards(self, items):
        return plan_shards(items, 4)


@pytest.fixture(params=sorted(WHERE))
def where(request):
    set_parallel(WHERE[request.param])
    yield request.param
    set_parallel(None)


def test_the_manifest_holds_the_plan_one_shard_per_worker(where, tmp_path):
    out = tmp_path / "out"
    result = runner(tmp_path, shard_subdir="train")(range(10))
    assert without_pid(result) == expected(range(10))
    manifest = json.loads((out / "train" / "manifest.json").read_text())
    n_shards = 1 if where == "none" else 2
    assert manifest == {
        "version": 1,
        "output_dir": str(out),
        "shard_subdir": "train",
        "shards": plan_shards(list(range(10)), n_shards),
    }
    for k in range(n_shards):
        shard = out / "train" / f"split.{k}"
        assert (shard / "done").is_file() and not (shard / "lock").exists()
    if where == "local":  # shards ran on the workers, not here
        assert os.getpid() not in {r["pid"] for r in result}


def test_done_shards_are_skipped_on_resume(where, tmp_path):
    first = runner(tmp_path)(range(12))
    assert len(ran_items(tmp_path / "ran.log")) == 12
    again = runner(tmp_path)(range(12))
    assert again == first and len(ran_items(tmp_path / "ran.log")) == 12
    lines = tmp_path / "out" / "split.0" / "lines.txt"
    recorded = json.loads((lines.parent / "done").read_text())["files"]
    assert recorded == {
        "lines.txt": {
            "size": lines.stat().st_size,
            "mtime_ns": lines.stat().st_mtime_ns,
            "sha256": hashlib.sha256(lines.read_bytes()).hexdigest(),
        }
    }


@pytest.mark.parametrize("damage", ["truncated", "same size"])
def test_a_shard_whose_output_changed_after_done_runs_again_alone(where, tmp_path, damage):
    first = runner(tmp_path, FourShards)(range(12))
    lines = tmp_path / "out" / "split.2" / "lines.txt"
    text = lines.read_text()
    if damage == "truncated":
        lines.write_text(text[:-10])
    else:  # one digit changed: the size stays, the checksum does not
        lines.write_text(text.replace('"y": 19', '"y": 18', 1))
        assert len(lines.read_text()) == len(text) and lines.read_text() != text
    with pytest.raises(IncompleteError, match="split.2") as err:  # not merged as it is ...
        _completed(tmp_path / "out")
    assert isinstance(err.value, FileNotFoundError)
    again = runner(tmp_path, FourShards)(range(12))  # ... and the call redoes that shard only
    assert without_pid(again) == without_pid(first)
    assert [i for i, _ in ran_items(tmp_path / "ran.log")][12:] == [6, 7, 8]


def _completed(root):
    from espnet3.runner.sharded import completed_dirs

    return completed_dirs(root, json.loads((root / "manifest.json").read_text())["shards"])


def test_a_changed_plan_is_refused_and_resume_false_replaces_it(where, tmp_path):
    runner(tmp_path)(range(10))
    with pytest.raises(RuntimeError, match="shard plan changed.*manifest.json: shard 0"):
        runner(tmp_path)(range(11))
    replaced = runner(tmp_path, resume=False)(range(11))
    assert without_pid(replaced) == expected(range(11))
    assert len(ran_items(tmp_path / "ran.log")) == 21


def test_another_number_of_shards_is_refused(tmp_path):
    runner(tmp_path)(range(10))  # in process: one shard
    set_parallel(WHERE["local"])
    try:
        with pytest.raises(RuntimeError, match="different number of parallel shards.*has 1"):
            runner(tmp_path)(range(10))
    finally:
        set_parallel(None)


class Recording(FourShards):
    """Notes the shard directories each merge gets in ``<output_dir>/merged.log`` (a file:
    a class pickled by value is unpickled again where the scheduler runs, with copies of what
    it closes over)."""

    def merge(self, shard_dirs):
        with open(self.output_dir / "merged.log", "a") as log:
            log.write(" ".join(Path(d).name for d in shard_dirs) + "\n")
        return super().merge(shard_dirs)


def test_merge_gets_every_planned_shard_in_plan_order(where, tmp_path):
    result = runner(tmp_path, Recording)(range(10))
    assert [r["idx"] for r in result] == list(range(10))
    runner(tmp_path, Recording)(range(10))  # resumed: nothing runs, merge sees all shards
    merged = (tmp_path / "out" / "merged.log").read_text().splitlines()
    assert merged == ["split.0 split.1 split.2 split.3"] * 2


def test_concatenate_shard_files_in_the_given_order_and_when_none_exists(tmp_path):
    dirs = [tmp_path / f"split.{k}" for k in range(3)]
    for d, text in zip(dirs, ["a\n", "", "c"], strict=True):
        d.mkdir()
        (d / "x.txt").write_text(text)
    (dirs[1] / "x.txt").unlink()
    out = tmp_path / "merged" / "x.txt"
    assert concatenate_shard_files(dirs[::-1], "x.txt", out) is True
    assert out.read_text() == "ca\n"
    assert concatenate_shard_files(dirs, "missing.txt", out.with_name("m.txt")) is False
    out.with_name("stale.txt").write_text("old")
    assert concatenate_shard_files(dirs, "missing.txt", out.with_name("stale.txt")) is False
    assert not out.with_name("stale.txt").exists()
    assert not list(out.parent.glob(".*.tmp"))


def test_a_shard_held_by_a_live_process_is_refused_and_taken_over_once_it_is_gone(where, tmp_path):
    shard = tmp_path / "out" / "split.0"
    with holding_a_claim(shard) as holder:
        with pytest.raises(RuntimeError, match=f"already locked.*pid {holder.pid}") as err:
            runner(tmp_path)(range(5))
        assert isinstance(err.value, ShardLocked)
        assert ran_items(tmp_path / "ran.log") == []
    assert (shard / "lock").exists()  # killed as kill -9 would: its lock file stays
    assert without_pid(runner(tmp_path)(range(5))) == expected(range(5))
    assert not (shard / "lock").exists()


def test_an_output_dir_that_cannot_be_written_is_one_error_naming_it(where, small_disk):
    out = small_disk(1 << 20, read_only=True)
    with pytest.raises(RuntimeError, match=f"under {out}: Read-only file system.*output_dir"):
        LinesRunner(ToyProvider(CFG, {}), output_dir=out)(range(4))


def test_a_lock_espnet3_did_not_write_is_refused_naming_the_file(tmp_path):
    shard = tmp_path / "out" / "split.0"
    shard.mkdir(parents=True)
    BaseRunner._get_lock_path(shard).write_text("123\n")  # upstream's lock format
    with pytest.raises(RuntimeError, match=f"already locked.*{shard / 'lock'}.*delete"):
        runner(tmp_path)(range(3))
    (shard / "lock").unlink()
    assert len(runner(tmp_path)(range(3))) == 3


def test_claims_taken_by_a_failed_call_are_released(tmp_path):
    """The second shard is held: the first one's claim, just taken, is released again."""
    with ShardClaim.take(tmp_path / "out" / "split.1"):
        with pytest.raises(ShardLocked):
            runner(tmp_path, FourShards)(range(8))
    assert not list((tmp_path / "out").glob("split.*/lock"))


def test_a_failing_item_fails_its_shard_only_and_the_rerun_redoes_that_shard(where, tmp_path):
    with pytest.raises(ValueError, match="index 7 \\(utt_id 'utt007'\\).*cannot decode") as err:
        runner(tmp_path, FourShards, {"fail_on": [7]})(range(12))
    assert isinstance(err.value, ItemError) and err.value.index == 7
    out = tmp_path / "out"
    assert not (out / "split.2" / "done").exists()
    assert not list(out.glob("split.*/lock")) and not list(out.glob("split.*/.*.tmp"))
    unfinished = [k for k in range(4) if not (out / f"split.{k}" / "done").exists()]
    ran_before = len(ran_items(tmp_path / "ran.log"))
    fixed = runner(tmp_path, FourShards)(range(12))
    assert without_pid(fixed) == expected(range(12))
    rerun = [i for i, _ in ran_items(tmp_path / "ran.log")][ran_before:]
    assert sorted(rerun) == [i for k in unfinished for i in range(3 * k, 3 * k + 3)]


def test_skip_records_failures_in_the_shard(where, tmp_path):
    result = runner(tmp_path, FourShards, {"fail_on": [1, 10]}, on_error="skip")(range(12))
    assert without_pid(result) == expected(range(12), skip=(1, 10))
    (record,) = [
        json.loads(x) for x in (tmp_path / "out/split.3/errors.jsonl").read_text().splitlines()
    ]
    assert (record["index"], record["utt_id"], record["exc_type"]) == (10, "utt010", "ValueError")


def test_hooks_get_the_shards_place_and_the_environment(tmp_path):
    seen = {}

    class Peek(LinesRunner):
        @staticmethod
        def open_writers(shard_dir, *, shard_id, output_dir, shard_subdir, dataset, **env):
            seen.update(shard_dir=shard_dir, shard_id=shard_id, output_dir=output_dir,
                        shard_subdir=shard_subdir, n=len(dataset))  # fmt: skip
            return LinesRunner.open_writers(shard_dir)

        @staticmethod
        def close_writers(writers):  # the one-argument form of earlier upstream versions
            writers["lines"].close()

    runner(tmp_path, Peek, shard_subdir="dev")(range(3))
    assert seen == {
        "shard_dir": tmp_path / "out" / "dev" / "split.0",
        "shard_id": 0,
        "output_dir": str(tmp_path / "out"),
        "shard_subdir": "dev",
        "n": 40,
    }


def test_a_worker_killed_mid_shard_loses_nothing(tmp_path):
    """SIGKILL from outside to the worker running a shard: the shard runs again, tracked, and
    the merged result holds every item once."""
    set_parallel(WHERE["local"])
    try:
        with get_client(WHERE["local"]):
            call = runner(tmp_path, params={"sleep": 0.15})
            victim = kill_a_worker_when_it_runs(tmp_path / "ran.log", lambda: call(range(24)))
    finally:
        set_parallel(None)
    result, pid = victim
    assert without_pid(result) == expected(range(24))
    assert pid not in {r["pid"] for r in result}


@pytest.mark.parametrize("policy", ["skip", "raise"])
def test_an_item_that_kills_its_worker_is_found_in_its_shard(tmp_path, policy):
    with get_client(WHERE["local"]):
        call = runner(tmp_path, FourShards, {"crash_on": [9]}, on_error=policy)
        if policy == "raise":
            with pytest.raises(ItemError, match="index 9 \\(utt_id 'utt009'\\): ItemLost"):
                call(range(12))
            return
        result = call(range(12))
    assert without_pid(result) == expected(range(12), skip=(9,))
    (record,) = [
        json.loads(x) for x in (tmp_path / "out/split.3/errors.jsonl").read_text().splitlines()
    ]
    assert (record["index"], record["exc_type"]) == (9, "ItemLost")
    assert "its worker died" in record["message"]


def test_item_timeout_on_cluster_shards(tmp_path):
    with get_client({**WHERE["local"], "item_timeout": 2}):
        result = runner(tmp_path, FourShards, {"hang_on": [4]}, on_error="skip")(range(8))
    assert [r["idx"] for r in result] == [0, 1, 2, 3, 5, 6, 7]
    (record,) = [
        json.loads(x) for x in (tmp_path / "out/split.2/errors.jsonl").read_text().splitlines()
    ]
    assert record["index"] == 4 and "item_timeout=2" in record["message"]


DRIVER = """
import sys
from runner_toys import LinesRunner, ToyProvider
from espnet3.runner.shard_plan import plan_shards

class FourShards(LinesRunner):
    def _plan_shards(self, items):
        return plan_shards(items, 4)

provider = ToyProvider({"n": 40, "scale": 3, "bias": 1}, {"ran": sys.argv[2], "sleep": 0.1})
print(len(FourShards(provider, output_dir=sys.argv[1])(range(20))))
"""


def test_a_parent_killed_mid_shard_is_resumed_by_the_next_run(tmp_path):
    """kill -9 of the process running shards in process: its claim is taken over, the shards
    it finished are not run again, the one it was in is redone."""
    out, ran = tmp_path / "out", tmp_path / "ran.log"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(out), str(ran)])
    try:
        for _ in range(600):
            if len(ran_items(ran)) >= 7:  # shard 0 done, shard 1 half way
                break
            time.sleep(0.05)
    finally:
        driver.kill()
        driver.wait()
    assert (out / "split.0" / "done").exists() and (out / "split.1" / "lock").exists()
    before = len(ran_items(ran))
    result = runner(tmp_path, FourShards, {"sleep": 0.0})(range(20))
    assert without_pid(result) == expected(range(20))
    rerun = [i for i, _ in ran_items(ran)][before:]
    assert rerun[0] == 5 and not set(rerun) & set(range(5))


def test_detached_shards_of_a_runner_with_output_dir(tmp_path):
    """``async_mode`` with ``output_dir``: one job per split.N, resumed by done; merge() gives
    what the call without async_mode returns."""
    set_parallel(WHERE["local"])
    try:
        submission = runner(tmp_path, async_mode=True, shard_subdir="test")(range(10))
        assert [e["shard_dir"] for e in submission] == [
            str(tmp_path / "out" / "test" / f"split.{k}") for k in range(2)
        ]
        assert {s.state for s in submission.wait(timeout=300, poll=0.2)} == {"done"}
        merged = submission.merge()
        assert without_pid(merged) == expected(range(10))
        again = runner(tmp_path, async_mode=True, shard_subdir="test")(range(10))
        assert again.submitted == [] and again.already_done == ["split.0", "split.1"]
        # The same call without async_mode resumes from the same shards: nothing runs again.
        assert runner(tmp_path, shard_subdir="test")(range(10)) == merged
    finally:
        set_parallel(None)
    assert len(ran_items(tmp_path / "ran.log")) == 10
