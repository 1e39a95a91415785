"""Fixtures for the data tests: real AN4 audio (SPHERE and WAV) and generated audio."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet3.data.sphere import read_sphere


def _an4_transcripts(etc: Path) -> dict[str, str]:
    texts = {}
    for name in ("an4_train.transcription", "an4_test.transcription"):
        for line in (etc / name).read_text().splitlines():
            words, _, utt = line.rpartition("(")
            texts[utt.rstrip(") ")] = " ".join(w for w in words.split() if w not in ("<s>", "</s>"))
    return texts


_EXTRACTED: dict[Path, Path] = {}


@pytest.fixture
def an4_sphere_dir(tmp_path_factory, mini_an4_archive) -> Path:
    """The mini AN4 archive extracted (tarfile's ``data`` filter) once per test session."""
    if mini_an4_archive not in _EXTRACTED:
        target = tmp_path_factory.mktemp("an4")
        with tarfile.open(mini_an4_archive) as tar:
            tar.extractall(target, filter="data")
        _EXTRACTED[mini_an4_archive] = target / "downloads" / "an4"
    return _EXTRACTED[mini_an4_archive]


@pytest.fixture
def an4_utterances(an4_sphere_dir) -> list[dict]:
    """The 8 AN4 utterances converted to 16-bit WAV: utt_id, path, samples (int16), text."""
    wav_dir = an4_sphere_dir.parent / "wav16"
    wav_dir.mkdir(exist_ok=True)
    texts = _an4_transcripts(an4_sphere_dir / "etc")
    utterances = []
    for sph in sorted(an4_sphere_dir.glob("wav/*/*/*.sph")):
        if sph.stem not in texts:  # cen7-fash-b has no transcript in the archive
            continue
        samples, rate = read_sphere(sph)
        wav = wav_dir / f"{sph.stem}.wav"
        sf.write(wav, samples, rate, subtype="PCM_16")
        speaker = sph.parent.name
        utterances.append(
            {
                "utt_id": sph.stem,
                "path": str(wav),
                "samples": samples,
                "sampling_rate": rate,
                "text": texts[sph.stem],
                "speaker": speaker,
            }
        )
    return utterances


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
