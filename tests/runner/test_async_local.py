"""Async shards on the ``local`` scheduler: real detached processes, real files.

Each test submits shard jobs with ``parallel: {env: local}`` and waits for them through the
status files and the shard processes, exactly as a user would.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runner_toys import SetRunner, ToyProvider, ToyRunner

from espnet3.errors import ConfigError, Espnet3Error, ItemError, SetupError
from espnet3.parallel import set_parallel
from espnet3.runner.jobs_dir import collect, status, summarize

CFG = {"n": 40, "scale": 3, "bias": 1}
LOCAL = {"env": "local", "n_workers": 2}


@pytest.fixture
def local_parallel():
    set_parallel(LOCAL)
    yield
    set_parallel(None)


def expected(indices, drop=()):
    return [{"idx": i, "utt_id": f"utt{i:03d}", "y": 3 * i + 1} for i in indices if i not in drop]


def job_record(submission, k):
    path = submission.files.job_record(k)
    return json.loads(path.read_text()) if path.exists() else None


def async_runner(tmp_path, params=None, cls=ToyRunner, **kwargs):
    return cls(
        ToyProvider(CFG, params),
        async_mode=True,
        async_specs_dir=tmp_path / "specs",
        async_result_dir=tmp_path / "results",
        **kwargs,
    )


def test_async_local_matches_sequential_and_skips_done_shards(local_parallel, tmp_path):
    indices = list(range(0, 40, 2))
    sequential_params = {"drop": [4]}
    set_parallel(None)
    sequential = ToyRunner(ToyProvider(CFG, sequential_params))(indices)
    set_parallel(LOCAL)
    job_meta = async_runner(tmp_path, sequential_params, async_shard_size=6)(indices)
    # The guide's job_meta: one {job_id, spec, result} per shard, indexable.
    assert len(job_meta) == 4 and job_meta.submitted == job_meta.shards
    assert all(entry["job_id"] and Path(entry["spec"]).is_file() for entry in job_meta)
    assert summarize(job_meta.wait(timeout=300, poll=0.2)) == "4 done"
    assert [r for _, r in job_meta.collect()] == sequential == expected(indices, drop=(4,))
    assert [i for i, _ in collect(tmp_path / "specs")] == [i for i in indices if i != 4]

    spec = json.loads(Path(job_meta[1]["spec"]).read_text())
    assert spec["runner"] == "runner_toys:ToyRunner"
    assert spec["provider"] == "runner_toys:ToyProvider"
    assert spec["work"]["units"] == indices[5:10] and spec["params"] == sequential_params
    assert spec["config"] == CFG

    again = async_runner(tmp_path, sequential_params, async_shard_size=6)(indices)
    assert [e["spec"] for e in again] == [e["spec"] for e in job_meta]
    assert again.submitted == [] and again.already_done == job_meta.shards

    # Every line of a results file is a result record; done records the file's size and sum.
    for entry in job_meta:
        result = Path(entry["result"])
        lines = [json.loads(line) for line in result.read_text().splitlines()]
        assert lines and all(set(line) == {"index", "result"} for line in lines)
        done = json.loads((Path(entry["shard_dir"]) / "done").read_text())
        recorded = done["files"]["results.jsonl"]
        assert recorded["size"] == result.stat().st_size
        assert recorded["sha256"] == hashlib.sha256(result.read_bytes()).hexdigest()
        assert not (Path(entry["shard_dir"]) / "lock").exists()

    # A later Python process collects the directory with the public function alone.
    code = (
        "import json, sys\n"
        "from espnet3.runner import collect\n"
        "print(json.dumps([index for index, _ in collect(sys.argv[1])]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "specs")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [i for i in indices if i != 4]


def test_resume_resubmits_only_the_killed_shard(local_parallel, tmp_path):
    params = {"sleep": 0.3}
    submission = async_runner(tmp_path, params, async_shard_size=8, async_max_running=2)(range(32))
    victim = Path(submission[0]["shard_dir"])
    pid = None
    for _ in range(600):  # up to 60 s for a loaded machine to start the shard
        record = job_record(submission, 0)
        if record and record["job_id"] and (victim / "lock").exists():
            pid = int(record["job_id"])
            break
        time.sleep(0.1)
    assert pid is not None
    for _ in range(600):  # killed while it writes its results
        if list(victim.glob(".results.jsonl.*.tmp")):
            break
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    states = {s.name: s for s in submission.wait(timeout=300, poll=0.2)}
    assert states["split.0"].state == "failed"
    assert f"process {pid} ended without complete results" in states["split.0"].detail
    assert {states[n].state for n in submission.shards[1:]} == {"done"}
    with pytest.raises(Espnet3Error, match="1 of 4 shard.*split.0 failed"):
        list(submission.collect())
    assert list(victim.glob(".results.jsonl.*.tmp"))  # what the kill left
    assert (victim / "lock").exists()  # and its claim, whose holder is gone

    resumed = async_runner(tmp_path, params, async_shard_size=8, async_max_running=2)(range(32))
    assert resumed.submitted == ["split.0"]
    assert sorted(resumed.already_done) == sorted(submission.shards[1:])
    resumed.wait(timeout=300, poll=0.2)
    collected = list(resumed.collect())
    assert not list(victim.glob(".*.tmp")) and not (victim / "lock").exists()
    assert [i for i, _ in collected] == list(range(32))
    assert [r for _, r in collected] == expected(range(32))


def test_truncated_results_are_never_complete(local_parallel, tmp_path):
    submission = async_runner(tmp_path, async_shard_size=10)(range(20))
    submission.wait(timeout=300, poll=0.2)
    first = Path(submission[0]["result"])
    lines = first.read_text().splitlines(keepends=True)
    first.write_text("".join(lines[:-1]))  # the last record is gone
    state = status(tmp_path / "specs")[0]
    for _ in range(600):  # the shard process may still be exiting after its rename
        if state.state != "running":
            break
        time.sleep(0.1)
        state = status(tmp_path / "specs")[0]
    assert state.state == "failed"
    with pytest.raises(Espnet3Error, match="1 of 2 shard"):
        list(collect(tmp_path / "specs"))
    again = async_runner(tmp_path, async_shard_size=10)(range(20))
    assert again.submitted == ["split.0"]
    again.wait(timeout=300, poll=0.2)
    assert [r for _, r in again.collect()] == expected(range(20))


def test_results_rewritten_to_the_same_size_are_found_by_their_checksum(local_parallel, tmp_path):
    submission = async_runner(tmp_path, async_shard_size=10)(range(20))
    assert summarize(submission.wait(timeout=300, poll=0.2)) == "2 done"
    results = Path(submission[0]["result"])
    text = results.read_text()
    results.write_text(text.replace('"y": 7}', '"y": 8}', 1))  # item 2, same size
    assert len(results.read_text()) == len(text)
    for _ in range(600):  # the shard process may still be exiting after its rename
        state = status(tmp_path / "specs")[0]
        if state.state != "running":
            break
        time.sleep(0.1)
    assert state.state == "failed" and f"{results} changed after it was done" in state.detail
    with pytest.raises(Espnet3Error, match="checksum differs"):
        list(collect(tmp_path / "specs"))
    again = async_runner(tmp_path, async_shard_size=10)(range(20))
    assert again.submitted == ["split.0"]
    again.wait(timeout=300, poll=0.2)
    assert [r for _, r in again.collect()] == expected(range(20))


def test_a_read_only_results_directory_is_one_error_naming_the_setting(
    local_parallel, tmp_path, small_disk
):
    results = small_disk(1 << 20, read_only=True)
    runner = ToyRunner(
        ToyProvider(CFG),
        async_mode=True,
        async_specs_dir=tmp_path / "specs",
        async_result_dir=results,
    )
    with pytest.raises(
        SetupError, match=f"under {results}/ToyRunner-.*Read-only file system"
    ) as err:
        runner(range(10))
    assert "give async_result_dir/async_specs_dir a directory" in str(err.value)


def test_later_calls_never_delete_an_earlier_calls_finished_work(local_parallel, tmp_path):
    """Other indices, then overlapping ones, into the same directories: every finished call
    still collects; the overlapping call reuses what is done instead of running it again."""
    first = async_runner(tmp_path)(range(10))
    first.wait(timeout=300, poll=0.2)
    second = async_runner(tmp_path)(range(10, 20))
    second.wait(timeout=300, poll=0.2)
    overlapping = async_runner(tmp_path)(range(5, 15))
    overlapping.wait(timeout=300, poll=0.2)
    assert overlapping.submitted == []
    assert [r for _, r in first.collect()] == expected(range(10))
    assert [r for _, r in second.collect()] == expected(range(10, 20))
    assert [r for _, r in overlapping.collect()] == expected(range(5, 15))


TWIN = """
import sys
sys.path.insert(0, sys.argv[3])
from runner_toys import LinesRunner, ToyProvider
from espnet3.parallel import set_parallel
set_parallel({"env": "local", "n_workers": 2})
params = {"ran": sys.argv[2], "sleep": 0.05}
runner = LinesRunner(ToyProvider({"n": 40, "scale": 3, "bias": 1}, params),
                     output_dir=sys.argv[1] + "/out", async_mode=True)
submission = runner(range(16))
submission.wait(timeout=300, poll=0.2)
print(sorted(r["idx"] for r in submission.merge()))
"""


def test_two_identical_calls_started_at_once_run_each_item_once(tmp_path):
    """Each shard is claimed (a lock naming its owner) by the one process that runs it."""
    from runner_toys import ran_items

    here = str(Path(__file__).parent)
    args = [sys.executable, "-c", TWIN, str(tmp_path), str(tmp_path / "ran.log"), here]
    twins = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [twin.communicate(timeout=600)[0] for twin in twins]
    assert [twin.returncode for twin in twins] == [0, 0], outputs
    assert all(out.strip().splitlines()[-1] == str(list(range(16))) for out in outputs)
    ran = sorted(i for i, _ in ran_items(tmp_path / "ran.log"))
    assert ran == list(range(16))  # none twice


class Planted:
    """Unpickling this touches ``path``: proof that a file was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_pickles_planted_in_the_shared_directories_are_never_unpickled(local_parallel, tmp_path):
    """Specs and results are JSON: someone with write access to a shared specs or results
    directory cannot make a shard job, status or collect run code of theirs."""
    submission = async_runner(tmp_path, async_shard_size=5)(range(10))
    submission.wait(timeout=300, poll=0.2)
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(Planted(marker))
    spec = Path(submission[0]["spec"])
    spec.write_bytes(payload)
    job = subprocess.run(
        [sys.executable, "-m", "espnet3.runner.shard", str(spec)], capture_output=True, text=True
    )
    assert job.returncode != 0 and str(spec) in job.stderr
    Path(submission[1]["result"]).write_bytes(payload)
    with pytest.raises(Espnet3Error):
        list(collect(tmp_path / "specs"))
    (Path(submission[0]["shard_dir"]) / "done").write_bytes(payload)
    assert status(tmp_path / "specs")[0].state != "done"
    assert not marker.exists()


def test_async_error_policies(local_parallel, tmp_path):
    raising = async_runner(tmp_path / "raise", {"fail_on": [13]}, async_shard_size=10)(range(20))
    states = raising.wait(timeout=300, poll=0.2)
    assert [s.state for s in states] == ["done", "failed"]
    assert "forward failed on index 13 (utt_id 'utt013')" in states[1].detail
    failure = json.loads(raising.files.failed(1).read_text())
    assert failure["index"] == 13 and "cannot decode value 13" in failure["traceback"]
    assert not (Path(raising[1]["shard_dir"]) / "lock").exists()

    skipping = async_runner(
        tmp_path / "skip", {"fail_on": [3, 13]}, async_shard_size=10, on_error="skip"
    )(range(20))
    assert summarize(skipping.wait(timeout=300, poll=0.2)) == "2 done"
    assert [r for _, r in skipping.collect()] == expected(range(20), drop=(3, 13))
    errors = Path(skipping[1]["shard_dir"]) / "errors.jsonl"
    (record,) = [json.loads(line) for line in errors.read_text().splitlines()]
    assert (record["index"], record["utt_id"], record["exc_type"]) == (13, "utt013", "ValueError")


def test_non_json_results_fail_the_shard_at_write_time(local_parallel, tmp_path):
    submission = async_runner(tmp_path, cls=SetRunner, async_shard_size=4)(range(4))
    (state,) = submission.wait(timeout=300, poll=0.2)
    assert state.state == "failed"
    assert "the result of index 0 cannot be written as JSON" in state.detail
    assert not Path(submission[0]["result"]).exists()


def test_async_needs_a_scheduler_and_json_params(tmp_path):
    set_parallel(None)
    with pytest.raises(ConfigError, match="async_mode runs shards as scheduler jobs.*'none'"):
        async_runner(tmp_path)(range(3))
    set_parallel(LOCAL)
    try:
        with pytest.raises(ConfigError, match="provider params as JSON"):
            async_runner(tmp_path, {"model_obj": object()})(range(3))
    finally:
        set_parallel(None)


def test_an_async_call_in_a_get_client_block_uses_that_block(tmp_path):
    """The open block decides, as for every other call (not the process-wide default)."""
    from espnet3.parallel import get_client

    set_parallel(None)
    with get_client(LOCAL):
        submission = async_runner(tmp_path, async_shard_size=5)(range(10))
    assert summarize(submission.wait(timeout=300, poll=0.2)) == "2 done"
    assert [r["idx"] for _, r in submission.collect()] == list(range(10))


RECIPE_PACKAGE = """
from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.provider import EnvironmentProvider


class DoubleProvider(EnvironmentProvider):
    def build_env(self):
        return {"dataset": list(range(self.config["n"])), "model": None, **self.params}


class DoubleRunner(BaseRunner):
    @staticmethod
    def forward(idx, *, dataset, model, **params):
        return {"idx": idx, "y": 2 * dataset[idx]}
"""


def test_shards_import_classes_of_a_recipe_directory_package(local_parallel, tmp_path):
    """A recipe's dataset/ package is not on sys.path: each shard job imports its directory."""
    from espnet3.utils.imports import import_package_from_dir

    package = tmp_path / "recipe" / "dataset"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(RECIPE_PACKAGE)
    module = import_package_from_dir(package)
    runner = module.DoubleRunner(
        module.DoubleProvider({"n": 6}),
        async_mode=True,
        async_specs_dir=tmp_path / "specs",
        async_result_dir=tmp_path / "results",
        async_shard_size=3,
    )
    submission = runner(range(6))
    assert summarize(submission.wait(timeout=300, poll=0.2)) == "2 done"
    assert [r["y"] for _, r in submission.collect()] == [0, 2, 4, 6, 8, 10]
    spec = json.loads(Path(submission[0]["spec"]).read_text())
    assert spec["runner"].endswith(f":DoubleRunner@{package}")


def test_collect_piped_into_head_ends_quietly(local_parallel, tmp_path):
    submission = async_runner(tmp_path, async_shard_size=20)(range(40))
    assert summarize(submission.wait(timeout=300, poll=0.2)) == "2 done"
    collect_cmd = f"{sys.executable} -m espnet3 jobs collect {tmp_path / 'specs'}"
    first = subprocess.run(["bash", "-c", f"{collect_cmd} | head -n 1"], capture_output=True)
    assert json.loads(first.stdout)  # the first record, whole
    # `true` reads nothing and is gone before the first write: the pipe is closed at once.
    out = subprocess.run(["bash", "-c", f"set -o pipefail; {collect_cmd} | true"], text=True,
                         capture_output=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr


def test_a_rerun_with_another_shard_size_reuses_results_and_never_doubles_them(
    local_parallel, tmp_path
):
    """Status and collect agree: the latest call's shards, each index once; nothing finished
    by an earlier call is removed."""
    indices = list(range(20))
    first = async_runner(tmp_path, {"drop": [5]}, async_shard_size=6)(indices)
    assert summarize(first.wait(timeout=300, poll=0.2)) == "4 done"
    again = async_runner(tmp_path, {"drop": [5]}, async_shard_size=4)(indices)
    assert len(again) == 5 and again.submitted == []  # every index already computed
    assert summarize(status(tmp_path / "specs")) == "5 done"
    assert [i for i, _ in collect(tmp_path / "specs")] == [i for i in indices if i != 5]
    cli = subprocess.run(
        [sys.executable, "-m", "espnet3", "jobs", "collect", str(tmp_path / "specs")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [json.loads(line)["index"] for line in cli.stdout.splitlines()] == [
        i for i in indices if i != 5
    ]
    assert [r for _, r in first.collect()] == expected(indices, drop=(5,))  # still there
    third = async_runner(tmp_path, {"drop": [5]}, async_shard_size=6)(range(24))
    # 4 shards of 6: 0..5 and 6..11 lie in finished shards, 12..17 too; only 18..23 is new.
    assert third.submitted == ["split.3"]
    third.wait(timeout=300, poll=0.2)
    assert [r["idx"] for _, r in third.collect()] == [i for i in range(24) if i != 5]


def test_the_guide_async_call_raises_an_item_error_of_the_items_type(local_parallel, tmp_path):
    """The error of the raise policy is an ItemError and also the item's own exception type."""
    set_parallel(None)
    with pytest.raises(ValueError, match="cannot decode value 3") as caught:
        ToyRunner(ToyProvider(CFG, {"fail_on": [3]}))(range(5))
    assert isinstance(caught.value, ItemError) and caught.value.index == 3


def test_waiting_on_shards_polls_less_and_less_often(local_parallel, tmp_path, monkeypatch):
    """wait() backs off (doubling its pause) instead of asking every scheduler each second;
    the real status calls are counted, nothing is replaced."""
    from espnet3.runner import jobs_dir

    looks: list[float] = []
    real_status = jobs_dir.status

    def counted(directory):
        looks.append(time.monotonic())
        return real_status(directory)

    submission = async_runner(tmp_path, {"sleep": 0.4}, async_shard_size=8)(range(8))
    monkeypatch.setattr(jobs_dir, "status", counted)
    states = jobs_dir.wait(submission.files, timeout=300, poll=0.1)
    assert {s.state for s in states} == {"done"}
    gaps = [b - a for a, b in zip(looks, looks[1:], strict=False)]
    assert len(gaps) >= 3 and gaps[-1] > 3 * gaps[0], gaps


def test_a_call_with_no_items_submits_nothing_and_the_cli_says_so(local_parallel, tmp_path):
    submission = async_runner(tmp_path)([])
    assert list(submission) == [] and list(submission.collect()) == []

    def cli(*args):
        specs = str(tmp_path / "specs")
        command = [sys.executable, "-m", "espnet3", "jobs", *args[:1], specs, *args[1:]]
        return subprocess.run(command, capture_output=True, text=True)

    assert (cli("status").returncode, cli("status").stdout) == (0, "no shards\n")
    printed = cli("collect")
    assert (printed.returncode, printed.stdout, printed.stderr) == (0, "", "")
    saved = cli("collect", "--output", str(tmp_path / "results.jsonl"))
    assert saved.stdout.startswith("0 result(s) written")
    assert (tmp_path / "results.jsonl").read_text() == ""
