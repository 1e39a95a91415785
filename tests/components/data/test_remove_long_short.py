"""remove_long_short on real AN4 audio: the rows kept, on the suite's backend, and bad files."""

from __future__ import annotations

import pytest
import soundfile as sf

from espnet3.components.data.remove_long_short import remove_long_short
from espnet3.errors import ItemError


def config(save, manifest, low, high, **extra):
    section = {
        "save_path": str(save),
        "min_wav_duration": low,
        "max_wav_duration": high,
        "splits": ["train"],
        "manifest_paths": {"train": str(manifest)},
        **extra,
    }
    return {"remove_long_short": section}


def test_rows_strictly_inside_the_bounds_are_kept_unchanged(an4_tsv, tmp_path, parallel_config):
    rows = an4_tsv.read_text().splitlines(keepends=True)
    durations = sorted(sf.info(row.split("\t")[1]).duration for row in rows)
    low, high = durations[1], durations[-2]  # the shortest two and the longest one go
    with open(an4_tsv, "a") as f:  # rows without text are dropped whatever their audio
        f.write(f"notext\t{rows[0].split(chr(9))[1]}\t \tspk\n\n")
    remove_long_short(config(tmp_path / "out", an4_tsv, low, high, batch_size=2))
    kept = (tmp_path / "out" / "train.tsv").read_text().splitlines(keepends=True)
    expected = [r for r in rows if low < sf.info(r.split("\t")[1]).duration < high]
    assert kept == expected and 0 < len(kept) < len(rows) - 2
    assert (tmp_path / "out" / "shards" / "train" / "manifest.json").is_file()


def test_every_run_reads_the_audio_again(an4_tsv, tmp_path):
    remove_long_short(config(tmp_path / "out", an4_tsv, 0.0, 100.0))
    assert (tmp_path / "out" / "train.tsv").read_text() == an4_tsv.read_text()
    remove_long_short(config(tmp_path / "out", an4_tsv, 100.0, 200.0))  # a new plan: no resume
    assert (tmp_path / "out" / "train.tsv").read_text() == ""


def test_an_unreadable_audio_file_is_named_and_nothing_is_written(an4_tsv, tmp_path):
    rows = an4_tsv.read_text().splitlines()
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    an4_tsv.write_text("\n".join([*rows[:3], f"bad\t{broken}\tx\tspk", *rows[3:]]) + "\n")
    with pytest.raises(ItemError, match=f"index 3.*{broken}"):
        remove_long_short(config(tmp_path / "out", an4_tsv, 0.0, 100.0))
    assert not (tmp_path / "out" / "train.tsv").exists()
