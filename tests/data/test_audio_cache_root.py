"""Where cached audio goes: ESPNET3_CACHE_DIR > HF_DATASETS_CACHE > HF_HOME > XDG_CACHE_HOME > ~."""

import logging

import pytest
from hf_datasets import hf_dataset

from espnet3.data.huggingface_utils import cutset_from_huggingface
from espnet3.data.row_cuts import audio_cache_dir, audio_cache_root

VARIABLES = ("ESPNET3_CACHE_DIR", "HF_DATASETS_CACHE", "HF_HOME", "XDG_CACHE_HOME")


@pytest.mark.parametrize(
    ("set_from", "expected"),
    [
        ("ESPNET3_CACHE_DIR", "ESPNET3_CACHE_DIR"),  # used as the root itself
        ("HF_DATASETS_CACHE", "HF_DATASETS_CACHE/espnet3"),
        ("HF_HOME", "HF_HOME/espnet3"),
        ("XDG_CACHE_HOME", "XDG_CACHE_HOME/espnet3"),
        (None, "HOME/.cache/espnet3"),
    ],
)
def test_the_first_variable_set_chooses_the_root(set_from, expected, monkeypatch, tmp_path):
    """Each variable wins over every one after it, which are all set too."""
    monkeypatch.setenv("HOME", str(tmp_path / "HOME"))
    chosen = VARIABLES.index(set_from) if set_from else len(VARIABLES)
    for position, name in enumerate(VARIABLES):
        if position < chosen:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(tmp_path / name))
    root, chosen_by = audio_cache_root()
    assert root == tmp_path / expected
    assert chosen_by == (set_from or "the default ~/.cache")
    assert audio_cache_dir("9f2c") == tmp_path / expected / "hf_audio" / "9f2c"


def test_an_empty_variable_counts_as_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("ESPNET3_CACHE_DIR", "")
    monkeypatch.setenv("HF_DATASETS_CACHE", "")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert audio_cache_root() == (tmp_path / "hf" / "espnet3", "HF_HOME")


def test_the_conversion_writes_under_hf_home_and_says_so(utterances, caplog, monkeypatch, tmp_path):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    dataset = hf_dataset(utterances, "bytes")  # in memory: its audio must go to the cache
    with caplog.at_level(logging.WARNING, logger="espnet3.data.hf_to_lhotse"):
        cuts = cutset_from_huggingface({"audio": "audio", "text": "text"}, None, dataset, "t")
    folder = tmp_path / "hf_home" / "espnet3" / "hf_audio" / dataset._fingerprint
    assert {str(c.recording.sources[0].source).rsplit("/", 2)[0] for c in cuts} == {str(folder)}
    [line] = [r.getMessage() for r in caplog.records if str(folder) in r.getMessage()]
    assert "chosen by HF_HOME" in line and "ESPNET3_CACHE_DIR" in line
