"""ParallelConfig: validation messages, accepted inputs, and that callers' objects stay intact."""

from __future__ import annotations

import copy
import importlib.util
import os

import pytest
from omegaconf import OmegaConf

from espnet3.errors import ConfigError, SetupError
from espnet3.parallel import ParallelConfig, get_parallel_config, set_parallel
from espnet3.parallel.schedulers import scheduler_for, schedulers
from espnet3.parallel.schedulers.batch import BatchScheduler


@pytest.fixture(autouse=True)
def _reset_default():
    yield
    set_parallel(None)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"env": "slrum"}, r"Unknown env 'slrum' in parallel.env \(did you mean 'slurm'\?\)"),
        ({"env": "local", "n_workers": 0}, r"parallel.n_workers must be a positive integer, got 0"),
        ({"env": "local", "n_workers": "2"}, r"n_workers must be a positive integer, got '2'"),
        ({"env": "local", "n_workers": True}, r"n_workers must be a positive integer, got True"),
        ({"env": "local", "n_workers": 2.5}, r"n_workers must be a positive integer, got 2.5"),
        (
            {"env": "slurm", "options": {"walltme": "01:00:00"}},
            r"parallel.options.walltme is not an argument of dask_jobqueue.SLURMCluster "
            r"\(did you mean 'walltime'\?\)",
        ),
        (
            {"env": "local", "options": {"threads_per_wroker": 2}},
            r"options.threads_per_wroker .*\(did you mean 'threads_per_worker'\?\)",
        ),
        ({"env": "local", "options": {"n_workers": 3}}, r"use parallel.n_workers instead"),
        ({"env": "none", "options": {"cores": 2}}, r"env 'none', which starts no cluster"),
        ({"env": "local", "options": ["cores"]}, r"parallel.options must be a mapping"),
        (
            {"env": "local", "options": {"interface": "nosuch0"}},
            r"options interface 'nosuch0' is not usable here .*e.g. lo",
        ),
        (
            {"env": "local", "security": "tsl"},
            r"security must be one of .*\(did you mean 'tls'\?\)",
        ),
        ({"env": "local", "security": False}, r"security must be one of auto, tls, none"),
        (
            {"env": "local", "n_wrokers": 2},
            r"unknown key 'n_wrokers' \(did you mean 'n_workers'\?\)",
        ),
        (
            {"env": "local", "n_workers": 1, "min_workers": 2},
            r"min_workers \(2\) is larger than parallel.n_workers \(1\)",
        ),
        ({"env": "local", "startup_timeout": -1}, r"startup_timeout must be a positive number"),
        (
            {"env": "ssh"},
            r"parallel.env 'ssh' cannot give its remote processes a temporary TLS"
            if importlib.util.find_spec("asyncssh")
            else r"SSHCluster, which cannot be imported .*Please install asyncssh",
        ),
        ("/nonexistent/parallel.yaml", r"parallel config file '/nonexistent/parallel.yaml' does"),
        (42, r"parallel config must be a mapping, a DictConfig or a YAML path, got int"),
    ],
)
def test_bad_config_is_rejected_with_a_message_naming_it(config, message):
    with pytest.raises((ConfigError, SetupError), match=message):
        ParallelConfig.from_any(config)


def test_unknown_env_lists_every_supported_one():
    with pytest.raises(ConfigError) as err:
        ParallelConfig.from_any({"env": "mpi"})
    assert "supported: " + ", ".join(schedulers()) in str(err.value)


@pytest.mark.parametrize(("env", "package"), [("kube", "dask-kubernetes"), ("ssh", "asyncssh")])
def test_optional_cluster_without_its_package_names_the_package(env, package):
    """Runs only where the optional package is absent, as on this project's machines."""
    try:
        scheduler_for(env).load()
    except SetupError as err:  # a RuntimeError, as upstream ESPnet3 raises
        assert f"pip install {package}" in str(err) and "Please install" in str(err)
        with pytest.raises(RuntimeError, match=f"pip install {package}"):
            ParallelConfig.from_any({"env": env, "security": "none"})
    else:
        pytest.skip(f"{package} is installed here")


def test_local_cuda_without_dask_cuda_names_the_package():
    try:
        import dask_cuda  # noqa: F401
    except ImportError:
        for env in ("local_cuda", "local_gpu"):
            with pytest.raises(SetupError, match=r"LocalCUDACluster.*pip install dask-cuda"):
                ParallelConfig.from_any({"env": env})
    else:
        pytest.skip("dask-cuda is installed here")


def test_every_jobqueue_env_accepts_its_own_options():
    batch = [env for env, s in schedulers().items() if isinstance(s, BatchScheduler)]
    assert len(batch) >= 7
    for env in batch:
        cfg = ParallelConfig.from_any(
            {"env": env, "n_workers": 2, "options": {"cores": 1, "memory": "1GB"}}
        )
        assert (cfg.env, cfg.n_workers, cfg.options["cores"]) == (env, 2, 1)
    slurm = ParallelConfig.from_any(
        {"env": "slurm", "options": {"walltime": "01:00:00", "queue": "gpu", "interface": "lo"}}
    )
    assert slurm.options["walltime"] == "01:00:00"


def test_local_accepts_worker_arguments_it_forwards():
    cfg = ParallelConfig.from_any({"env": "local", "n_workers": 2, "options": {"memory_limit": 0}})
    assert cfg.options == {"memory_limit": 0}


def test_defaults_and_sequential_aliases():
    assert ParallelConfig.from_any(None).is_sequential
    assert ParallelConfig.from_any({"env": "sequential"}).is_sequential
    assert ParallelConfig.from_any({"parallel": None}).is_sequential
    cfg = ParallelConfig.from_any({"env": "LOCAL", "n_workers": 2})
    assert (cfg.env, cfg.security, cfg.is_sequential) == ("local", "auto", False)


def test_sequential_envs_are_those_whose_scheduler_says_so():
    sequential = {env for env in schedulers() if ParallelConfig(env=env).is_sequential}
    assert sequential == {"none", "sequential"}


def test_the_default_number_of_workers_comes_from_the_scheduler():
    assert ParallelConfig.from_any({"env": "local"}).n_workers == (os.cpu_count() or 1)
    assert ParallelConfig.from_any({"env": "slurm"}).n_workers == 1
    assert ParallelConfig.from_any({"env": "none"}).n_workers == 1
    assert ParallelConfig.from_any({"env": "local", "n_workers": 3}).n_workers == 3


def test_whole_recipe_config_and_yaml_file(tmp_path):
    recipe = {"parallel": {"env": "local", "n_workers": 3}, "dataset": {"name": "an4"}}
    assert ParallelConfig.from_any(recipe).n_workers == 3
    path = tmp_path / "parallel.yaml"
    path.write_text("parallel:\n  env: slurm\n  n_workers: 4\n  options: {walltime: '01:00:00'}\n")
    cfg = ParallelConfig.from_any(path)
    assert (cfg.env, cfg.n_workers, cfg.options["walltime"]) == ("slurm", 4, "01:00:00")


def test_callers_dict_and_dictconfig_are_never_mutated():
    given = {
        "env": "slurm",
        "n_workers": 2,
        "options": {"job_extra_directives": ["--gres=gpu:1"], "cores": 1},
    }
    snapshot = copy.deepcopy(given)
    cfg = ParallelConfig.from_any(given)
    cfg.options["job_extra_directives"].append("--exclusive")
    assert given == snapshot

    dict_config = OmegaConf.create(snapshot)
    from_omegaconf = ParallelConfig.from_any({"parallel": dict_config})
    from_omegaconf.options["cores"] = 99
    assert OmegaConf.to_container(dict_config) == snapshot
    assert ParallelConfig.from_any(dict_config) == ParallelConfig.from_any(snapshot)


def test_set_and_get_parallel_copy_so_nothing_is_aliased():
    given = {"env": "local", "n_workers": 2, "options": {"memory_limit": "1GB"}}
    stored = set_parallel(given)
    given["options"]["memory_limit"] = "9GB"
    stored.options["memory_limit"] = "8GB"
    get_parallel_config().options["memory_limit"] = "7GB"
    assert get_parallel_config().options == {"memory_limit": "1GB"}

    config_object = ParallelConfig.from_any({"env": "local", "n_workers": 2})
    set_parallel(config_object)
    config_object.options["memory_limit"] = "6GB"
    assert get_parallel_config().options == {}


def test_config_round_trips_through_to_dict():
    cfg = ParallelConfig.from_any(
        {"env": "slurm", "n_workers": 3, "security": "none", "options": {"cores": 2}}
    )
    assert ParallelConfig.from_any(cfg.to_dict()) == cfg
