"""The mini_an4 feature stage: a plain loop, the sequential backend, and 2 local workers.

The real archive (../shared/data/mini_an4) is prepared once with the recipe's own builder;
its train utterances are then listed ``--copies`` times under new ids so that the stage has
enough work to measure (each copy reads its WAV and computes and writes its 80-dim log-mel
features, as the recipe does). One run times, side by side on the same data:

- ``plain loop``: read the WAV, ``lhotse.Fbank.extract``, ``np.save``: the work alone;
- two plain loops in two processes, each on half the utterances: what this machine's two
  cores give to work that shares nothing, the ceiling of any 2-worker run;
- ``compute_features`` on the sequential backend (``parallel: {env: none}``);
- ``compute_features`` on a 2-worker ``LocalCluster`` (start-up excluded, reported apart);
- Lhotse's own ``CutSet.compute_and_store_features`` (numpy files, as ours), with
  ``num_jobs=1``, ``num_jobs=2`` and a 2-process (spawned) ``ProcessPoolExecutor``: what an ESPnet user
  would reach for today. Its cuts are built from the same WAVs beforehand, untimed.

Every timed run writes to a fresh features directory, so no shard is skipped.

    python benchmarks/bench_mini_an4.py [--quick] [--copies N]

A full run (not ``--quick``) adds the cost-growth table at 10^3, 10^4 and 10^5 utterances.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    alternating,
    machine,
    repeat,
    repeat_on_local_cluster,
    run_stats,
    throughput_table,
    write_section,
)
from espnet3.components.data.dataset_module import load_dataset_module  # noqa: E402
from espnet3.parallel import set_parallel  # noqa: E402

ARCHIVE = ROOT.parent / "shared" / "data" / "mini_an4" / "downloads.tar.gz"
RECIPE = load_dataset_module("mini_an4/asr")
MANIFEST = importlib.import_module(f"{RECIPE.__name__}.manifest")


def prepare(data_dir: Path, copies: int) -> int:
    """Build mini_an4 in ``data_dir``; list its train utterances ``copies`` times; return N."""
    entry_cls, read_manifest = MANIFEST.ManifestEntry, MANIFEST.read_manifest
    builder = RECIPE.DatasetBuilder()
    kwargs = {"data_dir": str(data_dir), "archive": str(ARCHIVE), "num_valid": 1}
    builder.prepare_source(**kwargs)
    builder.build(**kwargs)
    base = read_manifest(data_dir, "train")
    entries = [
        entry_cls(f"{e.utt_id}-{k:04d}", e.wav, e.text, e.speaker)
        for k in range(copies)
        for e in base
    ]
    MANIFEST.write_manifest(data_dir, "train", entries)
    return len(entries)


def plain_loop(data_dir: Path, out_dir: Path, lo: int = 0, hi: int | None = None) -> None:
    import numpy as np
    import soundfile
    from lhotse import Fbank, FbankConfig

    fbank = Fbank(FbankConfig(num_mel_bins=80))
    out_dir.mkdir(parents=True)
    for entry in MANIFEST.read_manifest(data_dir, "train")[lo:hi]:
        speech, rate = soundfile.read(data_dir / entry.wav, dtype="float32")
        np.save(out_dir / f"{entry.utt_id}.npy", fbank.extract(speech, rate).astype(np.float32))


LOOP_PART = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)  # one core each, as a Dask worker has
from benchmarks.bench_mini_an4 import plain_loop
print("ready", flush=True)
sys.stdin.readline()
plain_loop(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
print("done", flush=True)
"""


def two_loops(data_dir: Path, out_dir: Path, n: int) -> float:
    """Two plain loops in two processes, each on half the utterances: what two cores give
    to work that shares nothing (the ceiling of any 2-worker run). Returns the wall time of
    the work, the processes' start-up excluded."""
    import subprocess

    halves = ((0, n // 2), (n // 2, n))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                LOOP_PART,
                str(ROOT),
                str(data_dir),
                str(out_dir / str(lo)),
                str(lo),
                str(hi),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for lo, hi in halves
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.stdout.readline().strip() == "done"
        proc.wait()
    return time.perf_counter() - start


def lhotse_cuts(data_dir: Path) -> object:
    """The train split as a Lhotse CutSet of the WAVs (recordings and supervisions only)."""
    from espnet3.data.data_dir import load_splits

    return load_splits(data_dir)["train"]


def lhotse_stage(cuts: object, out_dir: Path, **kwargs: object) -> None:
    from lhotse import Fbank, FbankConfig, NumpyFilesWriter

    done = cuts.compute_and_store_features(
        extractor=Fbank(FbankConfig(num_mel_bins=80)),
        storage_path=str(out_dir),
        storage_type=NumpyFilesWriter,
        **kwargs,
    )
    assert len(done) == len(cuts)


def timed(fn: object, *args: object, **kwargs: object) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def growth(sizes: tuple[int, ...] = (1_000, 10_000, 100_000)) -> str:
    """Seconds and ms per utterance of the loop, the sequential stage and 2 local workers as
    the number of utterances grows (one run each; mini_an4's 4 train utterances repeated)."""
    from espnet3.parallel import get_client

    rows = [
        "| utterances | plain loop s | sequential s | local x2 s | ms/utt loop / seq / x2 |",
        "|---|---|---|---|---|",
    ]
    for n in sizes:
        root = Path(tempfile.mkdtemp(prefix="bench_growth."))
        data = root / "data"
        stage = RECIPE.compute_features
        try:
            prepare(data, n // 4)
            times = [timed(plain_loop, data, data / "loop")]
            set_parallel(None)
            times.append(timed(stage, data_dir=data, out_dir=data / "seq", splits=["train"]))
            with get_client({"env": "local", "n_workers": 2}):
                times.append(timed(stage, data_dir=data, out_dir=data / "x2", splits=["train"]))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        per = " / ".join(f"{1000 * t / n:.2f}" for t in times)
        rows.append(f"| {n:,} | {times[0]:.1f} | {times[1]:.1f} | {times[2]:.1f} | {per} |")
    return "\n".join(rows)


def main_command(repeats: int) -> str:
    """``espnet3 create-dataset`` as a user runs it (a fresh data directory each time, the
    process start-up included), sequential against ``local.yaml``, at mini_an4 size and 100x."""
    import subprocess

    from tests.archives import big_archive

    root = Path(tempfile.mkdtemp(prefix="bench_main."))
    archives = {"mini_an4 (7 utterances)": ARCHIVE}
    archives["100x (507)"] = big_archive(ARCHIVE, root / "big.tar", copies=100)
    configs = {
        "sequential (no --config)": [],
        "local.yaml": ["--config", "conf/local.yaml"],
        "local.yaml, parallel.start=now": ["--config", "conf/local.yaml", "+parallel.start=now"],
    }
    rows = ["| data | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
    try:
        for label, archive in archives.items():
            runs: dict[str, list[float]] = {name: [] for name in configs}
            for k in range(repeats + 1):  # configs alternate, so they share the machine's drift
                for name, extra in configs.items():
                    data = root / f"data{k}"
                    t0 = time.perf_counter()
                    subprocess.run(
                        [sys.executable, "-m", "espnet3", "create-dataset",
                         "recipes/mini_an4/asr", *extra, f"create_dataset.archive={archive}",
                         "create_dataset.sha256=null", f"data_dir={data}"],
                        cwd=ROOT, check=True, capture_output=True,
                    )  # fmt: skip
                    runs[name].append(time.perf_counter() - t0)
                    shutil.rmtree(data)
            cells = [
                f"{statistics.median(r[1:]):.2f} ({min(r[1:]):.2f}-{max(r[1:]):.2f})"
                for r in runs.values()
            ]
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return "\n".join(rows)


WHERE_THE_TIME_GOES = """### Where the time goes

- **Two workers cannot reach 1.6x the loop on this machine.** Two plain loops in two
  processes, sharing nothing, reach only the "2-core ceiling" row above (1.3-1.45x across
  runs: the two vCPUs are not two free cores). The 2-worker stage is measured against that
  ceiling; what it loses besides is the parent's scheduling and result handling on the same
  two cores, and the Dask task overhead per shard (one task per 100 utterances).
- **Sequential against the loop.** Per utterance the stage used to add a temporary file, a
  rename and two path resolutions for its `.npy` (about 0.4 ms of a 0.5 ms overhead), and an
  fsync per shard record file. Features now go to one HDF5 file per shard (one runner batch),
  written by file name with h5py's low-level calls: through a BytesIO and `create_dataset`
  the same file cost 0.65 ms per utterance, now 0.19 ms (the loop's `np.save`: 0.42 ms).
  Shard records are renamed into place unflushed (a damaged one reads as unfinished). What
  remains is the cut records and the CutSet (JSON and gzip, about 0.05 ms per utterance).
  The loop and the stage run in turns, 5 rounds: single runs on this machine vary up to 3x
  (the loop's 11.4 s above), so the median is the figure, 0.96x at 4000 utterances; the
  single-run cost-growth rows below spread as widely (0.93x to 2.5x).
- **Lhotse's `compute_and_store_features`**: `num_jobs=2` (and a 2-process executor) run
  each process with torch's default threads, oversubscribing the two cores (Lhotse warns so).
- **The main command.** Starting 2 local workers, their first `import torch, lhotse` and
  their shutdown cost about 2.6 s here (the `parallel.start=now` column), more than all of
  mini_an4's work even at 100x. create-dataset therefore starts the cluster only when a map's
  remaining work, timed on its first items, is worth it (`WORTH_A_CLUSTER_SECONDS`), so
  `local.yaml` costs what the sequential run costs until the work is large enough to gain."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few copies, one repeat")
    parser.add_argument("--copies", type=int, default=None)
    args = parser.parse_args(argv)
    copies = args.copies or (10 if args.quick else 1000)
    repeats = 1 if args.quick else 3
    root = Path(tempfile.mkdtemp(prefix="bench_mini_an4."))
    runs = iter(range(10**6))

    def fresh() -> Path:
        return root / "data" / f"fbank{next(runs)}"

    def stage() -> None:
        summary = RECIPE.compute_features(
            data_dir=root / "data", out_dir=fresh(), splits=["train"], shard_size=100
        )
        assert summary["splits"]["train"]["kept"] == n

    try:
        n = prepare(root / "data", copies)
        set_parallel(None)
        # The loop and the sequential stage in turns, 5 rounds: their difference is a few %.
        paired = alternating(
            {"loop": lambda: plain_loop(root / "data", fresh()), "sequential": stage},
            1 if args.quick else 5,
        )
        loop, sequential = paired["loop"], paired["sequential"]
        timed_two: list[float] = []
        for _ in range(repeats + 1):  # the first is a warm-up, as in repeat()
            timed_two.append(two_loops(root / "data", fresh(), n))
        parallel_loops = run_stats(timed_two[1:])
        startup, local = repeat_on_local_cluster(stage, repeats)
        cuts = lhotse_cuts(root / "data").to_eager()
        lhotse_1 = repeat(lambda: lhotse_stage(cuts, fresh(), num_jobs=1), repeats)
        lhotse_2 = repeat(lambda: lhotse_stage(cuts, fresh(), num_jobs=2), repeats)

        def with_executor() -> None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: a forked child of this threaded process (torch, Dask) can deadlock
            with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
                lhotse_stage(cuts, fresh(), executor=pool, num_jobs=2)

        lhotse_pool = repeat(with_executor, repeats)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    report = "\n".join(
        [
            "## mini_an4 feature stage",
            "",
            f"{n} utterances (the mini AN4 train split listed {copies} times), 80-dim Fbank; "
            f"median (range) of {repeats} run(s) after one warm-up ({len(loop['runs'])}, in "
            f"turns, for the plain loop and the sequential stage). LocalCluster start-up "
            f"{startup:.1f} s, excluded. Machine: {machine()}.",
            "",
            throughput_table(
                n,
                "utterances",
                [
                    ("plain loop", loop),  # read, Fbank, np.save (see the module docstring)
                    (
                        "2 plain loops in 2 processes, half each (the 2-core ceiling)",
                        parallel_loops,
                    ),
                    ("compute_features, sequential", sequential),
                    ("compute_features, local 2 workers", local),
                    ("lhotse compute_and_store_features, num_jobs=1", lhotse_1),
                    ("lhotse compute_and_store_features, num_jobs=2", lhotse_2),
                    ("lhotse compute_and_store_features, ProcessPoolExecutor(2)", lhotse_pool),
                ],
            ),
        ]
    )
    runs = 1 if args.quick else 7
    report += (
        f"\n\n### The main command, start-up included (seconds, median (range) of {runs} "
        "after a warm-up)\n\n" + main_command(runs)
    )
    report += "\n\n" + WHERE_THE_TIME_GOES
    if not args.quick:  # the cost-growth table: 10^3..10^5 utterances, about 6 minutes
        report += "\n\n### Cost growth (one run each; cluster start-up excluded)\n\n" + growth()
    print(report)
    if not args.quick:
        write_section("mini_an4", report)


if __name__ == "__main__":
    main()
