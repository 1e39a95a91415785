"""EnvironmentProvider: built once per process, shipped to workers as a few plain fields."""

from __future__ import annotations

import pickle

import pytest
from omegaconf import OmegaConf
from runner_toys import BUILDS, BrokenProvider, ToyProvider

from espnet3.errors import ConfigError, ItemError
from espnet3.parallel import get_client, parallel_map
from espnet3.runner.class_path import class_path
from espnet3.runner.provider import EnvironmentProvider, WorkerSetup


def test_build_env_local_builds_once_and_merges_params():
    before = sum(BUILDS.values())
    provider = ToyProvider({"n": 3, "scale": 2}, {"beam": 5})
    assert sum(BUILDS.values()) == before + 1  # an InferenceProvider builds when it is made
    env = provider.build_env_local()
    again = provider.build_env_local()
    assert again is not env and again["dataset"] is env["dataset"]  # new dict, same objects
    env["dataset"] = "replaced"
    assert provider.build_env_local()["dataset"] != "replaced"
    assert sum(BUILDS.values()) == before + 1
    assert [item["utt_id"] for item in again["dataset"]] == ["utt000", "utt001", "utt002"]
    assert again["model"](4) == 8 and again["beam"] == 5


def test_config_is_resolved_and_copied():
    source = OmegaConf.create({"n": 2, "scale": "${n}"})
    provider = ToyProvider(source)
    source.n = 10
    assert provider.plain_config == {"n": 2, "scale": 2}
    assert provider.config.scale == 2


def test_worker_setup_fn_carries_only_class_path_config_and_params():
    provider = ToyProvider({"n": 1000, "scale": 3}, {"beam": 2})
    provider.build_env_local()  # a built environment must not travel with the setup fn
    setup = provider.make_worker_setup_fn()
    assert provider.build_worker_setup_fn() == setup
    assert isinstance(setup, WorkerSetup)
    assert setup.provider == "runner_toys:ToyProvider"
    assert (setup.config, setup.params) == ({"n": 1000, "scale": 3}, {"beam": 2})
    payload = pickle.dumps(setup)
    assert len(payload) < 400
    env = pickle.loads(payload)()
    assert len(env["dataset"]) == 1000 and env["beam"] == 2


def test_worker_setup_builds_once_per_worker_on_a_local_cluster():
    setup = ToyProvider({"n": 4, "scale": 1}).make_worker_setup_fn()

    def builds_here(_, dataset):
        import os

        from runner_toys import BUILDS

        return os.getpid(), BUILDS[os.getpid()], len(dataset)

    with get_client({"env": "local", "n_workers": 2}, setup_fn=setup) as client:
        seen = parallel_map(builds_here, range(40), client, setup, chunk_size=1)
    assert {count for _, count, _ in seen} == {1}
    assert {n for _, _, n in seen} == {4}


def test_build_failure_keeps_the_traceback():
    with pytest.raises(
        ItemError, match="build_env failed: RuntimeError: no checkpoint at /nowhere"
    ) as err:
        BrokenProvider({"n": 1, "scale": 1, "checkpoint": "/nowhere"})
    assert "build_model" in err.value.worker_traceback


def test_bad_config_params_and_env_are_explained():
    with pytest.raises(ConfigError, match="must be a mapping or a DictConfig, got list"):
        ToyProvider([1, 2])
    with pytest.raises(ConfigError, match="params must be a mapping"):
        ToyProvider({}, params=[("a", 1)])
    with pytest.raises(ConfigError, match=r"params \['model'\] would replace"):
        ToyProvider({"n": 1, "scale": 1}, {"model": 1})

    class ListEnv(EnvironmentProvider):
        def build_env(self):
            return [1]

    with pytest.raises(
        ConfigError, match="ListEnv.build_env must return a dict of names to objects, got list"
    ):
        ListEnv().build_env_local()
    assert ListEnv().make_worker_setup_fn().provider is ListEnv  # Dask ships it by value
    with pytest.raises(
        ConfigError, match=r"ListEnv' \(defined in '[\w.]+' inside a function\) has no import path"
    ):
        class_path(ListEnv)  # what a detached shard job would need
