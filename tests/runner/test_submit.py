"""How shard jobs are described to the scheduler: the argv and the Python (the array scripts
of every scheduler are golden files: tests/parallel/test_schedulers.py)."""

from __future__ import annotations

import shlex
import sys

from espnet3.parallel import ParallelConfig
from espnet3.runner.submit import shard_command


def test_shard_command_runs_the_shard_module_with_any_python_prefix():
    assert shard_command("/s/a.spec.json") == [
        sys.executable,
        "-m",
        "espnet3.runner.shard",
        "/s/a.spec.json",
    ]
    container = ["apptainer", "exec", "--nv", "/img/espnet3.sif", "python"]
    assert shard_command("/s/a.spec.json", container)[:6] == [*container, "-m"]


def test_shards_run_inside_the_configured_container(tmp_path):
    image = tmp_path / "espnet3.sif"
    image.write_bytes(b"")
    config = ParallelConfig.from_any(
        {
            "env": "slurm",
            "container": {"runtime": "apptainer", "image": str(image), "binds": ["/data"]},
        }
    )
    argv = shlex.split(config.scheduler.python_command(config))
    assert argv[-2:] == [str(image), "python"]
    assert argv == [*config.container.exec_prefix(), "python"]
    assert "apptainer" in argv and "--cleanenv" in argv and "/data" in " ".join(argv)
