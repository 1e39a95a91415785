"""A runner call repeated with other shard sizes: finished results are reused, never doubled.

Spec names hash the work and the indices, so the same call with another ``async_shard_size``
(or ``n_workers``) writes new specs beside the old ones. The specs directory therefore records
which shards make up the latest call (``<specs_dir>/call.json``); ``status`` and ``collect``
read that list. Before anything is submitted, a new shard whose indices all have results in
finished shards of the same work (same runner, provider, config, params and batch size) gets
its results file from them instead of a job. Then the superseded shards of that work, finished
or failed, are removed; one still pending or running is left to finish (its results are not
read).

Example (after ``specs`` were written for a call)::

    reused = reuse_finished_results(specs_dir, specs)   # names of shards now done
    record_call(specs_dir, specs)
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from espnet3.runner.job_records import JOB_SUFFIX, spec_path
from espnet3.runner.jobs_dir import ACTIVE_STATES, load_specs, status
from espnet3.runner.shard_results import done_path, is_complete, read_results, write_results
from espnet3.runner.shard_spec import ShardSpec
from espnet3.utils.atomic import atomic_write_jsonl


def _work(spec: ShardSpec) -> str:
    """What a shard computes, whatever its indices (specs read back have their keys sorted)."""
    fields = (spec.runner, spec.provider, spec.config, spec.params, spec.batch_size)
    return json.dumps(fields, sort_keys=True)


def _same_work(specs_dir: Path, specs: Sequence[ShardSpec]) -> list[ShardSpec]:
    """The other shards in ``specs_dir`` that did the same work as ``specs``."""
    work = {_work(s) for s in specs}
    names = {s.name for s in specs}
    return [
        s
        for s in load_specs(specs_dir, everything=True)
        if s.name not in names and _work(s) in work
    ]


def reuse_finished_results(specs_dir: str | os.PathLike, specs: Sequence[ShardSpec]) -> list[str]:
    """Write the results of every new shard that finished shards already cover; their names.

    Only unbatched work is reused (a batch's result belongs to the batch, not to an index).
    """
    old = [s for s in _same_work(Path(specs_dir), specs) if is_complete(s.result_path)]
    todo = [s for s in specs if s.batch_size is None and not is_complete(s.result_path)]
    if not old or not todo:
        return []
    known: dict[int, object] = {}
    skipped: dict[int, dict] = {}  # items an on_error="skip" shard recorded as failed
    for spec in old:
        known.update(read_results(spec.result_path))
        skipped.update((r["index"], r) for r in _error_records(spec.errors_path))
    done: set[int] = {i for spec in old for i in spec.indices}  # filtered-out indices included
    reused = []
    for spec in todo:
        if not all(i in done for i in spec.indices):
            continue
        errors = [skipped[i] for i in spec.indices if i in skipped]
        if errors:
            atomic_write_jsonl(spec.errors_path, errors)
        write_results(spec.result_path, ((i, known[i]) for i in spec.indices if i in known))
        reused.append(spec.name)
    return reused


def _error_records(path: str) -> list[dict]:
    try:
        return [json.loads(line) for line in Path(path).read_text().splitlines()]
    except FileNotFoundError:
        return []


def superseded_removed(specs_dir: str | os.PathLike, specs: Sequence[ShardSpec]) -> list[str]:
    """Remove the files of earlier shards of the same work that no longer run; their names."""
    old = _same_work(Path(specs_dir), specs)
    if not old:
        return []
    settled = {
        s.name for s in status(specs_dir, [s.name for s in old]) if s.state not in ACTIVE_STATES
    }
    for spec in old:
        if spec.name not in settled:
            continue
        paths = [
            spec.result_path,
            done_path(spec.result_path),
            spec.errors_path,
            spec.failed_path,
            Path(specs_dir) / f"{spec.name}{JOB_SUFFIX}",
            spec_path(specs_dir, spec.name),
        ]
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return sorted(settled)
