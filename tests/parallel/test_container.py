"""ContainerSpec: validation, and the exact argv that runs workers and shards in the image.

The ``.sif`` files here are empty files: only their existence is checked before submission,
and no test runs Apptainer (tests/containers/ does, in the compose cluster).
"""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from espnet3.errors import ConfigError
from espnet3.parallel.config import ParallelConfig
from espnet3.parallel.container import ContainerSpec
from espnet3.parallel.schedulers import scheduler_for

FORWARD = (
    "for v in $(env | grep -oE '^(CUDA_VISIBLE_DEVICES|DASK_[A-Za-z0-9_]+|MALLOC_[A-Za-z0-9_]+"
    "JOBS)='); "
    'do v=${v%=}; eval "export RUNTIMEENV_$v=\\"\\${$v}\\""; done; exec "$@"'
)


def forward(runtime: str, jobs: str = "") -> str:
    """The sh wrapper that forwards the generic variables and ``jobs`` (a scheduler's, as an
    ERE) under ``runtime``'s prefix, spelled out."""
    return FORWARD.replace("RUNTIME", runtime.upper()).replace("JOBS", jobs and f"|{jobs}")


@pytest.fixture
def sif(tmp_path):
    path = tmp_path / "espnet3.sif"
    path.write_bytes(b"")
    return str(path)


def spec(**fields) -> ContainerSpec:
    return ContainerSpec.from_any(fields)


@pytest.mark.parametrize("runtime", ["apptainer", "singularity"])
def test_hpc_runtime_with_gpus_binds_and_env(runtime, sif):
    s = spec(
        runtime=runtime,
        image=sif,
        gpus=True,
        binds=["/data", "/scratch:/s:ro"],
        env={"HF_HOME": "/data/hf"},
    )
    assert s.exec_prefix(extra_binds=["/logs"]) == [
        "sh", "-c", forward(runtime), "espnet3-forward-env",
        runtime, "exec", "--nv", "--cleanenv",
        "--env", "PYTHONNOUSERSITE=1", "--env", "HF_HOME=/data/hf",
        "-B", "/data", "-B", "/scratch:/s:ro", "-B", "/logs",
        sif,
    ]  # fmt: skip


@pytest.mark.parametrize("runtime", ["apptainer", "singularity"])
def test_hpc_runtime_without_gpus_or_binds(runtime, sif):
    assert spec(runtime=runtime, image=sif).exec_prefix() == [
        "sh", "-c", forward(runtime), "espnet3-forward-env",
        runtime, "exec", "--cleanenv", "--env", "PYTHONNOUSERSITE=1", sif,
    ]  # fmt: skip


def test_without_cleanenv_the_environment_passes_as_is(sif):
    s = spec(image=sif, cleanenv=False, extra_args=["--writable-tmpfs"], binds=["/data"])
    assert s.exec_prefix(extra_binds=["/data"]) == [
        "apptainer", "exec", "--env", "PYTHONNOUSERSITE=1", "-B", "/data", "--writable-tmpfs", sif,
    ]  # fmt: skip


def test_worker_python_is_the_quoted_prefix_then_python(sif):
    s = spec(image=sif, gpus=True)
    assert shlex.split(s.worker_python()) == [*s.exec_prefix(), "python"]


def test_the_config_forwards_its_schedulers_job_variables(sif):
    for env in ("slurm", "lsf"):
        container = ParallelConfig.from_any({"env": env, "container": {"image": sif}}).container
        assert container.job_variables == scheduler_for(env).job_variables
    slurm = ParallelConfig.from_any({"env": "slurm", "container": {"image": sif}})
    assert slurm.container.exec_prefix()[2] == forward("apptainer", "SLURM_[A-Za-z0-9_]+")
    with pytest.raises(ValueError, match="not an environment variable name"):
        ContainerSpec.from_any({"image": sif}, job_variables=["X;rm"]).exec_prefix()


def test_forwarding_exports_only_present_job_variables(sif):
    """Runs the real sh wrapper, with `env` standing in for apptainer (absent here)."""
    container = ParallelConfig.from_any({"env": "slurm", "container": {"image": sif}}).container
    wrapper = container.exec_prefix()[:4]
    env = {
        "PATH": os.environ["PATH"],
        "SLURM_JOB_ID": "77",
        "SLURM_PROCID": "0",
        "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "30s",
        "CUDA_VISIBLE_DEVICES": "0,1",
        "SECRET_TOKEN": "x",
        "MY_SLURM_JOB": "no",
        "DASK_QUOTED": 'a "b" $c',
    }
    out = subprocess.run([*wrapper, "env"], env=env, capture_output=True, text=True, check=True)
    forwarded = dict(
        line.split("=", 1) for line in out.stdout.splitlines() if line.startswith("APPTAINERENV_")
    )
    assert forwarded == {
        "APPTAINERENV_SLURM_JOB_ID": "77",
        "APPTAINERENV_SLURM_PROCID": "0",
        "APPTAINERENV_DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "30s",
        "APPTAINERENV_CUDA_VISIBLE_DEVICES": "0,1",
        "APPTAINERENV_DASK_QUOTED": 'a "b" $c',
    }


@pytest.mark.parametrize(
    ("runtime", "gpu_args"),
    [("docker", ["--gpus", "all"]), ("podman", ["--device", "nvidia.com/gpu=all"])],
)
def test_workstation_runtimes(runtime, gpu_args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = spec(
        runtime=runtime,
        image="espnet3:0.1.0-gpu",
        gpus=True,
        binds=["/data"],
        env={"HF_HOME": "/data/hf"},
    )
    assert s.exec_prefix() == [
        runtime, "run", "--rm", "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}",
        *gpu_args, "-e", "CUDA_VISIBLE_DEVICES",
        "-e", "PYTHONNOUSERSITE=1", "-e", "HF_HOME=/data/hf",
        "-v", "/data:/data", "-v", f"{tmp_path}:{tmp_path}", "-w", str(tmp_path),
        "espnet3:0.1.0-gpu",
    ]  # fmt: skip
    assert "--gpus" not in spec(runtime=runtime, image="espnet3:cpu").exec_prefix()


@pytest.mark.parametrize("variable", ["APPTAINER_CONTAINER", "SINGULARITY_CONTAINER"])
def test_image_auto_is_the_image_this_process_runs_in(variable, sif, monkeypatch):
    monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    monkeypatch.setenv(variable, sif)
    assert spec(image="auto").exec_prefix()[-1] == sif


def test_image_auto_need_not_be_visible_inside_the_image(tmp_path, monkeypatch):
    # Apptainer names the SIF by its host path, often a directory not bound inside.
    unbound = str(tmp_path / "not-bound" / "espnet3.sif")
    monkeypatch.setenv("APPTAINER_CONTAINER", unbound)
    assert spec(image="auto").exec_prefix()[-1] == unbound


def test_image_auto_outside_any_image_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("APPTAINER_CONTAINER", raising=False)
    monkeypatch.delenv("SINGULARITY_CONTAINER", raising=False)
    with pytest.raises(ConfigError, match="does not run inside an Apptainer/Singularity image"):
        spec(image="auto").exec_prefix()


def test_image_auto_needs_an_hpc_runtime():
    with pytest.raises(ConfigError, match="image: auto needs runtime apptainer or singularity"):
        spec(runtime="docker", image="auto")


def test_missing_image_fails_before_any_job_is_submitted(tmp_path):
    """The worker command is made before the cluster exists, so nothing reaches sbatch."""
    from espnet3.parallel import get_client

    missing = tmp_path / "nowhere" / "espnet3.sif"
    cfg = {
        "env": "slurm",
        "options": {"cores": 1, "memory": "1GB", "interface": "lo"},
        "container": {"image": str(missing)},
        "log_dir": str(tmp_path / "logs"),
    }
    with pytest.raises(ConfigError, match=f"image '{missing}' does not exist"):
        with get_client(cfg):
            pass
    assert not list((tmp_path / "logs").rglob("*.err"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"imgae": "x.sif"}, "unknown key 'imgae' (did you mean 'image'?)"),
        (
            {"runtime": "apptainr"},
            "runtime 'apptainr' is not supported (did you mean 'apptainer'?)",
        ),
        ({"binds": "/data"}, "binds must be a list of strings, got '/data'"),
        ({"gpus": "yes"}, "gpus must be true or false, got 'yes'"),
        ({"env": {"BAD-NAME": "1"}}, "'BAD-NAME' is not a valid environment variable name"),
        ("x.sif", "must be a mapping (runtime, image, ...)"),
    ],
)
def test_invalid_sections_name_the_key(value, message):
    with pytest.raises(ConfigError) as err:
        ParallelConfig.from_any({"env": "slurm", "container": value})
    assert message in str(err.value)


def test_parallel_config_holds_a_frozen_spec_and_round_trips(sif):
    cfg = ParallelConfig.from_any(
        {"env": "slurm", "container": {"image": sif, "gpus": True, "binds": ["/d"]}}
    )
    assert isinstance(cfg.container, ContainerSpec)
    with pytest.raises(AttributeError):
        cfg.container.image = "other.sif"
    assert ParallelConfig.from_any(cfg.to_dict()) == cfg


def test_options_python_and_a_container_conflict(sif):
    with pytest.raises(ConfigError, match="options.python and parallel.container are both set"):
        ParallelConfig.from_any(
            {"env": "slurm", "options": {"python": "/usr/bin/python3"}, "container": {"image": sif}}
        )


def test_slurm_job_script_runs_the_worker_behind_the_exact_prefix(sif, tmp_path):
    """A real SLURMCluster renders the script; job_script() needs no running SLURM."""
    from dask_jobqueue import SLURMCluster

    cfg = ParallelConfig.from_any(
        {
            "env": "slurm",
            "options": {"cores": 1, "memory": "1GB", "interface": "lo"},
            "container": {"image": sif, "gpus": True, "binds": ["/data"]},
        }
    )
    python = cfg.scheduler.python_command(cfg, [str(tmp_path)])
    assert python == cfg.container.worker_python([str(tmp_path)])
    with SLURMCluster(
        cores=1, memory="1GB", interface="lo", python=python, scheduler_options={"interface": "lo"}
    ) as cluster:
        script = cluster.job_script()
    command = next(line for line in script.splitlines() if "distributed.cli.dask_worker" in line)
    argv = shlex.split(command)
    expected = [*cfg.container.exec_prefix([str(tmp_path)]), "python"]
    assert argv[: len(expected)] == expected
    assert argv[len(expected) : len(expected) + 2] == ["-m", "distributed.cli.dask_worker"]
    assert ["--nv", "-B", "/data", "-B", str(tmp_path), sif] == [
        a for a in argv if a in ("--nv", "-B", "/data", str(tmp_path), sif)
    ]
