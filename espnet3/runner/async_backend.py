"""``async_mode``: submit a call's shards as detached jobs, one array task per ``split.N``.

The call is planned, claimed and resumed like any call with shards
(:mod:`espnet3.runner.sharded`), but the shards run as scheduler jobs that outlive this
process: each task runs ``python -m espnet3.runner.shard split.N.spec.json``, claims its
shard, runs it with the runner's writer hooks and marks it ``done``. Calling again submits
only the shards that are neither done nor still queued or running. ``parallel.env`` picks the
scheduler: ``local`` (processes on this machine) or a batch scheduler (job arrays: SLURM, PBS,
SGE, LSF, HTCondor, OAR, Moab).

A runner with ``output_dir`` keeps its shards there, as a call without ``async_mode`` would,
and ``submission.merge()`` is then what that call returns. A runner without ``output_dir``
(the guide's form) gets a shards root of its own per distinct call,
``<async_result_dir>/<Runner>-<hash>``, and its results come back with ``collect()``; finished
results of the same work under another shard size are reused, never run twice
(:mod:`espnet3.runner.resharding`).

Example (``parallel: {env: local, n_workers: 2}``)::

    job_meta = MyRunner(provider, async_mode=True, async_specs_dir="exp/specs",
                        async_result_dir="exp/results")(range(1000))
    job_meta[0]["job_id"], job_meta[0]["spec"]
    job_meta.wait()
    results = [r for _, r in job_meta.collect()]
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from espnet3.errors import SetupError
from espnet3.parallel.config import ParallelConfig
from espnet3.parallel.placement import Placement
from espnet3.runner import jobs_dir
from espnet3.runner.class_path import class_paths
from espnet3.runner.outcomes import as_units
from espnet3.runner.provider import plain_config
from espnet3.runner.resharding import reuse_finished_results
from espnet3.runner.runner_type import Runner
from espnet3.runner.shard_dir import clear_done, holder
from espnet3.runner.shard_plan import resolve_plan, shards_root, writable
from espnet3.runner.shard_run import RESULTS, ShardWork
from espnet3.runner.shard_spec import LATEST_FILE, CallFiles, ShardSpec, check_json, read_record
from espnet3.runner.sharded import completed_dirs
from espnet3.runner.submit import submit_shards
from espnet3.utils.atomic import atomic_write_json
from espnet3.utils.hashing import stable_hash

log = logging.getLogger(__name__)


class AsyncSubmission(list):
    """What an async call submitted: one ``{"job_id", "spec", "result", "shard_dir"}`` per
    shard, in plan order (``job_id`` is ``None`` for a shard not submitted by this call; on
    ``env: local`` a shard not started yet names its launcher process).

    Wait for it, ask its status, collect its results or merge its shards.
    """

    def __init__(
        self,
        entries: list[dict[str, Any]],
        *,
        files: CallFiles,
        runner: Any,
        submitted: list[str],
        already_done: list[str],
        in_progress: list[str],
        jobs: dict[str, Any],
    ):
        super().__init__(entries)
        self.files = files
        self.runner = runner
        self.shards = [f"split.{k}" for k in range(len(entries))]
        self.submitted = submitted
        self.already_done = already_done
        self.in_progress = in_progress
        self.jobs = jobs

    @property
    def specs_dir(self) -> os.PathLike:
        return self.files.specs_dir

    def status(self) -> list[jobs_dir.ShardStatus]:
        """The state of each shard of this call."""
        return jobs_dir.status(self.files)

    def wait(self, timeout: float | None = None, poll: float = 1.0) -> list[jobs_dir.ShardStatus]:
        """Block until no shard of this call is pending or running."""
        return jobs_dir.wait(self.files, timeout, poll)

    def collect(self) -> Iterator[tuple[Any, Any]]:
        """Stream ``(index, result)`` of this call in the order of its indices (a runner
        without writer hooks of its own)."""
        return jobs_dir.collect(self.files)

    def merge(self) -> Any:
        """The runner's ``merge`` of the shard directories, once every shard is done: what the
        same call without ``async_mode`` returns."""

        return self.runner.merge(completed_dirs(self.files.root, jobs_dir.read_plan(self.files)))


def submit_async(runner: Runner, indices: Iterable[int], where: Placement) -> AsyncSubmission:
    """Plan ``runner(indices)``, write the specs of its shards and submit those that need to
    run, on the scheduler of ``where``'s config (an open block's, else the process-wide one)."""
    config = where.config
    config.scheduler.check_shards(config)  # before anything is written
    units = as_units(indices, runner.batch_size)
    planned = runner._plan_shards(units)
    provider = runner.provider
    provider_config = plain_config(getattr(provider, "config", None))
    params = dict(getattr(provider, "params", None) or {})
    check_json("config", provider_config)
    check_json("params", params)
    identity = (*class_paths(type(runner), type(provider)), provider_config, params)
    work = stable_hash(*identity, runner.batch_size)
    files, base = _call_files(runner, planned, work, config)
    setting = "output_dir" if runner.output_dir is not None else "async_result_dir/async_specs_dir"
    with writable(files.root, setting):
        shards = resolve_plan(
            files.root,
            planned,
            resume=runner.resume,
            output_dir=base.output_dir,
            shard_subdir=base.shard_subdir,
        )
        ids = [int(shard["shard_id"]) for shard in shards]
        if not runner.resume:
            _start_over(files, ids)
        for shard in shards:
            k = int(shard["shard_id"])
            shard_work = replace(base, shard_id=k, units=list(shard["items"]))
            spec = ShardSpec(identity[0], identity[1], provider_config, params, asdict(shard_work))
            spec.write(files.spec(k))
        files.record(work=work, keeps_results=base.keep_results)
        if base.keep_results:
            latest = runner.async_specs_dir.resolve() / LATEST_FILE
            atomic_write_json(latest, {"call": files.root.name})
            reused = reuse_finished_results(files, shards, runner.batch_size)
        else:
            reused = []
    states = {int(s.name.split(".")[1]): s.state for s in jobs_dir.status(files)}
    todo = [k for k in ids if states[k] in jobs_dir.RERUN_STATES]
    for k in todo:  # so status does not report the old attempt
        with contextlib.suppress(FileNotFoundError):
            os.unlink(files.failed(k))
        clear_done(files.shard_dir(k))  # a done marker its files no longer match
    max_running = runner.async_max_running or config.n_workers
    jobs = submit_shards(todo, files, config, max_running) if todo else {}
    entries = []
    for k in ids:
        record = read_record(files.job_record(k)) or {}
        shard_dir = files.shard_dir(k)
        entries.append(
            {
                # Not started yet on ``local``: the launcher that will start it.
                "job_id": str(record.get("job_id") or record.get("launcher"))
                if k in todo
                else None,
                "spec": str(files.spec(k)),
                "result": str(shard_dir / RESULTS if base.keep_results else shard_dir),
                "shard_dir": str(shard_dir),
            }
        )
    submission = AsyncSubmission(
        entries,
        files=files,
        runner=runner,
        submitted=[f"split.{k}" for k in todo],
        already_done=[f"split.{k}" for k in ids if states[k] == "done"],
        in_progress=[f"split.{k}" for k in ids if states[k] in jobs_dir.ACTIVE_STATES],
        jobs=jobs,
    )
    log.info(
        "%d shard(s): %d submitted, %d already done (%d from earlier calls), %d still in progress",
        len(ids),
        len(todo),
        len(submission.already_done),
        len(reused),
        len(submission.in_progress),
    )
    return submission


def _call_files(
    runner: Runner, planned: list[dict[str, Any]], work: str, config: ParallelConfig
) -> tuple[CallFiles, ShardWork]:
    """Where the call keeps its shards and specs, and the work every shard shares."""
    item_timeout = runner.item_timeout or config.item_timeout
    if runner.output_dir is not None:  # the shards of the call without async_mode
        root = shards_root(runner.output_dir, runner.shard_subdir).resolve()
        files = CallFiles(root, root / "specs")
        output_dir, shard_subdir, guide = str(runner.output_dir), runner.shard_subdir, False
    else:  # a root per distinct call, its results collected back
        shard_subdir = f"{type(runner).__name__}-{stable_hash(work, planned)[:12]}"
        output_dir = str(runner.async_result_dir.resolve())
        files = CallFiles(
            Path(output_dir, shard_subdir), runner.async_specs_dir.resolve() / shard_subdir
        )
        guide = True
    base = ShardWork(
        shard_id=-1,
        units=[],
        output_dir=output_dir,
        shard_subdir=shard_subdir,
        on_error=runner.on_error,
        item_timeout=item_timeout,
        inject_output_dir=not guide,
        keep_results=guide,
        overwrite_lock=config.allow_overwrite_lock,
    )
    return files, base


def _start_over(files: CallFiles, ids: list[int]) -> None:
    """``resume=False``: every shard runs again; refused while one still runs."""
    running = [k for k in ids if holder(files.shard_dir(k)) is not None]
    if running:
        raise SetupError(
            f"resume=False would run again shards that still run ({', '.join(f'split.{k}' for k in running)} "
            f"of {files.root}): wait for them (espnet3 jobs status {files.specs_dir}) or cancel "
            "their jobs first"
        )
    for k in ids:
        clear_done(files.shard_dir(k))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(files.job_record(k))
