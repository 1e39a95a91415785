"""An async call repeated with other shards: finished results are reused, never run twice.

A call without ``output_dir`` keeps its shards under a root named by its work and its plan, so
the same call with another ``async_shard_size`` (or ``n_workers``), or over other indices,
gets a root of its own beside the earlier ones, and nothing finished is ever removed. Before
anything is submitted, a new shard whose indices all lie in done shards of the *same work*
(same runner, provider, config, params and batch size, recorded in each call's ``call.json``)
gets its ``results.jsonl`` (and ``errors.jsonl``) from them, and its ``done``, instead of a job.

Example (after the specs of a call were written)::

    reused = reuse_finished_results(files, shards, batch_size=None)   # ids now done
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from espnet3.errors import SetupError
from espnet3.runner.jobs_dir import read_results
from espnet3.runner.shard_dir import ShardClaim, ShardLocked, is_done, mark_done
from espnet3.runner.shard_plan import read_manifest
from espnet3.runner.shard_run import ERRORS, RESULTS
from espnet3.runner.shard_spec import CALL_FILE, CallFiles, read_record
from espnet3.utils.atomic import atomic_write_jsonl


def reuse_finished_results(
    files: CallFiles, shards: list[dict[str, Any]], batch_size: int | None
) -> list[int]:
    """Complete every shard of ``shards`` that finished shards of the same work cover; their ids.

    Only unbatched work is reused (a batch's result belongs to the batch, not to an index).
    """
    todo = [s for s in shards if not is_done(files.shard_dir(int(s["shard_id"])))]
    if batch_size is not None or not todo:
        return []
    covered: set[int] = set()  # indices whose shard finished, filtered-out ones included
    known: dict[int, Any] = {}
    skipped: dict[int, dict[str, Any]] = {}  # items an on_error="skip" shard recorded
    for directory, units in _finished_shards_of_same_work(files):
        covered.update(units)
        known.update(read_results(directory))
        skipped.update((r["index"], r) for r in _error_records(directory / ERRORS))
    reused = []
    for shard in todo:
        k, units = int(shard["shard_id"]), shard["items"]
        if not all(i in covered for i in units):
            continue
        directory = files.shard_dir(k)
        try:
            claim = ShardClaim.take(directory)
        except ShardLocked:
            continue  # a job of this call runs it
        with claim:
            errors = [skipped[i] for i in units if i in skipped]
            if errors:
                atomic_write_jsonl(directory / ERRORS, errors)
            atomic_write_jsonl(
                directory / RESULTS,
                ({"index": i, "result": known[i]} for i in units if i in known),
            )
            mark_done(directory)
        reused.append(k)
    return reused


def _finished_shards_of_same_work(files: CallFiles) -> Iterator[tuple[Path, list[int]]]:
    """``(shard dir, indices)`` of every done shard of other calls of the same work."""
    mine = read_record(files.specs_dir / CALL_FILE) or {}
    for call in files.specs_dir.parent.glob(f"*/{CALL_FILE}"):
        other = read_record(call) or {}
        if call.parent == files.specs_dir or other.get("work") != mine.get("work"):
            continue
        root = Path(other.get("root", ""))
        try:
            shards = read_manifest(root) or []
        except SetupError:  # another call's damaged manifest: that call will say so itself
            continue
        for shard in shards:
            directory = CallFiles(root, call.parent).shard_dir(int(shard["shard_id"]))
            if is_done(directory) and (directory / RESULTS).is_file():
                yield directory, [int(i) for i in shard["items"]]


def _error_records(path: Path) -> list[dict[str, Any]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines()]
    except FileNotFoundError:
        return []
