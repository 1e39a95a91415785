"""The mini_an4 feature stage: a plain loop, the sequential backend, and 2 local workers.

The real archive (../shared/data/mini_an4) is prepared once with the recipe's own builder;
its train utterances are then listed ``--copies`` times under new ids so that the stage has
enough work to measure (each copy reads its WAV and computes and writes its 80-dim log-mel
features, as the recipe does). One run times, side by side on the same data:

- ``plain loop``: read the WAV, ``lhotse.Fbank.extract``, ``np.save``: the work alone;
- ``compute_features`` on the sequential backend (``parallel: {env: none}``);
- ``compute_features`` on a 2-worker ``LocalCluster`` (start-up excluded, reported apart).

Every timed run writes to a fresh features directory, so no shard is skipped.

    python benchmarks/bench_mini_an4.py [--quick] [--copies N]
"""

from __future__ import annotations

import argparse
import importlib
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
    entries = [entry_cls(f"{e.utt_id}-{k:04d}", e.wav, e.text) for k in range(copies) for e in base]
    MANIFEST.write_manifest(data_dir, "train", entries)
    return len(entries)


def plain_loop(data_dir: Path, out_dir: Path) -> None:
    import numpy as np
    import soundfile
    from lhotse import Fbank, FbankConfig

    fbank = Fbank(FbankConfig(num_mel_bins=80))
    out_dir.mkdir(parents=True)
    for entry in MANIFEST.read_manifest(data_dir, "train"):
        speech, rate = soundfile.read(data_dir / entry.wav, dtype="float32")
        np.save(out_dir / f"{entry.utt_id}.npy", fbank.extract(speech, rate).astype(np.float32))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few copies, one repeat")
    parser.add_argument("--copies", type=int, default=None)
    args = parser.parse_args(argv)
    copies = args.copies or (10 if args.quick else 100)
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
        loop = repeat(lambda: plain_loop(root / "data", fresh()), repeats)
        set_parallel(None)
        sequential = repeat(stage, repeats)
        startup, local = repeat_on_local_cluster(stage, repeats)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    report = "\n".join(
        [
            "## mini_an4 feature stage",
            "",
            f"{n} utterances (the mini AN4 train split listed {copies} times), 80-dim Fbank; "
            f"median (range) of {repeats} run(s) after one warm-up. LocalCluster start-up "
            f"{startup:.1f} s, excluded. Machine: {machine()}.",
            "",
            throughput_table(
                n,
                "utterances",
                [
                    ("plain loop", loop),  # read, Fbank, np.save (see the module docstring)
                    ("compute_features, sequential", sequential),
                    ("compute_features, local 2 workers", local),
                ],
            ),
        ]
    )
    print(report)
    if not args.quick:
        write_section("mini_an4", report)


if __name__ == "__main__":
    main()
