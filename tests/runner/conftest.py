"""Make :mod:`runner_toys` importable in every process the runner tests start.

Dask workers inherit ``sys.path``; shard jobs (subprocesses, SLURM jobs) inherit only the
environment, so this directory goes on ``PYTHONPATH`` too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)


@pytest.fixture(autouse=True)
def toys_on_pythonpath(monkeypatch):
    current = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (HERE, current) if p))
