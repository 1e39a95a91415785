"""The same runners on the real SLURM: Dask workers as jobs, and async shards as job arrays."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_toys import (
    BrokenProvider,
    EnvRunner,
    HazardRunner,
    LinesRunner,
    ToyProvider,
    ToyRunner,
    holding_a_claim,
    kill_a_worker_when_it_runs,
    ran_items,
)

from espnet3.errors import Espnet3Error, ItemError
from espnet3.parallel import get_client, set_parallel
from espnet3.runner.jobs_dir import status, summarize
from espnet3.runner.shard_dir import ShardLocked

pytestmark = pytest.mark.slurm

CFG = {"n": 40, "scale": 3, "bias": 1}
OPTIONS = {"cores": 1, "memory": "1GB", "interface": "lo", "walltime": "00:10:00"}


def expected(indices, drop=()):
    return [{"idx": i, "utt_id": f"utt{i:03d}", "y": 3 * i + 1} for i in indices if i not in drop]


@pytest.fixture
def slurm_parallel(tmp_path):
    config = {"env": "slurm", "n_workers": 2, "options": OPTIONS, "log_dir": str(tmp_path / "logs")}
    set_parallel(config)
    yield config
    set_parallel(None)


def job_record(submission, k):
    return json.loads(submission.files.job_record(k).read_text())


def async_runner(tmp_path, params=None, **kwargs):
    return ToyRunner(
        ToyProvider(CFG, params),
        async_mode=True,
        async_specs_dir=tmp_path / "specs",
        async_result_dir=tmp_path / "results",
        **kwargs,
    )


def test_dask_workers_on_slurm_give_the_sequential_results(slurm_parallel):
    indices = list(range(40))[::-1]
    provider = ToyProvider(CFG, {"drop": [7]})
    with get_client(slurm_parallel):
        on_slurm = ToyRunner(provider)(indices)
        with pytest.raises(ItemError, match="no checkpoint at /x") as err:
            ToyRunner(BrokenProvider({**CFG, "checkpoint": "/x"}))(range(3))
    set_parallel(None)
    assert on_slurm == ToyRunner(provider)(indices) == expected(indices, drop=(7,))
    assert "build_model" in err.value.worker_traceback


def test_async_shards_go_out_as_one_throttled_job_array(slurm_parallel, tmp_path):
    submission = async_runner(tmp_path, {"drop": [7]}, async_shard_size=5)(range(20))
    assert len(submission.jobs["array_jobs"]) == 1
    array = submission.jobs["array_jobs"][0]
    shown = subprocess.run(
        ["scontrol", "show", "job", array], capture_output=True, text=True
    ).stdout
    assert "ArrayTaskThrottle=2" in shown
    assert job_record(submission, 3)["job_id"] == submission[3]["job_id"] == f"{array}_3"
    assert summarize(submission.wait(timeout=300, poll=0.5)) == "4 done"
    assert [r for _, r in submission.collect()] == expected(range(20), drop=(7,))


def test_async_resume_on_slurm_after_cancelling_one_task(slurm_parallel, tmp_path):
    params = {"sleep": 0.5}
    submission = async_runner(tmp_path, params, async_shard_size=8)(range(32))
    victim = "split.0"
    job_id = submission[0]["job_id"]
    for _ in range(600):
        if status(tmp_path / "specs")[0].state == "running":
            break
        time.sleep(0.1)
    subprocess.run(["scancel", job_id], check=True)
    states = {s.name: s for s in submission.wait(timeout=300, poll=0.5)}
    assert states[victim].state == "failed" and "CANCELLED" in states[victim].detail
    assert {states[n].state for n in submission.shards[1:]} == {"done"}
    with pytest.raises(Espnet3Error, match=f"{victim} failed"):
        list(submission.collect())

    resumed = async_runner(tmp_path, params, async_shard_size=8)(range(32))
    assert resumed.submitted == [victim]
    resumed.wait(timeout=300, poll=0.5)
    collected = list(resumed.collect())
    assert [i for i, _ in collected] == list(range(32))
    assert [r for _, r in collected] == expected(range(32))


def test_a_rerun_with_another_shard_size_on_slurm_never_doubles_results(slurm_parallel, tmp_path):
    first = async_runner(tmp_path, async_shard_size=5)(range(20))
    assert summarize(first.wait(timeout=300, poll=0.5)) == "4 done"
    again = async_runner(tmp_path, async_shard_size=8)(range(20))
    assert again.submitted == [] and summarize(status(tmp_path / "specs")) == "3 done"
    assert [r["idx"] for _, r in first.collect()] == list(range(20))  # kept, not replaced
    cli = subprocess.run(
        [sys.executable, "-m", "espnet3", "jobs", "collect", str(tmp_path / "specs")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert [json.loads(line)["index"] for line in cli.stdout.splitlines()] == list(range(20))


def test_an_item_that_kills_its_slurm_worker_is_skipped_and_recorded(slurm_parallel, tmp_path):
    errors = tmp_path / "errors.jsonl"
    runner = HazardRunner(ToyProvider(CFG, {"crash_on": [9]}), on_error="skip", errors_path=errors)
    with get_client(slurm_parallel):
        assert runner(range(16)) == expected(range(16), drop=(9,))
    [record] = [json.loads(line) for line in errors.read_text().splitlines()]
    assert (record["index"], record["utt_id"], record["exc_type"]) == (9, "utt009", "ItemLost")


def test_a_shard_pending_without_a_reason_yet_is_said_to_wait_in_the_queue(
    slurm_parallel, tmp_path
):
    """With both cores taken, a new job is pending and squeue gives its reason as "None" until
    the scheduler's next pass; status must say something a person can read instead."""
    fill = [
        subprocess.run(
            ["sbatch", "--parsable", "--mem=100M", "-o", "/dev/null", "--wrap", "sleep 600"],
            capture_output=True, text=True, check=True, cwd=tmp_path,
        ).stdout.strip()
        for _ in range(2)
    ]  # fmt: skip
    try:
        submission = async_runner(tmp_path, async_shard_size=20)(range(20))
        seen = {status(tmp_path / "specs")[0].detail for _ in range(20)}
        assert {s.state for s in status(tmp_path / "specs")} == {"pending"}
    finally:
        subprocess.run(["scancel", *fill], check=True)
    assert "" not in seen and not any("None" in detail for detail in seen), seen
    assert summarize(submission.wait(timeout=300, poll=0.5)) == "1 done"


def test_shard_logs_go_where_dask_worker_logs_would(tmp_path):
    """``options.log_directory`` is used as is, before ``parallel.log_dir``, for both."""
    given = tmp_path / "given"
    options = {**OPTIONS, "log_directory": str(given)}
    set_parallel({"env": "slurm", "log_dir": str(tmp_path / "base"), "options": options})
    try:
        submission = async_runner(tmp_path, async_shard_size=10)(range(10))
        assert summarize(submission.wait(timeout=300, poll=0.5)) == "1 done"
    finally:
        set_parallel(None)
    log = Path(job_record(submission, 0)["log"])
    assert log.parent == given and log.is_file()
    assert not (tmp_path / "base").exists()


# --- upstream's shard runner (output_dir) on SLURM ------------------------------------------


def lines_runner(tmp_path, params=None, **kwargs):
    params = {"ran": str(tmp_path / "ran.log"), **(params or {})}
    return LinesRunner(ToyProvider(CFG, params), output_dir=tmp_path / "out", **kwargs)


def without_pid(results):
    return [{k: v for k, v in r.items() if k != "pid"} for r in results]


def test_shards_on_slurm_workers_keep_the_contract(slurm_parallel, tmp_path):
    """One shard per SLURM worker in manifest.json, each ending with done; merge in plan order;
    the rerun runs nothing; another plan is refused until resume=False."""
    with get_client(slurm_parallel):
        result = lines_runner(tmp_path, shard_subdir="train")(range(12))
        out = tmp_path / "out" / "train"
        plan = json.loads((out / "manifest.json").read_text())
        assert [s["items"] for s in plan["shards"]] == [list(range(6)), list(range(6, 12))]
        assert all((out / f"split.{k}" / "done").is_file() for k in range(2))
        assert without_pid(result) == [
            {"idx": i, "utt_id": f"utt{i:03d}", "y": 3 * i + 1} for i in range(12)
        ]
        ran = len(ran_items(tmp_path / "ran.log"))
        assert lines_runner(tmp_path, shard_subdir="train")(range(12)) == result
        assert len(ran_items(tmp_path / "ran.log")) == ran == 12
        with pytest.raises(Espnet3Error, match="resume=False"):
            lines_runner(tmp_path, shard_subdir="train")(range(14))
        again = lines_runner(tmp_path, shard_subdir="train", resume=False)(range(14))
    assert [r["idx"] for r in again] == list(range(14))


def test_a_locked_shard_is_refused_on_slurm_and_taken_over_once_its_holder_is_gone(
    slurm_parallel, tmp_path
):
    with get_client(slurm_parallel):
        with holding_a_claim(tmp_path / "out" / "split.1") as holder:
            with pytest.raises(ShardLocked, match=f"pid {holder.pid}"):
                lines_runner(tmp_path)(range(8))
            assert ran_items(tmp_path / "ran.log") == []
        result = lines_runner(tmp_path)(range(8))
    assert [r["idx"] for r in result] == list(range(8))


def test_a_slurm_worker_killed_mid_shard_loses_nothing(slurm_parallel, tmp_path):
    """SIGKILL to the SLURM worker running a shard: the shard runs again on the worker left,
    and the merged result holds every item once."""
    with get_client(slurm_parallel):
        call = lines_runner(tmp_path, {"sleep": 0.3})
        result, pid = kill_a_worker_when_it_runs(tmp_path / "ran.log", lambda: call(range(16)))
    assert [r["idx"] for r in result] == list(range(16))
    assert pid not in {r["pid"] for r in result}


def test_a_cancelled_array_task_is_resumed_alone_by_the_next_call(slurm_parallel, tmp_path):
    """async_mode with output_dir: one array task per split.N. Cancelling one while it runs
    leaves its shard without done; the same call again submits that shard alone, and merge()
    gives every item once."""
    submission = lines_runner(tmp_path, {"sleep": 0.5}, async_mode=True)(range(16))
    assert [e["shard_dir"] for e in submission] == [
        str(tmp_path / "out" / f"split.{k}") for k in range(2)
    ]
    for _ in range(600):
        if ran_items(tmp_path / "ran.log"):
            break
        time.sleep(0.1)
    victim = ran_items(tmp_path / "ran.log")[0][0] // 8  # the shard of the first item started
    subprocess.run(["scancel", submission[victim]["job_id"]], check=True)
    states = {s.name: s.state for s in submission.wait(timeout=300, poll=0.5)}
    assert states[f"split.{victim}"] == "failed"
    assert not (tmp_path / "out" / f"split.{victim}" / "done").exists()

    resumed = lines_runner(tmp_path, {"sleep": 0.0}, async_mode=True)(range(16))
    assert resumed.submitted == [f"split.{victim}"]
    assert {s.state for s in resumed.wait(timeout=300, poll=0.5)} == {"done"}
    assert [r["idx"] for r in resumed.merge()] == list(range(16))


def test_shard_arrays_run_the_dask_configs_prologue_of_the_named_section(slurm_parallel, tmp_path):
    """A job-script-prologue only in the Dask config (section ``config_name``), as worker jobs
    get it, also runs before every shard of an array."""
    import dask

    mine = {
        **dask.config.get("jobqueue.slurm"),
        "job-script-prologue": ["export ESPNET3_MARK=from-mycluster"],
    }
    options = {**OPTIONS, "config_name": "mycluster"}
    set_parallel({**slurm_parallel, "options": options})
    with dask.config.set({"jobqueue.mycluster": mine}):
        runner = EnvRunner(
            ToyProvider(CFG, {"variable": "ESPNET3_MARK"}),
            async_mode=True,
            async_specs_dir=tmp_path / "specs",
            async_result_dir=tmp_path / "results",
            async_shard_size=3,
        )
        submission = runner(range(6))
    assert summarize(submission.wait(timeout=300, poll=0.5)) == "2 done"
    assert [r["value"] for _, r in submission.collect()] == ["from-mycluster"] * 6
