"""The mini AN4 feature stage's files: per-shard parts written by the workers, the combined
CutSet joined from them, and resume shard by shard.

The corpus is the real mini AN4, built once by the recipe's builder; its train manifest then
lists each utterance 5 times (plus one with an empty text) so that a split has several shards,
and ``min_duration=0.8`` drops ``fash-an253-b`` (0.7 s): both drop reasons occur.
"""

from __future__ import annotations

import gzip
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from espnet3.components.data.dataset_module import load_dataset_module
from espnet3.utils.atomic import temp_name
from tests.conftest import MINI_AN4_ARCHIVE

RECIPE = load_dataset_module("mini_an4/asr")
FEATURES = importlib.import_module(f"{RECIPE.__name__}.features")
MANIFEST = importlib.import_module(f"{RECIPE.__name__}.manifest")
STAGE = {"splits": ["train"], "shard_size": 3, "min_duration": 0.8}
COPIES = 5


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("parts") / "data"
    kwargs = {"data_dir": str(data_dir), "archive": str(MINI_AN4_ARCHIVE), "num_valid": 1}
    RECIPE.DatasetBuilder().prepare_source(**kwargs)
    RECIPE.DatasetBuilder().build(**kwargs)
    base = MANIFEST.read_manifest(data_dir, "train")
    entries = [e._replace(utt_id=f"{e.utt_id}-{k}") for k in range(COPIES) for e in base]
    entries.insert(7, base[1]._replace(utt_id="silent-utterance", text=" "))
    MANIFEST.write_manifest(data_dir, "train", entries)
    return data_dir


@pytest.fixture
def data_dir(built, tmp_path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(built, copy, symlinks=True)
    return copy


def run_stage(data_dir: Path, out: str = "fbank") -> dict:
    return FEATURES.compute_features(data_dir=data_dir, out_dir=data_dir / out, **STAGE)


def files(out_dir: Path) -> dict[str, bytes]:
    """Every file under ``out_dir`` by relative path, with its bytes."""
    return {
        p.relative_to(out_dir).as_posix(): p.read_bytes()
        for p in sorted(out_dir.rglob("*"))
        if p.is_file()
    }


def identities(out_dir: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every file: a file renamed into place again gets a new inode."""
    return {
        p.relative_to(out_dir).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(out_dir.rglob("*"))
        if p.is_file()
    }


def shard_files(i: int) -> set[str]:
    """The files of train shard ``i`` (shard_size 3), relative to the features directory."""
    shards = f"train/shards/{i:05d}"
    return {f"train/{3 * i:08d}.h5", f"{shards}.jsonl.gz", f"{shards}.counts.json"}


def dead_pid() -> str:
    """The pid of a process that has ended (a killed run's)."""
    code = "import os; print(os.getpid())"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def read_cuts(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_the_combined_cutset_is_its_parts_and_plain_lhotse_reads_it_lazily(data_dir, tmp_path):
    summary = run_stage(data_dir)["splits"]["train"]
    out = data_dir / "fbank"
    n = COPIES * 4 + 1
    assert summary["utterances"] == n
    assert summary["dropped"] == {"empty_text": 1, "too_short": COPIES}
    parts = [out / "train" / "shards" / f"{i:05d}.jsonl.gz" for i in range(-(-n // 3))]
    assert sorted((out / "train" / "shards").glob("*.jsonl.gz")) == parts
    combined = out / "cuts_train.jsonl.gz"
    in_parts = [cut for part in parts for cut in read_cuts(part)]
    assert read_cuts(combined) == in_parts and len(in_parts) == summary["kept"]
    assert combined.read_bytes() == b"".join(part.read_bytes() for part in parts)
    assert summary["frames"] == sum(cut["features"]["num_frames"] for cut in in_parts)

    code = (
        "import json, sys\n"
        "from lhotse import CutSet\n"
        "for cuts in (CutSet.from_file(sys.argv[1]), CutSet.from_jsonl_lazy(sys.argv[1])):\n"
        "    assert cuts.is_lazy\n"
        "    print(json.dumps([[c.id, list(c.load_features().shape)] for c in cuts]))\n"
        "assert not [m for m in sys.modules if m.startswith('espnet3')]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(combined)], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    expected = [[c["id"], [c["features"]["num_frames"], 80]] for c in in_parts]
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [expected, expected]


def test_a_half_written_and_a_truncated_part_are_the_only_shards_computed_again(data_dir):
    run_stage(data_dir)
    out = data_dir / "fbank"
    clean = files(out)
    # A killed run: shard 1 was being written (its temporary part is left, nothing in
    # place), and shard 4's part was cut short.
    half = shard_files(1)
    for name in half:
        (out / name).unlink()
    part = out / "train" / "shards" / "00001.jsonl.gz"
    left = Path(re.sub(r"-\d+\.tmp$", f"-{dead_pid()}.tmp", temp_name(part)))
    left.write_bytes(clean["train/shards/00001.jsonl.gz"][:50])
    truncated = out / "train" / "shards" / "00004.jsonl.gz"
    truncated.write_bytes(truncated.read_bytes()[:-20])
    before = identities(out)

    run_stage(data_dir)
    after = identities(out)
    assert not left.exists()
    assert files(out) == clean
    redone = {name for name in after if after[name] != before.get(name)}
    assert redone == half | shard_files(4) | {"cuts_train.jsonl.gz"}


def test_summary_counts_after_resume_equal_a_fresh_runs(data_dir):
    fresh = run_stage(data_dir, "fresh")["splits"]["train"]
    run_stage(data_dir, "again")
    out = data_dir / "again"
    # Shard 2 holds the empty-text utterance: its counts file garbled, and shard 0 (with a
    # too-short one) gone entirely, as a run killed before it wrote anything.
    (out / "train" / "shards" / "00002.counts.json").write_text('{"ids": ')
    for name in shard_files(0):
        (out / name).unlink()
    resumed = run_stage(data_dir, "again")["splits"]["train"]
    assert json.loads((out / "summary.json").read_text())["splits"]["train"] == resumed
    fresh.pop("cuts_bytes"), resumed.pop("cuts_bytes")  # the paths name other directories
    assert resumed == fresh
    assert fresh["dropped"] == {"empty_text": 1, "too_short": COPIES}


def test_parts_of_other_utterances_or_an_earlier_layout_are_computed_again(data_dir):
    run_stage(data_dir)
    out = data_dir / "fbank"
    clean = files(out)
    # An earlier version's shard records, and shard 3 renumbered: its utterances changed.
    (out / "train" / "shards" / "00000.jsonl").write_text(
        '{"utt_id": "x", "dropped": "too_short"}\n'
    )
    entries = MANIFEST.read_manifest(data_dir, "train")
    entries[10] = entries[10]._replace(utt_id="renamed-utterance")
    MANIFEST.write_manifest(data_dir, "train", entries)
    before = identities(out)
    run_stage(data_dir)
    after = identities(out)
    redone = {name for name in after if after[name] != before.get(name)} - {"summary.json"}
    assert redone == shard_files(3) | {"cuts_train.jsonl.gz"}
    assert not (out / "train" / "shards" / "00000.jsonl").exists()
    assert "renamed-utterance" in {c["id"] for c in read_cuts(out / "cuts_train.jsonl.gz")}
    now, untouched = files(out), set(clean) - redone - {"summary.json"}
    assert {k: now[k] for k in untouched} == {k: clean[k] for k in untouched}
