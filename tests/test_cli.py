"""The ``espnet3`` command line, run as a real subprocess (``python -m espnet3``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_errors import one_line_error

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "mini_an4" / "asr"
WORKER = re.compile(r"^(tcp|tls)://127\.0\.0\.1:\d+ ")


def espnet3(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "espnet3", *args], capture_output=True, text=True, cwd=REPO
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["create-dataset"],
        ["run"],
        ["jobs", "status"],
        ["jobs", "collect"],
        ["cluster", "check"],
    ],
)
def test_every_command_has_help(command):
    proc = espnet3(*command, "--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"usage: espnet3 {' '.join(command)}".rstrip())


def test_unknown_override_key_is_one_line_with_a_suggestion(tmp_path):
    message = one_line_error(
        espnet3("create-dataset", str(RECIPE), f"data_dir={tmp_path}", "create_dataset.archiv=x")
    )
    assert "create_dataset.archiv" in message and "did you mean 'archive'" in message


def test_override_without_equals_is_one_line():
    message = one_line_error(espnet3("create-dataset", str(RECIPE), "x"))
    assert "'x' is not key=value" in message


def test_bad_interpolation_is_one_line(tmp_path):
    message = one_line_error(espnet3("create-dataset", str(RECIPE), "data_dir=${nowhere}"))
    # OmegaConf resolves interpolations as the override is applied: the error names both.
    assert "override 'data_dir=${nowhere}' cannot be applied" in message
    assert "Interpolation key 'nowhere' not found" in message


def test_missing_archive_is_one_line(tmp_path):
    message = one_line_error(
        espnet3(
            "create-dataset",
            str(RECIPE),
            f"data_dir={tmp_path / 'data'}",
            f"create_dataset.archive={tmp_path / 'nope.tar.gz'}",
        )
    )
    assert "nope.tar.gz" in message and "is not a file" in message


def test_debug_shows_the_traceback():
    proc = espnet3("--debug", "create-dataset", str(RECIPE), "create_dataset.archiv=x")
    assert proc.returncode == 1 and "Traceback" in proc.stderr


def test_missing_recipe_dir_is_one_line(tmp_path):
    message = one_line_error(espnet3("create-dataset", str(tmp_path / "nope")))
    assert "does not exist" in message


def test_jobs_status_of_a_missing_directory_is_one_line(tmp_path):
    message = one_line_error(espnet3("jobs", "status", str(tmp_path / "specs")))
    assert "does not exist" in message


def test_cluster_check_refuses_a_sequential_config():
    message = one_line_error(espnet3("cluster", "check", str(RECIPE / "conf" / "dataset.yaml")))
    assert "no cluster to check" in message


def test_cluster_check_on_a_local_cluster_reports_each_worker():
    proc = espnet3("cluster", "check", str(RECIPE / "conf" / "local.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "2 worker(s) connected" in proc.stdout
    assert len([line for line in proc.stdout.splitlines() if WORKER.match(line)]) == 2


@pytest.mark.slurm
def test_cluster_check_on_slurm_reports_job_ids(tmp_path):
    proc = espnet3(
        "cluster", "check", str(RECIPE / "conf" / "slurm.yaml"), f"parallel.log_dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if WORKER.match(line)]
    assert len(rows) == 2 and all(row[3].isdigit() for row in rows)


RACE = """
import logging, os, signal, sys, threading, time
from distributed.utils import LoopRunner, sync
from espnet3.cli.main import not_a_sync_cancel_race
logging.basicConfig(format="%(name)s: %(message)s")
if sys.argv[1] == "filtered":
    logging.getLogger("tornado.application").addFilter(not_a_sync_cancel_race)
runner = LoopRunner(asynchronous=False)
runner.start()
runner.loop.add_callback(time.sleep, 0.5)  # busy loop: the call and its cancel queue up
async def work():
    return 1
threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
try:
    sync(runner.loop, work)
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
time.sleep(1)
runner.stop()
"""


@pytest.mark.parametrize("mode", ["plain", "filtered"])
def test_ctrl_c_before_a_dask_call_starts_prints_no_traceback(mode):
    """distributed's sync() cannot cancel a call Ctrl-C interrupted before it started (a
    NameError tornado logs); the CLI's filter drops exactly that record."""
    proc = subprocess.run(
        [sys.executable, "-c", RACE, mode], capture_output=True, text=True, timeout=60
    )
    assert proc.stderr.splitlines()[0] == "interrupted", proc.stderr
    noise = "NameError: cannot access free variable 'future'" in proc.stderr
    assert noise == (mode == "plain"), proc.stderr
