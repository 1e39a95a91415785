"""Fixtures for the data tests: generated audio, the audio cache, a shared cluster.

The real AN4 fixtures (``an4_sphere_dir``, ``an4_utterances``) live in tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture(scope="session")
def generated_utterances(tmp_path_factory) -> list[dict]:
    """Six generated WAVs (sines and noise, 8 kHz and 16 kHz), int16, with their samples."""
    out = tmp_path_factory.mktemp("generated")
    rng = np.random.default_rng(0)
    utterances = []
    for i in range(6):
        rate = 16000 if i % 2 == 0 else 8000
        t = np.arange(int(rate * (0.25 + 0.1 * i))) / rate
        wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) if i < 3 else rng.normal(0, 0.1, t.size)
        samples = np.clip(wave * 32767, -32768, 32767).astype(np.int16)
        path = out / f"gen{i}.wav"
        sf.write(path, samples, rate, subtype="PCM_16")
        utterances.append(
            {
                "utt_id": f"gen{i}",
                "path": str(path),
                "samples": samples,
                "sampling_rate": rate,
                "text": f"generated {i}",
                "speaker": "synth",
            }
        )
    return utterances


@pytest.fixture(autouse=True)
def audio_cache(tmp_path_factory, monkeypatch) -> Path:
    """``ESPNET3_CACHE_DIR`` of every data test: a fresh directory, never the user's cache."""
    path = tmp_path_factory.mktemp("espnet3_cache")
    monkeypatch.setenv("ESPNET3_CACHE_DIR", str(path))
    return path


@pytest.fixture(scope="module")
def dask_client():
    """A real 2-worker Dask LocalCluster on this machine, shared by a test module."""
    from espnet3.parallel import get_client

    with get_client({"env": "local", "n_workers": 2}) as client:
        yield client


@pytest.fixture
def utterances(an4_utterances, generated_utterances) -> list[dict]:
    """Real AN4 speech followed by generated sines and noise (two sampling rates)."""
    return an4_utterances + generated_utterances
