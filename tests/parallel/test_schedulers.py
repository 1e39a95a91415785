"""Every batch scheduler's worker job script and shard array script, against golden files.

The scripts are rendered by the real dask-jobqueue job classes and our scheduler objects, with
each family's own ``example_options``; no scheduler runs. SLURM is also tested live
(``test_slurm.py``, ``test_slurm_runner.py``). A new family needs nothing here but its golden
files: ``ESPNET3_UPDATE_GOLDEN=1 pytest tests/parallel/test_schedulers.py`` writes them; review
the diff before committing it.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import subprocess
from pathlib import Path

import pytest

from espnet3.errors import ConfigError
from espnet3.parallel import ParallelConfig
from espnet3.parallel import schedulers as schedulers_package
from espnet3.parallel.jobqueue import worker_job_options
from espnet3.parallel.schedulers import (
    ShardBatch,
    ShardTask,
    job_here,
    job_variables,
    scheduler_for,
    schedulers,
)
from espnet3.parallel.schedulers.batch import BatchScheduler

GOLDEN = Path(__file__).parent / "golden"
PYTHON = "/opt/espnet3/bin/python"
RUNS = Path("/runs")
MODULES = [
    schedulers_package.__name__,
    *sorted(
        f"{schedulers_package.__name__}.{info.name}"
        for info in pkgutil.iter_modules(schedulers_package.__path__)
    ),
]
BATCH_ENVS = sorted(env for env, s in schedulers().items() if isinstance(s, BatchScheduler))


def config(env: str) -> ParallelConfig:
    return ParallelConfig.from_any(
        {
            "env": env,
            "n_workers": 4,
            "security": "none",  # a temporary certificate's paths would differ on every run
            "options": {
                "cores": 2,
                "memory": "4GB",
                "python": PYTHON,
                "job_script_prologue": ["module load ffmpeg"],
                **scheduler_for(env).example_options,
            },
        }
    )


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("ESPNET3_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.is_file(), f"no golden file {path}: run with ESPNET3_UPDATE_GOLDEN=1 and review"
    assert text == path.read_text(), f"{name} differs from its golden file"


def test_every_dask_jobqueue_family_has_a_scheduler_with_example_options():
    import dask_jobqueue

    families = {
        name.removesuffix("Cluster").lower()
        for name in dir(dask_jobqueue)
        if name.endswith("Cluster") and name not in ("JobQueueCluster",)
    }
    assert families == set(BATCH_ENVS)
    assert all(scheduler_for(env).example_options for env in BATCH_ENVS)


@pytest.mark.parametrize("module", MODULES)
def test_the_examples_of_every_scheduler_module_hold(module):
    """Each family's docstring examples (how it reads what its submit command prints, ...)."""
    failed, _ = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert failed == 0


@pytest.mark.parametrize("env", BATCH_ENVS)
def test_worker_job_script_matches_its_golden_file(env):
    cfg = config(env)
    scheduler = scheduler_for(env)
    _, options = worker_job_options(cfg, scheduler, RUNS / "dask-jobs" / "run-1")
    job = scheduler.job_cls(scheduler="tcp://10.1.2.3:8786", name="worker-0", **options)
    check_golden(f"{env}.worker", job.job_script())


@pytest.mark.parametrize("env", BATCH_ENVS)
def test_shard_array_files_match_their_golden_files(env):
    cfg = config(env)
    scheduler = scheduler_for(env)
    listing = RUNS / "specs" / "array-ab12-0.list"
    batch = ShardBatch(
        name="ab12",
        tasks=[
            ShardTask(f"shard-{i}", RUNS / "specs" / f"shard-{i}.spec.json", Path(f"/r/{i}"))
            for i in range(12)
        ],
        command=[PYTHON, "-m", "espnet3.runner.shard"],
        work_dir=RUNS / "specs",
        log_dir=RUNS / "logs",
        max_running=3,
    )
    files = scheduler.array_files(listing, 12, batch, cfg)
    assert ".sh" in files
    for suffix, text in files.items():
        check_golden(f"{env}.array{suffix}", text)
    script = files[".sh"]
    assert script.startswith("#!/usr/bin/env bash\n") and "module load ffmpeg" in script
    assert script.rstrip().endswith(f'exec {PYTHON} -m espnet3.runner.shard "$spec"')


def test_squeue_folded_pending_tasks_are_found():
    slurm = scheduler_for("slurm")
    answers = {"41_[3-5,9%2]": "pending-range", "41_1": "running"}
    assert slurm.find_job("41_4", answers) == "pending-range"
    assert slurm.find_job("41_9", answers) == "pending-range"
    assert slurm.find_job("41_1", answers) == "running"
    assert slurm.find_job("41_7", answers) is None


@pytest.mark.parametrize("env", BATCH_ENVS)
def test_each_array_task_runs_its_own_line_of_the_listing(env, tmp_path):
    """Runs the rendered script in bash as the scheduler would start its second task."""
    scheduler = scheduler_for(env)
    specs = [tmp_path / f"shard-{i}.spec.json" for i in range(3)]
    listing = tmp_path / "array-x-0.list"
    listing.write_text("".join(f"{p}\n" for p in specs))
    batch = ShardBatch("x", [], ["echo", "running"], tmp_path, tmp_path / "logs", 2)
    (tmp_path / "logs").mkdir()
    cfg = ParallelConfig.from_any(
        {"env": env, "options": {"cores": 1, "memory": "1GB", **scheduler.example_options}}
    )
    script = tmp_path / "task.sh"
    script.write_text(scheduler.array_files(listing, 3, batch, cfg)[".sh"])
    second = str(1 + scheduler.first_task)
    env_vars = {**os.environ, scheduler.task_variable: second} if scheduler.task_variable else None
    args = [] if scheduler.task_variable else [second]  # HTCondor passes $(ProcId)
    out = subprocess.run(
        ["bash", str(script), *args], env=env_vars, capture_output=True, text=True, check=True
    )
    log = scheduler.task_log(tmp_path / "logs" / listing.stem, 1)
    printed = log.read_text() if scheduler.redirects_output else out.stdout
    assert printed == f"running {specs[1]}\n"


def test_shards_without_cores_or_memory_are_refused_naming_them():
    cfg = ParallelConfig.from_any({"env": "pbs", "options": {"queue": "cpu"}})
    with pytest.raises(ConfigError, match=r"do not describe a pbs job .*cores: 8 and memory"):
        scheduler_for("pbs").resource_directives(cfg)


def test_dask_config_fallbacks_come_from_the_section_config_name_names():
    """Walltime and prologue left out of the options come from jobqueue.<config_name>, as
    dask-jobqueue's own job reads them, for the worker script and the shard array alike."""
    import dask

    slurm = {
        **dask.config.get("jobqueue.slurm"),
        "walltime": "01:00:00",
        "job-script-prologue": ["module load slurm-default"],
    }
    mine = {**slurm, "walltime": "00:20:00", "job-script-prologue": ["module load mycluster"]}
    sections = {"jobqueue.slurm": slurm, "jobqueue.mycluster": mine}
    options = {"cores": 2, "memory": "4GB", "python": PYTHON, "config_name": "mycluster"}
    cfg = ParallelConfig.from_any(
        {"env": "slurm", "n_workers": 2, "security": "none", "options": options}
    )
    scheduler = scheduler_for("slurm")
    with dask.config.set(sections):
        _, worker = worker_job_options(cfg, scheduler, RUNS / "dask-jobs" / "run-1")
        batch = ShardBatch(
            name="ab12",
            tasks=[ShardTask("shard-0", RUNS / "specs" / "s0.spec.json", Path("/r/0"))],
            command=[PYTHON, "-m", "espnet3.runner.shard"],
            work_dir=RUNS / "specs",
            log_dir=RUNS / "logs",
            max_running=1,
        )
        array = scheduler.array_files(RUNS / "specs" / "a.list", 1, batch, cfg)[".sh"]
    lifetime = worker["worker_extra_args"][worker["worker_extra_args"].index("--lifetime") + 1]
    assert lifetime == "1020s"  # 20 min less the margin and stagger, not 1 h's 3180 s
    assert worker["job_script_prologue"][-1] == "module load mycluster"
    assert "module load mycluster" in array and "slurm-default" not in array


@pytest.mark.parametrize("env", BATCH_ENVS)
def test_a_job_is_known_by_the_variables_its_family_names(env, tmp_path):
    """Each family's job id comes from its jobs' environment, and the variable holding it is
    among those forwarded into a container and logged (its ``job_variables``)."""
    scheduler = scheduler_for(env)
    variable = scheduler.job_id_variable
    if not variable:  # HTCondor: the job ad the job is given holds the id
        ad = tmp_path / ".job.ad"
        ad.write_text('ClusterId = 4211\nProcId = 3\nOwner = "me"\n')
        variable, environ, expected = "_CONDOR_JOB_AD", {"_CONDOR_JOB_AD": str(ad)}, "4211.3"
    else:
        environ, expected = {variable: "4211"}, "4211"
    assert scheduler.job_id(environ) == job_here(environ) == expected
    assert any(
        variable.startswith(v) if v.endswith("_") else variable == v
        for v in scheduler.job_variables
    )
    assert set(scheduler.job_variables) <= set(job_variables())
    assert job_here({}) == ""


def test_stage_logs_show_the_job_variables_the_families_name(monkeypatch, caplog):
    """Upstream's ``log_env_metadata(logger)`` logs every family's job variables by default;
    given prefixes, only those."""
    import logging

    from espnet3.utils.logging_utils import log_env_metadata

    monkeypatch.setenv("SLURM_JOB_ID", "4211")
    monkeypatch.setenv("LSB_JOBID", "77")
    with caplog.at_level(logging.INFO):
        log_env_metadata(logging.getLogger("stage"))
    assert "SLURM_JOB_ID=4211" in caplog.text and "LSB_JOBID=77" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        log_env_metadata(logging.getLogger("stage"), ("LSB_",))
    assert "SLURM_JOB_ID" not in caplog.text and "LSB_JOBID=77" in caplog.text
