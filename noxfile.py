"""Test sessions. `nox` runs lint, the suite sequentially, and its backend tests on 2 workers.

All sessions share one virtual environment (.nox/espnet3), created on first use and reused
while pyproject.toml and constraints.txt are unchanged: installing torch, lhotse and datasets
once instead of once per session keeps a fresh run short.

    nox                      # lint, local, multiprocessing
    nox -s slurm             # starts a single-node SLURM (slurm/local-cluster.sh) and runs its tests
    nox -s compose           # builds images, starts the docker-compose SLURM cluster, runs its tests
    nox -s gpu-image         # builds the GPU image (PyPI's CUDA torch) and its SIF, checks both
    nox -s espnet2           # ESPnet2's own collate/preprocessor/iterators against espnet3
    nox -s upstream -- PATH  # upstream ESPnet3's tests of this scope, unchanged, from a checkout
    nox -s recipes -- PATH   # upstream's egs3 recipes' data stages, unchanged, on small corpora
    nox -s bench             # runs every benchmark and rewrites benchmarks/RESULTS.md
    nox -s reliability       # starts the single-node SLURM, tries every fault and attack,
                             # rewrites the table of docs/reliability.md

``espnet2``, ``upstream`` and ``recipes`` share a second environment (.nox/espnet2) with ESPnet2
installed; it needs torchaudio, so a different torch (tests/interop/requirements.txt says why).
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".nox" / "espnet3"
BIN = VENV / "bin"
ESPNET2_VENV = ROOT / ".nox" / "espnet2"
ESPNET2_REQUIREMENTS = ROOT / "tests" / "interop" / "requirements.txt"
ESPNET2_RELEASE = "espnet==202511"
# g2p_en, imported by espnet2's tokenizers, downloads these NLTK resources on import when they
# are missing; empty placeholders keep that import offline (no test uses g2p).
NLTK_PLACEHOLDERS = (
    "taggers/averaged_perceptron_tagger_eng.zip",
    "taggers/averaged_perceptron_tagger.zip",
    "corpora/cmudict.zip",
)

nox.options.sessions = ["lint", "local", "multiprocessing"]
# Tests that need more than this machine's Python: each has a session of its own.
OWN_SESSIONS = "not slurm and not compose and not gpu_image and not espnet2"
nox.options.default_venv_backend = "none"


def _env_ready(session: nox.Session) -> dict[str, str]:
    """Create or refresh the shared environment; return the variables that activate it."""
    inputs = (ROOT / "pyproject.toml", ROOT / "constraints.txt")
    return _venv(session, VENV, inputs, ["-c", "constraints.txt", "-e", ".[test]", "ruff"])


def _espnet2_env_ready(session: nox.Session) -> dict[str, str]:
    """The environment with ESPnet2 (and torchaudio) beside espnet3 and its test tools."""
    inputs = (ROOT / "pyproject.toml", ESPNET2_REQUIREMENTS)
    requirements = ["-c", str(ESPNET2_REQUIREMENTS), "-r", str(ESPNET2_REQUIREMENTS)]

    def extra(python: str) -> None:
        session.run(
            python, "-m", "pip", "install", "-q", "--no-deps", ESPNET2_RELEASE, external=True
        )
        for name in NLTK_PLACEHOLDERS:
            path = ESPNET2_VENV / "nltk_data" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(path, "w"):
                pass

    return _venv(session, ESPNET2_VENV, inputs, [*requirements, "-e", ".[test]"], extra)


def _venv(session, venv: Path, inputs, install: list[str], extra=None) -> dict[str, str]:
    """Create or refresh ``venv`` from ``inputs``; return the variables that activate it."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in inputs)).hexdigest()
    stamp, python = venv / ".installed", str(venv / "bin" / "python")
    if not stamp.exists() or stamp.read_text() != digest:
        if not Path(python).exists():
            session.run(sys.executable, "-m", "venv", str(venv))
        session.run(python, "-m", "pip", "install", "-q", *install, external=True)
        if extra is not None:
            extra(python)
        stamp.write_text(digest)
    return {"PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}


def _pytest(session: nox.Session, *args: str, **env: str) -> None:
    session.run(
        str(BIN / "python"),
        "-m",
        "pytest",
        *args,
        *session.posargs,
        env={**_env_ready(session), **env},
        external=True,
    )


@nox.session
def espnet2(session: nox.Session) -> None:
    """ESPnet2's own CommonCollateFn, preprocessors and iterators on espnet3's datasets."""
    env = {**_espnet2_env_ready(session), "ESPNET3_REQUIRE_ESPNET2": "1"}
    python = str(ESPNET2_VENV / "bin" / "python")
    session.run(python, "-m", "pytest", "-m", "espnet2", *session.posargs, env=env, external=True)


@nox.session
def upstream(session: nox.Session) -> None:
    """Upstream ESPnet3's tests of this scope, unchanged: ``nox -s upstream -- CHECKOUT``."""
    env = _espnet2_env_ready(session)
    python = str(ESPNET2_VENV / "bin" / "python")
    session.run(python, "tests/upstream/run.py", *session.posargs, env=env, external=True)


@nox.session
def recipes(session: nox.Session) -> None:
    """Upstream ESPnet3's recipes' data stages, unchanged: ``nox -s recipes -- CHECKOUT``.

    In the ESPnet2 environment: the code of some recipes (ljspeech/tts, acesinger/svs) imports
    espnet2 or librosa.
    """
    env = _espnet2_env_ready(session)
    python = str(ESPNET2_VENV / "bin" / "python")
    session.run(python, "tests/egs3/conformance.py", *session.posargs, env=env, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    env = _env_ready(session)
    session.run(str(BIN / "ruff"), "check", ".", env=env, external=True)
    session.run(str(BIN / "ruff"), "format", "--check", ".", env=env, external=True)


@nox.session
def local(session: nox.Session) -> None:
    """The suite on the sequential (in-process) backend, then the docstrings' examples.

    The examples run in a pytest of their own over ``espnet3/`` only (``--doctest-modules`` on
    ``tests/`` would import every helper script there); ``nox -s local -- ARGS`` passes ARGS
    to the suite's run, not to theirs.
    """
    _pytest(session, "-m", OWN_SESSIONS, ESPNET3_TEST_PARALLEL="none")
    session.run(
        str(BIN / "python"),
        "-m",
        "pytest",
        "-m",
        OWN_SESSIONS,
        "--doctest-modules",
        "espnet3",
        env=_env_ready(session),
        external=True,
    )


@nox.session
def multiprocessing(session: nox.Session) -> None:
    """The tests that use the backend again, on a real 2-worker Dask LocalCluster."""
    _pytest(
        session,
        "-m",
        OWN_SESSIONS,
        ESPNET3_TEST_PARALLEL="local",
        ESPNET3_TEST_BACKEND_ONLY="1",
    )


@nox.session
def slurm(session: nox.Session) -> None:
    """Start a single-node SLURM on this machine (root) and run the tests that need it.

    Under ``CI=true`` the machine is CI's own, so jobs left queued by an earlier, killed run are
    cancelled first: the tests need the node's cores free.
    """
    session.run("bash", "slurm/local-cluster.sh", "up", external=True)
    if os.environ.get("CI") == "true":
        session.run("bash", "slurm/local-cluster.sh", "clear", external=True)
    _pytest(session, "-m", "slurm", ESPNET3_REQUIRE_SLURM="1")


@nox.session
def compose(session: nox.Session) -> None:
    """Build the images and SIF, start the docker-compose SLURM cluster, run its tests.

    The tests run on this host, in the shared environment this session makes first.
    """
    env = {**_env_ready(session), "ESPNET3_PYTHON": str(BIN / "python")}
    session.run("bash", "slurm/compose/cluster.sh", "ci", env=env, external=True)


@nox.session(name="gpu-image")
def gpu_image(session: nox.Session) -> None:
    """Build the GPU image without a registry (Debian base, PyPI's CUDA torch) and its SIF;
    check torch's CUDA build, the identity and the ``--nv`` worker prefix in both.

    `.ci/run` runs it after ``compose``, whose base and node image it reuses; the build
    downloads and squashes several GB (containers/README.md).
    """
    session.run("bash", "slurm/compose/cluster.sh", "node-image", external=True)
    session.run(
        "bash",
        "containers/build.sh",
        "--debian",
        "--base",
        "espnet3/bookworm-base:latest",
        "--host-ca",
        "--apptainer-image",
        "espnet3/compose-node:latest",
        # Light compression, as for the compose SIF: larger, squashed faster (containers/README.md).
        env={"ESPNET3_MKSQUASHFS_ARGS": "-comp gzip -Xcompression-level 1"},
        external=True,
    )
    _pytest(session, "-m", "gpu_image", "tests/containers", ESPNET3_REQUIRE_GPU_IMAGE="1")


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark; rewrite benchmarks/RESULTS.md."""
    env = _env_ready(session)
    session.run(
        str(BIN / "python"), "-m", "pip", "install", "-q", "matplotlib", env=env, external=True
    )
    session.run(
        str(BIN / "python"), "benchmarks/run_all.py", *session.posargs, env=env, external=True
    )


@nox.session
def reliability(session: nox.Session) -> None:
    """Every fault and attack of docs/reliability.md, on the single-node SLURM too."""
    env = _env_ready(session)
    session.run("bash", "slurm/local-cluster.sh", "up", external=True)
    session.run(
        str(BIN / "python"), "benchmarks/reliability.py", *session.posargs, env=env, external=True
    )
