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
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from espnet3.errors import ConfigError, ContractError, SetupError
from espnet3.utils.atomic import atomic_path, atomic_write_text, temp_name

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
    """``{split: CutSet}`` of ``data_dir``: cut manifests lazily (read as they are iterated),
    Lhotse cuts built from manifests where needed."""
    from lhotse import CutSet

    splits = {}
    for split, path in find_splits(data_dir).items():
        with _damaged_names(path):
            splits[split] = (
                CutSet.from_jsonl_lazy(path) if _is_cuts(path) else _cuts_of_manifest(path)
            )
    return splits


def utterances(path: Path) -> Iterator[tuple[float, str | None, str]]:
    """``(duration, speaker, text)`` of every utterance of one split, streamed and read
    without Lhotse (cut lines as JSON; manifests through their audio headers), so describing
    is quick and holds one line at a time."""
    if _is_cuts(path):
        with _damaged_names(path), gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    cut = json.loads(line)
                    supervisions = cut.get("supervisions") or []
                    yield (
                        cut["duration"],
                        (supervisions or [{}])[0].get("speaker"),
                        " ".join(s.get("text") or "" for s in supervisions),
                    )
        return
    import soundfile

    from espnet3.data.manifests import read_manifest

    for row in read_manifest(path):
        yield soundfile.info(row["audio"]).duration, row.get("speaker"), row["text"]


def summarize(
    rows: Iterable[tuple[float, str | None, str]], durations: list[float] | None = None
) -> dict[str, Any]:
    """Utterances, total hours, mean seconds, speakers and vocabulary size (distinct words)
    of :func:`utterances`' rows, read once; each duration is also appended to ``durations``
    when given (for a histogram). Only distinct speakers and words are held."""
    count, seconds = 0, 0.0
    speakers: set[str] = set()
    words: set[str] = set()
    for duration, speaker, text in rows:
        count += 1
        seconds += duration
        if speaker:
            speakers.add(speaker)
        words.update(text.split())
        if durations is not None:
            durations.append(duration)
    return {
        "utterances": count,
        "hours": round(seconds / 3600, 4),
        "mean_seconds": round(seconds / count, 2) if count else 0.0,
        "speakers": len(speakers),
        "vocabulary": len(words),
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


def plot_durations(
    splits: Mapping[str, Any], path: str | os.PathLike, title: str = "utterance durations"
) -> Path:
    """Write a histogram of utterance durations per split (``{split: durations}``) as a PNG
    (needs matplotlib: the ``plot`` extra), written atomically with the umask's mode.

    All splits share the same bin edges, so their bars compare; each split is drawn as the
    share of its own utterances per bin (a step outline), so a 10-utterance test split shows
    beside a 10,000-utterance train split. The figure is titled ``title`` (also the PNG's
    ``Title``).

    Example:
        >>> import tempfile, pathlib
        >>> png = pathlib.Path(tempfile.mkdtemp()) / "d.png"
        >>> plot_durations({"train": [1.0, 2.5, 3.0], "test": [2.0]}, png, "data").read_bytes()[:4]
        b'\\x89PNG'
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        raise SetupError(
            "--plot needs matplotlib: pip install 'espnet3[plot]' (or pip install matplotlib)"
        ) from None
    everything = [d for durations in splits.values() for d in durations]
    edges = np.histogram_bin_edges(everything or [0.0], bins=30)
    figure, axes = plt.subplots(figsize=(7, 4))
    for split, durations in splits.items():
        weights = np.full(len(durations), 1 / len(durations)) if durations else None
        axes.hist(
            durations,
            bins=edges,
            weights=weights,
            histtype="step",
            linewidth=1.5,
            label=f"{split} ({len(durations)})",
        )
    axes.set_xlabel("duration (s)")
    axes.set_ylabel("share of the split's utterances")
    axes.set_title(title)
    axes.legend()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100, format="png", metadata={"Title": title})
    plt.close(figure)
    return path


def export_kaldi(data_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Write one Kaldi data directory per split under ``out_dir`` with Lhotse's Kaldi export:
    ``wav.scp``, ``text``, ``utt2spk``, ``utt2dur``, plus ``spk2utt``, sorted as Kaldi's tools
    and ESPnet's ``asr.sh`` expect. Each split directory is written aside and renamed into
    place; an existing one is replaced whole.

    ``segments`` and ``reco2dur`` (which Kaldi keeps together: both are keyed by recording)
    are written only when utterances are parts of longer recordings. When every utterance is
    its whole recording, ``wav.scp`` is keyed by utterance id and there is no ``segments``,
    so ``asr.sh`` copies the audio as it is instead of cutting segments out of it.

    Every utterance needs a speaker, and (Kaldi's rule) its id must start with it.

    The cuts are streamed (read twice, never held): the recordings and supervisions go to
    lazy manifests beside the output, which Lhotse's export reads; sorting the Kaldi files
    holds their keys and values (about 8 bytes per utterance are also kept to check that
    recordings are not shared).

    Example:
        >>> import tempfile, pathlib, numpy as np, soundfile as sf
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> sf.write(d / "a.wav", np.zeros(8000, np.int16), 16000)
        >>> _ = (d / "test.tsv").write_text("spk1-a\\ta.wav\\tHELLO\\tspk1\\n")
        >>> [split.name for split in export_kaldi(d, d / "kaldi")]
        ['test']
        >>> sorted(p.name for p in (d / "kaldi" / "test").iterdir())
        ['spk2utt', 'text', 'utt2dur', 'utt2spk', 'wav.scp']
    """
    from lhotse.kaldi import export_to_kaldi

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"export target {str(out)!r} is a file, not a directory: give a directory as OUT "
            "(a new one, or one whose split directories may be replaced)"
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, cuts in load_splits(data_dir).items():
        whole = _check_cuts(split, cuts)
        # os.mkdir, not mkdtemp: the directory gets the umask's mode, as the files in it do.
        staging = Path(temp_name(out / split))
        os.mkdir(staging)
        try:
            recordings, supervisions = _decomposed(cuts, whole, staging / "manifests")
            export_to_kaldi(recordings, supervisions, staging)
            shutil.rmtree(staging / "manifests")
            if whole:
                (staging / "segments").unlink()
                (staging / "reco2dur").unlink()
            _write_spk2utt(staging)
            target = out / split
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        written.append(out / split)
    return written


def _check_cuts(split: str, cuts: Any) -> bool:
    """Check every utterance's speaker and id (streaming the cuts); whether every utterance is
    all of its single-channel recording (one per recording, from 0 to within a sample of its
    end), so ``wav.scp`` can be keyed by utterance."""
    from espnet3.data.manifest_parts import duplicate_digest, id_digests

    whole, recordings = True, []
    for cut in _data_cuts(cuts):
        for sup in cut.supervisions:
            _check_kaldi_id(split, sup)
        if whole:
            recording, sups = cut.recording, cut.supervisions
            sample = 1 / recording.sampling_rate
            whole = (
                recording.num_channels == 1
                and len(sups) == 1
                and cut.start + sups[0].start < sample
                and abs(sups[0].duration - recording.duration) < sample
            )
            recordings.append(id_digests([recording.id]))
    return whole and duplicate_digest(recordings) is None


def _decomposed(cuts: Any, whole: bool, directory: Path) -> tuple[Any, Any]:
    """The cuts' recordings and supervisions written to lazy manifests in ``directory`` (each
    recording once, consecutive repeats skipped; renamed to their utterance when ``whole``)."""
    from lhotse import RecordingSet, SupervisionSet
    from lhotse.utils import fastcopy

    directory.mkdir()
    paths = directory / "recordings.jsonl.gz", directory / "supervisions.jsonl.gz"
    last = None
    with RecordingSet.open_writer(paths[0]) as recs, SupervisionSet.open_writer(paths[1]) as sups:
        for cut in _data_cuts(cuts):
            for sup in cut.supervisions:
                sup = sup.with_offset(cut.start)  # from the cut's start to the recording's
                sups.write(fastcopy(sup, recording_id=sup.id) if whole else sup)
            if whole:
                recs.write(fastcopy(cut.recording, id=cut.supervisions[0].id))
            elif cut.recording_id != last:
                recs.write(cut.recording)
            last = cut.recording_id
    return RecordingSet.from_jsonl_lazy(paths[0]), SupervisionSet.from_jsonl_lazy(paths[1])


def _data_cuts(cuts: Any) -> Iterator[Any]:
    """The cuts that hold a recording: each cut, or each track of a mixed one."""
    for cut in cuts:
        if hasattr(cut, "tracks"):
            yield from (track.cut for track in cut.tracks if hasattr(track.cut, "recording"))
        else:
            yield cut


def _write_spk2utt(directory: Path) -> None:
    """``spk2utt`` from the sorted ``utt2spk`` Lhotse wrote."""
    speakers: dict[str, list[str]] = {}
    with open(directory / "utt2spk", encoding="utf-8") as f:
        for line in f:
            utterance, speaker = line.split()
            speakers.setdefault(speaker, []).append(utterance)
    atomic_write_text(
        directory / "spk2utt",
        "".join(f"{spk} {' '.join(utts)}\n" for spk, utts in sorted(speakers.items())),
    )


def _check_kaldi_id(split: str, sup: Any) -> None:
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
