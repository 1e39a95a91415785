"""Async shards on ``env: local``: throughput of detached shard jobs against the alternatives.

One run, the same :class:`~benchmarks.workloads.SpinRunner` items (fixed CPU cost each):

- ``plain loop``: the items in this process;
- ``runner, local 2 workers``: the synchronous runner on a 2-worker LocalCluster (start-up
  excluded);
- ``async shards``: ``async_mode=True`` on ``env: local``, 2 shard processes at a time, timed
  from the call to the last shard's results collected. Each shard is a fresh
  ``python -m espnet3.runner.shard`` process, so its interpreter start and imports are part of
  the figure; that fixed cost per shard is what the shard size amortises.

    python benchmarks/bench_async_shards.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    machine,
    repeat,
    repeat_on_local_cluster,
    spin_item,
    throughput_table,
    write_section,
)
from benchmarks.workloads import SpinProvider, SpinRunner  # noqa: E402
from espnet3.parallel import set_parallel  # noqa: E402

LOCAL = {"env": "local", "n_workers": 2}
COST = 0.01


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few items, one repeat")
    args = parser.parse_args(argv)
    n, shards, repeats = (200, 4, 1) if args.quick else (2000, 8, 3)
    # Shard processes import the benchmark workloads from the repository root.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    root = Path(tempfile.mkdtemp(prefix="bench_async."))
    runs = iter(range(10**6))

    def async_run() -> None:
        k = next(runs)
        runner = SpinRunner(
            SpinProvider({"cost": COST}),
            async_mode=True,
            async_specs_dir=root / f"specs{k}",
            async_result_dir=root / f"results{k}",
            async_shard_size=n // shards,
            async_max_running=2,
        )
        submission = runner(range(n))
        submission.wait(timeout=3600, poll=0.1)
        assert [i for i, _ in submission.collect()] == list(range(n))

    try:
        loop = repeat(lambda: [spin_item(i, COST) for i in range(n)], repeats)
        runner = SpinRunner(SpinProvider({"cost": COST}))
        startup, sync = repeat_on_local_cluster(lambda: runner(range(n)), repeats)
        set_parallel(LOCAL)
        shards_stats = repeat(async_run, repeats)
        set_parallel(None)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    report = "\n".join(
        [
            "## Async shards throughput",
            "",
            f"{n} items of {COST * 1000:.0f} ms CPU each; median (range) of {repeats} run(s) "
            f"after one warm-up. LocalCluster start-up {startup:.1f} s excluded from the Dask "
            f"row; the async row includes every shard process's start. Machine: {machine()}.",
            "",
            throughput_table(
                n,
                "items",
                [
                    ("plain loop", loop),
                    ("runner, local 2 workers (Dask)", sync),
                    (f"async shards, local, {shards} shards, 2 at a time", shards_stats),
                ],
            ),
        ]
    )
    print(report)
    if not args.quick:
        write_section("async_shards", report)


if __name__ == "__main__":
    main()
