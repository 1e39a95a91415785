"""A runner call with ``output_dir``: plan the shards, claim the pending ones, run them, merge.

This is upstream ESPnet3's shard runner (``output_dir``, ``shard_subdir``, ``resume``, the
writer hooks and ``merge``), on every backend espnet3 has:

1. The units (indices, or batches of ``batch_size``) are split into shards by
   ``runner._plan_shards``: one shard in this process, one per worker on a cluster
   (``parallel.n_workers``; upstream plans one for ``env: local``, which here is a cluster too).
   The plan goes to ``manifest.json``; with ``resume`` a different plan is refused
   (:mod:`espnet3.runner.shard_plan`).
2. Every shard not done is claimed (``split.N/lock``; a claim whose process is gone is taken
   over, a live one is an error naming it: :mod:`espnet3.runner.shard_dir`).
3. The claimed shards run in this process, or one task each on the cluster
   (:mod:`espnet3.runner.shard_dask`); each ends with ``done``. Claims are released whatever
   happens.
4. ``runner.merge(shard_dirs)``, every planned shard in plan order, is the call's result.

Example:
    >>> import tempfile
    >>> from espnet3.runner.base_runner import BaseRunner
    >>> from espnet3.runner.provider import EnvironmentProvider
    >>> class Lines(BaseRunner):
    ...     @staticmethod
    ...     def forward(idx, **env):
    ...         return f"line {idx}"
    ...     @staticmethod
    ...     def open_writers(shard_dir, **env):
    ...         return {"out": open(shard_dir / "lines.txt", "w")}
    ...     @staticmethod
    ...     def write_record(writers, result, state, **env):
    ...         writers["out"].write(result + "\\n")
    ...     def merge(self, shard_dirs):
    ...         return [line for d in shard_dirs for line in (d / "lines.txt").read_text().splitlines()]
    >>> class Empty(EnvironmentProvider):
    ...     def build_env(self):
    ...         return {}
    >>> Lines(Empty(), output_dir=tempfile.mkdtemp())(range(3))
    ['line 0', 'line 1', 'line 2']
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from espnet3.errors import IncompleteError
from espnet3.parallel.mapping import with_timeout
from espnet3.parallel.placement import Placement
from espnet3.runner.outcomes import ItemFailure, as_units, find_utt_id
from espnet3.runner.provider import worker_setup_fn
from espnet3.runner.runner_type import Runner
from espnet3.runner.shard_dir import ShardClaim, is_done
from espnet3.runner.shard_plan import resolve_plan, shard_dir, shards_root, writable
from espnet3.runner.shard_run import ERRORS, ShardWork, run_shard

log = logging.getLogger(__name__)


#: ``execute(runner, works, where)``: runs the claimed shards (:func:`in_process`, :func:`on_dask`).
Execute = Callable[[Runner, list[ShardWork], Placement], None]


def run_sharded(runner: Runner, indices: Iterable[Any], where: Placement, execute: Execute) -> Any:
    """``runner(indices)`` for a runner with ``output_dir`` (see the module docstring); the
    pending shards run through ``execute``."""
    root = shards_root(runner.output_dir, runner.shard_subdir)
    with writable(root, "output_dir"):
        shards = resolve_plan(
            root,
            runner._plan_shards(as_units(indices, runner.batch_size)),
            resume=runner.resume,
            output_dir=runner.output_dir,
            shard_subdir=runner.shard_subdir,
        )
        claims = claim_pending(root, shards, runner.resume, where.config.allow_overwrite_lock)
    try:
        timeout = runner.item_timeout or where.config.item_timeout
        works = [shard_work(runner, shard, timeout) for shard, _ in claims]
        name = type(runner).__name__
        log.info("%s: %d of %d shard(s) to run in %s", name, len(works), len(shards), root)
        if works:
            started = time.monotonic()
            execute(runner, works, where)
            log.info("%s: %d shard(s) done in %.1f s", name, len(works), time.monotonic() - started)
    finally:
        for _, claim in claims:
            claim.release()
    return runner.merge(completed_dirs(root, shards))


def completed_dirs(root: Path, shards: list[dict[str, Any]]) -> list[Path]:
    """The directories of every planned shard, in plan order, once all are done; an error
    naming the first that is not. Items skipped under ``on_error="skip"`` are reported."""
    dirs = [shard_dir(root, int(shard["shard_id"])) for shard in shards]
    for shard, directory in zip(shards, dirs, strict=True):
        if not is_done(directory):
            raise IncompleteError(
                f"Shard {shard['shard_id']} is not complete: {directory} (it has no valid done "
                "marker, or its files changed since): run the same call again"
            )
    _report_skipped(dirs)
    return dirs


def shard_work(runner: Runner, shard: dict[str, Any], item_timeout: float | None) -> ShardWork:
    """The :class:`ShardWork` of one planned shard of ``runner``'s call."""
    return ShardWork(
        shard_id=int(shard["shard_id"]),
        units=list(shard["items"]),
        output_dir=str(runner.output_dir),
        shard_subdir=runner.shard_subdir,
        on_error=runner.on_error,
        item_timeout=item_timeout,
    )


def claim_pending(
    root: Path, shards: list[dict[str, Any]], resume: bool, overwrite: bool = False
) -> list[tuple[dict[str, Any], ShardClaim]]:
    """Claim every shard that is not done (all of them without ``resume``), in plan order.

    A shard held by a live process stops the call: the claims taken so far are released and
    :class:`~espnet3.runner.shard_dir.ShardLocked` names it.
    """
    claims: list[tuple[dict[str, Any], ShardClaim]] = []
    try:
        for shard in shards:
            directory = shard_dir(root, int(shard["shard_id"]))
            if resume and is_done(directory):
                continue
            claim = ShardClaim.take(directory, overwrite)
            if resume and is_done(directory):  # finished by another process meanwhile
                claim.release()
                continue
            claims.append((shard, claim))
    except BaseException:
        for _, claim in claims:
            claim.release()
        raise
    return claims


def on_dask(runner: Runner, works: list[ShardWork], where: Placement) -> None:
    """Run the shards one task each on the cluster of ``where`` (started for the call when none
    is open; a cluster that starts when the work is worth it runs the first shards here)."""

    def here() -> Callable[[int, ShardWork], None]:
        env = runner.provider.build_env_local()
        return lambda index, work: _run_here(runner, work, env)

    def there(client: Any, rest: Iterable[ShardWork], first: int) -> Iterator[tuple[int, Any]]:
        _on_cluster(runner, list(rest), client)
        return iter(())

    for _ in where.run(works, here, there):
        pass


def in_process(runner: Runner, works: list[ShardWork], where: Placement) -> None:
    """Run the shards one after another in this process, with the provider's local environment."""
    env = runner.provider.build_env_local()
    for work in works:
        _run_here(runner, work, env)


def _run_here(runner: Runner, work: ShardWork, env: dict[str, Any]) -> None:
    run_shard(type(runner), work, env, wrap=lambda call: with_timeout(call, work.item_timeout))


def _on_cluster(runner: Runner, works: list[ShardWork], client: Any) -> None:
    from espnet3.parallel.worker_env import setup_key
    from espnet3.runner.shard_dask import run_on_dask

    setup = worker_setup_fn(runner.provider)

    def lost_failure(work: ShardWork, position: int, reason: str) -> ItemFailure:
        unit = work.units[position]
        indices = list(unit) if isinstance(unit, list) else [unit]
        utt_id = None
        if len(indices) == 1:
            with contextlib.suppress(Exception):  # naming the item must not add a failure
                utt_id = find_utt_id(runner.provider.build_env_local().get("dataset"), unit)
        return ItemFailure(indices, utt_id, "ItemLost", reason, "")

    run_on_dask(type(runner), works, client, (setup_key(setup), setup), lost_failure)


def _report_skipped(dirs: list[Path]) -> None:
    files = [d / ERRORS for d in dirs if (d / ERRORS).is_file()]
    if files:
        count = sum(len(f.read_text(encoding="utf-8").splitlines()) for f in files)
        log.warning("%d item(s) failed and were skipped: see %s", count, ", ".join(map(str, files)))
