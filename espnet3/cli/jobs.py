"""``espnet3 jobs status DIR`` and ``espnet3 jobs collect DIR``: detached shard jobs.

``DIR`` is the ``async_specs_dir`` of an async runner call. ``status`` prints one line per
shard and a summary; ``collect`` prints every result as a JSON line ``{"index", "result"}``
in index order (or writes them to ``--output`` atomically). Both are thin wrappers around
:mod:`espnet3.runner.jobs_dir`.

Example:
    >>> main(["jobs", "status", "exp/specs"])        # doctest: +SKIP
    shard-0b1c...  done     4 item(s)  job 123
    1 done
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from espnet3.errors import Espnet3Error


def add_parser(subparsers: Any) -> None:
    """Register ``jobs status`` and ``jobs collect``."""
    parser = subparsers.add_parser(
        "jobs",
        help="status and results of detached shard jobs",
        description="Inspect the shard jobs an async runner call submitted.",
    )
    commands = parser.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)
    _action(
        commands,
        "status",
        _status,
        "state of every shard (done, failed, running, pending, missing)",
        "Print the state of every shard in DIR; asks the scheduler once for all of them. "
        "Exit status 1 when a shard failed.",
    )
    collect = _action(
        commands,
        "collect",
        _collect,
        "print or save every result in index order",
        'Read every shard\'s results back in index order as JSON lines {"index": ..., '
        '"result": ...}. Fails, naming them, when shards are not done.',
    )
    collect.add_argument("--output", "-o", help="write the JSON lines to this file (atomically)")


def _action(commands: Any, name: str, func: Any, help: str, description: str) -> Any:
    parser = commands.add_parser(name, help=help, description=description)
    parser.add_argument("specs_dir", metavar="DIR", help="the async_specs_dir of the run")
    parser.set_defaults(func=func)
    return parser


def _status(args: argparse.Namespace) -> int:
    from espnet3.runner.jobs_dir import status, summarize

    _require_dir(args.specs_dir)
    states = status(args.specs_dir)
    for s in states:
        job = f"  job {s.job_id}" if s.job_id else ""
        detail = f"  {s.detail}" if s.detail else ""
        print(f"{s.name}  {s.state:<8} {s.n_items} item(s){job}{detail}")
    print(summarize(states))
    return 1 if any(s.state == "failed" for s in states) else 0


def _collect(args: argparse.Namespace) -> int:
    from espnet3.runner.jobs_dir import collect
    from espnet3.utils.atomic import atomic_write_jsonl

    _require_dir(args.specs_dir)
    records = ({"index": i, "result": r} for i, r in collect(args.specs_dir))
    if args.output:
        count = atomic_write_jsonl(args.output, records)
        print(f"{count} result(s) written to {args.output}")
    else:
        for record in records:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return 0


def _require_dir(path: str) -> None:
    import os

    if not os.path.isdir(path):
        raise Espnet3Error(
            f"shard directory {path!r} does not exist: pass the async_specs_dir of the run"
        )
