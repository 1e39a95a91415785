"""How shard jobs are described to the scheduler: the argv, the Python, the array script."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from espnet3.parallel import ParallelConfig
from espnet3.runner.jobs_dir import _pending_array_task
from espnet3.runner.submit import shard_command, slurm_array_script


def test_shard_command_runs_the_shard_module_with_any_python_prefix():
    assert shard_command("/s/a.spec.json") == [
        sys.executable,
        "-m",
        "espnet3.runner.shard",
        "/s/a.spec.json",
    ]
    container = ["apptainer", "exec", "--nv", "/img/espnet3.sif", "python"]
    assert shard_command("/s/a.spec.json", container)[:6] == [*container, "-m"]


def test_array_script_carries_the_job_options_and_the_throttle(tmp_path):
    config = ParallelConfig.from_any(
        {
            "env": "slurm",
            "n_workers": 3,
            "options": {
                "queue": "cpu",
                "account": "speech",
                "cores": 2,
                "memory": "1GB",
                "walltime": "01:00:00",
                "python": "apptainer exec /img/e.sif python",
                "job_extra_directives": ["--exclusive"],
                "job_script_prologue": ["module load ffmpeg"],
                "interface": "lo",
            },
        }
    )
    listing = tmp_path / "array.list"
    script = slurm_array_script(listing, 12, config, Path("/logs"), max_running=3)
    lines = script.splitlines()
    for directive in (
        "--array=0-11%3",
        "--partition=cpu",
        "--account=speech",
        "--cpus-per-task=2",
        "--mem=954M",
        "--time=01:00:00",
        "--output=/logs/%A_%a.log",
        "--exclusive",
    ):
        assert f"#SBATCH {directive}" in lines
    assert "module load ffmpeg" in lines
    assert lines[-1] == ('exec apptainer exec /img/e.sif python -m espnet3.runner.shard "$spec"')
    assert shlex.split(config.python_command()) == ["apptainer", "exec", "/img/e.sif", "python"]
    assert not any("interface" in line for line in lines)  # a Dask-only option


def test_pending_array_tasks_are_found_in_folded_squeue_ids():
    scheduler = {"41_[3-5,9%2]": "pending-range", "41_1": "running"}
    assert _pending_array_task("41_4", scheduler) == "pending-range"
    assert _pending_array_task("41_9", scheduler) == "pending-range"
    assert _pending_array_task("41_7", scheduler) is None


def test_shards_run_inside_the_configured_container(tmp_path):
    image = tmp_path / "espnet3.sif"
    image.write_bytes(b"")
    config = ParallelConfig.from_any(
        {
            "env": "slurm",
            "container": {"runtime": "apptainer", "image": str(image), "binds": ["/data"]},
        }
    )
    argv = shlex.split(config.python_command())
    assert argv[-2:] == [str(image), "python"]
    assert argv == [*config.container.exec_prefix(), "python"]
    assert "apptainer" in argv and "--cleanenv" in argv and "/data" in " ".join(argv)
