"""Kaldi export of a data directory (:func:`espnet3.data.data_dir.export_kaldi`) and the
duration plot, on real WAV files, read back with Lhotse's own Kaldi import."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet, Recording, SupervisionSegment
from lhotse.kaldi import load_kaldi_data_dir

from espnet3.data.data_dir import export_kaldi, plot_durations
from espnet3.errors import ConfigError


def write_wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    """A real 16-bit WAV of a sine, ``seconds`` long."""
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16), rate)
    return path


def supervision(utt: str, duration: float) -> SupervisionSegment:
    """The supervision of a whole cut of recording ``long`` (relative to the cut)."""
    return SupervisionSegment(
        id=utt, recording_id="long", start=0.0, duration=duration, text="HI", speaker="spk"
    )


def kaldi_files(split_dir: Path) -> dict[str, list[list[str]]]:
    return {
        p.name: [line.split() for line in p.read_text().splitlines()] for p in split_dir.iterdir()
    }


def test_whole_recordings_have_no_segments_and_wav_scp_keyed_by_utterance(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = []
    for i, seconds in enumerate([0.5, 0.75]):
        write_wav(data / f"rec{i}.wav", seconds)
        rows.append(f"spk{i}-utt{i}\trec{i}.wav\tHELLO {i}\tspk{i}\n")
    (data / "test.tsv").write_text("".join(rows))

    [split] = export_kaldi(data, tmp_path / "kaldi")

    files = kaldi_files(split)
    assert sorted(files) == ["spk2utt", "text", "utt2dur", "utt2spk", "wav.scp"]
    assert files["wav.scp"] == [
        ["spk0-utt0", str((data / "rec0.wav").resolve())],
        ["spk1-utt1", str((data / "rec1.wav").resolve())],
    ]
    assert [(u, float(d)) for u, d in files["utt2dur"]] == [("spk0-utt0", 0.5), ("spk1-utt1", 0.75)]
    recordings, supervisions, _ = load_kaldi_data_dir(split, sampling_rate=16000)
    assert [(s.id, s.recording_id, s.start, s.duration) for s in supervisions] == [
        ("spk0-utt0", "spk0-utt0", 0.0, 0.5),
        ("spk1-utt1", "spk1-utt1", 0.0, 0.75),
    ]


def test_parts_of_a_longer_recording_get_segments_and_reco2dur(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    recording = Recording.from_file(write_wav(data / "long.wav", 2.0), recording_id="long")
    cuts = []
    # Two utterances of one recording: one from 0 (but not to the end), one later.
    for utt, offset, duration in [("spk-a", 0.0, 0.5), ("spk-b", 1.0, 0.75)]:
        cut = recording.to_cut().truncate(offset=offset, duration=duration).with_id(utt)
        cut.supervisions = [supervision(utt, duration)]
        cuts.append(cut)
    cuts = CutSet.from_cuts(cuts)
    cuts.to_file(data / "cuts_train.jsonl.gz")

    [split] = export_kaldi(data, tmp_path / "kaldi")

    files = kaldi_files(split)
    assert sorted(files) == [
        "reco2dur",
        "segments",
        "spk2utt",
        "text",
        "utt2dur",
        "utt2spk",
        "wav.scp",
    ]
    assert files["wav.scp"] == [["long", str((data / "long.wav").resolve())]]
    assert [(u, r, float(a), float(b)) for u, r, a, b in files["segments"]] == [
        ("spk-a", "long", 0.0, 0.5),
        ("spk-b", "long", 1.0, 1.75),
    ]
    assert files["reco2dur"] == [["long", "2.0"]]


def test_one_utterance_that_is_part_of_its_recording_gets_segments(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    recording = Recording.from_file(write_wav(data / "long.wav", 1.0), recording_id="long")
    cut = recording.to_cut().truncate(offset=0.25, duration=0.5).with_id("spk-a")
    cut.supervisions = [supervision("spk-a", 0.5)]
    CutSet.from_cuts([cut]).to_file(data / "cuts_test.jsonl.gz")

    [split] = export_kaldi(data, tmp_path / "kaldi")

    assert (split / "segments").read_text().split() == ["spk-a", "long", "0.25", "0.75"]
    assert (split / "reco2dur").is_file()


def test_export_into_a_file_is_one_error_naming_it(tmp_path):
    write_wav(tmp_path / "a.wav", 0.5)
    (tmp_path / "test.tsv").write_text("spk-a\ta.wav\tHI\tspk\n")
    (tmp_path / "out").write_text("not a directory")
    with pytest.raises(ConfigError, match="'.*out' is a file, not a directory"):
        export_kaldi(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_exported_directories_and_the_plot_follow_the_umask(tmp_path, umask):
    write_wav(tmp_path / "a.wav", 0.5)
    (tmp_path / "test.tsv").write_text("spk-a\ta.wav\tHI\tspk\n")
    old = os.umask(umask)
    try:
        [split] = export_kaldi(tmp_path, tmp_path / "kaldi")
        png = plot_durations({"test": [0.5]}, tmp_path / "d.png", "durations")
    finally:
        os.umask(old)
    assert stat.S_IMODE(split.stat().st_mode) == 0o777 & ~umask
    assert {stat.S_IMODE(p.stat().st_mode) for p in split.iterdir()} == {0o666 & ~umask}
    assert stat.S_IMODE(png.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_plot_of_a_large_and_a_tiny_split_is_titled(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    splits = {"train": list(rng.uniform(1, 10, 5000)), "test": [2.0, 3.0, 9.5]}
    png = plot_durations(splits, tmp_path / "d.png", "utterance durations of data/")
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.text["Title"] == "utterance durations of data/"
