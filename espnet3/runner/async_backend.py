"""``async_mode``: split a runner call into shard specs and submit them as detached jobs.

Submitting the same work again finds the same spec names: shards already ``done`` are
skipped, ``pending``/``running`` ones are left alone, and only ``missing`` or ``failed`` ones
are submitted again. ``parallel.env`` picks the scheduler: ``local`` (processes on this
machine) or a batch scheduler (job arrays: SLURM, PBS, SGE, LSF, HTCondor, OAR, Moab).

Example (``parallel: {env: local, n_workers: 2}``)::

    submission = MyRunner(provider, async_mode=True, async_specs_dir="exp/specs",
                          async_result_dir="exp/results")(range(1000))
    submission.wait()
    results = [r for _, r in submission.collect()]
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from espnet3.parallel import get_parallel_config
from espnet3.runner import jobs_dir
from espnet3.runner.class_path import class_path
from espnet3.runner.job_records import record_call
from espnet3.runner.outcomes import as_index
from espnet3.runner.provider import plain_config
from espnet3.runner.resharding import reuse_finished_results, superseded_removed
from espnet3.runner.shard_spec import ShardSpec, default_shard_size, split_indices
from espnet3.runner.submit import submit_shards
from espnet3.utils.atomic import remove_stale_temps

log = logging.getLogger(__name__)


@dataclass
class AsyncSubmission:
    """What an async call submitted; wait for it, ask its status, collect its results."""

    specs_dir: Path
    result_dir: Path
    shards: list[str]
    submitted: list[str]
    already_done: list[str]
    in_progress: list[str]
    jobs: dict[str, Any] = field(default_factory=dict)

    def status(self) -> list[jobs_dir.ShardStatus]:
        """The state of each shard of this call."""
        return jobs_dir.status(self.specs_dir, self.shards)

    def wait(self, timeout: float | None = None, poll: float = 1.0) -> list[jobs_dir.ShardStatus]:
        """Block until no shard of this call is pending or running."""
        return jobs_dir.wait(self.specs_dir, self.shards, timeout, poll)

    def collect(self) -> Iterator[tuple[int, Any]]:
        """Stream ``(index, result)`` of this call in the order of its indices."""
        return jobs_dir.collect(self.specs_dir, self.shards)


def submit_async(runner: Any, indices: Iterable[int]) -> AsyncSubmission:
    """Write the shard specs of ``runner(indices)`` and submit those that need to run."""
    config = get_parallel_config()
    config.scheduler.check_shards(config)  # before anything is written
    indices = [as_index(position, i) for position, i in enumerate(indices)]
    specs_dir = runner.async_specs_dir.resolve()
    specs_dir.mkdir(parents=True, exist_ok=True)
    shard_size = runner.async_shard_size or default_shard_size(len(indices), config.n_workers)
    chunks = split_indices(indices, shard_size)
    provider = runner.provider
    specs = [
        ShardSpec.for_work(
            runner=class_path(type(runner)),
            provider=class_path(type(provider)),
            config=plain_config(getattr(provider, "config", None)),
            params=dict(getattr(provider, "params", None) or {}),
            indices=chunk,
            batch_size=runner.batch_size,
            on_error=runner.on_error,
            result_dir=runner.async_result_dir,
            shard=k,
            n_shards=len(chunks),
            item_timeout=runner.item_timeout or config.item_timeout,
        )
        for k, chunk in enumerate(chunks)
    ]
    for spec in specs:
        spec.write(specs_dir)
    reused = reuse_finished_results(specs_dir, specs)  # the same call with other shard sizes
    record_call(specs_dir, specs)
    superseded_removed(specs_dir, specs)
    states = {s.name: s.state for s in jobs_dir.status(specs_dir, [s.name for s in specs])}
    todo = [s for s in specs if states[s.name] in jobs_dir.RERUN_STATES]
    for spec in todo:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(spec.failed_path)  # so status does not report the old attempt
        for path in (spec.result_path, spec.errors_path):  # what a killed attempt left
            remove_stale_temps(path)
    names = [s.name for s in todo]
    max_running = runner.async_max_running or config.n_workers
    jobs = submit_shards(names, specs_dir, config, max_running) if names else {}
    submission = AsyncSubmission(
        specs_dir=specs_dir,
        result_dir=runner.async_result_dir.resolve(),
        shards=[s.name for s in specs],
        submitted=names,
        already_done=[s.name for s in specs if states[s.name] == "done"],
        in_progress=[s.name for s in specs if states[s.name] in jobs_dir.ACTIVE_STATES],
        jobs=jobs,
    )
    log.info(
        "%d shard(s): %d submitted, %d already done (%d from earlier shard sizes), %d still in "
        "progress",
        len(specs),
        len(names),
        len(submission.already_done),
        len(reused),
        len(submission.in_progress),
    )
    return submission
