"""Status of an async call's shards, and their results streamed back in order.

These are the Python forms of ``espnet3 jobs status DIR`` and ``espnet3 jobs collect DIR``.
``DIR`` is an ``async_specs_dir`` (its latest call), a call's specs directory, or the shards
root of a call with ``output_dir``. A shard's state comes from its files first (``done`` means
``done``, a ``split.N.failed.json`` means ``failed``, a live claim means ``running``) and
otherwise from its job, asked of the scheduler that runs it in one call for all its shards
(:meth:`~espnet3.parallel.schedulers.base.Scheduler.shard_states`: the shard process for
``local``, one ``squeue`` for SLURM). States: ``done``, ``failed``, ``running``, ``pending``,
``submitted`` (on a scheduler espnet3 cannot ask) and ``missing`` (never submitted).

Example (after an async runner call wrote ``exp/specs``)::

    >>> [(s.name, s.state) for s in status("exp/specs")]      # doctest: +SKIP
    [('split.0', 'done'), ('split.1', 'running')]
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

from espnet3.errors import ContractError, Espnet3Error, IncompleteError
from espnet3.parallel.jobs import log_tail
from espnet3.parallel.schedulers import scheduler_for
from espnet3.runner.shard_dir import done_path, holder, is_done, not_done_because
from espnet3.runner.shard_plan import read_manifest
from espnet3.runner.shard_run import RESULTS
from espnet3.runner.shard_spec import CallFiles, read_record

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


def status(directory: str | os.PathLike | CallFiles) -> list[ShardStatus]:
    """The state of every shard of the call ``directory`` names, asking each scheduler once.

    Example (needs shards)::

        >>> summarize(status("exp/specs"))                    # doctest: +SKIP
        '3 done, 1 running'
    """
    files = directory if isinstance(directory, CallFiles) else CallFiles.find(directory)
    shards = read_plan(files)
    ids = [int(s["shard_id"]) for s in shards]
    records = {k: read_record(files.job_record(k)) for k in ids}
    settled: dict[int, tuple[str, str]] = {}
    for k in ids:
        directory_k = files.shard_dir(k)
        why = not_done_because(directory_k)
        if why is None:
            settled[k] = ("done", "")
        elif done_path(directory_k).exists():
            settled[k] = ("failed", f"{why}: the next call redoes the shard")
        elif files.failed(k).exists():
            settled[k] = ("failed", _failure_message(files.failed(k)))
        elif (owner := holder(directory_k)) is not None:
            where = f"pid {owner['pid']} on {owner['host']}" if owner else "a foreign lock"
            settled[k] = ("running", where)
    asked: dict[str, list[int]] = {}  # scheduler -> shards whose job it must answer for
    for k in ids:
        if k not in settled and records[k]:
            asked.setdefault(records[k].get("scheduler", ""), []).append(k)
    for env, shard_ids in asked.items():
        answers = scheduler_for(env).shard_states([records[k] for k in shard_ids])
        for k, (state, detail) in zip(shard_ids, answers, strict=True):
            if state == "failed":
                if is_done(files.shard_dir(k)):  # it finished between the two looks
                    state, detail = "done", ""
                else:
                    log = records[k].get("log")
                    detail += f"; last lines of {log}:\n{log_tail(log, 5)}"
            settled[k] = (state, detail)
    return [
        ShardStatus(
            name=f"split.{k}",
            state=settled.get(k, ("missing", ""))[0],
            n_items=len(shard["items"]),
            job_id=(records[k] or {}).get("job_id"),
            log=(records[k] or {}).get("log"),
            detail=settled.get(k, ("missing", ""))[1],
        )
        for k, shard in zip(ids, shards, strict=True)
    ]


def wait(
    directory: str | os.PathLike | CallFiles, timeout: float | None = None, poll: float = 1.0
) -> list[ShardStatus]:
    """Block until every shard is ``done``, ``failed`` or ``missing``; return their states.

    Polls with back-off, from ``poll`` up to a minute between looks, so that a thousand
    waiting shards do not keep the scheduler busy.

    Example (needs shards)::

        >>> summarize(wait("exp/specs", timeout=600))         # doctest: +SKIP
        '4 done'
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = poll
    while True:
        states = status(directory)
        if all(s.state not in ACTIVE_STATES for s in states):
            return states
        if deadline is not None and time.monotonic() > deadline:
            raise Espnet3Error(
                f"shards in {str(getattr(directory, 'specs_dir', directory))!r} still not "
                f"finished after {timeout:g} s ({summarize(states)}): wait longer, or check "
                "`espnet3 jobs status DIR`"
            )
        pause = delay if deadline is None else min(delay, max(deadline - time.monotonic(), 0))
        time.sleep(pause)
        delay = min(delay * 2, max(poll, 60.0))


def collect(directory: str | os.PathLike | CallFiles) -> Iterator[tuple[Any, Any]]:
    """Yield ``(index, result)`` of every shard, in plan order, one line at a time.

    Every shard must be ``done``: otherwise nothing is yielded and the error lists the shards
    that are not. Only the results of a runner without writer hooks of its own are collected
    (its shards hold ``results.jsonl``); other runners' outputs are their shard files, merged
    by the runner's ``merge`` (``submission.merge()``).
    """
    files = directory if isinstance(directory, CallFiles) else CallFiles.find(directory)
    shards = read_plan(files)
    unfinished = [s for s in shards if not is_done(files.shard_dir(int(s["shard_id"])))]
    if unfinished:
        names = {f"split.{s['shard_id']}" for s in unfinished}
        states = [s for s in status(files) if s.name in names]
        listed = "; ".join(_describe(s) for s in states[:5])
        more = f" and {len(states) - 5} more" if len(states) > 5 else ""
        raise IncompleteError(
            f"{len(unfinished)} of {len(shards)} shard(s) in {str(files.specs_dir)!r} have no "
            f"complete results: {listed}{more}. Run the same runner call again to resubmit them"
        )
    for shard in shards:
        yield from read_results(files.shard_dir(int(shard["shard_id"])))


def read_results(shard_dir: str | os.PathLike) -> Iterator[tuple[Any, Any]]:
    """The ``(index, result)`` pairs of a done shard's ``results.jsonl``."""
    path = Path(shard_dir) / RESULTS
    if not path.is_file():
        raise Espnet3Error(
            f"{shard_dir} holds no {RESULTS}: this call's runner writes its own files (writer "
            "hooks); read them with its merge() (submission.merge(), or the same call again)"
        )
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
                pair = record["index"], record["result"]
            except (ValueError, KeyError, TypeError) as err:
                raise ContractError(
                    f"{path} line {number} is not a result record ({type(err).__name__}: "
                    f"{err}): the file was changed after its shard finished; delete "
                    f"{done_path(shard_dir)} and run the same call again to redo the shard"
                ) from None
            yield pair


def summarize(states: Sequence[ShardStatus]) -> str:
    """``3 done, 1 failed``: how many shards are in each state.

    Example:
        >>> summarize([ShardStatus("a", "done", 2), ShardStatus("b", "done", 1)])
        '2 done'
    """
    counts = Counter(s.state for s in states)
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "no shards"


def read_plan(files: CallFiles) -> list[dict[str, Any]]:
    """The shards of the call (its manifest), or an error saying the root is gone."""
    shards = read_manifest(files.root)
    if shards is None:
        raise Espnet3Error(
            f"the shards root {str(files.root)!r} of {str(files.specs_dir)!r} has no "
            "manifest.json: it was moved or removed; run the same call again"
        )
    return shards


def _failure_message(path: Path) -> str:
    record = read_record(path)
    if record is None or "exc_type" not in record:
        return f"failed (unreadable {path})"
    return f"{record['exc_type']}: {record.get('message', '')}"


def _describe(state: ShardStatus) -> str:
    first = state.detail.splitlines()[0] if state.detail else ""
    return f"{state.name} {state.state}" + (f" ({first})" if first else "")
