"""A scheduler family added in one file: registered from this test, used by everything else.

``Tasks`` below is a whole new family, written only here: Dask maps run on its cluster and
``async_mode`` shards run as its jobs (each a plain process on this machine, started and
watched by the family itself), with no change to any espnet3 module.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from runner_toys import ToyProvider, ToyRunner

from espnet3.errors import ConfigError
from espnet3.parallel import ParallelConfig, get_client, parallel_map, set_parallel
from espnet3.parallel.schedulers import Scheduler, register, unregister
from espnet3.parallel.schedulers.local import LOCAL
from espnet3.utils.atomic import atomic_write_json


class Tasks(Scheduler):
    """Dask workers from a LocalCluster; each shard a child process this object waits on."""

    envs = ("tasks",)
    cluster_class = "distributed.LocalCluster"
    package = "distributed"
    runs_shards = True
    cancel_command = "kill"

    def cluster_options(self, config: ParallelConfig) -> dict:
        return LOCAL.cluster_options(config)

    def submit_shards(self, batch, config):
        for k, task in enumerate(batch.tasks):
            log = batch.log_dir / f"{task.name}.log"
            with open(log, "wb") as out:
                code = subprocess.call([*batch.command, str(task.spec)], stdout=out, stderr=out)
            atomic_write_json(task.record, {"scheduler": "tasks", "job_id": f"t{k}:{code}"})
        return {"scheduler": "tasks", "shards": len(batch.tasks)}

    def shard_states(self, records: Sequence[Mapping]) -> list[tuple[str, str]]:
        return [("failed", f"job {r['job_id']} ended") for r in records]


@pytest.fixture
def tasks_env():
    scheduler = register(Tasks())
    try:
        yield scheduler
    finally:
        unregister(scheduler)
        set_parallel(None)


def test_a_registered_family_is_a_valid_env_with_its_own_option_checks(tasks_env):
    cfg = ParallelConfig.from_any({"env": "tasks", "n_workers": 2})
    assert cfg.scheduler is tasks_env
    with pytest.raises(ConfigError, match=r"parallel.options.nworkers is not an argument of "):
        ParallelConfig.from_any({"env": "tasks", "options": {"nworkers": 2}})


def test_an_env_already_taken_is_refused():
    class Impostor(Tasks):
        envs = ("slurm",)

    with pytest.raises(ConfigError, match=r"parallel.env 'slurm' is already provided"):
        register(Impostor())


def test_maps_run_on_the_new_familys_cluster(tasks_env):
    with get_client({"env": "tasks", "n_workers": 2}) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert parallel_map(abs, [-3, -1, 2]) == [3, 1, 2]


def test_async_shards_run_as_the_new_familys_jobs(tasks_env, tmp_path: Path):
    set_parallel({"env": "tasks", "n_workers": 2})
    runner = ToyRunner(
        ToyProvider({"n": 10, "scale": 2}),
        async_mode=True,
        async_specs_dir=tmp_path / "specs",
        async_result_dir=tmp_path / "results",
        async_shard_size=4,
    )
    submission = runner(range(10))
    assert len(submission.submitted) == 3
    assert {s.state for s in submission.wait(timeout=60)} == {"done"}
    assert [r["y"] for _, r in submission.collect()] == [2 * i for i in range(10)]
    (logs,) = (tmp_path / "specs").glob("*/logs")
    assert sorted(p.name for p in logs.iterdir())[0].endswith(".split.0.log")
