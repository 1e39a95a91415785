"""Status of the shards in a specs directory, and their results streamed back in order.

These are the Python forms of ``espnet3 jobs status DIR`` and ``espnet3 jobs collect DIR``.
A shard's state comes from its files first (a complete results file means ``done``, a
``.failed.json`` means ``failed``) and otherwise from its job, asked of the scheduler that runs
it in one call for all its shards
(:meth:`~espnet3.parallel.schedulers.base.Scheduler.shard_states`: the shard process for
``local``, one ``squeue`` for SLURM). States: ``done``, ``failed``, ``running``, ``pending``,
``submitted`` (on a scheduler espnet3 cannot ask) and ``missing`` (never submitted).

Example (after an async runner call wrote ``exp/specs``)::

    >>> [(s.name, s.state) for s in status("exp/specs")]      # doctest: +SKIP
    [('shard-0b1c...', 'done'), ('shard-9f3e...', 'running')]
    >>> wait("exp/specs")                                     # doctest: +SKIP
    >>> for index, result in collect("exp/specs"):            # doctest: +SKIP
    ...     print(index, result)
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from espnet3.errors import Espnet3Error
from espnet3.parallel.jobs import log_tail
from espnet3.parallel.schedulers import scheduler_for
from espnet3.runner.job_records import SPEC_SUFFIX, read_call, read_job_record, spec_path
from espnet3.runner.shard_results import is_complete, read_results
from espnet3.runner.shard_spec import ShardSpec

#: States whose shard still has a job that may finish it.
ACTIVE_STATES = ("pending", "running", "submitted")
#: States whose shard a new call submits again.
RERUN_STATES = ("missing", "failed")


@dataclass(frozen=True)
class ShardStatus:
    """One shard: its state, size, job and, for a failure, why."""

    name: str
    state: str
    n_items: int
    job_id: str | None = None
    log: str | None = None
    detail: str = ""


def load_specs(
    specs_dir: str | os.PathLike, names: Sequence[str] | None = None, *, everything: bool = False
) -> list[ShardSpec]:
    """The specs named ``names`` (in that order); else those of the latest call; else (or with
    ``everything``) every spec of the directory, by first index."""
    if names is None and not everything:
        names = read_call(specs_dir)
    if names is not None:
        return [ShardSpec.load(spec_path(specs_dir, name)) for name in names]
    specs = [ShardSpec.load(p) for p in Path(specs_dir).glob(f"*{SPEC_SUFFIX}")]
    return sorted(specs, key=lambda s: (s.indices[0] if s.indices else float("inf"), s.name))


def status(specs_dir: str | os.PathLike, names: Sequence[str] | None = None) -> list[ShardStatus]:
    """The state of every shard in ``specs_dir`` (or of ``names``), asking each scheduler once.

    Example (needs shards)::

        >>> summarize(status("exp/specs"))                    # doctest: +SKIP
        '3 done, 1 running'
    """
    specs = load_specs(specs_dir, names)
    records = {s.name: read_job_record(specs_dir, s.name) for s in specs}
    asked: dict[str, list[str]] = {}  # scheduler -> shards whose job it must answer for
    for spec in specs:
        if records[spec.name] and not _settled(spec):
            asked.setdefault(records[spec.name].get("scheduler", ""), []).append(spec.name)
    jobs: dict[str, tuple[str, str]] = {}
    for env, shards in asked.items():
        answers = scheduler_for(env).shard_states([records[name] for name in shards])
        jobs.update(zip(shards, answers, strict=True))
    return [_shard_status(s, records[s.name], jobs.get(s.name)) for s in specs]


def wait(
    specs_dir: str | os.PathLike,
    names: Sequence[str] | None = None,
    timeout: float | None = None,
    poll: float = 1.0,
) -> list[ShardStatus]:
    """Block until every shard is ``done``, ``failed`` or ``missing``; return their states.

    Example (needs shards)::

        >>> summarize(wait("exp/specs", timeout=600))         # doctest: +SKIP
        '4 done'
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        states = status(specs_dir, names)
        if all(s.state not in ACTIVE_STATES for s in states):
            return states
        if deadline is not None and time.monotonic() > deadline:
            raise Espnet3Error(
                f"shards in {str(specs_dir)!r} still not finished after {timeout:g} s "
                f"({summarize(states)}): wait longer, or check `espnet3 jobs status {specs_dir}`"
            )
        time.sleep(poll)


def collect(
    specs_dir: str | os.PathLike, names: Sequence[str] | None = None
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, result)`` of every shard, shard after shard, one line at a time.

    Shards come in the order of ``names`` (a call's shards, in the order of its indices), or
    by first index. Every shard must be ``done``: otherwise nothing is yielded and the error
    lists the shards that are not.
    """
    specs = load_specs(specs_dir, names)
    unfinished = [s for s in specs if not is_complete(s.result_path)]
    if unfinished:
        states = {st.name: st for st in status(specs_dir, [s.name for s in unfinished])}
        listed = "; ".join(_describe(states[s.name]) for s in unfinished[:5])
        more = f" and {len(unfinished) - 5} more" if len(unfinished) > 5 else ""
        raise Espnet3Error(
            f"{len(unfinished)} of {len(specs)} shard(s) in {str(specs_dir)!r} have no complete "
            f"results: {listed}{more}. Run the same runner call again to resubmit them"
        )
    for spec in specs:
        yield from read_results(spec.result_path)


def summarize(states: Sequence[ShardStatus]) -> str:
    """``3 done, 1 failed``: how many shards are in each state.

    Example:
        >>> summarize([ShardStatus("a", "done", 2), ShardStatus("b", "done", 1)])
        '2 done'
    """
    counts = Counter(s.state for s in states)
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "no shards"


def _settled(spec: ShardSpec) -> bool:
    return is_complete(spec.result_path) or os.path.exists(spec.failed_path)


def _shard_status(
    spec: ShardSpec, record: dict[str, Any] | None, job: tuple[str, str] | None
) -> ShardStatus:
    base = {"name": spec.name, "n_items": len(spec.indices)}
    if record:
        base.update(job_id=record.get("job_id"), log=record.get("log"))
    if is_complete(spec.result_path):
        return ShardStatus(state="done", **base)
    if os.path.exists(spec.failed_path):
        return ShardStatus(state="failed", detail=_failure_message(spec.failed_path), **base)
    if record is None or job is None:
        return ShardStatus(state="missing", **base)
    state, detail = job
    if state == "failed":
        if is_complete(spec.result_path):  # it finished between the two looks
            return ShardStatus(state="done", **base)
        detail += f"; last lines of {base.get('log')}:\n{log_tail(base['log'], 5)}"
    return ShardStatus(state=state, detail=detail, **base)


def _failure_message(path: str) -> str:
    try:
        record = json.loads(Path(path).read_text())
        return f"{record['exc_type']}: {record['message']}"
    except (OSError, ValueError, KeyError):
        return f"failed (unreadable {path})"


def _describe(state: ShardStatus) -> str:
    first = state.detail.splitlines()[0] if state.detail else ""
    return f"{state.name} {state.state}" + (f" ({first})" if first else "")
