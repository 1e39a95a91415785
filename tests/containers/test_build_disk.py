"""What containers/build.sh leaves on disk, after the CPU build `slurm/compose/cluster.sh ci` made.

Run by that script (the compose session), on the host's docker engine and real tmpfs mounts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.compose

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "containers" / "_build"
NODE_IMAGE = "espnet3/compose-node:latest"


def docker(*argv: str) -> str:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, check=True).stdout


def test_no_untagged_build_stage_is_left_behind():
    stages = []
    for image in docker("images", "-q", "--filter", "dangling=true").split():
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
        if "install-espnet3.sh" in history:
            stages.append(image)
    assert stages == []
    # The torch layer a rebuild reuses is kept, under a tag.
    assert docker("images", "-q", "espnet3-torch-layer:0.1.0-cpu").strip()


def test_the_archive_is_gone_once_the_sifs_are_built():
    assert (BUILD / "espnet3-0.1.0-cpu.sif").is_file()
    assert not (BUILD / "espnet3-0.1.0-cpu.tar").exists()
    assert not (BUILD / ".apptainer-tmp").exists()


def test_a_build_dir_too_small_for_the_sif_is_named_before_anything_is_written(small_disk):
    build = small_disk(1 << 20)
    shutil.copy(BUILD / "espnet3-0.1.0-cpu.identity", build)
    proc = subprocess.run(
        ["bash", str(REPO / "containers" / "build.sh"), "--cpu", "--sif-only",
         "--apptainer-image", NODE_IMAGE],
        env={**os.environ, "ESPNET3_CONTAINER_BUILD_DIR": str(build)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert f"free in {build};" in message
    assert "espnet3:0.1.0-cpu" in message
    assert "ESPNET3_CONTAINER_BUILD_DIR" in message
    assert sorted(p.name for p in build.iterdir()) == ["espnet3-0.1.0-cpu.identity"]
