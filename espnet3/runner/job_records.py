"""Where a shard's spec and job record live beside each other in the specs directory.

``<specs_dir>/<name>.spec.json`` is the spec; ``<specs_dir>/<name>.job.json``, written by the
scheduler that submits it, says which job runs it: ``{"scheduler": <env>, "job_id": ...,
"log": ...}`` (for ``local``, ``job_id`` is the shard process's pid once started, and
``launcher`` the pid of the process that starts it).

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> atomic_write_json(job_record_path(d, "shard-x"), {"scheduler": "slurm", "job_id": "12_0"})
    >>> read_job_record(d, "shard-x")["job_id"]
    '12_0'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from espnet3.utils.atomic import atomic_write_json

SPEC_SUFFIX = ".spec.json"
JOB_SUFFIX = ".job.json"
#: The shards of the latest runner call, in the order of its indices.
CALL_FILE = "call.json"


def spec_path(specs_dir: str | os.PathLike, name: str) -> Path:
    """``<specs_dir>/<name>.spec.json`` (absolute)."""
    return Path(specs_dir).resolve() / f"{name}{SPEC_SUFFIX}"


def job_record_path(specs_dir: str | os.PathLike, name: str) -> Path:
    """``<specs_dir>/<name>.job.json`` (absolute), written by the scheduler that submits it."""
    return Path(specs_dir).resolve() / f"{name}{JOB_SUFFIX}"


def read_job_record(specs_dir: str | os.PathLike, name: str) -> dict[str, Any] | None:
    """The job record of shard ``name``, or ``None`` if it was never submitted."""
    try:
        return json.loads(job_record_path(specs_dir, name).read_text())
    except (OSError, ValueError):
        return None


def record_call(specs_dir: str | os.PathLike, specs: list[Any]) -> None:
    """Record, atomically, that ``specs`` (in order) make up the latest call in ``specs_dir``."""
    atomic_write_json(Path(specs_dir) / CALL_FILE, {"shards": [s.name for s in specs]})


def read_call(specs_dir: str | os.PathLike) -> list[str] | None:
    """The shard names of the latest call, or ``None`` for a directory that records none."""
    try:
        return list(json.loads((Path(specs_dir) / CALL_FILE).read_text())["shards"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
