"""The ``remove_long_short`` stage: drop utterances too short or too long to train on.

For each split, the manifest (``utt_id<TAB>wav<TAB>text[<TAB>...]``) is read, rows without
text are dropped, and the duration of every remaining WAV is read from its header by
:class:`RemoveLongShortRunner`, a shard runner (on the cluster of ``parallel:`` when there is
one). Rows whose duration is strictly inside ``(min_wav_duration, max_wav_duration)`` are
written back unchanged, in manifest order, to ``<save_path>/<manifest file name>``.

Config (``training_config.remove_long_short``, as upstream ESPnet3 reads it)::

    remove_long_short:
      save_path: ${data_dir}/manifests_filtered    # required
      min_wav_duration: 1.0                         # seconds, required
      max_wav_duration: 20.0                        # seconds, required
      splits: [train, valid, test]                  # or one name
      manifest_paths: {train: ${data_dir}/manifest/train.tsv}   # default data/manifest/<split>.tsv
      batch_size: null                              # files per forward call

Example:
    >>> import tempfile, pathlib, numpy as np, soundfile as sf
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name, seconds in (("a", 0.5), ("b", 2.0)):
    ...     sf.write(d / f"{name}.wav", np.zeros(int(16000 * seconds)), 16000)
    >>> _ = (d / "train.tsv").write_text(f"a\\t{d}/a.wav\\thi\\nb\\t{d}/b.wav\\tho\\n")
    >>> remove_long_short({"remove_long_short": {"save_path": str(d / "out"),
    ...     "min_wav_duration": 1.0, "max_wav_duration": 4.0, "splits": "train",
    ...     "manifest_paths": {"train": str(d / "train.tsv")}}})
    >>> (d / "out" / "train.tsv").read_text().split("\\t")[0]
    'b'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from espnet3.errors import SetupError
from espnet3.parallel.parallel import set_parallel
from espnet3.runner.provider import EnvironmentProvider
from espnet3.runner.records import RecordsRunner
from espnet3.utils.atomic import atomic_open
from espnet3.utils.config_utils import get_required_config

log = logging.getLogger(__name__)

#: ``(utt_id, wav path, the manifest line as read)``.
ManifestEntry = tuple[str, str, str]


def load_manifest_entries(manifest_path: str | os.PathLike) -> tuple[list[ManifestEntry], int]:
    """The rows of a manifest that have text, and how many had none (blank lines not counted).

    Each entry keeps its line as it was read (newline-terminated), extra columns included.
    """
    entries, without_text = [], 0
    with open(manifest_path, encoding="utf-8") as f:
        for line in f:
            stripped = line.rstrip("\n")
            if not stripped:
                continue
            parts = stripped.split("\t")
            if len(parts) < 3 or not parts[2].strip():
                without_text += 1
                continue
            entries.append((parts[0], parts[1], line if line.endswith("\n") else line + "\n"))
    return entries, without_text


class RemoveLongShortProvider(EnvironmentProvider):
    """``{entries, min_duration, max_duration, num_dropped_empty}`` of one manifest.

    ``params``: ``manifest_path``, ``min_duration`` and ``max_duration`` (seconds).
    """

    def build_env(self) -> dict[str, Any]:
        params = self.params
        if not params.get("manifest_path"):
            raise SetupError("Please provide manifest_path obtained from create_dataset stage")
        if params.get("min_duration") is None or params.get("max_duration") is None:
            raise SetupError(
                "min_duration and max_duration must be provided for remove_long_short stage."
            )
        entries, without_text = load_manifest_entries(params["manifest_path"])
        return {
            "entries": entries,
            "min_duration": params["min_duration"],
            "max_duration": params["max_duration"],
            "num_dropped_empty": without_text,
        }


class RemoveLongShortRunner(RecordsRunner):
    """``{"idx", "utt_id", "keep"}`` per manifest row; its shards write ``results.jsonl``."""

    @staticmethod
    def forward(
        idx: int | Sequence[int],
        entries: Sequence[ManifestEntry],
        min_duration: float,
        max_duration: float,
        **env: Any,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(idx, int):
            return _check_duration(idx, entries, min_duration, max_duration)
        return [_check_duration(i, entries, min_duration, max_duration) for i in idx]


def _check_duration(
    idx: int, entries: Sequence[ManifestEntry], min_duration: float, max_duration: float
) -> dict[str, Any]:
    import soundfile as sf

    utt_id, wav_path, _ = entries[idx]
    duration = sf.info(wav_path).duration
    return {"idx": idx, "utt_id": utt_id, "keep": min_duration < duration < max_duration}


def remove_long_short(config: Any) -> None:
    """Run the stage on ``config`` (a training config; see the module docstring)."""
    section = get_required_config(
        config,
        "remove_long_short",
        "training_config.remove_long_short must be set for remove_long_short stage.",
    )
    save_path = Path(
        get_required_config(
            section,
            "save_path",
            "training_config.remove_long_short.save_path must be set for remove_long_short stage.",
        )
    )
    bounds = (
        "training_config.remove_long_short.min_wav_duration and max_wav_duration must be set "
        "for remove_long_short stage."
    )
    min_duration = float(get_required_config(section, "min_wav_duration", bounds))
    max_duration = float(get_required_config(section, "max_wav_duration", bounds))
    if config.get("parallel"):
        set_parallel(config["parallel"])
    splits = section.get("splits", ["train", "valid", "test"])
    splits = [splits] if isinstance(splits, str) else list(splits)
    manifest_paths = section.get("manifest_paths") or {}
    save_path.mkdir(parents=True, exist_ok=True)
    log.info(
        "Removing long-short utterances with min_duration=%ss, max_duration=%ss",
        min_duration,
        max_duration,
    )
    for split in splits:
        manifest = Path(manifest_paths.get(split) or f"data/manifest/{split}.tsv").resolve()
        if not manifest.is_file():
            raise SetupError(
                f"Manifest file not found for split '{split}': {manifest}. Please generate the "
                "manifest file using the create_dataset stage and ensure the path is correct."
            )
        entries, without_text = load_manifest_entries(manifest)
        provider = RemoveLongShortProvider(
            params={
                "manifest_path": str(manifest),
                "min_duration": min_duration,
                "max_duration": max_duration,
            }
        )
        runner = RemoveLongShortRunner(
            provider,
            batch_size=section.get("batch_size"),
            output_dir=save_path / "shards",
            shard_subdir=split,
            resume=False,
        )
        keep = {r["idx"]: r["keep"] for r in runner(range(len(entries)))} if entries else {}
        target = save_path / manifest.name
        with atomic_open(target) as f:
            f.writelines(line for i, (_, _, line) in enumerate(entries) if keep[i])
        kept = sum(keep.values())
        log.info(
            "Split '%s': kept %d, dropped %d by duration, dropped %d by empty text -> %s",
            split,
            kept,
            len(entries) - kept,
            without_text,
            target,
        )
    log.info("Long-short utterance removal completed. Filtered manifests saved to: %s", save_path)
