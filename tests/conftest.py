"""Shared fixtures.

``ESPNET3_TEST_PARALLEL`` picks the backend the backend-agnostic tests run on: ``none``
(sequential, the default; nox session ``local``) or ``local`` (a real 2-worker
``LocalCluster``; nox session ``multiprocessing``). With ``ESPNET3_TEST_BACKEND_ONLY=1`` only
the tests that use the backend (the ``parallel_env`` fixture) are collected: the others would
run exactly as they did in the sequential session.

Tests marked ``slurm`` need a running SLURM (``slurm/local-cluster.sh up``; nox session
``slurm``). Without one they are skipped, except under ``CI=true`` or
``ESPNET3_REQUIRE_SLURM=1``, where a missing SLURM is a failure. The same holds for ``compose``
with ``ESPNET3_REQUIRE_COMPOSE=1``, for ``gpu_image`` (the GPU image and SIF built by nox
session ``gpu-image``) with ``ESPNET3_REQUIRE_GPU_IMAGE=1``, and for ``espnet2`` (ESPnet2
importable; nox session ``espnet2`` builds that environment) with ``ESPNET3_REQUIRE_ESPNET2=1``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import soundfile as sf

import espnet3
from espnet3.data.sphere import read_sphere
from espnet3.parallel import set_parallel

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MINI_AN4_ARCHIVE = SHARED_DATA / "mini_an4" / "downloads.tar.gz"


def _required(name: str) -> bool:
    return os.environ.get("CI") == "true" or os.environ.get(f"ESPNET3_REQUIRE_{name}") == "1"


def slurm_problem() -> str | None:
    """Why the slurm tests cannot run here, or ``None``: SLURM is up and its queue is empty.

    The tests size their jobs to the node's two cores, so jobs left by another run would hold
    them pending for ``Resources``; those get 30 s to drain before the tests give up.
    """
    if shutil.which("sinfo") is None:
        return "SLURM is not installed here: " + _START_SLURM
    probe = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    states = {state.strip().rstrip("*") for state in probe.stdout.split()}
    if probe.returncode != 0 or not states & {"idle", "mix", "alloc"}:
        return "SLURM is not up here: " + _START_SLURM
    deadline = time.monotonic() + 30
    while queued := subprocess.run(
        ["squeue", "-h", "-o", "%i %T %j"], capture_output=True, text=True
    ).stdout.strip():
        if time.monotonic() > deadline:
            return (
                f"SLURM's queue already holds jobs ({'; '.join(queued.splitlines())}) that "
                "would keep these tests' jobs pending: cancel them (on the local cluster, "
                "`bash slurm/local-cluster.sh clear`)"
            )
        time.sleep(1)
    return None


def compose_problem() -> str | None:
    """The compose SLURM cluster is up when its controller container answers ``sinfo``."""
    script = REPO / "slurm" / "compose" / "cluster.sh"
    if script.is_file() and shutil.which("docker") is not None:
        if subprocess.run(["bash", str(script), "status"], capture_output=True).returncode == 0:
            return None
    return "the compose SLURM cluster is not up here: start it with `nox -s compose`"


#: What ``nox -s gpu-image`` builds (containers/build.sh names): tag, file stem in _build/, and
#: the compose node image that runs the SIF.
GPU_IMAGE = {
    "tag": f"espnet3:{espnet3.__version__}-gpu",
    "name": f"espnet3-{espnet3.__version__}-gpu",
    "build": REPO / "containers" / "_build",
    "node": "espnet3/compose-node:latest",
}


def gpu_image_problem() -> str | None:
    """The GPU image, its SIF and identity, and the node image that runs the SIF, are built."""
    build, name = GPU_IMAGE["build"], GPU_IMAGE["name"]
    missing = [
        str(build / file)
        for file in (f"{name}.sif", f"{name}.identity")
        if not (build / file).is_file()
    ]
    if shutil.which("docker") is None:
        missing.append("docker")
    else:
        for image in (GPU_IMAGE["tag"], GPU_IMAGE["node"]):
            inspect = subprocess.run(["docker", "image", "inspect", image], capture_output=True)
            if inspect.returncode != 0:
                missing.append(f"docker image {image}")
    if not missing:
        return None
    return f"the GPU image is not built here ({', '.join(missing)}): run `nox -s gpu-image`"


def espnet2_problem() -> str | None:
    try:
        if importlib.util.find_spec("espnet2.train.collate_fn") is not None:
            return None
    except ModuleNotFoundError:
        pass
    return "ESPnet2 is not installed here: run these tests with `nox -s espnet2`, which installs it"


_START_SLURM = "start it with `bash slurm/local-cluster.sh up` (or run `nox -s slurm`)"
_PROBES = {
    "slurm": slurm_problem,
    "compose": compose_problem,
    "gpu_image": gpu_image_problem,
    "espnet2": espnet2_problem,
}
_SEEN: dict[str, str | None] = {}


def pytest_runtest_setup(item):
    for name, probe in _PROBES.items():
        if item.get_closest_marker(name) is None:
            continue
        if name not in _SEEN:
            _SEEN[name] = probe()
        if _SEEN[name] is None:
            continue
        if _required(name.upper()):
            pytest.fail(
                f"{_SEEN[name]} (required here because CI=true or ESPNET3_REQUIRE_{name.upper()}=1)"
            )
        pytest.skip(_SEEN[name])


def pytest_collection_modifyitems(config, items):
    if os.environ.get("ESPNET3_TEST_BACKEND_ONLY") != "1":
        return
    kept = [item for item in items if "parallel_env" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture(scope="session")
def gpu_image() -> dict:
    """Names of the GPU image build (tag, name, build dir, node image); see ``GPU_IMAGE``."""
    return GPU_IMAGE


@pytest.fixture(scope="session")
def parallel_env() -> str:
    """The backend name the suite runs on: ``none`` or ``local``."""
    return os.environ.get("ESPNET3_TEST_PARALLEL", "none")


@pytest.fixture
def parallel_config(parallel_env):
    """The ``parallel:`` mapping of this run's backend, also installed with ``set_parallel``."""
    cfg = {"env": "none"} if parallel_env == "none" else {"env": "local", "n_workers": 2}
    set_parallel(cfg)
    yield cfg
    set_parallel(None)


@pytest.fixture
def mini_an4_archive() -> Path:
    """The real mini AN4 archive shipped beside the project (../shared/data)."""
    if not MINI_AN4_ARCHIVE.is_file():
        pytest.fail(f"test data missing: {MINI_AN4_ARCHIVE} (expected ../shared beside the clone)")
    return MINI_AN4_ARCHIVE


def _an4_transcripts(etc: Path) -> dict[str, str]:
    texts = {}
    for name in ("an4_train.transcription", "an4_test.transcription"):
        for line in (etc / name).read_text().splitlines():
            words, _, utt = line.rpartition("(")
            texts[utt.rstrip(") ")] = " ".join(w for w in words.split() if w not in ("<s>", "</s>"))
    return texts


_EXTRACTED: dict[Path, Path] = {}


@pytest.fixture
def an4_sphere_dir(tmp_path_factory, mini_an4_archive) -> Path:
    """The mini AN4 archive extracted (tarfile's ``data`` filter) once per test session."""
    if mini_an4_archive not in _EXTRACTED:
        target = tmp_path_factory.mktemp("an4")
        with tarfile.open(mini_an4_archive) as tar:
            tar.extractall(target, filter="data")
        _EXTRACTED[mini_an4_archive] = target / "downloads" / "an4"
    return _EXTRACTED[mini_an4_archive]


@pytest.fixture
def an4_utterances(an4_sphere_dir) -> list[dict]:
    """The 8 AN4 utterances converted to 16-bit WAV: utt_id, path, samples (int16), text."""
    wav_dir = an4_sphere_dir.parent / "wav16"
    wav_dir.mkdir(exist_ok=True)
    texts = _an4_transcripts(an4_sphere_dir / "etc")
    utterances = []
    for sph in sorted(an4_sphere_dir.glob("wav/*/*/*.sph")):
        if sph.stem not in texts:  # cen7-fash-b has no transcript in the archive
            continue
        samples, rate = read_sphere(sph)
        wav = wav_dir / f"{sph.stem}.wav"
        sf.write(wav, samples, rate, subtype="PCM_16")
        speaker = sph.parent.name
        utterances.append(
            {
                "utt_id": sph.stem,
                "path": str(wav),
                "samples": samples,
                "sampling_rate": rate,
                "text": texts[sph.stem],
                "speaker": speaker,
            }
        )
    return utterances


@pytest.fixture
def small_disk(tmp_path):
    """A real tmpfs of ``size`` bytes mounted in ``tmp_path``: ``small_disk(65536) -> Path``
    (``read_only=True``: mounted read-only).

    Mounting needs root (CI runs as root); elsewhere the test is skipped, except under
    ``CI=true``, where it fails.
    """
    mounted = []

    def mount(size: int, read_only: bool = False) -> Path:
        target = tmp_path / f"disk{len(mounted)}"
        target.mkdir()
        if os.geteuid() != 0:
            message = "mounting a tmpfs needs root"
            pytest.fail(message) if _required("TMPFS") else pytest.skip(message)
        options = f"{'ro,' if read_only else ''}size={size}"
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], check=True)
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)
