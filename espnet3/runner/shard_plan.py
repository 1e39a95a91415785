"""The shard plan of a runner call: which units each ``split.N`` runs, kept in ``manifest.json``.

A call with ``output_dir`` splits its units (indices, or batches of them) into contiguous
shards, the first shards one unit longer when they do not divide evenly, and writes the plan
to ``<output_dir>/<shard_subdir>/manifest.json`` (upstream ESPnet3's format: ``version``,
``output_dir``, ``shard_subdir`` and ``shards``, each ``{"shard_id", "items"}``). With
``resume`` (the default) a later call must plan the same shards, or it is refused: the
finished shards of one plan say nothing about the units of another. ``resume=False``
replaces the plan and runs every shard again.

Example:
    >>> plan_shards([0, 1, 2, 3, 4], 2)
    [{'shard_id': 0, 'items': [0, 1, 2]}, {'shard_id': 1, 'items': [3, 4]}]
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> plan = resolve_plan(root, plan_shards([0, 1], 1), resume=True, output_dir=root)
    >>> resolve_plan(root, plan_shards([0, 1, 2], 1), resume=True, output_dir=root)
    Traceback (most recent call last):
    ...
    espnet3.errors.SetupError: Cannot resume because the shard plan changed. ...
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from espnet3.errors import SetupError
from espnet3.utils.atomic import atomic_write_text

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def plan_shards(units: Sequence[Any], n_shards: int) -> list[dict[str, Any]]:
    """``units`` in at most ``n_shards`` contiguous shards (none empty), numbered from 0."""
    n_shards = max(1, n_shards)
    size, extra = divmod(len(units), n_shards)
    shards, start = [], 0
    for k in range(n_shards):
        stop = start + size + (k < extra)
        if stop > start:
            shards.append({"shard_id": len(shards), "items": list(units[start:stop])})
        start = stop
    return shards


def shards_root(output_dir: str | os.PathLike, shard_subdir: str = "") -> Path:
    """``<output_dir>/<shard_subdir>``: where the manifest and the ``split.N`` directories live."""
    root = Path(output_dir)
    return root / shard_subdir if shard_subdir else root


def shard_dir(root: str | os.PathLike, shard_id: int) -> Path:
    """``<root>/split.<shard_id>``."""
    return Path(root) / f"split.{shard_id}"


def manifest_path(root: str | os.PathLike) -> Path:
    return Path(root) / MANIFEST


def read_manifest(root: str | os.PathLike) -> list[dict[str, Any]] | None:
    """The shards of the manifest in ``root``; ``None`` when there is none.

    A manifest that cannot be read is an error naming it (it is never silently replaced).
    """
    path = manifest_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
    except ValueError as err:
        raise SetupError(
            f"Invalid shard manifest format: {path} is not JSON ({err}): restore it, or remove "
            "the shard outputs beside it to start over"
        ) from None
    if not isinstance(manifest, dict):
        raise SetupError(f"Invalid shard manifest format: {path} holds no JSON object")
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise SetupError(f"Shard manifest is missing 'shards': {path}")
    return shards


def write_manifest(
    root: str | os.PathLike,
    shards: list[dict[str, Any]],
    output_dir: str | os.PathLike,
    shard_subdir: str = "",
) -> Path:
    """Write the plan to ``<root>/manifest.json`` atomically."""
    document = {
        "version": MANIFEST_VERSION,
        "output_dir": str(output_dir),
        "shard_subdir": shard_subdir,
        "shards": shards,
    }
    path = manifest_path(root)
    atomic_write_text(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    return path


@contextlib.contextmanager
def writable(directory: str | os.PathLike, setting: str) -> Iterator[None]:
    """A call setting up its shards under ``directory``: an ``OSError`` there (a read-only or
    full filesystem, no permission) becomes one :class:`SetupError` naming ``setting``."""
    try:
        yield
    except OSError as err:
        raise SetupError(
            f"cannot write the shards of this call under {directory}: "
            f"{err.strerror or err} ({err.filename or directory}): give {setting} a directory "
            "this process can write"
        ) from None


def resolve_plan(
    root: str | os.PathLike,
    planned: list[dict[str, Any]],
    *,
    resume: bool,
    output_dir: str | os.PathLike,
    shard_subdir: str = "",
) -> list[dict[str, Any]]:
    """The plan this call runs: ``planned``, checked against the manifest already in ``root``.

    Without ``resume``, or without a manifest, ``planned`` is written and returned. With
    ``resume``, a manifest of another plan is refused (:class:`SetupError`, a
    ``RuntimeError``); the same plan is returned as the manifest holds it.
    """
    if resume:
        existing = read_manifest(root)
        if existing is not None:
            # Compared as JSON holds them: tuples of a plan are the lists of its manifest.
            if json.loads(json.dumps(planned)) == existing:
                return existing
            raise SetupError(_changed(manifest_path(root), existing, planned))
    write_manifest(root, planned, output_dir, shard_subdir)
    return planned


def _changed(path: Path, existing: list[Any], planned: list[Any]) -> str:
    fix = (
        "Re-run with the original settings (parallel.n_workers, the indices, batch_size), pass "
        "resume=False to replace the plan (every shard then runs again), or remove "
        f"{path.parent} to start over"
    )
    if len(existing) != len(planned):
        return (
            "Cannot resume with a different number of parallel shards. Existing run has "
            f"{len(existing)} shard(s), but this run planned {len(planned)} ({path}). {fix}"
        )
    changed = next(
        k for k, (old, new) in enumerate(zip(existing, planned, strict=True)) if old != new
    )
    return (
        "Cannot resume because the shard plan changed. The existing manifest does not match the "
        f"current indices or batching configuration ({path}: shard {changed} differs first). {fix}"
    )
