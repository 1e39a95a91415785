"""Run shards on a Dask cluster, one task per shard, and supervise them unit by unit.

Each task runs :func:`~espnet3.runner.shard_run.run_shard` on a worker, with the environment
that worker's setup built once, so a shard's writer hooks write where it is computed and its
results never travel. The process that submitted the tasks holds the shards' claims and watches:

- **A worker that dies** (killed from outside, out of memory, a crash in a C extension) costs
  its shard one more run, now *tracked*: the unit about to run is written to the shard
  directory. When a tracked shard loses its worker twice at the same unit, that unit is the
  cause: it is given up on (recorded under ``on_error="skip"``, an error naming it under
  ``raise``) and the shard runs again without it.
- **``item_timeout``**: the worker reports the unit each shard is at; one that runs longer has
  its worker restarted (a running thread cannot be stopped) and is given up on the same way.

Example (on an open client)::

    run_on_dask(MyRunner, works, client, (setup_key(setup), setup))
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from espnet3.errors import Espnet3Error
from espnet3.parallel.chunk_task import RUNNING_ITEMS
from espnet3.parallel.dask_map import WATCH_SECONDS, check_loadable, running_items_on, stop_task
from espnet3.parallel.worker_env import SetupFn, process_env
from espnet3.runner.outcomes import ItemFailure
from espnet3.runner.shard_run import ShardWork, read_progress, run_shard

log = logging.getLogger(__name__)

#: Runs of a shard that lose their worker at the same unit before that unit is given up on.
SAME_UNIT_LOSSES = 2
#: Runs of a shard that lose their worker before it reaches any unit, before it fails.
EARLY_LOSSES = 3


def shard_task(
    runner_cls: type, work: ShardWork, setup: tuple[str | None, SetupFn | None]
) -> dict[str, Any]:
    """On a worker: run one shard with this worker's environment."""
    from distributed import get_worker

    key = get_worker().get_current_task()

    def running(position: int) -> None:
        RUNNING_ITEMS[key] = (position, time.monotonic())

    try:
        return run_shard(runner_cls, work, process_env(*setup), running=running)
    finally:
        RUNNING_ITEMS.pop(key, None)


class _Attempts:
    """What the supervisor knows of one shard across its runs."""

    def __init__(self, work: ShardWork):
        self.work = work
        self.runs = 0  # tasks submitted for it (each needs a key of its own)
        self.early = 0  # losses before the first unit
        self.at: dict[int, int] = {}  # unit position -> losses there


def run_on_dask(
    runner_cls: type,
    works: Sequence[ShardWork],
    client: Any,
    setup: tuple[str | None, SetupFn | None],
    lost_failure: Callable[[ShardWork, int, str], ItemFailure],
) -> list[dict[str, Any]]:
    """Run every shard of ``works`` on ``client``; their reports, in completion order.

    ``lost_failure(work, position, reason)`` makes the :class:`ItemFailure` of a unit given
    up on under ``on_error="raise"`` (it names the item).
    """
    from distributed import wait

    from espnet3.parallel.recipe_imports import share_recipe_packages

    share_recipe_packages(client)
    check_loadable(client, (runner_cls, setup))
    run = uuid.uuid4().hex[:8]
    timeout = works[0].item_timeout if works else None
    running: dict[Any, tuple[_Attempts, float]] = {}
    reports = []

    def submit(attempts: _Attempts) -> None:
        key = f"espnet3-shard-{run}-{attempts.work.shard_id}-{attempts.runs}"
        attempts.runs += 1
        future = client.submit(shard_task, runner_cls, attempts.work, setup, key=key, pure=False)
        running[future] = (attempts, time.monotonic())

    def give_up(attempts: _Attempts, position: int, reason: str) -> None:
        work = attempts.work
        if work.on_error == "raise":
            raise lost_failure(work, position, reason).to_error()
        log.warning("shard %d: unit %d given up on (%s)", work.shard_id, position, reason)
        attempts.work = replace(work, lost=(*work.lost, (position, reason)), track=False)
        attempts.at.pop(position, None)
        submit(attempts)

    def lost(attempts: _Attempts, reason: str) -> None:
        work = attempts.work
        position = read_progress(work.shard_dir) if work.track else None
        if position is None:
            attempts.early += work.track
            if attempts.early >= EARLY_LOSSES:
                raise Espnet3Error(
                    f"shard {work.shard_id} ({work.shard_dir}) lost its worker {attempts.early} "
                    f"times before reaching a unit ({reason}): see the workers' logs"
                )
        else:
            attempts.at[position] = attempts.at.get(position, 0) + 1
            if attempts.at[position] >= SAME_UNIT_LOSSES:
                give_up(attempts, position, f"its worker died ({reason})")
                return
        log.warning("shard %d lost its worker (%s): running it again", work.shard_id, reason)
        attempts.work = replace(work, track=True)
        submit(attempts)

    for work in works:
        submit(_Attempts(work))
    try:
        while running:
            try:
                done, _ = wait(list(running), timeout=WATCH_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            for future in done:
                attempts, _ = running.pop(future)
                try:
                    reports.append(future.result())
                except Espnet3Error:
                    raise
                except Exception as exc:
                    if not _is_lost(exc):
                        raise
                    lost(attempts, f"{type(exc).__name__}: {exc}")
            for future, position in _overdue(client, running, timeout):
                attempts, _ = running.pop(future)
                stop_task(client, future)
                give_up(attempts, position, f"it ran longer than item_timeout={timeout:g} s")
    finally:
        if running:
            with contextlib.suppress(Exception):
                client.cancel(list(running))
    return reports


def _is_lost(exc: BaseException) -> bool:
    """The task's worker died (Dask retries nothing: ``allowed-failures`` is 0)."""
    from distributed.scheduler import KilledWorker

    return isinstance(exc, KilledWorker)


def _overdue(
    client: Any, running: Mapping[Any, tuple[_Attempts, float]], timeout: float | None
) -> list[tuple[Any, int]]:
    """Shards whose current unit has run longer than ``timeout``, with that unit's position."""
    now = time.monotonic()
    if timeout is None or not any(now - since > timeout for _, since in running.values()):
        return []
    at = running_items_on(client)
    return [
        (future, at[future.key][0])
        for future in running
        if future.key in at and at[future.key][1] > timeout
    ]
