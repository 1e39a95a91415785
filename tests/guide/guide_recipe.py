"""What the guide leaves to the user, filled in: raw samples, a feature pipeline, saving.

``PrepProvider`` and ``PrepRunner`` are the guide's classes, written as the guide writes them
(in a module, so that workers and shard jobs import them by name).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
from omegaconf import DictConfig

from espnet3.runner.base_runner import BaseRunner
from espnet3.runner.inference_provider import InferenceProvider
from espnet3.utils.atomic import atomic_write_bytes


def load_raw_samples(cfg: DictConfig) -> list[dict]:
    """The samples of a JSONL manifest: ``utt_id``, ``audio`` (float32), ``sr``, ``text``."""
    samples = []
    for line in Path(cfg.manifest).read_text().splitlines():
        row = json.loads(line)
        audio, sr = sf.read(row["path"], dtype="float32")
        samples.append({"utt_id": row["utt_id"], "audio": audio, "sr": sr, "text": row["text"]})
    return samples


class FeaturePipeline:
    """Lhotse's Kaldi-compatible log-mel filterbank."""

    def __init__(self, num_mel_bins: int):
        from lhotse import Fbank, FbankConfig

        self.fbank = Fbank(FbankConfig(num_mel_bins=num_mel_bins))

    def extract(self, audio: np.ndarray, sr: int) -> np.ndarray:
        return self.fbank.extract(audio, sr)


def build_feature_pipeline(cfg: DictConfig) -> FeaturePipeline:
    return FeaturePipeline(cfg.num_mel_bins)


def save_features(utt_id: str, feats: np.ndarray, output_dir: str) -> None:
    import io

    buffer = io.BytesIO()
    np.save(buffer, feats)
    atomic_write_bytes(Path(output_dir) / f"{utt_id}.npy", buffer.getvalue())


class ShortClipCleaner:
    """Drops samples shorter than ``min_seconds`` (returns ``None`` for them)."""

    def __init__(self, min_seconds: float):
        self.min_seconds = min_seconds

    def __call__(self, sample: dict) -> dict | None:
        return None if len(sample["audio"]) / sample["sr"] < self.min_seconds else sample


# ---- the guide's code, as written -------------------------------------------------------


class PrepProvider(InferenceProvider):
    @staticmethod
    def build_dataset(cfg: DictConfig):
        # Load raw manifests and return a list/sequence of samples.
        return load_raw_samples(cfg.dataset)

    @staticmethod
    def build_model(cfg: DictConfig):
        # Optional: build reusable helpers (feature extractor, normaliser, …).
        return build_feature_pipeline(cfg.model)


class PrepRunner(BaseRunner):
    @staticmethod
    def forward(idx: int, *, dataset, model, cleaner=None, output_dir=None):
        sample = dataset[idx]
        feats = model.extract(sample["audio"], sr=sample["sr"])

        if cleaner is not None:
            sample = cleaner(sample)
            if sample is None:  # filtered out
                return None

        save_features(sample["utt_id"], feats, output_dir)
        return {
            "utt_id": sample["utt_id"],
            "features": feats.shape,
        }
