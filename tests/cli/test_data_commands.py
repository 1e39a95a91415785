"""``espnet3 describe``, ``espnet3 export kaldi`` and ``espnet3 jobs collect`` as real
subprocesses on real files: their outputs, modes and one-line errors."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.cli_errors import one_line_error

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "mini_an4" / "asr"


def espnet3(*args: str, umask: int | None = None) -> subprocess.CompletedProcess:
    """``python -m espnet3 ARGS`` from the repository, under ``umask`` when given."""
    return subprocess.run(
        [sys.executable, "-m", "espnet3", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        preexec_fn=None if umask is None else lambda: os.umask(umask),
    )


def prepared(data_dir: Path) -> Path:
    """A data directory with a ``test.tsv`` of two real WAVs."""
    data_dir.mkdir(parents=True)
    for name, seconds in [("a", 0.5), ("b", 1.25)]:
        sf.write(data_dir / f"{name}.wav", np.zeros(int(16000 * seconds), np.int16), 16000)
    (data_dir / "test.tsv").write_text("spk-a\ta.wav\tHELLO\tspk\nspk-b\tb.wav\tWORLD\tspk\n")
    return data_dir


def test_export_kaldi_into_a_file_is_one_line(tmp_path):
    data = prepared(tmp_path / "data")
    (tmp_path / "out").write_text("x")
    message = one_line_error(espnet3("export", "kaldi", str(data), str(tmp_path / "out")))
    assert f"{str(tmp_path / 'out')!r} is a file, not a directory" in message


def test_export_kaldi_of_whole_recordings_writes_no_segments(tmp_path):
    data = prepared(tmp_path / "data")
    proc = espnet3("export", "kaldi", str(data), str(tmp_path / "kaldi"))
    assert proc.returncode == 0, proc.stderr
    split = tmp_path / "kaldi" / "test"
    assert not (split / "segments").exists() and not (split / "reco2dur").exists()
    assert [line.split()[0] for line in (split / "wav.scp").read_text().splitlines()] == [
        "spk-a",
        "spk-b",
    ]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_describe_plot_writes_a_png_with_the_umasks_mode(tmp_path, umask):
    data = prepared(tmp_path / "data")
    png = tmp_path / "d.png"
    proc = espnet3("describe", str(data), "--plot", str(png), umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert stat.S_IMODE(png.stat().st_mode) == 0o666 & ~umask


def recipe_copy(tmp_path: Path) -> Path:
    """The mini_an4 recipe's config in a fresh directory (its data_dir is <recipe>/data)."""
    recipe = tmp_path / "recipe"
    shutil.copytree(RECIPE / "conf", recipe / "conf")
    return recipe


def test_describe_of_a_recipe_not_yet_prepared_points_at_its_data_dir(tmp_path):
    recipe = recipe_copy(tmp_path)
    message = one_line_error(espnet3("describe", str(recipe)))
    assert f"espnet3 create-dataset {recipe}" in message
    assert f"espnet3 describe {recipe / 'data'}" in message


def test_describe_of_a_prepared_recipe_describes_its_data_dir(tmp_path):
    recipe = recipe_copy(tmp_path)
    prepared(recipe / "data")
    proc = espnet3("describe", str(recipe))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1].split()[:2] == ["test", "2"]
    assert f"describing {recipe / 'data'}, the data directory of recipe {recipe}" in proc.stderr


def test_describe_of_an_egs3_style_recipe_points_at_data(tmp_path):
    recipe = tmp_path / "egs3_task"
    (recipe / "conf").mkdir(parents=True)
    (recipe / "conf" / "training.yaml").write_text("{}\n")
    message = one_line_error(espnet3("describe", str(recipe)))
    assert f"espnet3 describe {recipe / 'data'}" in message


@pytest.mark.parametrize("action", ["collect", "status"])
def test_jobs_on_a_directory_without_shards_is_one_line(tmp_path, action):
    (tmp_path / "notes.txt").write_text("not a shard")
    message = one_line_error(espnet3("jobs", action, str(tmp_path)))
    assert f"{str(tmp_path)!r} holds no shards" in message
    assert "async_specs_dir" in message
