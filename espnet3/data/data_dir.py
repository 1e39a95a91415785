"""A prepared data directory as Lhotse cuts per split: described, plotted, exported to Kaldi.

The splits of ``DATA_DIR`` are found in this order: Lhotse cut manifests
``cuts_<split>.jsonl.gz`` in ``DATA_DIR`` or a folder below it (``fbank/`` for mini_an4),
else ``<split>.tsv``/``<split>.jsonl`` manifests (:mod:`espnet3.data.manifests`; their audio
headers give durations), else Kaldi data directories ``<split>/wav.scp``.

Example:
    >>> import tempfile, pathlib, numpy as np, soundfile as sf
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> sf.write(d / "a.wav", np.zeros(8000, np.int16), 16000)
    >>> _ = (d / "test.tsv").write_text("spk1-a\\ta.wav\\tHELLO WORLD\\tspk1\\n")
    >>> summary = summarize(utterances(find_splits(d)["test"]))
    >>> summary["utterances"], summary["hours"], summary["speakers"], summary["vocabulary"]
    (1, 0.0001, 1, 2)
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, ContractError, SetupError
from espnet3.utils.atomic import atomic_write_text

#: Splits listed first, in this order; others follow by name.
USUAL_SPLITS = ("train", "valid", "dev", "test")


def find_splits(data_dir: str | os.PathLike) -> dict[str, Path]:
    """``{split: path}`` of ``data_dir``: cut manifests, else manifests, else Kaldi directories
    (see the module docstring), the usual splits first."""
    root = Path(data_dir)
    if not root.is_dir():
        raise ConfigError(f"data directory {str(root)!r} does not exist: give a prepared one")
    found: dict[str, Path] = {}
    for path in sorted([*root.glob("cuts_*.jsonl.gz"), *root.glob("*/cuts_*.jsonl.gz")]):
        found.setdefault(path.name.removeprefix("cuts_").removesuffix(".jsonl.gz"), path)
    if not found:
        found = {p.stem: p for p in sorted([*root.glob("*.tsv"), *root.glob("*.jsonl")])}
    if not found:
        found = {p.parent.name: p.parent for p in sorted(root.glob("*/wav.scp"))}
    if not found:
        raise ConfigError(
            f"{str(root)!r} holds no split: expected cuts_<split>.jsonl.gz (in it or a folder "
            "below), <split>.tsv / <split>.jsonl manifests, or <split>/wav.scp Kaldi directories"
        )
    order = {name: i for i, name in enumerate(USUAL_SPLITS)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def load_splits(data_dir: str | os.PathLike) -> dict[str, Any]:
    """``{split: CutSet}`` of ``data_dir`` (Lhotse cuts built from manifests where needed)."""
    from lhotse import CutSet

    splits = {}
    for split, path in find_splits(data_dir).items():
        with _damaged_names(path):
            splits[split] = CutSet.from_file(path) if _is_cuts(path) else _cuts_of_manifest(path)
    return splits


def utterances(path: Path) -> list[tuple[float, str | None, str]]:
    """``(duration, speaker, text)`` of every utterance of one split, read without Lhotse
    (cut lines as JSON; manifests through their audio headers), so describing is quick."""
    if _is_cuts(path):
        with _damaged_names(path), gzip.open(path, "rt", encoding="utf-8") as f:
            cuts = [json.loads(line) for line in f if line.strip()]
        return [
            (
                cut["duration"],
                (cut.get("supervisions") or [{}])[0].get("speaker"),
                " ".join(s.get("text") or "" for s in cut.get("supervisions") or []),
            )
            for cut in cuts
        ]
    import soundfile

    from espnet3.data.manifests import read_manifest

    return [
        (soundfile.info(row["audio"]).duration, row.get("speaker"), row["text"])
        for row in read_manifest(path)
    ]


def summarize(rows: list[tuple[float, str | None, str]]) -> dict[str, Any]:
    """Utterances, total hours, mean seconds, speakers and vocabulary size (distinct words)
    of :func:`utterances`' rows."""
    durations = [duration for duration, _, _ in rows]
    return {
        "utterances": len(rows),
        "hours": round(sum(durations) / 3600, 4),
        "mean_seconds": round(sum(durations) / len(durations), 2) if durations else 0.0,
        "speakers": len({speaker for _, speaker, _ in rows if speaker}),
        "vocabulary": len({word for _, _, text in rows for word in text.split()}),
    }


def describe(data_dir: str | os.PathLike) -> str:
    """A table of :func:`summarize` per split.

    Example (mini_an4)::

        split  utterances  hours   mean s  speakers  vocabulary
        train  4           0.0019  1.68    3         11
    """
    rows = [("split", "utterances", "hours", "mean s", "speakers", "vocabulary")]
    for split, path in find_splits(data_dir).items():
        s = summarize(utterances(path))
        rows.append(
            (split, s["utterances"], s["hours"], s["mean_seconds"], s["speakers"], s["vocabulary"])
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _is_cuts(path: Path) -> bool:
    return path.name.endswith(".jsonl.gz")


def plot_durations(splits: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write a histogram of utterance durations per split (``{split: durations}``) as a PNG
    (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SetupError(
            "--plot needs matplotlib: pip install matplotlib (or espnet3[plot])"
        ) from None
    figure, axes = plt.subplots(figsize=(7, 4))
    for split, durations in splits.items():
        axes.hist(durations, bins=30, alpha=0.6, label=split)
    axes.set_xlabel("duration (s)")
    axes.set_ylabel("utterances")
    axes.legend()
    path = Path(path)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png", delete=False) as tmp:
        figure.savefig(tmp.name, dpi=100)
    plt.close(figure)
    os.replace(tmp.name, path)
    return path


def export_kaldi(data_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Write one Kaldi data directory per split under ``out_dir`` with Lhotse's Kaldi export:
    ``wav.scp``, ``segments``, ``text``, ``utt2spk``, ``utt2dur``, ``reco2dur``, plus
    ``spk2utt``, sorted as Kaldi's tools and ESPnet's ``asr.sh`` expect. Each split directory
    is written aside and renamed into place; an existing one is replaced whole.

    Every utterance needs a speaker, and (Kaldi's rule) its id must start with it.
    """
    from lhotse.kaldi import export_to_kaldi

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, cuts in load_splits(data_dir).items():
        _check_kaldi_ids(split, cuts)
        recordings, supervisions, _ = cuts.decompose()
        staging = Path(tempfile.mkdtemp(dir=out, prefix=f".{split}."))
        try:
            export_to_kaldi(recordings, supervisions, staging)
            speakers: dict[str, list[str]] = {}
            for sup in sorted(supervisions, key=lambda s: s.id):
                speakers.setdefault(sup.speaker, []).append(sup.id)
            atomic_write_text(
                staging / "spk2utt",
                "".join(f"{spk} {' '.join(utts)}\n" for spk, utts in sorted(speakers.items())),
            )
            target = out / split
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        written.append(out / split)
    return written


def _check_kaldi_ids(split: str, cuts: Any) -> None:
    for cut in cuts:
        for sup in cut.supervisions:
            if not sup.speaker:
                raise ConfigError(
                    f"utterance {sup.id} of split {split} has no speaker, which utt2spk needs: "
                    "record speakers in the data (manifest column 4, utt2spk, or supervisions)"
                )
            if not sup.id.startswith(sup.speaker):
                raise ConfigError(
                    f"utterance id {sup.id} of split {split} does not start with its speaker "
                    f"{sup.speaker!r}, so Kaldi's sorted files disagree: name utterances "
                    "<speaker>-<rest>"
                )


@contextlib.contextmanager
def _damaged_names(where: str | os.PathLike) -> Iterator[None]:
    """A cut file cut short or garbled (gzip's ``EOFError``, a bad JSON line) as one error
    that names it."""
    try:
        yield
    except (
        EOFError,
        gzip.BadGzipFile,
        zlib.error,
        json.JSONDecodeError,
        UnicodeDecodeError,
    ) as err:
        raise ContractError(
            f"{str(where)!r} is damaged ({type(err).__name__}: {err}): it was cut short or "
            "overwritten; run the stage that writes it again (it rebuilds the file)"
        ) from None


def _cuts_of_manifest(path: Path) -> Any:
    """The cuts of a TSV/JSONL manifest or Kaldi directory, durations from the audio headers."""
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    from espnet3.data.manifests import read_manifest

    recordings, supervisions = [], []
    for row in read_manifest(path):
        recording = Recording.from_file(row["audio"], recording_id=row["utt_id"])
        recordings.append(recording)
        supervisions.append(
            SupervisionSegment(
                id=row["utt_id"],
                recording_id=row["utt_id"],
                start=0.0,
                duration=recording.duration,
                text=row["text"],
                speaker=row.get("speaker"),
            )
        )
    return CutSet.from_manifests(
        recordings=RecordingSet.from_recordings(recordings),
        supervisions=SupervisionSet.from_segments(supervisions),
    )
