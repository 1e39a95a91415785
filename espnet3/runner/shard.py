"""Run one shard spec in this process: ``python -m espnet3.runner.shard SPEC.json``.

The job rebuilds the provider and the runner from their class paths, runs the spec's indices
sequentially, and streams the results into the spec's results file (atomically, then a
``.done`` marker beside it). A failure writes ``<shard>.failed.json`` (exception, message, index and
traceback) and exits with status 1, so both the scheduler and the files say what happened.

Example (a spec written by an async runner call)::

    python -m espnet3.runner.shard async_specs/shard-0123456789abcdef.json
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path

from espnet3.errors import ItemError
from espnet3.runner.class_path import load_class
from espnet3.runner.shard_results import write_results
from espnet3.runner.shard_spec import ShardSpec
from espnet3.utils.atomic import atomic_write_json


def run_shard(spec: ShardSpec) -> int:
    """Run ``spec`` here and write its results; return how many results were written.

    Example (needs the spec's classes importable)::

        run_shard(ShardSpec.load("async_specs/shard-0123456789abcdef.json"))
    """
    from espnet3.parallel import set_parallel

    set_parallel(None)  # this job is the unit of parallelism: no cluster inside it
    with contextlib.suppress(FileNotFoundError):
        os.unlink(spec.failed_path)  # an earlier attempt's failure no longer applies
    provider = load_class(spec.provider)(spec.config, spec.params)
    runner = load_class(spec.runner)(
        provider,
        batch_size=spec.batch_size,
        on_error=spec.on_error,
        errors_path=spec.errors_path,
        item_timeout=spec.item_timeout,
    )
    return write_results(spec.result_path, runner.iter(spec.indices))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: run the spec named by the single argument; 0 on success."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m espnet3.runner.shard SPEC.json", file=sys.stderr)
        return 2
    spec = ShardSpec.load(args[0])
    try:
        count = run_shard(spec)
    except Exception as exc:
        record = {
            "shard": spec.name,
            "index": getattr(exc, "index", None),
            "exc_type": type(exc).__name__,
            "message": str(exc),
            "traceback": getattr(exc, "worker_traceback", "") or traceback.format_exc(),
            "pid": os.getpid(),
        }
        atomic_write_json(spec.failed_path, record)
        print(f"shard {spec.name} failed: {exc}", file=sys.stderr)
        if isinstance(exc, ItemError) and exc.worker_traceback:
            print(exc.worker_traceback, file=sys.stderr)
        else:
            traceback.print_exc()
        return 1
    print(f"shard {spec.name}: {count} result(s) in {Path(spec.result_path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
