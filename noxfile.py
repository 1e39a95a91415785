"""Test sessions. `nox` runs lint, the suite sequentially, and its backend tests on 2 workers.

All sessions share one virtual environment (.nox/espnet3), created on first use and reused
while pyproject.toml and constraints.txt are unchanged: installing torch, lhotse and datasets
once instead of once per session keeps a fresh run short.

    nox                      # lint, local, multiprocessing
    nox -s slurm             # starts a single-node SLURM (slurm/local-cluster.sh) and runs its tests
    nox -s compose           # builds images, starts the docker-compose SLURM cluster, runs its tests
    nox -s bench             # runs every benchmark and rewrites benchmarks/RESULTS.md
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".nox" / "espnet3"
BIN = VENV / "bin"

nox.options.sessions = ["lint", "local", "multiprocessing"]
nox.options.default_venv_backend = "none"


def _env_ready(session: nox.Session) -> dict[str, str]:
    """Create or refresh the shared environment; return the variables that activate it."""
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes()
    ).hexdigest()
    stamp = VENV / ".installed"
    if not stamp.exists() or stamp.read_text() != digest:
        if not (BIN / "python").exists():
            session.run(sys.executable, "-m", "venv", str(VENV))
        session.run(
            str(BIN / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "-c",
            "constraints.txt",
            "-e",
            ".[test]",
            "ruff",
            external=True,
        )
        stamp.write_text(digest)
    return {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "VIRTUAL_ENV": str(VENV)}


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
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    env = _env_ready(session)
    session.run(str(BIN / "ruff"), "check", ".", env=env, external=True)
    session.run(str(BIN / "ruff"), "format", "--check", ".", env=env, external=True)


@nox.session
def local(session: nox.Session) -> None:
    """The suite on the sequential (in-process) backend."""
    _pytest(session, "-m", "not slurm and not compose", ESPNET3_TEST_PARALLEL="none")


@nox.session
def multiprocessing(session: nox.Session) -> None:
    """The tests that use the backend again, on a real 2-worker Dask LocalCluster."""
    _pytest(
        session,
        "-m",
        "not slurm and not compose",
        ESPNET3_TEST_PARALLEL="local",
        ESPNET3_TEST_BACKEND_ONLY="1",
    )


@nox.session
def slurm(session: nox.Session) -> None:
    """Start a single-node SLURM on this machine (root) and run the tests that need it."""
    session.run("bash", "slurm/local-cluster.sh", "up", external=True)
    _pytest(session, "-m", "slurm", ESPNET3_REQUIRE_SLURM="1")


@nox.session
def compose(session: nox.Session) -> None:
    """Build the images and SIF, start the docker-compose SLURM cluster, run its tests."""
    session.run("bash", "slurm/compose/cluster.sh", "ci", external=True)


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
