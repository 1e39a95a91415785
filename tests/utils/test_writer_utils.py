"""write_artifact: each format written whole and read back; custom writers checked."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from espnet3.errors import ConfigError
from espnet3.utils.writer_utils import write_artifact


def scaled_npy(*, value, output_path, scale=1.0):
    path = Path(output_path).with_suffix(".scaled.npy")
    np.save(path, np.asarray(value) * scale)
    return path


def returns_nothing(*, value, output_path):
    return None


def test_each_type_goes_to_its_format_and_reads_back(tmp_path, an4_utterances):
    speech = an4_utterances[0]["samples"].astype(np.float32) / 32768
    wav = write_artifact(speech, tmp_path / "audio" / "utt1", {"type": "wav", "sample_rate": 16000})
    read, rate = sf.read(wav, dtype="float32")
    assert wav.suffix == ".wav" and rate == 16000 and np.allclose(read, speech, atol=1e-4)
    npy = write_artifact(torch.arange(6.0).reshape(2, 3), tmp_path / "feats" / "utt1")
    assert np.array_equal(np.load(npy), np.arange(6.0).reshape(2, 3))
    meta = write_artifact({"speaker": "fash", "words": ["YES"]}, tmp_path / "meta" / "utt1")
    assert json.loads(meta.read_text()) == {"speaker": "fash", "words": ["YES"]}
    obj = write_artifact({1, 2}, tmp_path / "obj" / "utt1")
    assert obj.suffix == ".pkl" and pickle.loads(obj.read_bytes()) == {1, 2}
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_custom_writer_is_called_with_its_options_and_checked(tmp_path):
    writer = {"writer": {"_target_": f"{__name__}.scaled_npy", "scale": 3}}
    path = write_artifact(np.ones(2), tmp_path / "x", writer)
    assert path.name == "x.scaled.npy" and np.array_equal(np.load(path), [3, 3])
    with pytest.raises(TypeError, match="must return a path-like value: returns_nothing"):
        write_artifact(1, tmp_path / "y", {"writer": {"_target_": f"{__name__}.returns_nothing"}})


def test_bad_field_configs_are_refused_naming_what_to_set(tmp_path):
    with pytest.raises(ConfigError, match="require `sample_rate`: set it"):
        write_artifact(np.zeros(3), tmp_path / "a", {"type": "wav"})
    with pytest.raises(ConfigError, match="Unsupported artifact type: yaml"):
        write_artifact(np.zeros(3), tmp_path / "a", {"type": "yaml"})
    assert not list(tmp_path.iterdir())
