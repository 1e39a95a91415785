"""``env: slurm`` against the real SLURM started by ``slurm/local-cluster.sh up``.

All traffic stays on 127.0.0.1 (``interface: lo``); each worker is a 1-core, 1 GB job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from benchmarks.common import spin_item
from espnet3.errors import ConfigError, Espnet3Error
from espnet3.parallel import ParallelConfig, get_client, parallel_map
from espnet3.parallel.jobs import JobFailedError
from espnet3.parallel.schedulers.slurm import SLURM
from tests.timing import python_start_seconds

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]


def slurm_config(tmp_path: Path, **options) -> dict:
    return {
        "env": "slurm",
        "n_workers": 2,
        "min_workers": 2,
        "startup_timeout": 240,
        "log_dir": str(tmp_path / "jobs"),
        "options": {"cores": 1, "memory": "1GB", "interface": "lo", "walltime": "00:10:00"}
        | options,
    }


def active_jobs(job_ids) -> set[str]:
    """Ids among ``job_ids`` that squeue still lists (pending, running or completing)."""
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True)
    return set(out.stdout.split()) & {str(j) for j in job_ids}


def wait_until_gone(job_ids) -> set[str]:
    """Ids among ``job_ids`` still queued after a wait relative to this machine's speed now."""
    deadline = None
    while left := active_jobs(job_ids):
        if deadline is None:  # measured only when they are not gone at once
            deadline = time.monotonic() + 5 * python_start_seconds()
        elif time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return left


# Workers import mapped functions by name and cannot import this test module, so the work is
# done by importable functions: spin_item (benchmarks/, found from the job's working directory,
# the repository root) burns a fixed CPU time and returns its index; os.getenv reads the job id.
JOB_ID = "SLURM_JOB_ID"


def job_ids_of(client) -> set[str]:
    return set(client.run(os.getenv, JOB_ID).values())


@pytest.mark.timeout(300)
def test_map_runs_on_two_workers_in_two_jobs_and_exit_cancels_them(tmp_path):
    with get_client(slurm_config(tmp_path)) as client:
        job_ids = job_ids_of(client)
        assert len(job_ids) == 2
        assert active_jobs(job_ids) == job_ids
        assert parallel_map(pow, range(20), client, exp=2) == [x * x for x in range(20)]
        assert set(parallel_map(os.getenv, [JOB_ID] * 40, client)) <= job_ids
    assert wait_until_gone(job_ids) == set()
    (run_dir,) = [p for p in (tmp_path / "jobs").iterdir() if p.name != ".tls"]
    logs = {p.name for p in run_dir.iterdir()}
    assert {f"dask-worker-{j}.err" for j in job_ids} <= logs


@pytest.mark.timeout(180)
def test_a_job_running_two_worker_processes_counts_as_two_workers(tmp_path):
    """n_workers counts Dask workers: with processes=2, one job holds both."""
    with get_client(slurm_config(tmp_path, cores=2, processes=2)) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert len(job_ids_of(client)) == 1
        assert parallel_map(pow, range(6), client, exp=2) == [x * x for x in range(6)]


@pytest.mark.timeout(120)
def test_a_job_that_can_never_start_fails_at_once(tmp_path):
    """64 cores on a 2-core node: SLURM accepts the job and holds it (PartitionConfig) forever."""
    with pytest.raises(Espnet3Error, match=r"can never start: .*PartitionConfig.*parallel.options"):
        with get_client(slurm_config(tmp_path, cores=64)):
            pass
    assert [p.name for p in (tmp_path / "jobs").iterdir()] == [".tls"]  # no empty run dir


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"memory": 1}, "options.memory must be an amount with its unit, got 1"),
        ({"cores": "one"}, "options.cores must be a positive integer, got 'one'"),
        ({"walltime": "soon"}, "options.walltime 'soon' is not a walltime"),
    ],
)
def test_bad_job_resources_are_config_errors_when_the_config_is_read(tmp_path, options, complaint):
    with pytest.raises(ConfigError, match=complaint):
        ParallelConfig.from_any(slurm_config(tmp_path, **options))


@pytest.mark.timeout(120)
def test_worker_that_cannot_start_fails_naming_its_job_and_log(tmp_path):
    config = slurm_config(tmp_path, python="/nonexistent/bin/python")
    with pytest.raises(JobFailedError) as caught:
        with get_client(config):
            pass
    message = str(caught.value)
    job = caught.value.job
    assert f"job {job.job_id} FAILED" in message
    assert "ended before its Dask worker connected" in message
    assert "/nonexistent/bin/python" in message  # the log tail: bash's "No such file" line
    assert caught.value.stderr.endswith(f"dask-worker-{job.job_id}.err")
    assert wait_until_gone([job.job_id]) == set()


@pytest.mark.timeout(120)
def test_bad_partition_surfaces_sbatch_error_verbatim(tmp_path):
    with pytest.raises(Espnet3Error) as caught:
        with get_client(slurm_config(tmp_path, queue="no-such-partition")):
            pass
    message = str(caught.value)
    assert "sbatch: error: invalid partition specified: no-such-partition" in message
    assert "parallel.env 'slurm'" in message
    assert [p.name for p in (tmp_path / "jobs").iterdir()] == [".tls"]  # no empty run dir


CHILD = """
import os, time
from espnet3.parallel import get_client, parallel_map

with get_client({config!r}) as client:
    print("JOBS", *sorted(set(client.run(os.getenv, "SLURM_JOB_ID").values())), flush=True)
    parallel_map(time.sleep, [0.5] * 2000, client)
"""


@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_killed_parent_leaves_no_job(tmp_path, signum):
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD.format(config=slurm_config(tmp_path))))
    child = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        # As in a terminal: a test run started in the background would pass SIGINT on ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        line = child.stdout.readline()
        assert line.startswith("JOBS "), f"child printed {line!r}"
        job_ids = line.split()[1:]
        assert len(job_ids) == 2
        time.sleep(2)  # the map is running
        child.send_signal(signum)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == (128 + signal.SIGTERM if signum == signal.SIGTERM else -signum)
    assert wait_until_gone(job_ids) == set()


@pytest.mark.timeout(300)
def test_cancelled_worker_job_loses_no_result(tmp_path):
    with get_client(slurm_config(tmp_path)) as client:
        victim = sorted(job_ids_of(client))[0]
        killed = threading.Event()

        def kill_victim():
            subprocess.run(["scancel", victim], check=True)
            killed.set()

        killer = threading.Timer(3.0, kill_victim)
        killer.start()
        try:
            results = parallel_map(spin_item, range(60), client, cost=0.2)
        finally:
            killer.cancel()
        assert killed.is_set(), "the map ended before the job was cancelled"
        assert results == list(range(60))
        assert SLURM.job_states([victim])[victim].state == "CANCELLED"
