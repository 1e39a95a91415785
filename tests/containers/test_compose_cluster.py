"""End to end in the docker-compose SLURM cluster (slurm/compose): every process in the SIF.

The parent is a Python process inside /shared/espnet3.sif on the controller; workers are
SLURM jobs on c1/c2 started with `apptainer exec`. Run by `bash slurm/compose/cluster.sh ci`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.compose

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "slurm" / "compose" / "cluster.sh"
PARENT = ["apptainer", "exec", "-B", "/etc/slurm", "-B", "/run/munge", "-B", "/shared",
          "-B", "/repo", "--pwd", "/shared/run", "/shared/espnet3.sif",
          "python", "/repo/tests/containers/compose_parent.py"]  # fmt: skip


def on_ctl(*argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(CLUSTER), "exec", "ctl", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def built_identity() -> str:
    """The identity build.sh recorded for the SIF on the shared volume."""
    text = on_ctl("cat", "/shared/espnet3.identity").stdout
    return dict(line.split("=", 1) for line in text.split())["ESPNET3_IMAGE_ID"]


def last_json(proc: subprocess.CompletedProcess) -> dict:
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from the parent (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1])


def test_elastic_workers_run_in_the_parents_image(built_identity):
    proc = on_ctl(*PARENT, "auto")
    out = last_json(proc)
    assert proc.returncode == 0, out
    assert out["parent"]["image"] == built_identity
    pinned = out["pinned"]
    assert len(pinned) == 2
    assert len({r["slurm_job_id"] for r in pinned}) == 2, pinned
    assert {r["host"] for r in pinned} == {"c1", "c2"}
    for result in pinned + out["mapped"]:
        assert result["slurm_job_id"].isdigit()
        assert result["image"] == built_identity
        assert result["container"] == "/shared/espnet3.sif"
    assert [r["index"] for r in out["mapped"]] == list(range(6))
    assert {r["slurm_job_id"] for r in out["mapped"]} <= {r["slurm_job_id"] for r in pinned}


def test_workers_of_another_image_are_refused_with_a_diff(built_identity):
    proc = on_ctl(*PARENT, "/shared/espnet3-mismatch.sif")
    out = last_json(proc)
    assert proc.returncode == 3, out
    lines = out["error"].splitlines()
    assert lines[0] == f"2 of 2 worker(s) differ from the parent's (image {built_identity}):"
    assert lines[1].split() == ["worker", "field", "expected", "found"]
    rows = [line.split() for line in lines[2:4]]
    assert [row[1:] for row in rows] == [["image", built_identity, "espnet3-forced-mismatch"]] * 2
    assert "check parallel.container.image" in lines[-1]
    # get_client cancelled the refused workers' jobs on the way out.
    assert on_ctl("squeue", "-h", "-t", "PENDING,RUNNING", "-o", "%i %j").stdout.strip() == ""


def test_static_allocation_runs_every_rank_in_the_image(built_identity):
    proc = on_ctl(
        "sbatch", "--wait", "--chdir", "/shared/run", "--output", "/shared/run/static-%j.out",
        "--export", "ALL,SIF=/shared/espnet3.sif,ENTRY=/repo/slurm/dask_static_apptainer.py,"
        "INTERFACE=eth0",
        "/repo/slurm/dask_static_apptainer.sbatch",
    )  # fmt: skip
    job_id = proc.stdout.split()[-1]
    log = on_ctl("cat", f"/shared/run/static-{job_id}.out").stdout
    assert proc.returncode == 0, f"{proc.stdout}{proc.stderr}\n{log}"
    results = f"/shared/run/exp/dask-static-{job_id}/results.json"
    out = json.loads(on_ctl("cat", results).stdout)
    assert out["parent"]["image"] == built_identity
    assert len(out["workers"]) == 2
    assert sorted(r["slurm_procid"] for r in out["results"]) == ["2", "3"]
    for result in out["results"]:
        assert result["slurm_job_id"] == job_id
        assert result["image"] == built_identity
