"""What a detached shard job reads: its spec, and where a call keeps its shards' files.

A spec holds class paths, the provider's resolved config, its params and the shard's
:class:`~espnet3.runner.shard_run.ShardWork` (its units and how to run them): plain JSON, never
a pickle, so a job (or a person) can read it safely. An async call keeps, per shard:

- in its **shards root** (``<output_dir>/<shard_subdir>``, or for a call without
  ``output_dir`` ``<async_result_dir>/<call name>``): ``manifest.json`` and ``split.N/`` with
  the shard's outputs, ``lock`` while it runs and ``done`` when it is complete;
- in its **specs directory** (``<root>/specs``, or ``<async_specs_dir>/<call name>``):
  ``split.N.spec.json``, ``split.N.job.json`` (which job runs it, written when submitted),
  ``split.N.failed.json`` (why the job failed), ``call.json`` (the root) and ``logs/``.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> files = CallFiles(root=d / "out", specs_dir=d / "out" / "specs")
    >>> files.spec(3).name, files.shard_dir(3).name
    ('split.3.spec.json', 'split.3')
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError
from espnet3.runner.shard_plan import shard_dir
from espnet3.runner.shard_run import ShardWork
from espnet3.utils.atomic import atomic_write_json

SPEC_FORMAT = 3
CALL_FILE = "call.json"
#: In an ``async_specs_dir``: the name of the call made last.
LATEST_FILE = "latest.json"


@dataclass(frozen=True)
class ShardSpec:
    """Everything one shard job needs; see :mod:`espnet3.runner.shard` for how it runs."""

    runner: str
    provider: str
    config: dict[str, Any]
    params: dict[str, Any]
    work: dict[str, Any]
    format: int = SPEC_FORMAT

    @property
    def shard_work(self) -> ShardWork:
        return ShardWork(**self.work)

    def write(self, path: str | os.PathLike) -> Path:
        """Write the spec to ``path`` atomically."""
        atomic_write_json(path, asdict(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ShardSpec:
        """Read a spec written by :meth:`write`, or fail naming the file and the problem."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read shard spec {str(path)!r}: {exc}") from None
        expected = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or data.get("format") != SPEC_FORMAT or set(data) != expected:
            raise ConfigError(
                f"{str(path)!r} is not a format-{SPEC_FORMAT} shard spec: write it again by "
                f"running the same runner call"
            )
        try:
            spec = cls(**data)
            spec.shard_work  # noqa: B018  (checks the work's fields)
        except TypeError as exc:
            raise ConfigError(f"{str(path)!r} is not a valid shard spec ({exc})") from None
        return spec


def check_json(what: str, value: Any) -> None:
    """Refuse, naming ``what``, a value a spec cannot hold (specs are JSON)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"async shards store the provider {what} as JSON, but it cannot be encoded ({exc}): "
            f"pass plain values (str, numbers, lists, dicts) or paths as strings"
        ) from None


@dataclass(frozen=True)
class CallFiles:
    """Where an async call keeps its shards (``root``) and their jobs' files (``specs_dir``)."""

    root: Path
    specs_dir: Path

    def shard_dir(self, shard_id: int) -> Path:
        return shard_dir(self.root, shard_id)

    def spec(self, shard_id: int) -> Path:
        return self.specs_dir / f"split.{shard_id}.spec.json"

    def job_record(self, shard_id: int) -> Path:
        return self.specs_dir / f"split.{shard_id}.job.json"

    def failed(self, shard_id: int) -> Path:
        return self.specs_dir / f"split.{shard_id}.failed.json"

    def record(self, **extra: Any) -> None:
        """Write ``call.json``: the shards root, so the specs directory alone finds the call."""
        atomic_write_json(self.specs_dir / CALL_FILE, {"root": str(self.root), **extra})

    @classmethod
    def find(cls, directory: str | os.PathLike) -> CallFiles:
        """The call a directory names: an ``async_specs_dir`` (its latest call), a call's specs
        directory, or a shards root; an error naming the directory otherwise."""
        directory = Path(directory).resolve()
        latest = read_record(directory / LATEST_FILE)
        if latest is not None and "call" in latest:
            directory = directory / str(latest["call"])
        for specs_dir in (directory, directory / "specs"):
            call = read_record(specs_dir / CALL_FILE)
            if call is not None and "root" in call:
                return cls(Path(call["root"]), specs_dir)
        raise ConfigError(
            f"{str(directory)!r} holds no shards of an async runner call (no {CALL_FILE}): pass "
            "the async_specs_dir of the run, or the output_dir/shard_subdir of its shards"
        )


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` when it is missing or not one (records are
    written atomically: an unreadable one was never written whole)."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
