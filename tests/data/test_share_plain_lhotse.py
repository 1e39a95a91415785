"""Cuts saved with save_lhotse, or written with to_file as the guide does, are read by Lhotse
alone, in a process that never imported espnet3."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hf_datasets import data_directory, hf_dataset, saved
from lhotse import CutSet, validate

from espnet3.data import hf_open, row_source
from espnet3.data.huggingface_utils import cutset_from_huggingface
from espnet3.data.sharing import RowCutSet, save_lhotse
from espnet3.errors import Espnet3Error

INFO = {"audio": "audio", "text": "text", "speaker": "speaker", "id": "utt"}

# Only Lhotse (and numpy) is imported: every source must be one Lhotse reads by itself.
PLAIN_LHOTSE = """
import hashlib, json, sys
import numpy as np
from lhotse import CutSet, RecordingSet, validate

cuts = CutSet.from_file(sys.argv[1]).to_eager()
validate(cuts, read_data=True)
for recordings in sys.argv[2:]:
    RecordingSet.from_file(recordings)
report = {
    "espnet3 imported": any(name.split(".")[0] == "espnet3" for name in sys.modules),
    "sources": sorted({s.type for c in cuts for s in c.recording.sources}),
    "audio": {
        c.id: hashlib.sha256(np.rint(c.load_audio()[0] * 32768).astype(np.int16).tobytes())
        .hexdigest()
        for c in cuts
    },
}
print(json.dumps(report))
"""


def shared_manifests(directory: Path) -> list[str]:
    """The cuts and recordings manifests save_lhotse wrote to ``directory``."""
    return [str(directory / "cuts.jsonl.gz"), str(directory / "recordings.jsonl.gz")]


def test_cuts_that_keep_audio_in_dataset_rows_are_shared_for_plain_lhotse(
    utterances, dask_client, tmp_path
):
    dataset = saved(hf_dataset(utterances, "bytes"), tmp_path)
    cuts = cutset_from_huggingface(INFO, None, dataset, "train", dask_client)
    assert {c.recording.sources[0].source.split(":")[0] for c in cuts} == {"hf-row"}

    save_lhotse(cuts, tmp_path / "shared")

    # The cuts in this process keep reading from the dataset rows: nothing copied for them.
    assert {c.recording.sources[0].type for c in cuts} == {"url"}
    out = subprocess.run(
        [sys.executable, "-c", PLAIN_LHOTSE, *shared_manifests(tmp_path / "shared")],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,  # the manifests name the audio by absolute path
    ).stdout
    report = json.loads(out)
    assert report["espnet3 imported"] is False
    assert report["sources"] == ["file"]
    assert report["audio"] == {
        u["utt_id"]: hashlib.sha256(u["samples"].tobytes()).hexdigest() for u in utterances
    }
    # The encoded bytes are copied unchanged, next to the manifests.
    copied = sorted((tmp_path / "shared" / "audio").rglob("*.wav"))
    assert [p.read_bytes() for p in copied] == [
        Path(u["path"]).read_bytes() for u in sorted(utterances, key=lambda u: u["utt_id"])
    ]


def test_audio_already_in_files_is_referenced_not_copied(utterances, tmp_path):
    cuts = cutset_from_huggingface(INFO, None, hf_dataset(utterances, "paths"), "train")
    save_lhotse(cuts, tmp_path / "shared")
    assert not (tmp_path / "shared" / "audio").exists()
    out = subprocess.run(
        [sys.executable, "-c", PLAIN_LHOTSE, *shared_manifests(tmp_path / "shared")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["audio"] == {
        u["utt_id"]: hashlib.sha256(u["samples"].tobytes()).hexdigest() for u in utterances
    }


def test_a_dataset_gone_since_the_conversion_is_named_and_nothing_is_left(utterances, tmp_path):
    dataset = saved(hf_dataset(utterances, "bytes"), tmp_path)
    cuts = cutset_from_huggingface(INFO, None, dataset, "train")
    shutil.rmtree(tmp_path / "saved")
    hf_open._OPENED.clear()  # as a new process would: nothing opened yet
    row_source._COLUMNS.clear()
    with pytest.raises(Espnet3Error, match="cannot be opened .*put it back where it was"):
        save_lhotse(cuts, tmp_path / "shared")
    assert list(tmp_path.iterdir()) == []  # neither the target nor its staging directory


GUIDE_INFO = {"audio": lambda x: x["audio"]["array"], "text": lambda x: x["text"]}


def read_with_plain_lhotse(manifest: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PLAIN_LHOTSE, str(manifest)],
        capture_output=True,
        text=True,
        check=True,
        cwd=manifest.parent.parent,  # the manifest names its audio by absolute path
    ).stdout
    return json.loads(out)


def expected_audio(utterances: list[dict]) -> dict[str, str]:
    return {
        f"train-{i:08d}": hashlib.sha256(u["samples"].tobytes()).hexdigest()
        for i, u in enumerate(utterances)
    }


def guide_cuts(utterances, tmp_path, client=None):
    """The guide's steps 1-4 up to ``to_file``: a dataset id, array data_info, a length."""
    data_directory(utterances, tmp_path / "your_dataset_name")
    cuts = cutset_from_huggingface(
        data_info=GUIDE_INFO,
        dataset_length=len(utterances),
        dataset_id=str(tmp_path / "your_dataset_name"),
        split="train",
        client=client,
    )
    validate(cuts)
    return cuts


def audio_dirs(manifest: Path) -> list[Path]:
    return sorted(manifest.parent.glob(f"{manifest.name}.audio-*"))


def test_guide_step_4_file_is_read_by_plain_lhotse(utterances, dask_client, tmp_path):
    cuts = guide_cuts(utterances, tmp_path, dask_client)
    assert isinstance(cuts, RowCutSet)
    # A Dask worker gets the same kind of cut set, and reads the rows itself.
    assert dask_client.submit(lambda c: (type(c).__name__, len(c)), cuts).result() == (
        "RowCutSet",
        len(utterances),
    )
    manifest = tmp_path / "out" / "cuts_train.jsonl.gz"

    cuts.to_file(manifest)

    report = read_with_plain_lhotse(manifest)
    assert report["espnet3 imported"] is False
    assert report["sources"] == ["file"]
    assert report["audio"] == expected_audio(utterances)
    # One audio directory beside the manifest, its files the rows' encoded bytes unchanged.
    [folder] = audio_dirs(manifest)
    assert sorted(p.name for p in manifest.parent.iterdir()) == [manifest.name, folder.name]
    copied = sorted(folder.rglob("*.wav"))
    assert [p.read_bytes() for p in copied] == [Path(u["path"]).read_bytes() for u in utterances]
    # The cuts in this process still read the dataset rows: nothing was copied for them.
    assert {c.recording.sources[0].source.split(":")[0] for c in cuts} == {"hf-row"}
    validate(cuts, read_data=True)


@pytest.mark.parametrize("name", ["cuts_train.jsonl.gz", "cuts_train.json"])
def test_writing_again_replaces_the_manifest_and_its_audio(name, utterances, tmp_path):
    cuts = guide_cuts(utterances, tmp_path)
    manifest = tmp_path / "out" / name
    cuts.to_file(manifest)
    [first] = audio_dirs(manifest)

    RowCutSet(cuts.filter(lambda c: c.id != "train-00000000")).to_file(manifest)

    [second] = audio_dirs(manifest)
    assert second != first and not first.exists()
    assert sorted(p.name for p in manifest.parent.iterdir()) == [manifest.name, second.name]
    report = read_with_plain_lhotse(manifest)
    assert report["audio"] == {
        k: v for k, v in expected_audio(utterances).items() if k != "train-00000000"
    }
    assert {c.recording.sources[0].type for c in cuts} == {"url"}


def test_a_failed_write_leaves_the_earlier_manifest_and_audio(utterances, tmp_path):
    cuts = guide_cuts(utterances, tmp_path)
    manifest = tmp_path / "out" / "cuts_train.jsonl.gz"
    cuts.to_file(manifest)
    before = sorted(p.name for p in manifest.parent.iterdir())
    shutil.rmtree(tmp_path / "your_dataset_name")  # the rows cannot be copied any more
    hf_open._OPENED.clear()
    row_source._COLUMNS.clear()
    with pytest.raises(Espnet3Error, match="cannot be opened"):
        cuts.to_file(manifest)
    assert sorted(p.name for p in manifest.parent.iterdir()) == before  # no staging left
    assert read_with_plain_lhotse(manifest)["audio"] == expected_audio(utterances)


def test_cuts_without_dataset_rows_are_written_as_lhotse_writes_them(utterances, tmp_path):
    cuts = cutset_from_huggingface(INFO, None, hf_dataset(utterances, "paths"), "train")
    cuts.to_file(tmp_path / "ours.jsonl")
    CutSet(list(cuts)).to_file(tmp_path / "lhotse.jsonl")
    assert (tmp_path / "ours.jsonl").read_bytes() == (tmp_path / "lhotse.jsonl").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lhotse.jsonl", "ours.jsonl"]


def test_a_stream_cannot_take_the_audio(utterances, tmp_path):
    cuts = cutset_from_huggingface(
        INFO, None, saved(hf_dataset(utterances, "bytes"), tmp_path), "t"
    )
    with pytest.raises(Espnet3Error, match="'-'.*needs a local path.*CutSet\\(cuts\\)"):
        cuts.to_file("-")
