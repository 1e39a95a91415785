"""Cuts written in parts by the workers: the lazy result, resume, and plain Lhotse reading it."""

import gzip
import json
import os
import subprocess
import sys

import pytest
from hf_datasets import assert_same_audio, hf_dataset, saved
from lhotse import CutSet

from espnet3.data import hf_to_lhotse
from espnet3.data.huggingface_utils import cutset_from_huggingface
from espnet3.data.manifest_parts import part_name
from espnet3.errors import Espnet3Error, ItemError
from espnet3.utils.atomic import temp_name

INFO = {"audio": "audio", "text": "text", "speaker": "speaker", "id": "utt"}


def convert(dataset, client, **kwargs):
    return cutset_from_huggingface(INFO, None, dataset, "train", client, rows_per_chunk=3, **kwargs)


def test_lazy_result_equals_the_eager_one_cut_for_cut(utterances, dask_client, tmp_path):
    dataset = saved(hf_dataset(utterances, "bytes"), tmp_path)
    eager = convert(dataset, dask_client)
    lazy = convert(dataset, dask_client, manifest_dir=tmp_path / "m")
    assert not eager.is_lazy and lazy.is_lazy
    assert list(lazy) == list(eager)
    assert_same_audio(lazy, utterances)  # the lazy cuts read the dataset rows in this process
    n_parts = -(-len(utterances) // 3)
    assert sorted(p.name for p in (tmp_path / "m" / "parts").glob("*.jsonl.gz")) == [
        part_name(n) for n in range(n_parts)
    ]
    # The combined manifest is the parts one after another.
    parts = CutSet.from_files(sorted((tmp_path / "m" / "parts").glob("*.jsonl.gz")), False)
    assert list(parts) == list(eager)


def test_above_the_threshold_the_cuts_go_in_parts_under_the_cache(
    utterances, audio_cache, caplog, monkeypatch
):
    dataset = hf_dataset(utterances, "paths")
    monkeypatch.setattr(hf_to_lhotse, "EAGER_MAX_ROWS", len(utterances) - 1)
    assert not convert(dataset, None, lazy=False).is_lazy
    assert not list(audio_cache.glob("hf_cuts/*"))
    cuts = convert(dataset, None)
    assert cuts.is_lazy and len(list(cuts)) == len(utterances)
    written = list(audio_cache.glob("hf_cuts/*/cuts.jsonl.gz"))
    assert len(written) == 1
    assert str(written[0].parent) in caplog.text  # the log line names where


def test_plain_lhotse_reads_the_parts_lazily_without_espnet3(utterances, dask_client, tmp_path):
    saved(hf_dataset(utterances, "bytes"), tmp_path)  # named by path: each worker opens it
    convert(
        str(tmp_path / "saved"), dask_client, manifest_dir=tmp_path / "m", audio_dir=tmp_path / "a"
    )
    script = (
        "import sys, glob\n"
        "from lhotse import CutSet\n"
        "parts = CutSet.from_files(sorted(glob.glob(sys.argv[1] + '/parts/*.jsonl.gz')), False)\n"
        "combined = CutSet.from_jsonl_lazy(sys.argv[1] + '/cuts.jsonl.gz')\n"
        "assert parts.is_lazy and combined.is_lazy\n"
        "ids = [c.id for c in parts]\n"
        "assert ids == [c.id for c in combined]\n"
        "total = sum(c.load_audio().shape[1] for c in combined)\n"
        "assert 'espnet3' not in sys.modules, 'espnet3 was imported'\n"
        "print(len(ids), total)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "m")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    count, samples = map(int, done.stdout.split())
    assert count == len(utterances)
    assert samples == sum(len(u["samples"]) for u in utterances)


def test_resume_converts_only_the_parts_that_are_not_whole(utterances, dask_client, tmp_path):
    dataset = saved(hf_dataset(utterances, "bytes"), tmp_path)
    clean = list(convert(dataset, None, manifest_dir=tmp_path / "clean"))
    target = tmp_path / "m"
    convert(dataset, dask_client, manifest_dir=target)
    parts = target / "parts"
    # A killed run: part 1 cut short (its record still says the whole size), part 2's record
    # never written, and a temporary file a killed writer left.
    damaged = parts / part_name(1)
    damaged.write_bytes(damaged.read_bytes()[:-7])
    (parts / "cuts.00002.json").unlink()
    dead = 2**22 + 1
    stale = parts / (
        os.path.basename(temp_name(parts / part_name(3))).rsplit("-", 1)[0] + f"-{dead}.tmp"
    )
    stale.write_bytes(b"half a part")
    untouched = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.jsonl.gz")}
    (target / "cuts.jsonl.gz").unlink()

    resumed = convert(dataset, dask_client, manifest_dir=target)
    assert list(resumed) == clean
    rewritten = {
        p.name for p in parts.glob("*.jsonl.gz") if p.stat().st_mtime_ns != untouched[p.name]
    }
    assert rewritten == {part_name(1), part_name(2)}
    assert not stale.exists()
    with gzip.open(target / "cuts.jsonl.gz", "rt") as f:
        assert [json.loads(line)["id"] for line in f] == [c.id for c in clean]


def test_parts_of_other_settings_are_replaced_not_mixed(utterances, tmp_path):
    dataset = saved(hf_dataset(utterances, "bytes"), tmp_path)
    convert(dataset, None, manifest_dir=tmp_path / "m")
    other = cutset_from_huggingface(
        {**INFO, "text": lambda row: row["text"].lower()},
        None,
        dataset,
        "train",
        rows_per_chunk=3,
        manifest_dir=tmp_path / "m",
    )
    assert [c.supervisions[0].text for c in other] == [u["text"].lower() for u in utterances]


def test_bad_rows_and_duplicate_ids_are_found_in_parts_too(utterances, tmp_path):
    dataset = hf_dataset(utterances, "bytes")
    same_id = {**INFO, "id": lambda row: "one"}
    with pytest.raises(Espnet3Error, match="'one' occurs more than once"):
        cutset_from_huggingface(same_id, None, dataset, "t", manifest_dir=tmp_path / "d")

    def text(row):
        if row["utt"] == utterances[4]["utt_id"]:
            raise ValueError("no text")
        return row["text"]

    bad = {**INFO, "text": text}
    with pytest.raises(ItemError, match="row 4 .*no text"):
        cutset_from_huggingface(
            bad, None, dataset, "t", rows_per_chunk=2, manifest_dir=tmp_path / "b"
        )
    # Resumed with the bad row's part done: the same error, without converting anything.
    with pytest.raises(ItemError, match="row 4 .*no text"):
        cutset_from_huggingface(
            bad, None, dataset, "t", rows_per_chunk=2, manifest_dir=tmp_path / "b"
        )
    errors = tmp_path / "errors.jsonl"
    kept = cutset_from_huggingface(
        bad,
        None,
        dataset,
        "t",
        rows_per_chunk=2,
        manifest_dir=tmp_path / "b",
        on_error="skip",
        errors_path=errors,
    )
    assert len(list(kept)) == len(utterances) - 1
    assert [json.loads(line)["index"] for line in errors.read_text().splitlines()] == [4]


def test_espnet3_dataset_reads_the_parts_by_part_and_equals_the_eager_set(
    utterances, dask_client, tmp_path
):
    import pickle

    import numpy as np

    from espnet3.data.dataset import ESPnet3Dataset
    from espnet3.data.input_kinds import CutReader, PartsReader

    dataset = saved(hf_dataset(utterances, "bytes"), tmp_path)
    eager = ESPnet3Dataset(convert(dataset, dask_client))
    lazy_cuts = convert(dataset, dask_client, manifest_dir=tmp_path / "m")
    for lazy in (ESPnet3Dataset(lazy_cuts), ESPnet3Dataset(tmp_path / "m")):
        assert isinstance(lazy._reader, PartsReader)
        assert len(lazy) == len(eager) and lazy.uids() == eager.uids()
        for index in (4, 0, len(eager) - 1, 5, -1):  # across parts, back and forth
            a, b = lazy[index], eager[index]
            assert a.keys() == b.keys() and a["text"] == b["text"]
            assert np.array_equal(a["speech"], b["speech"])
        again = pickle.loads(pickle.dumps(lazy))  # as a DataLoader worker gets it
        assert again[2]["utt_id"] == eager[2]["utt_id"]
    # A part rewritten since the manifest was combined: read eagerly from the manifest.
    part = tmp_path / "m" / "parts" / part_name(0)
    part.write_bytes(part.read_bytes() + gzip.compress(b""))
    assert isinstance(ESPnet3Dataset(tmp_path / "m")._reader, CutReader)


def test_the_lazy_result_is_shared_by_streaming_its_audio_beside_the_manifest(utterances, tmp_path):
    dataset = saved(hf_dataset(utterances, "bytes"), tmp_path)
    lazy = convert(dataset, None, manifest_dir=tmp_path / "m")
    lazy.to_file(tmp_path / "shared" / "cuts.jsonl.gz")
    shared = CutSet.from_file(tmp_path / "shared" / "cuts.jsonl.gz")
    assert {c.recording.sources[0].type for c in shared} == {"file"}
    assert [c.id for c in shared] == [u["utt_id"] for u in utterances]
    assert_same_audio(shared, utterances)


KILLED_SCRIPT = """
import sys, time
from espnet3.data.hf_to_lhotse import cutset_from_huggingface

def text(row):
    time.sleep(0.003)
    return row["text"]

cuts = cutset_from_huggingface(
    {"audio": "audio", "text": text}, None, sys.argv[1], None,
    manifest_dir=sys.argv[2], rows_per_chunk=10,
)
print(sum(1 for _ in cuts))
"""


def test_a_killed_conversion_resumes_from_its_whole_parts(utterances, tmp_path):
    import signal
    import time

    import datasets

    rows = datasets.concatenate_datasets([hf_dataset(utterances, "bytes")] * 30)
    rows.save_to_disk(tmp_path / "rows")
    script = tmp_path / "convert.py"
    script.write_text(KILLED_SCRIPT)
    target, parts = tmp_path / "m", tmp_path / "m" / "parts"
    command = [sys.executable, str(script), str(tmp_path / "rows")]
    killed = subprocess.Popen([*command, str(target)], stdout=subprocess.PIPE)
    while len(list(parts.glob("cuts.*.json"))) < 3 and killed.poll() is None:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (target / "cuts.jsonl.gz").exists()  # it died before the end
    kept = {p.name: p.stat().st_mtime_ns for p in parts.glob("cuts.*.json")}
    assert 3 <= len(kept) < len(rows) // 10

    resumed = subprocess.run([*command, str(target)], capture_output=True, text=True)
    clean = subprocess.run([*command, str(tmp_path / "clean")], capture_output=True, text=True)
    assert resumed.returncode == 0 and clean.returncode == 0, resumed.stderr + clean.stderr
    assert int(resumed.stdout) == int(clean.stdout) == len(rows)
    assert {n: parts.joinpath(n).stat().st_mtime_ns for n in kept} == kept  # not redone
    read = lambda d: [c.to_dict() for c in CutSet.from_jsonl_lazy(d / "cuts.jsonl.gz")]  # noqa: E731
    assert read(target) == read(tmp_path / "clean")
