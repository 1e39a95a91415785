"""The feature stage: log-mel filterbanks of every utterance, cleaned, as Lhotse CutSets.

Work runs through :class:`FbankRunner` on the configured ``parallel:`` backend. Utterances are
grouped in shards of ``shard_size``, one runner batch each; a worker writes a shard's features
as one HDF5 file ``OUT_DIR/SPLIT/NNNNNNNN.h5`` (one dataset per utterance, atomically), and
this process writes the shard's cuts as ``OUT_DIR/SPLIT/shards/NNNNN.jsonl`` once it is done. A re-run (after Ctrl-C or
a crash) skips finished shards (a shard whose utterances are no longer those of the manifest
is computed again). At the end every split gets ``OUT_DIR/cuts_SPLIT.jsonl.gz`` and
``OUT_DIR/summary.json`` records the counts, including what cleaning dropped and why.

A feature or shard file is renamed into place when complete, so a killed run never leaves half of one,
but it is not flushed to disk by itself (that doubled the stage's time): after a power failure
of the machine, delete ``OUT_DIR`` and run the stage again.

Paths inside the cuts are absolute, so plain Lhotse loads them from any working directory;
each supervision carries the utterance's speaker.

Example:
    >>> summary = compute_features(data_dir="data", out_dir="data/fbank")   # doctest: +SKIP
    >>> summary["splits"]["test"]["kept"]
    2
    >>> cuts = load_cuts("data", "test")                                   # doctest: +SKIP
    >>> cuts[0].load_features().shape
    (298, 80)
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from espnet3.errors import Espnet3Error
from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.provider import EnvironmentProvider
from espnet3.utils.atomic import (
    atomic_open,
    atomic_path,
    atomic_write_json,
    atomic_write_jsonl,
    remove_stale_temps,
)

from .dataset import Dataset
from .manifest import SPLITS


class FbankProvider(EnvironmentProvider):
    """Environment ``{dataset, model, out_dir, min_duration}``; ``model`` is a Lhotse Fbank.

    Config keys: ``split``, ``data_dir``, ``num_mel_bins``.
    """

    def build_env(self) -> dict[str, Any]:
        from lhotse import Fbank, FbankConfig

        return {
            "dataset": Dataset(self.config.split, self.config.data_dir),
            "model": Fbank(FbankConfig(num_mel_bins=self.config.num_mel_bins)),
            **self.params,
        }


class FbankRunner(BaseRunner):
    """Computes, stores and describes the features of one utterance, or of a batch of them."""

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
        rate = model.config.sampling_rate
        records, feats = [], {}
        for index in indices:
            item = dataset[index]
            utt_id, speech = item["utt_id"], item["speech"]
            duration = len(speech) / rate
            if not item["text"].strip():
                records.append({"utt_id": utt_id, "dropped": "empty_text"})
            elif duration < min_duration:
                records.append({"utt_id": utt_id, "dropped": "too_short"})
            else:
                feats[utt_id] = model.extract(speech, rate).astype(np.float32)
                wav = dataset.data_dir / dataset.entries[index].wav
                records.append(_cut_dict(item, wav, duration, rate, feats[utt_id], storage, model))
        if feats:
            _write_hdf5(storage, feats)
        return records if isinstance(idx, list) else records[0]


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

    A shard (one HDF5 file, one runner batch) holds about ``shard_seconds`` of audio, the
    utterances per shard following from the mean duration of up to
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
    """The CutSet of ``split``: ``DATA_DIR/FEATURES_DIR/cuts_SPLIT.jsonl.gz``, its absolute
    paths moved along when the data directory was moved or mounted elsewhere since.

    ``features_dir`` is the features ``out_dir`` relative to ``data_dir``.
    """
    from lhotse import CutSet

    path = Path(data_dir) / features_dir / f"cuts_{split}.jsonl.gz"
    summary = _read_json(path.parent / "summary.json")
    written_in = summary.get("data_dir") if isinstance(summary, dict) else None
    here = str(Path(data_dir).resolve())
    if written_in is None or written_in == here:
        return CutSet.from_file(path)
    return CutSet.from_dicts(_moved(cut, written_in, here) for cut in _read_cut_dicts(path))


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
    dataset = Dataset(split, data_dir)
    uids = dataset.uids()
    size = settings["shard_size"] or _utterances_per_shard(dataset, settings["shard_seconds"])
    n = len(uids)
    shards = [list(range(start, min(start + size, n))) for start in range(0, n, size)]
    shard_dir = out_dir / split / "shards"
    for folder in (out_dir, out_dir / split, shard_dir):  # what a killed run was writing
        remove_stale_temps(folder)
    done = {}  # shard number -> its records, for the shards finished in today's layout
    for i, shard in enumerate(shards):
        path = shard_dir / f"{i:05d}.jsonl"
        records = _current_shard(path, [uids[k] for k in shard], moved_from, str(data_dir))
        if records is not None:
            done[i] = records
    todo = [shard for i, shard in enumerate(shards) if i not in done]
    if todo:
        provider = FbankProvider(
            {"split": split, "data_dir": str(data_dir), "num_mel_bins": settings["num_mel_bins"]},
            {"out_dir": str(out_dir), "min_duration": settings["min_duration"]},
        )
        # One batch per shard: every shard but the last is full, and the last comes last.
        runner = FbankRunner(provider, batch_size=size)
        for batch, records in runner.iter([i for shard in todo for i in shard]):
            # Not flushed one by one: a shard file a power failure damaged reads as unfinished.
            atomic_write_jsonl(shard_dir / f"{batch[0] // size:05d}.jsonl", records, durable=False)
            done[batch[0] // size] = records
    records = [record for i in range(len(shards)) for record in done[i]]
    cuts = [r for r in records if "dropped" not in r]
    cuts_path = out_dir / f"cuts_{split}.jsonl.gz"
    stale = not cuts_path.is_file() or cuts_path.stat().st_size != cuts_bytes
    if todo or stale or moved_from is not None:
        _write_cuts(cuts_path, cuts)
    dropped = [r["dropped"] for r in records if "dropped" in r]
    return {
        "cuts_bytes": cuts_path.stat().st_size,
        "utterances": len(records),
        "kept": len(cuts),
        "dropped": {reason: dropped.count(reason) for reason in ("empty_text", "too_short")},
        "frames": sum(c["features"]["num_frames"] for c in cuts),
        "feature_dim": settings["num_mel_bins"],
    }


#: Utterances whose durations size the shards of a split (spread over it; headers only).
DURATION_SAMPLE = 100


def _utterances_per_shard(dataset: Dataset, shard_seconds: float) -> int:
    """Utterances per shard for about ``shard_seconds`` of audio, from a sample's mean
    duration: the same for the same split, so reruns find the same shards."""
    import soundfile

    n = len(dataset)
    if n == 0:
        return 1
    sample = sorted({k * n // DURATION_SAMPLE for k in range(min(n, DURATION_SAMPLE))})
    entries = [dataset.entries[k] for k in sample]
    mean = sum(soundfile.info(dataset.data_dir / e.wav).duration for e in entries) / len(entries)
    return max(1, round(shard_seconds / max(mean, 1e-3)))


def _current_shard(
    path: Path, uids: list[str], moved_from: str | None, here: str
) -> list[dict[str, Any]] | None:
    """The records of a finished shard of these utterances in today's layout (HDF5, absolute
    paths, features intact), or ``None``: missing, unreadable, of other utterances, of an older
    layout or with damaged features, it is computed again. Written before the data directory
    moved from ``moved_from`` to ``here``, its paths are moved along (and the file rewritten)."""
    try:
        records = [json.loads(line) for line in path.read_text().splitlines()]
    except (OSError, ValueError):
        return None
    if [r.get("utt_id", r.get("id")) for r in records] != uids:
        return None
    if moved_from is not None:
        records = [_moved(r, moved_from, here) if "id" in r else r for r in records]
        if _features_whole(records):
            atomic_write_jsonl(path, records, durable=False)
    current = all(
        r["features"]["storage_type"] == "numpy_hdf5"
        and Path(r["features"]["storage_path"]).is_absolute()
        for r in records
        if "id" in r
    )
    return records if current and _features_whole(records) else None


def _features_whole(records: list[dict[str, Any]]) -> bool:
    """Whether the HDF5 files of a shard's cuts open (a truncated one does not: HDF5 records
    its own end) and hold each cut's matrix with its frame count."""
    import h5py

    files: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if "id" in record:
            files.setdefault(record["features"]["storage_path"], []).append(record["features"])
    for path, features in files.items():
        try:
            with h5py.File(path, "r") as f:
                for feature in features:
                    key = feature["storage_key"]
                    if key not in f or f[key].shape[0] != feature["num_frames"]:
                        return False
        except OSError:  # missing, truncated or not HDF5
            return False
    return True


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


def _read_cut_dicts(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _moved(cut: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """``cut`` with paths under ``old`` moved under ``new``."""

    def move(path: str) -> str:
        return (
            str(Path(new) / Path(path).relative_to(old)) if Path(path).is_relative_to(old) else path
        )

    features = cut["features"]
    features["storage_path"] = move(features["storage_path"])
    for source in cut["recording"]["sources"]:
        source["source"] = move(source["source"])
    return cut


def _write_cuts(path: Path, cuts: list[dict[str, Any]]) -> None:
    """Write a gzipped JSONL CutSet atomically; ``mtime=0`` keeps equal cuts byte-identical."""
    with atomic_open(path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
        for cut in cuts:
            gz.write((json.dumps(cut, ensure_ascii=False) + "\n").encode())


def _check_settings(path: Path, settings: dict) -> None:
    stored = _read_json(path)
    if stored is DAMAGED:  # derive it from the summary, which records the same settings
        summary = _read_json(path.parent / "summary.json")
        stored = summary.get("settings") if isinstance(summary, dict) else None
        if stored is None and any(path.parent.glob("*/shards/*.jsonl")):
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
