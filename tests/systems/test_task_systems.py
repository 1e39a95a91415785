"""The task systems upstream recipes name, on real AN4 audio and text: their data stages."""

from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest
import sentencepiece as spm
import soundfile as sf

from espnet3.errors import ItemError, SetupError
from espnet3.systems.asr.system import ASRSystem
from espnet3.systems.cls.audio_conversion_provider import AudioConversionProvider
from espnet3.systems.cls.audio_conversion_runner import AudioConversionRunner
from espnet3.systems.cls.system import CLSSystem
from espnet3.systems.tts.system import TTSSystem


@pytest.fixture
def manifest(an4_utterances, tmp_path):
    path = tmp_path / "data" / "manifest" / "train.tsv"
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"{u['utt_id']}\t{u['path']}\t{u['text']}\n" for u in an4_utterances))
    return path


def test_asr_train_tokenizer_writes_the_model_and_its_token_list_once(manifest, tmp_path, caplog):
    config = {
        "exp_dir": str(tmp_path / "exp"),
        "data_dir": str(tmp_path / "data"),
        "tokenizer": {
            "save_path": str(tmp_path / "data" / "tokenizer"),
            "vocab_size": 30,
            "model_type": "bpe",
            "text_builder": {"func": "text_builders.transcripts", "manifest": str(manifest)},
        },
    }
    system = ASRSystem(training_config=config)
    system.train_tokenizer()
    folder = tmp_path / "data" / "tokenizer"
    tokens = (folder / "tokens.txt").read_text().splitlines()
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    processor = spm.SentencePieceProcessor(model_file=str(folder / "bpe.model"))
    assert processor.get_piece_size() == 30 and set(processor.encode_as_pieces("YES")) <= set(
        tokens
    )
    assert (tmp_path / "data" / "train_tokenizer" / "train.txt").read_text().count("\n") == 7
    assert system.stage_log_dirs["train_tokenizer"] == folder
    with caplog.at_level(logging.INFO):
        system.train_tokenizer()
    assert "Tokenizer already exists" in caplog.text


def test_cls_prepare_labels_counts_every_label_of_multi_label_rows(tmp_path, caplog):
    manifest = tmp_path / "train.tsv"
    manifest.write_text("a\ta.wav\tdog bark\nb\tb.wav\tdog\nc\tc.wav\t\nd\td.wav\tcat dog\n")
    config = {
        "exp_dir": str(tmp_path / "exp"),
        "prepare_labels": {
            "save_path": str(tmp_path / "labels"),
            "filename": "token_list",
            "manifest_path": str(manifest),
            "add_symbol": ["<unk>:-1"],
        },
    }
    with caplog.at_level(logging.WARNING):
        CLSSystem(training_config=config).prepare_labels()
    labels = (tmp_path / "labels" / "token_list").read_text().splitlines()
    assert labels == ["dog", "bark", "cat", "<unk>"]
    assert "1 row(s) of" in caplog.text
    manifest.write_text("a\ta.wav\t\n")
    with pytest.raises(SetupError, match="No labels found"):
        CLSSystem(training_config=config).prepare_labels()


@pytest.mark.skipif(
    shutil.which("ffmpeg") is None and os.environ.get("CI") != "true",
    reason="ffmpeg is not installed here (.ci/run installs it; under CI=true this fails)",
)
def test_audio_conversion_resamples_with_ffmpeg_and_keeps_what_exists(
    an4_utterances, tmp_path, parallel_config
):
    jobs = [(u["path"], str(tmp_path / "wav8k" / f"{u['utt_id']}.wav")) for u in an4_utterances]
    provider = AudioConversionProvider(params={"jobs": jobs, "sampling_rate": 8000})
    runner = AudioConversionRunner(provider, output_dir=tmp_path / "shards", resume=False)
    records = runner(range(len(jobs)))
    assert [r["converted"] for r in records] == [True] * len(jobs)
    for u, (_, wav) in zip(an4_utterances, jobs, strict=True):
        samples, rate = sf.read(wav, dtype="int16")
        assert rate == 8000 and abs(len(samples) - len(u["samples"]) / 2) <= 1
    assert not list((tmp_path / "wav8k").glob(".*.tmp"))
    again = runner(range(len(jobs)))
    assert [r["converted"] for r in again] == [False] * len(jobs)


def test_audio_conversion_without_ffmpeg_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    src = tmp_path / "x.wav"
    sf.write(src, np.zeros(160, np.int16), 16000)
    provider = AudioConversionProvider(
        params={"jobs": [(src, tmp_path / "y.wav")], "sampling_rate": 8000}
    )
    with pytest.raises(ItemError, match="ffmpeg, which is not on PATH: install it"):
        AudioConversionRunner(provider, output_dir=tmp_path / "shards")([0])


def test_tts_data_stages_filter_then_list_tokens(manifest, tmp_path):
    config = {
        "exp_dir": str(tmp_path / "exp"),
        "remove_long_short": {
            "save_path": str(tmp_path / "filtered"),
            "min_wav_duration": 1.0,
            "max_wav_duration": 3.0,
            "splits": ["train"],
            "manifest_paths": {"train": str(manifest)},
        },
        "create_token_list": {
            "save_path": str(tmp_path / "tokens"),
            "filename": "tokens.txt",
            "manifest_path": str(tmp_path / "filtered" / "train.tsv"),
            "add_symbol": ["<blank>:0", "<unk>:1", "<sos/eos>:-1"],
        },
    }
    system = TTSSystem(training_config=config, publish_config={"pack_model": {}})
    system.remove_long_short()
    system.create_token_list()
    kept = (tmp_path / "filtered" / "train.tsv").read_text().splitlines()
    assert all(1.0 < sf.info(line.split("\t")[1]).duration < 3.0 for line in kept)
    tokens = (tmp_path / "tokens" / "tokens.txt").read_text().splitlines()
    assert set("".join(line.split("\t")[2] for line in kept).replace(" ", "")) <= set(tokens)
    assert system.publication_config == {"pack_model": {}}
    assert system.stage_log_dirs["create_token_list"] == tmp_path / "tokens"
