"""The feature stage: log-mel filterbanks of every utterance, cleaned, as Lhotse CutSets.

The utterances of a split are grouped in shards of consecutive manifest lines, about
``shard_seconds`` of audio each (or ``shard_size`` utterances); each shard is one item of
:class:`FbankShardRunner` on the configured ``parallel:`` backend. The worker that computes a
shard writes all of its files, each under a temporary name renamed into place::

    OUT_DIR/SPLIT/NNNNNNNN.h5               the features, one dataset per utterance (named
                                            after the index of the shard's first utterance)
    OUT_DIR/SPLIT/shards/NNNNN.jsonl.gz     the shard's cuts: one gzip member
    OUT_DIR/SPLIT/shards/NNNNN.counts.json  written last: digests of the shard's utterance ids
                                            and of its cuts' ids, the counts (utterances,
                                            kept, frames) and the ids cleaning dropped, by
                                            reason (empty text, too short)

and sends back only the counts. This process never holds per-utterance data: it streams the
manifest once to cut it into shards (each one's byte offset and a digest of its ids), and
writes ``OUT_DIR/cuts_SPLIT.jsonl.gz`` by joining the parts' bytes in shard order (a gzip
file of several members is one gzip file to Python and Lhotse), so its memory does not grow
with the corpus. ``OUT_DIR/summary.json`` records the counts, ``OUT_DIR/settings.json`` the
settings.

A re-run (after Ctrl-C or a crash) keeps a shard whose counts file names the manifest's
utterance ids and whose part reads whole, holds the cuts counted (same ids, same frames) in
this layout, with their features in its HDF5 file; any other shard (missing, half-written,
truncated, of other utterances, of an earlier layout) is computed again. Temporary files a
killed run left are removed first.

A file is renamed into place when complete, so a killed run never leaves half of one, but the
features, parts and counts are not flushed to disk by themselves (that doubled the stage's
time): after a power failure of the machine, delete ``OUT_DIR`` and run the stage again.

Paths inside the cuts are absolute, so plain Lhotse loads them lazily from any working
directory (``CutSet.from_file``); each supervision carries the utterance's speaker. When the
data directory moves, the next run moves the parts' paths along; :func:`load_cuts` moves them
as it reads.

Example:
    >>> summary = compute_features(data_dir="data", out_dir="data/fbank")   # doctest: +SKIP
    >>> summary["splits"]["test"]["kept"]
    2
    >>> cuts = load_cuts("data", "test")                                   # doctest: +SKIP
    >>> cuts[0].load_features().shape
    (298, 80)
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import itertools
import json
import os
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from espnet3.data.manifest_parts import concatenate, write_jsonl_gz
from espnet3.errors import Espnet3Error
from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.provider import EnvironmentProvider
from espnet3.utils.atomic import atomic_open, atomic_path, atomic_write_json, remove_stale_temps

from .dataset import Dataset, read_item
from .manifest import (
    SPLITS,
    ManifestEntry,
    manifest_path,
    read_entries,
    sample_entries,
    scan_manifest,
)

#: Why cleaning drops an utterance.
DROP_REASONS = ("empty_text", "too_short")


class FbankProvider(EnvironmentProvider):
    """Environment ``{dataset, model, out_dir, min_duration}``; ``model`` is a Lhotse Fbank.

    Config keys: ``split``, ``data_dir``, ``num_mel_bins``.
    """

    def build_env(self) -> dict[str, Any]:
        return {
            "dataset": Dataset(self.config.split, self.config.data_dir),
            "model": _fbank(self.config.num_mel_bins),
            **self.params,
        }


class FbankRunner(BaseRunner):
    """Computes, stores and describes the features of one utterance, or of a batch of them:
    what ``espnet3 run recipes/mini_an4/asr`` applies (the feature stage runs whole shards
    with :class:`FbankShardRunner`)."""

    @staticmethod
    def forward(
        idx: int | list[int],
        *,
        dataset: Dataset,
        model: Any,
        out_dir: str,
        min_duration: float,
        **params: Any,
    ) -> Any:
        """A cut dict for utterance ``idx`` (or one per index of a batch), or
        ``{"utt_id", "dropped": reason}`` for one cleaning drops.

        The features of the call go into one HDF5 file, ``OUT_DIR/SPLIT/NNNNNNNN.h5`` (named
        after the first index), one dataset per utterance: one file per shard, not per
        utterance (which on a shared filesystem costs a create and a rename each).
        """
        indices = idx if isinstance(idx, list) else [idx]
        storage = Path(out_dir) / dataset.split / f"{indices[0]:08d}.h5"
        records, feats = [], {}
        for index in indices:
            entry = dataset.entries[index]
            record, matrix = _utterance(dataset.data_dir, entry, model, min_duration, storage)
            records.append(record)
            if matrix is not None:
                feats[entry.utt_id] = matrix
        if feats:
            _write_hdf5(storage, feats)
        return records if isinstance(idx, list) else records[0]


class ManifestShards:
    """The shards of a split's manifest as the stage's workers read them: shard ``i`` is the
    ``spans[i] = (byte offset, count)`` lines from that offset, read on access, so a worker
    holds one shard's entries, never the manifest."""

    def __init__(self, split: str, data_dir: str, size: int, spans: list[tuple[int, int]]):
        self.split, self.data_dir, self.size, self.spans = split, Path(data_dir), size, spans

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, i: int) -> list[ManifestEntry]:
        offset, count = self.spans[i]
        return read_entries(self.data_dir, self.split, offset, count, first=i * self.size)


class FbankShardProvider(EnvironmentProvider):
    """Environment ``{dataset, model, out_dir, min_duration}`` of :class:`FbankShardRunner`;
    ``dataset`` is the split's :class:`ManifestShards`.

    Config keys: ``split``, ``data_dir``, ``num_mel_bins``; params ``out_dir``,
    ``min_duration``, ``size`` (utterances per shard) and ``spans`` (see
    :class:`ManifestShards`).
    """

    def build_env(self) -> dict[str, Any]:
        size, spans = self.params["size"], self.params["spans"]
        shards = ManifestShards(self.config.split, self.config.data_dir, size, spans)
        env = {k: v for k, v in self.params.items() if k not in ("size", "spans")}
        return {"dataset": shards, "model": _fbank(self.config.num_mel_bins), **env}


class FbankShardRunner(BaseRunner):
    """Computes one whole shard of the feature stage and writes its files (see the module
    docstring); what it returns is small whatever the shard's size."""

    @staticmethod
    def forward(
        idx: int,
        *,
        dataset: ManifestShards,
        model: Any,
        out_dir: str,
        min_duration: float,
        **params: Any,
    ) -> dict[str, Any]:
        """Shard ``idx``'s features, part and counts file written; returns the shard's counts
        (:func:`_counts`) and ``ids``, the digest of the utterance ids it read."""
        entries = dataset[idx]
        storage, part, counts_path = _shard_files(Path(out_dir), dataset.split, dataset.size, idx)
        cuts, feats = [], {}
        dropped: dict[str, list[str]] = {reason: [] for reason in DROP_REASONS}
        for entry in entries:
            record, matrix = _utterance(dataset.data_dir, entry, model, min_duration, storage)
            if matrix is None:
                dropped[record["dropped"]].append(entry.utt_id)
            else:
                cuts.append(record)
                feats[entry.utt_id] = matrix
        if feats:
            _write_hdf5(storage, feats)
        write_jsonl_gz(part, cuts)
        counts = {
            "ids": _digest(entry.utt_id for entry in entries),
            "cuts": _digest(cut["id"] for cut in cuts),
            "utterances": len(entries),
            "kept": len(cuts),
            "frames": sum(cut["features"]["num_frames"] for cut in cuts),
            "dropped": dropped,
        }
        with atomic_open(counts_path, durable=False) as f:  # last: the shard is finished
            json.dump(counts, f, ensure_ascii=False)
        return {**_counts(counts), "ids": counts["ids"]}


def _fbank(num_mel_bins: int) -> Any:
    from lhotse import Fbank, FbankConfig

    return Fbank(FbankConfig(num_mel_bins=num_mel_bins))


def _utterance(
    data_dir: Path, entry: ManifestEntry, model: Any, min_duration: float, storage: Path
) -> tuple[dict[str, Any], np.ndarray | None]:
    """The cut dict of one utterance and its features, or ``({"utt_id", "dropped": reason},
    None)`` when cleaning drops it."""
    item = read_item(data_dir, entry)
    rate = model.config.sampling_rate
    duration = len(item["speech"]) / rate
    if not item["text"].strip():
        return {"utt_id": entry.utt_id, "dropped": "empty_text"}, None
    if duration < min_duration:
        return {"utt_id": entry.utt_id, "dropped": "too_short"}, None
    feats = model.extract(item["speech"], rate).astype(np.float32)
    return _cut_dict(item, data_dir / entry.wav, duration, rate, feats, storage, model), feats


def _shard_files(out_dir: Path, split: str, size: int, i: int) -> tuple[Path, Path, Path]:
    """Where shard ``i`` keeps its features, its part and its counts."""
    shard_dir = out_dir / split / "shards"
    return (
        out_dir / split / f"{i * size:08d}.h5",
        shard_dir / f"{i:05d}.jsonl.gz",
        shard_dir / f"{i:05d}.counts.json",
    )


class _IdDigest:
    """A digest of a sequence of utterance ids (their order counts), one id at a time."""

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=16)

    def add(self, utt_id: str) -> None:
        self._hash.update(utt_id.encode() + b"\n")  # ids hold no newline (see the manifest)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _digest(ids: Iterable[str]) -> str:
    """The :class:`_IdDigest` of ``ids``."""
    digest = _IdDigest()
    for utt_id in ids:
        digest.add(utt_id)
    return digest.hexdigest()


def _counts(counts: dict[str, Any]) -> dict[str, Any]:
    """What the summary adds up of a shard's counts file."""
    return {
        "utterances": counts["utterances"],
        "kept": counts["kept"],
        "dropped": {reason: len(counts["dropped"][reason]) for reason in DROP_REASONS},
        "frames": counts["frames"],
    }


def _write_hdf5(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """One HDF5 file of ``{key: array}``, written under a temporary name and renamed into
    place (not flushed to disk by itself: see the module docstring).

    h5py's low-level calls, by file name: through a Python file object (BytesIO) or h5py's
    high-level ``create_dataset`` the write cost three times as much. No modification times are
    stored, so equal features give equal files.
    """
    import h5py

    create = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    create.set_obj_track_times(False)
    link = h5py.h5p.create(h5py.h5p.LINK_CREATE)
    link.set_char_encoding(h5py.h5t.CSET_UTF8)
    with atomic_path(path, durable=False) as tmp, h5py.File(tmp, "w", track_order=False) as f:
        for key, value in arrays.items():
            value = np.ascontiguousarray(value)
            space = h5py.h5s.create_simple(value.shape)
            dtype = h5py.h5t.py_create(value.dtype)
            dataset = h5py.h5d.create(f.id, key.encode(), dtype, space, dcpl=create, lcpl=link)
            dataset.write(h5py.h5s.ALL, h5py.h5s.ALL, value)


def compute_features(
    *,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    splits: Iterable[str] = SPLITS,
    num_mel_bins: int = 80,
    min_duration: float = 0.1,
    shard_seconds: float = 600.0,
    shard_size: int | None = None,
) -> dict[str, Any]:
    """Compute the features of ``splits``; return (and write) the summary.

    A shard (one HDF5 file, one part, one runner item) holds about ``shard_seconds`` of audio,
    the utterances per shard following from the mean duration of up to
    :data:`DURATION_SAMPLE` utterances spread over the split (so a shared file system sees a
    few large files, whatever the corpus); ``shard_size`` fixes the count instead. Finished
    shards are kept; features computed with other settings are an error rather than silently
    mixed.
    """
    data_dir, out_dir = Path(data_dir).resolve(), Path(out_dir).resolve()
    if not out_dir.is_relative_to(data_dir):
        raise Espnet3Error(f"features out_dir {out_dir} must lie inside data_dir {data_dir}")
    settings = {
        "num_mel_bins": num_mel_bins,
        "min_duration": min_duration,
        "shard_seconds": None if shard_size else shard_seconds,
        "shard_size": shard_size,
    }
    _check_settings(out_dir / "settings.json", settings)
    summary = {"settings": settings, "data_dir": str(data_dir), "splits": {}}
    before = _read_json(out_dir / "summary.json")
    before = before if isinstance(before, dict) else {}
    moved_from = before.get("data_dir") if before.get("data_dir") != str(data_dir) else None
    for split in splits:
        summary["splits"][split] = _compute_split(
            data_dir,
            out_dir,
            split,
            settings,
            (before.get("splits", {}).get(split) or {}).get("cuts_bytes"),
            moved_from,
        )
    if _read_json(out_dir / "summary.json") != summary:
        atomic_write_json(out_dir / "summary.json", summary)
    return summary


def load_cuts(data_dir: str | os.PathLike, split: str, features_dir: str = "fbank") -> Any:
    """The CutSet of ``split`` (lazy): ``DATA_DIR/FEATURES_DIR/cuts_SPLIT.jsonl.gz``, its
    absolute paths moved along when the data directory was moved or mounted elsewhere since.

    ``features_dir`` is the features ``out_dir`` relative to ``data_dir``.
    """
    from lhotse import CutSet

    path = Path(data_dir) / features_dir / f"cuts_{split}.jsonl.gz"
    summary = _read_json(path.parent / "summary.json")
    written_in = summary.get("data_dir") if isinstance(summary, dict) else None
    here = str(Path(data_dir).resolve())
    cuts = CutSet.from_file(path)
    if written_in is None or written_in == here:
        return cuts
    return cuts.map(functools.partial(_moved_cut, written_in, here))


class _Shard(NamedTuple):
    """Where a shard starts in the manifest, how many lines it has, the digest of its ids."""

    offset: int
    count: int
    ids: str


def _compute_split(
    data_dir: Path,
    out_dir: Path,
    split: str,
    settings: dict,
    cuts_bytes: int | None,
    moved_from: str | None,
) -> dict[str, Any]:
    """Compute the shards of ``split`` not done yet; write its cuts when any was, when the
    cuts file is not the one the last run wrote (``cuts_bytes``: its size then), or when the
    data directory was moved since (``moved_from``: where it was; the finished shards' paths
    are moved along)."""
    size = settings["shard_size"] or _utterances_per_shard(
        data_dir, split, settings["shard_seconds"]
    )
    shards = _plan_shards(data_dir, split, size)
    shard_dir = out_dir / split / "shards"
    for folder in (out_dir, out_dir / split, shard_dir):  # what a killed run was writing
        remove_stale_temps(folder)
    for old in shard_dir.glob("*.jsonl"):  # an earlier layout's records: computed again
        old.unlink()
    counts = [
        _finished(out_dir, split, size, i, shard.ids, moved_from, str(data_dir))
        for i, shard in enumerate(shards)
    ]
    todo = [i for i, done in enumerate(counts) if done is None]
    if todo:
        provider = FbankShardProvider(
            {"split": split, "data_dir": str(data_dir), "num_mel_bins": settings["num_mel_bins"]},
            {
                "out_dir": str(out_dir),
                "min_duration": settings["min_duration"],
                "size": size,
                "spans": [(shard.offset, shard.count) for shard in shards],
            },
        )
        for i, result in FbankShardRunner(provider).iter(todo):
            if result.pop("ids") != shards[i].ids:
                raise Espnet3Error(
                    f"{manifest_path(data_dir, split)} changed while its features were "
                    "computed: run the stage again"
                )
            counts[i] = result
    cuts_path = out_dir / f"cuts_{split}.jsonl.gz"
    stale = not cuts_path.is_file() or cuts_path.stat().st_size != cuts_bytes
    if todo or stale or moved_from is not None:
        parts = (_shard_files(out_dir, split, size, i)[1] for i in range(len(shards)))
        concatenate(cuts_path, parts)
    return {
        "cuts_bytes": cuts_path.stat().st_size,
        "utterances": sum(c["utterances"] for c in counts),
        "kept": sum(c["kept"] for c in counts),
        "dropped": {r: sum(c["dropped"][r] for c in counts) for r in DROP_REASONS},
        "frames": sum(c["frames"] for c in counts),
        "feature_dim": settings["num_mel_bins"],
    }


#: Utterances whose durations size the shards of a split (spread over it; headers only).
DURATION_SAMPLE = 100


def _utterances_per_shard(data_dir: Path, split: str, shard_seconds: float) -> int:
    """Utterances per shard for about ``shard_seconds`` of audio, from the mean duration of a
    sample of the manifest's lines (only those are read): the same for the same manifest, so
    reruns find the same shards."""
    import soundfile

    sample = sample_entries(data_dir, split, DURATION_SAMPLE)
    if not sample:
        return 1
    mean = sum(soundfile.info(data_dir / e.wav).duration for e in sample) / len(sample)
    return max(1, round(shard_seconds / max(mean, 1e-3)))


def _plan_shards(data_dir: Path, split: str, size: int) -> list[_Shard]:
    """The shards of ``split``: ``size`` consecutive manifest lines each (the last may be
    shorter), found by streaming the manifest once."""
    shards = []
    lines = scan_manifest(data_dir, split)
    for offset, entry in lines:
        ids = [entry.utt_id, *(more.utt_id for _, more in itertools.islice(lines, size - 1))]
        shards.append(_Shard(offset, len(ids), _digest(ids)))
    return shards


def _finished(
    out_dir: Path,
    split: str,
    size: int,
    i: int,
    ids: str,
    moved_from: str | None,
    here: str,
) -> dict[str, Any] | None:
    """The counts (:func:`_counts`) of shard ``i`` when it is finished, for the utterances of
    digest ``ids``, in this layout, its part whole and its features intact; else ``None``, and
    it is computed again. Written before the data directory moved from ``moved_from`` to
    ``here``, its part's paths are moved along first."""
    features, part, counts_path = _shard_files(out_dir, split, size, i)
    counts = _read_json(counts_path)
    if not isinstance(counts, dict) or counts.get("ids") != ids:
        return None
    if moved_from is not None:
        _move_part(part, moved_from, here)
    return _counts(counts) if _part_matches(part, counts, features) else None


#: What reading a damaged part (truncated, garbled gzip or JSON, missing fields) raises.
_DAMAGED_PART = (OSError, EOFError, ValueError, KeyError, TypeError, zlib.error)


def _part_matches(part: Path, counts: dict[str, Any], features: Path) -> bool:
    """Whether ``part`` reads whole and holds what ``counts`` says (the same cut ids in the
    same order, as many, as many frames, and a consistent count of dropped ones), each cut's
    features in ``features`` with its frame count (a truncated HDF5 file does not open: it
    records its own end)."""
    try:
        digest, kept, frames = _IdDigest(), 0, 0
        for utt_id, num_frames in _stored_cuts(part, features):
            digest.add(utt_id)
            kept, frames = kept + 1, frames + num_frames
        dropped = sum(len(counts["dropped"][reason]) for reason in DROP_REASONS)
        return (
            digest.hexdigest() == counts["cuts"]
            and kept == counts["kept"] == counts["utterances"] - dropped
            and frames == counts["frames"]
        )
    except _DAMAGED_PART:
        return False


def _stored_cuts(part: Path, features: Path) -> Iterator[tuple[str, int]]:
    """``(cut id, frames)`` of each cut of ``part``, streamed; ``ValueError`` for a cut not in
    this layout (features elsewhere than in ``features``, or not there)."""
    import h5py

    with contextlib.ExitStack() as stack:
        stored = None
        for line in stack.enter_context(gzip.open(part, "rb")):
            cut = json.loads(line)
            meta = cut["features"]
            if meta["storage_type"] != "numpy_hdf5" or meta["storage_path"] != str(features):
                raise ValueError(f"{part}: cut {cut['id']} is not stored in {features}")
            if stored is None:
                stored = stack.enter_context(h5py.File(features, "r"))
            matrix = stored.get(meta["storage_key"])
            if matrix is None or matrix.shape[0] != meta["num_frames"]:
                raise ValueError(f"{features}: the features of {cut['id']} are missing")
            yield cut["id"], meta["num_frames"]


def _move_part(part: Path, old: str, new: str) -> None:
    """Rewrite ``part`` with its paths under ``old`` moved under ``new``, streaming; a part
    that cannot be read stays as it is (and is computed again)."""
    with contextlib.suppress(*_DAMAGED_PART), gzip.open(part, "rb") as cuts:
        write_jsonl_gz(part, (_moved(json.loads(line), old, new) for line in cuts))


def _cut_dict(item, wav, duration, rate, feats, storage: Path, model) -> dict[str, Any]:
    utt_id = item["utt_id"]
    return {
        "id": utt_id,
        "start": 0.0,
        "duration": duration,
        "channel": 0,
        "supervisions": [
            {
                "id": utt_id,
                "recording_id": utt_id,
                "start": 0.0,
                "duration": duration,
                "channel": 0,
                "text": item["text"],
                "speaker": item["speaker"],
            }
        ],
        "features": {
            "type": model.name,
            "num_frames": int(feats.shape[0]),
            "num_features": int(feats.shape[1]),
            "frame_shift": model.frame_shift,
            "sampling_rate": rate,
            "start": 0.0,
            "duration": duration,
            "storage_type": "numpy_hdf5",
            "storage_path": str(storage),
            "storage_key": utt_id,
            "recording_id": utt_id,
            "channels": 0,
        },
        "recording": {
            "id": utt_id,
            "sources": [{"type": "file", "channels": [0], "source": str(wav)}],
            "sampling_rate": rate,
            "num_samples": int(round(duration * rate)),
            "duration": duration,
        },
        "type": "MonoCut",
    }


def _move(path: str, old: str, new: str) -> str:
    """``path``, moved under ``new`` when it lies under ``old``."""
    return str(Path(new) / Path(path).relative_to(old)) if Path(path).is_relative_to(old) else path


def _moved(cut: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """The cut dict ``cut`` with paths under ``old`` moved under ``new``."""
    features = cut["features"]
    features["storage_path"] = _move(features["storage_path"], old, new)
    for source in cut["recording"]["sources"]:
        source["source"] = _move(source["source"], old, new)
    return cut


def _moved_cut(old: str, new: str, cut: Any) -> Any:
    """The Lhotse cut ``cut`` with paths under ``old`` moved under ``new``."""
    cut.features.storage_path = _move(cut.features.storage_path, old, new)
    for source in cut.recording.sources:
        source.source = _move(source.source, old, new)
    return cut


def _check_settings(path: Path, settings: dict) -> None:
    stored = _read_json(path)
    if stored is DAMAGED:  # derive it from the summary, which records the same settings
        summary = _read_json(path.parent / "summary.json")
        stored = summary.get("settings") if isinstance(summary, dict) else None
        if stored is None and any(path.parent.glob("*/shards/*.jsonl*")):
            raise Espnet3Error(
                f"{path} is damaged, and nothing else records which settings the features in "
                f"{path.parent} were computed with: delete {path.parent} to recompute them"
            )
        if stored is not None:
            atomic_write_json(path, stored)
    if stored is None:
        atomic_write_json(path, settings)
    elif stored != settings:
        raise Espnet3Error(
            f"features in {path.parent} were computed with {stored}, not {settings}: delete "
            f"{path.parent} to recompute them, or choose another stages.features.args.out_dir"
        )


#: What :func:`_read_json` returns for a state file that exists but cannot be read as JSON.
DAMAGED = object()


def _read_json(path: Path) -> Any:
    """The JSON in ``path``; ``None`` when it does not exist, :data:`DAMAGED` when it cannot be
    read (a state file cut short or overwritten: the caller rebuilds or names it)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DAMAGED
