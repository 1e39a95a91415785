"""Run one shard in this process: its writer hooks, ``forward`` per unit, the error policy, ``done``.

The order is upstream ESPnet3's: ``init_state`` (makes ``split.N`` and calls ``open_writers``),
then per unit ``forward`` and ``reduce_state`` (``write_record``), then ``finalize_state``
(``close_writers``). espnet3 adds what makes the shard safe to rerun: a ``done`` left by an
earlier run and the temporary files of a killed one are removed first, ``done`` is written
last and records the outputs' sizes and checksums, and a shard that fails leaves no ``done``,
with its writers closed. The caller holds the shard's claim (:mod:`espnet3.runner.shard_dir`).

A unit that raises follows the runner's ``on_error``: ``raise`` stops the shard with an
:class:`~espnet3.errors.ItemError` naming the index (and ``utt_id``); ``skip`` records it in
``split.N/errors.jsonl`` and goes on. Units given in ``lost`` (found to kill their worker, or to
run past ``item_timeout``, by the process that supervises a cluster run) are recorded the same
way without running.

Example:
    >>> import tempfile
    >>> from espnet3.runner.base_runner import BaseRunner
    >>> from espnet3.runner.shard_dir import is_done
    >>> class Double(BaseRunner):
    ...     @staticmethod
    ...     def forward(idx, **env):
    ...         return 2 * idx
    >>> work = ShardWork(shard_id=0, units=[1, 2], output_dir=tempfile.mkdtemp())
    >>> report = run_shard(Double, work, {})
    >>> report["units"], is_done(work.shard_dir)
    (2, True)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from espnet3.errors import Espnet3Error
from espnet3.parallel.worker_env import bind_env
from espnet3.runner.outcomes import ItemFailure, Unit, find_utt_id, run_unit
from espnet3.runner.shard_dir import clear_done, mark_done
from espnet3.runner.shard_plan import shard_dir, shards_root
from espnet3.utils.atomic import atomic_open, atomic_write_jsonl

#: Results of a runner without writer hooks of its own, when its call keeps them (``async_mode``).
RESULTS = "results.jsonl"
#: Items that failed under ``on_error="skip"``.
ERRORS = "errors.jsonl"
#: The position of the unit running now, written only when a lost worker is being tracked down.
PROGRESS = ".espnet3-progress"


@dataclass(frozen=True)
class ShardWork:
    """One shard of a call: its units and how to run them (plain data: it travels to workers)."""

    shard_id: int
    units: list[Unit]
    output_dir: str
    shard_subdir: str = ""
    on_error: str = "raise"
    item_timeout: float | None = None
    #: ``forward`` gets ``output_dir`` (and ``shard_subdir``) in its environment, as upstream.
    inject_output_dir: bool = True
    #: Write ``(index, result)`` lines to ``results.jsonl`` (the results of an async call).
    keep_results: bool = False
    #: ``(position, why)`` of the units given up on before this attempt.
    lost: tuple[tuple[int, str], ...] = ()
    #: Write the running unit's position to ``.espnet3-progress`` (a worker died in this shard).
    track: bool = False
    #: ``parallel.allow_overwrite_lock``: take over locks whose holder cannot be checked.
    overwrite_lock: bool = False

    @property
    def shard_dir(self) -> Path:
        return shard_dir(shards_root(self.output_dir, self.shard_subdir), self.shard_id)


def shard_env(work: ShardWork, env: Mapping[str, Any]) -> dict[str, Any]:
    """The environment ``forward`` and the hooks get: the provider's, with the shard's place."""
    env = dict(env)
    if work.inject_output_dir:
        env.setdefault("output_dir", work.output_dir)
        if work.shard_subdir:
            env.setdefault("shard_subdir", work.shard_subdir)
    return env


def run_shard(
    runner_cls: type,
    work: ShardWork,
    env: Mapping[str, Any],
    *,
    wrap: Callable[[Callable[[Unit], Any]], Callable[[Unit], Any]] | None = None,
    running: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run ``work`` with ``runner_cls``'s hooks; return ``{"shard_id", "units", "failed"}``.

    ``wrap`` decorates the per-unit call (``item_timeout`` in a process of its own);
    ``running(position)`` is told each unit as it starts (a cluster's supervisor watches it).
    An :class:`ItemFailure` is raised as its error under ``on_error="raise"``.
    """
    directory = work.shard_dir
    directory.mkdir(parents=True, exist_ok=True)
    clear_done(directory)
    _remove_leftovers(directory)
    env = shard_env(work, env)
    hook_env = {k: v for k, v in env.items() if k not in ("output_dir", "shard_subdir")}
    call = functools.partial(run_unit, runner_forward=bind_env(runner_cls.forward, env, {}))
    call = wrap(call) if wrap is not None else call
    failures: list[dict[str, Any]] = []
    lost = dict(work.lost)
    state = runner_cls.init_state(
        shard_id=work.shard_id,
        output_dir=work.output_dir,
        shard_subdir=work.shard_subdir,
        **hook_env,
    )
    try:
        with _results(directory, work.keep_results) as keep, _progress(work) as mark:
            for position, unit in enumerate(work.units):
                if position in lost:
                    failures += _lost(unit, lost[position], env).records()
                    continue
                mark(position)
                if running is not None:
                    running(position)
                outcome = call(unit)
                if isinstance(outcome, ItemFailure):
                    outcome = _named(outcome, env)
                    if work.on_error == "raise":
                        raise outcome.to_error()
                    failures += outcome.records()
                    continue
                for _, result in outcome:
                    keep(unit, result)
                    state = runner_cls.reduce_state(state, result, shard_id=work.shard_id, **env)
            runner_cls.finalize_state(state, shard_id=work.shard_id, **env)
    except BaseException:
        _close_quietly(state.get("_writers"))
        raise
    if failures:
        atomic_write_jsonl(directory / ERRORS, failures)
    mark_done(directory)
    return {"shard_id": work.shard_id, "units": len(work.units), "failed": len(failures)}


def call_hook(hook: Callable[..., Any], *args: Any, **env: Any) -> Any:
    """Call a writer hook with the arguments it takes: leading ``args`` up to its positional
    parameters, and the ``env`` entries it names (all of them with ``**env``).

    Hooks written for an earlier upstream form, e.g. ``close_writers(writers)``, keep working.

    Example:
        >>> call_hook(lambda writers: sorted(writers), {"b": 1, "a": 2}, {"state": 1}, model=None)
        ['a', 'b']
    """
    positional, names, takes_all = _hook_signature(hook)
    args = args if positional is None else args[:positional]
    kwargs = env if takes_all else {k: v for k, v in env.items() if k in names}
    return hook(*args, **kwargs)


@functools.lru_cache(maxsize=256)
def _hook_signature(hook: Callable[..., Any]) -> tuple[int | None, frozenset[str], bool]:
    params = list(inspect.signature(hook).parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        positional = None
    else:
        positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    names = frozenset(p.name for p in params if p.kind is not p.VAR_KEYWORD)
    return positional, names, any(p.kind is p.VAR_KEYWORD for p in params)


def _lost(unit: Unit, reason: str, env: Mapping[str, Any]) -> ItemFailure:
    indices = list(unit) if isinstance(unit, list) else [unit]
    return _named(ItemFailure(indices, None, "ItemLost", reason, ""), env)


def _named(failure: ItemFailure, env: Mapping[str, Any]) -> ItemFailure:
    """``failure`` with the ``utt_id`` of its item, when it is one item that names one."""
    if failure.utt_id is not None or len(failure.indices) != 1:
        return failure
    return replace(failure, utt_id=find_utt_id(env.get("dataset"), failure.indices[0]))


def _remove_leftovers(directory: Path) -> None:
    """What a killed run left: temporary files, an errors file of an earlier attempt."""
    for path in directory.iterdir():
        name = path.name
        if (name.startswith(".") and name.endswith(".tmp")) or name in (ERRORS, PROGRESS):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


@contextlib.contextmanager
def _results(directory: Path, keep: bool) -> Iterator[Callable[[Unit, Any], None]]:
    """``keep(unit, result)`` writing ``{"index", "result"}`` lines to ``results.jsonl``
    (renamed into place when the shard completes); a no-op when results are not kept."""
    if not keep:
        yield lambda unit, result: None
        return
    with atomic_open(directory / RESULTS) as f:

        def write(unit: Unit, result: Any) -> None:
            if result is None:
                return
            try:
                line = json.dumps({"index": unit, "result": result}, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise Espnet3Error(
                    f"the result of index {unit} cannot be written as JSON ({exc}): return "
                    f"plain values from forward (e.g. array.tolist(), sorted(a_set))"
                ) from None
            f.write(line + "\n")

        yield write


@contextlib.contextmanager
def _progress(work: ShardWork) -> Iterator[Callable[[int], None]]:
    """``mark(position)``: the unit about to run, in ``.espnet3-progress`` when tracking."""
    if not work.track:
        yield lambda position: None
        return
    path = work.shard_dir / PROGRESS
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        yield lambda position: os.pwrite(fd, f"{position:>12}".encode(), 0)
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def read_progress(directory: str | os.PathLike) -> int | None:
    """The position of the unit a tracked shard was running when its process died."""
    try:
        return int(Path(directory, PROGRESS).read_text().strip())
    except (OSError, ValueError):
        return None


def _close_quietly(writers: Any) -> None:
    """Close what a failed shard opened (its ``close_writers`` hook is not called: the shard
    did not complete)."""
    if not isinstance(writers, Mapping):
        return
    for writer in writers.values():
        close = getattr(writer, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()
