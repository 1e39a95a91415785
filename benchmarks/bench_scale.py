"""Scale: the parent's memory and the throughput of HF -> CutSet and the mini_an4 feature stage.

For 10^4, 10^5 and 10^6 rows of a ``save_to_disk`` dataset of 0.1-second 16 kHz WAVs, each
run in a fresh process (so its peak RSS is its own; the Dask workers are other processes):

- ``espnet3``: ``cutset_from_huggingface(..., manifest_dir=...)`` on a 2-worker local cluster
  (started and warmed up before the clock starts): the workers write the manifest parts, the
  parent concatenates them into ``cuts.jsonl.gz`` and returns a lazy set. The audio stays in
  the dataset rows.
- ``lhotse``: ``CutSet.from_huggingface_dataset(ds, audio_key=..., text_key=...)``, lazy, in
  one process, streamed to files with ``to_shar`` (a plain ``to_file`` cannot write the
  ``memory`` sources it makes): cut manifests and audio tar shards of 1000 cuts.
- ``mini_an4 features``: the recipe's feature stage on a data directory of n utterances
  (``benchmarks/scale_features.py``), on 2 local workers.

Columns: seconds, rows per second, the process's peak RSS, time to the first result (a part
written, a cut streamed out) and the time to write the combined manifest. A least-squares line
through (rows, peak RSS) gives the memory each row costs the parent: the target is under 100
bytes per row.

    python benchmarks/bench_scale.py [--quick] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.common import machine, peak_rss_mb, table, write_section  # noqa: E402

SIZES = (10**4, 10**5, 10**6)
QUICK_SIZES = (2000, 10**4)
RATE, SECONDS = 16000, 0.1
INFO = {"audio": "audio", "text": "text"}
TARGET_BYTES_PER_ROW = 100


def make_dataset(n: int, path: Path) -> Path:
    """A ``save_to_disk`` dataset of ``n`` rows (64 distinct 0.1-s WAVs, distinct texts),
    written once per work directory and streamed, so making it holds no rows in memory."""
    import datasets
    import numpy as np
    import soundfile as sf

    if (path / "dataset_info.json").is_file() and len(datasets.load_from_disk(path)) >= n:
        return path
    rng = np.random.default_rng(0)
    blobs = []
    for k in range(64):
        t = np.arange(int(RATE * SECONDS)) / RATE
        wave = 0.2 * np.sin(2 * np.pi * (100 + 7 * k) * t) + rng.normal(0, 0.01, t.size)
        buffer = io.BytesIO()
        sf.write(buffer, (wave * 32767).astype(np.int16), RATE, format="WAV")
        blobs.append(buffer.getvalue())

    def rows():
        for i in range(n):
            yield {"audio": {"bytes": blobs[i % 64], "path": None}, "text": f"utterance {i}"}

    # Stored as a plain struct, then declared an undecoded Audio column (encoding Audio
    # values would need torchcodec).
    struct = {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
    features = datasets.Features({"audio": struct, "text": datasets.Value("string")})
    cache = path.parent / f".{path.name}-generating"
    generated = datasets.Dataset.from_generator(rows, features=features, cache_dir=str(cache))
    generated = generated.cast_column("audio", datasets.Audio(decode=False))
    shutil.rmtree(path, ignore_errors=True)
    generated.save_to_disk(path)
    del generated
    shutil.rmtree(cache, ignore_errors=True)
    return path


class FirstFile:
    """Notes when the first file named ``prefix...suffix`` appears in ``directory``."""

    def __init__(self, directory: Path, prefix: str, suffix: str, t0: float):
        self.directory, self.prefix, self.suffix, self.t0 = directory, prefix, suffix, t0
        self.seconds: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            try:
                names = os.listdir(self.directory)
            except FileNotFoundError:
                continue
            if any(n.startswith(self.prefix) and n.endswith(self.suffix) for n in names):
                self.seconds = time.perf_counter() - self.t0
                return

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        return self.seconds


def run_espnet3(n: int, data: Path, out: Path) -> dict:
    """In the child: one conversion of ``n`` rows into ``out`` on a warmed 2-worker cluster."""
    from espnet3.data.hf_to_lhotse import cutset_from_huggingface
    from espnet3.data.manifest_parts import ManifestParts
    from espnet3.parallel import get_client

    with get_client({"env": "local", "n_workers": 2}) as client:
        cutset_from_huggingface(INFO, 400, str(data), None, client, manifest_dir=out / "warm")
        before = peak_rss_mb()
        t0 = time.perf_counter()
        first = FirstFile(
            out / "run" / "parts", "cuts.", ".json", t0
        )  # a part's record: it is whole
        cuts = cutset_from_huggingface(INFO, n, str(data), None, client, manifest_dir=out / "run")
        seconds = time.perf_counter() - t0
        first_seconds = first.stop()
    parts = ManifestParts(out / "run", json.loads((out / "run/parts/settings.json").read_text()))
    count = -(-n // json.loads((out / "run/parts/settings.json").read_text())["rows_per_chunk"])
    t0 = time.perf_counter()
    parts.combine(count)  # the same concatenation the call ended with, timed alone
    manifest_seconds = time.perf_counter() - t0
    assert cuts.is_lazy
    return {
        "seconds": seconds,
        "first": first_seconds,
        "manifest": manifest_seconds,
        "rss_before_mb": before,
    }


def run_lhotse(n: int, data: Path, out: Path) -> dict:
    """In the child: Lhotse's lazy conversion of ``n`` rows streamed to Shar files."""
    import datasets
    from lhotse import CutSet

    dataset = datasets.load_from_disk(str(data)).select(range(n))
    before = peak_rss_mb()
    t0 = time.perf_counter()
    first: list[float] = []

    def stamp(cut):
        if not first:
            first.append(time.perf_counter() - t0)
        return cut

    cuts = CutSet.from_huggingface_dataset(dataset, audio_key="audio", text_key="text")
    (out / "shar").mkdir(parents=True)
    cuts.map(stamp).to_shar(out / "shar", fields={"recording": "wav"}, shard_size=1000)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "first": first[0], "manifest": None, "rss_before_mb": before}


def child(method: str, n: int, data: Path, out: Path) -> dict:
    if method == "features":
        from benchmarks.scale_features import feature_stage_point

        point = feature_stage_point(n, out)
        return {
            "seconds": point["seconds"],
            "first": point.get("first_part_seconds"),
            "manifest": point.get("manifest_seconds"),
            "peak_rss_mb": point["peak_rss_mb"],
        }
    result = {"espnet3": run_espnet3, "lhotse": run_lhotse}[method](n, data, out)
    return {**result, "peak_rss_mb": peak_rss_mb()}


def measure(method: str, n: int, data: Path, workdir: Path) -> dict:
    out = workdir / f"{method}-{n}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, __file__, "--child", method, str(n), str(data), str(out)],
        capture_output=True,
        text=True,
    )
    shutil.rmtree(out, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"{method} at {n} rows failed:\n{done.stderr[-3000:]}")
    point = {"method": method, "n": n, **json.loads(done.stdout.strip().splitlines()[-1])}
    print(f"[scale] {point}", flush=True)
    return point


def slope(points: list[dict]) -> float:
    """Bytes of parent peak RSS per row: the least-squares slope through (rows, peak RSS)."""
    import numpy as np

    xs = np.array([p["n"] for p in points], dtype=float)
    ys = np.array([p["peak_rss_mb"] for p in points]) * 2**20
    return float(np.polyfit(xs, ys, 1)[0])


def report(points: list[dict], quick: bool) -> str:
    names = {
        "espnet3": "espnet3 cutset_from_huggingface, manifest_dir, 2 workers",
        "lhotse": "lhotse from_huggingface_dataset -> to_shar, 1 process",
        "features": "mini_an4 feature stage, 2 workers",
    }
    rows = []
    for p in points:
        rows.append(
            [
                names[p["method"]],
                f"{p['n']:,}",
                f"{p['seconds']:.1f}",
                f"{p['n'] / p['seconds']:,.0f}",
                "-" if p.get("rss_before_mb") is None else f"{p['rss_before_mb']:.0f}",
                f"{p['peak_rss_mb']:.0f}",
                "-" if p.get("first") is None else f"{p['first']:.2f}",
                "with the conversion" if p.get("manifest") is None else f"{p['manifest']:.2f}",
            ]
        )
    lines = []
    for method in names:
        mine = [p for p in points if p["method"] == method]
        if len(mine) >= 2:
            per_row = slope(mine)
            spread = max(p["peak_rss_mb"] for p in mine) - min(p["peak_rss_mb"] for p in mine)
            verdict = "met" if per_row < TARGET_BYTES_PER_ROW else "MISSED"
            lines.append(
                f"- {names[method]}: {per_row:.1f} bytes per row (fitted), peak RSS spread "
                f"{spread:.0f} MB from {mine[0]['n']:,} to {mine[-1]['n']:,} rows; target < "
                f"{TARGET_BYTES_PER_ROW} bytes per row: {verdict}"
            )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return "\n".join(
        [
            "## Scale: parent memory and throughput, 10^4 to 10^6 rows",
            "",
            f"{'Quick smoke run' if quick else 'Measured'} {when} on {machine()}; one run per "
            "size, each in a fresh process (peak RSS is that process's; Dask workers are "
            "others). Rows are 0.1-s 16 kHz WAVs in a `save_to_disk` dataset of "
            f"{max(p['n'] for p in points):,} rows (made once per work directory, not timed), "
            "of which each run converts the first n. espnet3's workers write the manifest parts "
            "and the parent concatenates them (the manifest column times that concatenation "
            "alone; the audio stays in the dataset rows). Lhotse's conversion runs in one "
            "process and writes its audio too (Shar), so its rows/s is not the same work. "
            "Time to first result: "
            "a part's record on disk (espnet3), the first cut streamed out (Lhotse). Peak RSS "
            "is `VmHWM` (resident pages, file-backed ones included): the RSS before the call "
            "holds the pages of the memory-mapped dataset that opening it touched, and the "
            "imports (the feature stage's parent opens no dataset), and a growth smaller than "
            "the pages a run touches after it stays hidden under it.",
            "",
            table(
                [
                    "method",
                    "rows",
                    "seconds",
                    "rows/s",
                    "RSS before the call (MB)",
                    "peak RSS (MB)",
                    "first result (s)",
                    "manifest write (s)",
                ],
                rows,
            ),
            "",
            "Parent memory per row (least-squares slope of peak RSS over rows):",
            *lines,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2000 and 10^4 rows; print only")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/espnet3-bench-scale"))
    parser.add_argument("--only", choices=["espnet3", "lhotse", "features"], action="append")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        method, n, data, out = args.child
        print(json.dumps(child(method, int(n), Path(data), Path(out))))
        return 0
    sizes = QUICK_SIZES if args.quick else SIZES
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = make_dataset(max(sizes), args.workdir / f"dataset-{max(sizes)}")
    methods = args.only or ["espnet3", "lhotse", "features"]
    points = [measure(method, n, data, args.workdir) for method in methods for n in sizes]
    text = report(points, args.quick)
    print(text)
    if not args.quick and not args.only:
        write_section("scale", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
