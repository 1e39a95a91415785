"""The GPU image and its SIF, as `nox -s gpu-image` builds them (containers/build.sh --debian).

Checked inside the docker image and inside the SIF: torch is a CUDA build (``torch.version.cuda``
is set; no GPU is needed to know that), the identity build.sh recorded is the label and the
environment of both, and a SLURM worker job of ``container: {image: auto, gpus: true}`` runs
``apptainer exec --nv`` on this very SIF. The SIF runs in the compose node image (Apptainer),
as on the compose cluster's nodes.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu_image

REPO = Path(__file__).resolve().parents[2]
TORCH_PIN = next(
    line.split("==")[1].strip()
    for line in (REPO / "constraints.txt").read_text().splitlines()
    if line.startswith("torch==")
)


def run(*argv: str, stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{argv} failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc.stdout


def last_json(text: str) -> dict:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line in:\n{text}"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def identity(gpu_image) -> str:
    """The identity build.sh recorded beside the SIF."""
    text = (gpu_image["build"] / f"{gpu_image['name']}.identity").read_text()
    return dict(line.split("=", 1) for line in text.split())["ESPNET3_IMAGE_ID"]


@pytest.fixture(scope="module")
def sif(gpu_image) -> str:
    """The SIF's path inside the node container (the build directory is bound at /build)."""
    return f"/build/{gpu_image['name']}.sif"


PROBE = (REPO / "tests" / "containers" / "image_probe.py").read_text()


def in_node(gpu_image, *argv: str, stdin: str | None = None) -> str:
    """Run ``argv`` in a throw-away compose node container, where Apptainer runs SIFs (the
    capabilities and loop devices of the compose cluster's nodes)."""
    return run(
        "docker", "run", "--rm", "-i", "--cap-add", "SYS_ADMIN", "--cap-add", "DAC_READ_SEARCH",
        "--device", "/dev/loop-control", "--device-cgroup-rule", "b 7:* rmw",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "-v", f"{gpu_image['build']}:/build:ro", gpu_image["node"], "run", *argv,
        stdin=stdin,
    )  # fmt: skip


@pytest.fixture(scope="module")
def in_docker(gpu_image) -> dict:
    return last_json(
        run("docker", "run", "--rm", "-i", gpu_image["tag"], "python", "-", stdin=PROBE)
    )


@pytest.fixture(scope="module")
def in_sif(gpu_image, sif) -> dict:
    return last_json(in_node(gpu_image, "apptainer", "exec", sif, "python", "-", stdin=PROBE))


def test_docker_image_torch_is_the_pinned_cuda_build(in_docker):
    assert in_docker["torch"].split("+")[0] == TORCH_PIN, in_docker
    assert in_docker["cuda"], f"torch {in_docker['torch']} in the image is not a CUDA build"


def test_docker_image_carries_the_recorded_identity(in_docker, identity, gpu_image):
    labels = json.loads(
        run("docker", "image", "inspect", "-f", "{{json .Config.Labels}}", gpu_image["tag"])
    )
    assert labels["org.espnet3.image-id"] == identity
    assert in_docker["identity"]["image"] == identity


def test_sif_torch_is_the_same_cuda_build(in_sif, in_docker):
    assert (in_sif["torch"], in_sif["cuda"]) == (in_docker["torch"], in_docker["cuda"])
    assert in_sif["identity"] == in_docker["identity"]


def test_sif_carries_the_recorded_identity(in_sif, identity, gpu_image, sif):
    inspected = in_node(gpu_image, "apptainer", "inspect", "--labels", "--json", sif)
    labels = json.loads(inspected)["data"]["attributes"]["labels"]
    assert labels["org.espnet3.image-id"] == identity
    assert in_sif["identity"]["image"] == identity


def test_gpu_worker_job_runs_this_sif_with_nv(in_sif, sif):
    assert in_sif["container"] == sif
    argv = shlex.split(in_sif["worker_python"])
    runtime = argv.index("apptainer")
    assert argv[runtime : runtime + 3] == ["apptainer", "exec", "--nv"], argv
    assert argv[-2:] == [sif, "python"], argv
    script = in_sif["job_script"]
    assert "#SBATCH --gres=gpu:1" in script
    assert in_sif["worker_python"] in script, script


def test_the_main_job_runs_in_the_gpu_image(gpu_image, mini_an4_archive, tmp_path):
    """README's command 1 as a GPU workstation runs it: the clone mounted, espnet3 installed in
    the image (not editable), the data written to a mounted directory."""
    run(
        "docker", "run", "--rm", "-v", f"{REPO}:/repo:ro", "-v", f"{tmp_path}:/out",
        "-v", f"{mini_an4_archive}:/an4.tar.gz:ro", "-w", "/repo", gpu_image["tag"],
        "espnet3", "create-dataset", "recipes/mini_an4/asr", "--config", "conf/local.yaml",
        "create_dataset.archive=/an4.tar.gz", "data_dir=/out/data",
    )  # fmt: skip
    summary = json.loads((tmp_path / "data" / "fbank" / "summary.json").read_text())
    kept = {split: counts["kept"] for split, counts in summary["splits"].items()}
    assert kept == {"train": 4, "valid": 1, "test": 2}
    assert summary["data_dir"] == "/out/data"
