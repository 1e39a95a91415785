"""A Provider and Runner defined in the user's script (``python script.py``, so ``__main__``).

Synchronous Dask runs ship such classes by value and still build the environment once per
worker; detached shard jobs (``async_mode``), which import their classes by path, refuse them
with one message saying why and what to do. A class defined inside a function travels the same
way as one of ``__main__``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from espnet3.parallel.worker_env import setup_key
from espnet3.runner.provider import EnvironmentProvider

SCRIPT = """
import json
import os
import sys
from pathlib import Path

from espnet3.parallel import get_client, set_parallel
from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.provider import EnvironmentProvider


class PrepProvider(EnvironmentProvider):
    def build_env(self):
        with open(self.config.builds, "a") as log:
            log.write(f"{os.getpid()}\\n")
        return {"dataset": list(range(self.config.n)), "built_in": os.getpid()}


class PrepRunner(BaseRunner):
    @staticmethod
    def forward(idx, *, dataset, built_in, **params):
        return {"idx": idx, "value": dataset[idx] * 10, "built_in": built_in, "pid": os.getpid()}

    @staticmethod
    def open_writers(shard_dir, **env):
        return {"out": open(shard_dir / "results.jsonl", "w")}

    @staticmethod
    def write_record(writers, result, state, **env):
        writers["out"].write(json.dumps(result) + "\\n")

    def merge(self, shard_dirs):
        return [json.loads(line) for d in shard_dirs for line in (d / "results.jsonl").open()]


if __name__ == "__main__":
    mode, workdir = sys.argv[1], Path(sys.argv[2])
    set_parallel({"env": "local", "n_workers": 2})
    provider = PrepProvider({"n": 24, "builds": str(workdir / "builds.log")})
    output_dir = str(workdir / "out") if mode == "shards" else None
    runner = PrepRunner(provider, output_dir=output_dir, async_mode=mode == "async")
    calls = [runner(range(24))]  # the call starts its own cluster
    with get_client():  # two calls on one cluster, the second with a runner of its own
        calls += [runner(range(24)), PrepRunner(provider, output_dir=output_dir)(range(24))]
    print(json.dumps({"script": os.getpid(), "calls": calls}))
"""


def run_script(tmp_path: Path, mode: str) -> subprocess.CompletedProcess:
    """Run :data:`SCRIPT` as ``python script.py MODE TMP_PATH`` in ``tmp_path``."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), mode, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,  # a hung cluster fails the test instead of the whole run
    )


@pytest.mark.parametrize("mode", ["plain", "shards"])
def test_classes_of_the_script_run_on_a_local_cluster(tmp_path, mode):
    done = run_script(tmp_path, mode)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    expected = [(i, 10 * i) for i in range(24)]
    for results in out["calls"]:
        assert [(r["idx"], r["value"]) for r in results] == expected
        # every item ran with the environment its own worker built, never this script's
        assert all(r["built_in"] == r["pid"] != out["script"] for r in results)
    builds = (tmp_path / "builds.log").read_text().split()
    # once per worker: two workers for the first call, two shared by the other two calls
    assert len(builds) == len(set(builds)) <= 4
    assert {str(r["pid"]) for results in out["calls"] for r in results} <= set(builds)
    if mode == "shards":
        assert sorted(p.name for p in (tmp_path / "out").glob("split.*")) == ["split.0", "split.1"]


def test_async_mode_refuses_the_script_classes_in_one_message(tmp_path):
    done = run_script(tmp_path, "async")
    assert done.returncode == 1
    traceback_head = "Traceback (most recent call last):"
    said = [
        line for line in done.stderr.splitlines() if line[:1].strip() and line != traceback_head
    ]
    assert said == [
        "espnet3.errors.ConfigError: classes 'PrepRunner' (defined in '__main__'), "
        "'PrepProvider' (defined in '__main__') have no import path, and a detached shard job "
        "(async_mode) rebuilds the runner and provider in a new process by importing their "
        "classes by path: move them to a module on the Python path (e.g. a file beside the "
        "script, imported from it), or run without async_mode, which ships them to the Dask "
        "workers by value"
    ]
    assert not (tmp_path / "builds.log").exists()


def test_a_class_shipped_by_value_shares_its_environment_only_with_itself():
    def make() -> type:
        class Local(EnvironmentProvider):
            def build_env(self):
                return {}

        return Local

    first, second = make(), make()  # one name, two classes
    key = setup_key(first({"n": 1}).make_worker_setup_fn())
    assert setup_key(first({"n": 1}).make_worker_setup_fn()) == key
    assert setup_key(second({"n": 1}).make_worker_setup_fn()) != key
