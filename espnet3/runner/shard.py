"""Run one shard spec in this process: ``python -m espnet3.runner.shard SPEC.json``.

The job claims its ``split.N`` (a shard already done, or run by another live job, is left
alone and the job exits 0 saying so), rebuilds the provider from its class path, runs the
spec's units with the runner's writer hooks and marks the shard ``done``. A failure writes
``split.N.failed.json`` beside the spec (exception, message, index and traceback) and exits
with status 1, so both the scheduler and the files say what happened.

Example (a spec written by an async runner call)::

    python -m espnet3.runner.shard exp/specs/split.3.spec.json
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path

from espnet3.errors import ItemError
from espnet3.parallel.context import use_parallel
from espnet3.parallel.mapping import with_timeout
from espnet3.runner.class_path import load_class
from espnet3.runner.shard_dir import ShardClaim, ShardLocked, is_done
from espnet3.runner.shard_run import run_shard
from espnet3.runner.shard_spec import CallFiles, ShardSpec
from espnet3.utils.atomic import atomic_write_json


def run_spec(spec: ShardSpec) -> str:
    """Run ``spec`` here unless its shard is done or held; what happened, in a few words.

    Example (needs the spec's classes importable)::

        run_spec(ShardSpec.load("exp/specs/split.0.spec.json"))
    """
    work = spec.shard_work
    if is_done(work.shard_dir):
        return "already done"
    try:
        claim = ShardClaim.take(work.shard_dir, work.overwrite_lock)
    except ShardLocked as err:
        return f"left to the run that holds it ({err})"
    with claim, use_parallel(None):  # this job is the unit of parallelism: no cluster in it
        if is_done(work.shard_dir):
            return "already done"
        provider = load_class(spec.provider)(spec.config, spec.params)
        report = run_shard(
            load_class(spec.runner),
            work,
            provider.build_env_local(),
            wrap=lambda call: with_timeout(call, work.item_timeout),
        )
    return f"{report['units']} unit(s) done, {report['failed']} skipped"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run the spec named by the single argument; 0 on success."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m espnet3.runner.shard SPEC.json", file=sys.stderr)
        return 2
    path = Path(args[0])
    spec = ShardSpec.load(path)
    work = spec.shard_work
    failed = CallFiles(work.shard_dir.parent, path.parent).failed(work.shard_id)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(failed)  # an earlier attempt's failure no longer applies
    try:
        what = run_spec(spec)
    except Exception as exc:
        record = {
            "shard": work.shard_id,
            "index": getattr(exc, "index", None),
            "exc_type": type(exc).__name__,
            "message": str(exc),
            "traceback": getattr(exc, "worker_traceback", "") or traceback.format_exc(),
            "pid": os.getpid(),
        }
        atomic_write_json(failed, record)
        print(f"shard {work.shard_dir} failed: {exc}", file=sys.stderr)
        if isinstance(exc, ItemError) and exc.worker_traceback:
            print(exc.worker_traceback, file=sys.stderr)
        else:
            traceback.print_exc()
        return 1
    print(f"shard {work.shard_dir}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
