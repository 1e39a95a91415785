"""One point of the mini_an4 feature stage's growth: time and parent memory at n utterances.

The data directory is mini_an4 built by the recipe's own builder (``bench_mini_an4.prepare``),
whose train manifest is then replaced by ``n`` lines naming a few tiny real WAVs (0.11-0.14 s
cut from the corpus's train recordings), so that the features of a million utterances stay a
few GB on disk. The stage runs in a fresh Python process on a 2-worker LocalCluster
(``set_parallel({"env": "local", "n_workers": 2})``, started for the call), so the parent's
peak RSS is the stage's own, not that of an earlier run in this process.

    python benchmarks/scale_features.py 10000 100000

Example:
    >>> point = feature_stage_point(10_000, Path("/tmp/scale"))   # doctest: +SKIP
    >>> sorted(point)
    ['first_part_seconds', 'manifest_seconds', 'n', 'peak_rss_mb', 'seconds']
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_mini_an4 import MANIFEST, prepare  # noqa: E402

#: Durations (seconds) of the tiny WAVs the manifest names, cut from the train recordings.
TINY_SECONDS = (0.11, 0.12, 0.13, 0.14)
#: Where in each recording the cut starts (past the leading silence).
TINY_START_SECONDS = 0.5

#: Run in a fresh process: ``compute_features`` on a 2-worker LocalCluster; prints the point.
STAGE = """
import importlib, json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from benchmarks.common import peak_rss_mb
from espnet3.components.data.dataset_module import load_dataset_module
from espnet3.parallel import set_parallel

features = importlib.import_module(load_dataset_module("mini_an4/asr").__name__ + ".features")
join, joining = features.concatenate, []

def timed_join(*args, **kwargs):
    started = time.perf_counter()
    join(*args, **kwargs)
    joining.append(time.perf_counter() - started)

features.concatenate = timed_join
set_parallel({"env": "local", "n_workers": 2})
data_dir, out_dir = Path(sys.argv[2]), Path(sys.argv[3])
started = time.time()
summary = features.compute_features(data_dir=data_dir, out_dir=out_dir, splits=["train"])
seconds = time.time() - started
parts = (out_dir / "train" / "shards").glob("*.jsonl.gz")
print(json.dumps({
    "kept": summary["splits"]["train"]["kept"],
    "seconds": seconds,
    "peak_rss_mb": peak_rss_mb(),
    "manifest_seconds": sum(joining),
    "first_part_seconds": min(p.stat().st_mtime for p in parts) - started,
}))
"""


def build_data(data_dir: Path, n: int) -> None:
    """mini_an4 in ``data_dir`` with a train manifest of ``n`` lines over the tiny WAVs
    (written line by line: this process holds no list of ``n`` entries either)."""
    import soundfile

    prepare(data_dir, 1)
    base = MANIFEST.read_manifest(data_dir, "train")
    tiny = []
    for k, seconds in enumerate(TINY_SECONDS):
        entry = base[k % len(base)]
        speech, rate = soundfile.read(data_dir / entry.wav, dtype="float32")
        start = int(TINY_START_SECONDS * rate)
        wav = f"wav/tiny/t{k}.wav"
        (data_dir / wav).parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(data_dir / wav, speech[start : start + int(seconds * rate)], rate)
        tiny.append((wav, entry.text, entry.speaker))
    with open(MANIFEST.manifest_path(data_dir, "train"), "w", encoding="utf-8") as f:
        for i in range(n):
            wav, text, speaker = tiny[i % len(tiny)]
            f.write(f"{speaker}-tiny{i:08d}\t{wav}\t{text}\t{speaker}\n")


def feature_stage_point(n: int, workdir: Path) -> dict:
    """``{"n", "seconds", "peak_rss_mb", "manifest_seconds", "first_part_seconds"}`` of one
    run of the feature stage on ``n`` utterances, in a fresh process on 2 local workers.

    ``seconds`` is the stage's wall time (cluster start-up included), ``peak_rss_mb`` the
    parent's ``ru_maxrss``, ``manifest_seconds`` the time spent writing the combined
    ``cuts_train.jsonl.gz``, ``first_part_seconds`` when the first shard's part was in place
    (its modification time), from the start. ``workdir`` keeps the data directory (rebuilt
    when ``n`` changes); the features are deleted after the run.
    """
    data_dir, out_dir = workdir / "data", workdir / "data" / "fbank"
    if _listed(data_dir) != n:
        shutil.rmtree(data_dir, ignore_errors=True)
        build_data(data_dir, n)
    shutil.rmtree(out_dir, ignore_errors=True)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", STAGE, str(ROOT), str(data_dir), str(out_dir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the feature stage failed on {n} utterances:\n{proc.stderr}")
    point = json.loads(proc.stdout.strip().splitlines()[-1])
    kept = point.pop("kept")
    if kept != n:
        raise RuntimeError(f"the feature stage kept {kept} of {n} utterances")
    return {"n": n, **point}


def _listed(data_dir: Path) -> int | None:
    """Lines of the train manifest of ``data_dir``, ``None`` when there is none."""
    path = MANIFEST.manifest_path(data_dir, "train")
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def main(argv: list[str] | None = None) -> None:
    sizes = [int(arg) for arg in (argv if argv is not None else sys.argv[1:])] or [10_000]
    workdir = Path(tempfile.mkdtemp(prefix="scale_features."))
    try:
        for n in sizes:
            print(json.dumps(feature_stage_point(n, workdir)), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
