"""A real feature extractor and a WAV-backed dataset for the collect_stats tests.

In their own module so that Dask worker processes import them by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

N_FFT, HOP = 64, 32


def log_power(speech: np.ndarray) -> np.ndarray:
    """(frames, N_FFT // 2 + 1) log power spectrum, the same math the model runs in torch."""
    spec = torch.stft(
        torch.from_numpy(speech),
        N_FFT,
        HOP,
        window=torch.hann_window(N_FFT),
        center=False,
        return_complex=True,
    )
    return torch.log(spec.abs() ** 2 + 1e-10).T.numpy()


class Frontend(torch.nn.Module):
    """``collect_feats(speech, speech_lengths)`` -> log power frames and their counts."""

    def collect_feats(self, speech, speech_lengths):
        frames = [
            torch.from_numpy(log_power(s[:n].numpy()))
            for s, n in zip(speech, speech_lengths, strict=True)
        ]
        lengths = torch.tensor([len(f) for f in frames])
        return {
            "feats": torch.nn.utils.rnn.pad_sequence(frames, batch_first=True),
            "feats_lengths": lengths,
        }


class WavDataset:
    """Items of a manifest written by :func:`write_wavs`: ``{"speech": float32 samples}``."""

    def __init__(self, manifest: str):
        self.rows = [json.loads(line) for line in Path(manifest).read_text().splitlines()]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        speech, _ = sf.read(self.rows[i]["path"], dtype="float32")
        return {"speech": speech}

    def uids(self):
        return [row["uid"] for row in self.rows]


def write_wavs(folder: Path, n: int) -> Path:
    """``n`` 16 kHz sine WAVs of different lengths and pitches, and their manifest.

    A little noise under each sine keeps every frequency bin's power well above zero, where its
    log would turn FFT rounding (which differs with torch's thread count) into large errors."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        t = np.arange(800 + 160 * i) / 16000
        path = folder / f"utt{i}.wav"
        noise = 0.01 * np.random.default_rng(i).standard_normal(len(t))
        wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + noise
        sf.write(path, wave.astype(np.float32), 16000)
        rows.append({"uid": f"spk{i % 2}-utt{i}", "path": str(path)})
    manifest = folder / "list.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest
