import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import datasets
import numpy as np
import pytest
import soundfile as sf
from hf_datasets import assert_same_audio, hf_dataset, saved
from lhotse import CutSet, validate

from espnet3.data import row_source
from espnet3.data.fields import resolve_fields
from espnet3.data.huggingface_utils import convert_to_dataset, cutset_from_huggingface
from espnet3.data.row_cuts import row_to_cut
from espnet3.errors import ConfigError, Espnet3Error, ItemError

INFO = {"audio": "audio", "text": "text", "speaker": "speaker", "id": "utt"}
ARRAY_INFO = {"audio": "samples", "sampling_rate": "rate", "text": "text", "id": "utt"}


@pytest.mark.parametrize("mode", ["bytes", "paths", "decoded", "arrays"])
def test_every_audio_mode_on_two_workers(mode, utterances, dask_client, tmp_path):
    info = ARRAY_INFO if mode == "arrays" else INFO
    dataset = hf_dataset(utterances, mode)
    cuts = cutset_from_huggingface(
        info, None, dataset, "train", dask_client, audio_dir=tmp_path / "audio", rows_per_chunk=3
    )
    validate(cuts)
    assert list(cuts.ids) == [u["utt_id"] for u in utterances]  # row order kept across chunks
    assert_same_audio(cuts, utterances)
    if mode != "arrays":
        assert cuts[0].supervisions[0].speaker == utterances[0]["speaker"]
    stored = {c.recording.sources[0].source.rsplit(".", 1)[1] for c in cuts}
    assert stored == {"bytes": {"wav"}, "paths": {"wav"}}.get(mode, {"flac"})


def test_torchcodec_decoded_audio(utterances, tmp_path):
    pytest.importorskip("torchcodec", reason="torchcodec (and FFmpeg) are not installed here")
    dataset = hf_dataset(utterances, "bytes").cast_column("audio", datasets.Audio(decode=True))
    cuts = cutset_from_huggingface(INFO, None, dataset, "x", audio_dir=tmp_path, raw_audio=False)
    assert_same_audio(cuts, utterances)


@pytest.mark.parametrize("where", ["audio_dir", "dataset rows"])
def test_to_file_round_trip_read_in_another_process(where, utterances, dask_client, tmp_path):
    dataset = saved(hf_dataset(utterances, "bytes"), tmp_path)
    audio_dir = tmp_path / "a" if where == "audio_dir" else None
    cuts = cutset_from_huggingface(INFO, None, dataset, "train", dask_client, audio_dir=audio_dir)
    assert {c.recording.sources[0].type for c in cuts} == {"file" if audio_dir else "url"}
    manifest = tmp_path / "cuts.jsonl.gz"
    # As a plain CutSet writes them: sources naming dataset rows stay so (the returned
    # RowCutSet's own to_file copies the audio to share it: test_share_plain_lhotse.py).
    CutSet(cuts).to_file(manifest)
    assert CutSet.from_file(manifest).to_eager() == cuts
    script = (
        "import sys, hashlib, numpy as np; from lhotse import CutSet\n"
        "from espnet3.data.row_source import install\n"
        "install()  # reads sources that name dataset rows\n"
        "for c in CutSet.from_file(sys.argv[1]):\n"
        "    pcm = np.rint(c.load_audio()[0] * 32768).astype(np.int16)\n"
        "    print(c.id, hashlib.sha256(pcm.tobytes()).hexdigest())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(manifest)], capture_output=True, text=True, check=True
    ).stdout
    expected = [
        f"{u['utt_id']} {hashlib.sha256(u['samples'].tobytes()).hexdigest()}" for u in utterances
    ]
    assert out.splitlines() == expected


def test_audio_stays_in_the_dataset_rows_without_audio_dir(
    utterances, dask_client, tmp_path, monkeypatch
):
    """No copy: each cut names its row; an id, a directory and a loaded dataset all work."""
    dataset = hf_dataset(utterances, "bytes")
    datasets.DatasetDict({"train": dataset}).save_to_disk(tmp_path / "dd")
    before = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.chdir(tmp_path)
    by_path = cutset_from_huggingface(INFO, None, "dd", "train", dask_client)
    monkeypatch.chdir(tmp_path.parent)  # the cuts name the directory absolutely
    by_object = cutset_from_huggingface(
        INFO, None, datasets.load_from_disk(tmp_path / "dd"), "train", dask_client
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    for cuts in (by_path, by_object):
        validate(cuts)
        assert {c.recording.sources[0].type for c in cuts} == {"url"}
        assert_same_audio(cuts, utterances)
    source = by_path[0].recording.sources[0].source
    assert source.startswith(f"hf-row:{quote(str(tmp_path / 'dd'), safe='')}|train||")
    assert source.endswith("|audio|0.wav")


def test_rows_a_cut_cannot_point_at_go_to_the_cache_dir(utterances, tmp_path, audio_cache):
    """In memory, no longer as saved, decoded: written under the cache; paths used in place."""
    in_memory = hf_dataset(utterances, "bytes")
    loaded = saved(in_memory, tmp_path)
    # Rows no longer where they were saved: an index mapping, or a slice of the same files.
    changed = (loaded.select([2, 0, 1]), loaded.select(range(3, 6)), loaded.skip(1))
    for dataset in (in_memory, *changed, hf_dataset(utterances, "decoded")):
        cuts = cutset_from_huggingface(INFO, None, dataset, "t")
        folder = audio_cache / "hf_audio" / dataset._fingerprint
        assert {c.recording.sources[0].source.startswith(f"{folder}/") for c in cuts} == {True}
        assert_same_audio(cuts, [u for u in utterances if u["utt_id"] in set(cuts.ids)])
    paths = cutset_from_huggingface(INFO, None, hf_dataset(utterances, "paths"), "t")
    assert [c.recording.sources[0].source for c in paths] == [u["path"] for u in utterances]
    row = {"audio": {"bytes": open(utterances[0]["path"], "rb").read(), "path": None}, "text": "a"}
    with pytest.raises(Espnet3Error, match=r"cannot be re-opened as it is.*give audio_dir"):
        row_to_cut(row, 0, resolve_fields(None), None)  # neither a dataset nor a cache to use


def _reopened_elsewhere():
    """Forget opened datasets, as a new process reading the cuts would."""
    from espnet3.data import hf_open

    hf_open._OPENED.clear()
    row_source._COLUMNS.clear()


def test_a_dataset_changed_after_conversion_is_refused_when_read(utterances, tmp_path):
    """Same rows reordered, fewer rows, or gone: never another row's audio."""
    dataset = hf_dataset(utterances, "bytes")
    cuts = cutset_from_huggingface(INFO, None, saved(dataset, tmp_path), "t")
    for rewrite in (dataset.select([1, 0, *range(2, len(dataset))]), dataset.select([0, 1])):
        shutil.rmtree(tmp_path / "saved")
        saved(rewrite.flatten_indices(), tmp_path)
        _reopened_elsewhere()
        with pytest.raises(Espnet3Error, match=r"changed since the cuts were made \(fingerprint"):
            cuts[0].load_audio()
    shutil.rmtree(tmp_path / "saved")
    _reopened_elsewhere()
    with pytest.raises(Espnet3Error, match=r"cannot be opened .*put it back where it was"):
        cuts[0].load_audio()


def test_a_row_beyond_the_dataset_is_named(utterances, tmp_path):
    from espnet3.data.hf_open import fingerprint

    cuts = cutset_from_huggingface(
        INFO, None, saved(hf_dataset(utterances, "bytes"), tmp_path), "t"
    )
    reference, stamp, column, _ = row_source.parse_row_url(cuts[0].recording.sources[0].source)
    assert stamp == fingerprint(reference)
    url = row_source.row_url(reference, stamp, column, len(utterances), "wav")
    with pytest.raises(Espnet3Error, match=rf"row {len(utterances)} is beyond the"):
        row_source.read_row_audio(url)


def test_first_bad_row_is_reported_whatever_chunk_finishes_first(utterances, dask_client, tmp_path):
    rows = _bad_rows(utterances)  # rows 1, 2 and 3 are bad
    info = {"audio": "audio", "text": "text", "id": "utt"}
    for _ in range(3):
        with pytest.raises(ItemError, match=r"^row 1 ") as err:
            cutset_from_huggingface(
                info, None, rows, "t", dask_client, audio_dir=tmp_path, rows_per_chunk=1
            )
        assert err.value.index == 1


def test_ids_are_stable_and_default_to_split_and_row(utterances, tmp_path):
    dataset = hf_dataset(utterances, "paths")
    info = {"audio": "audio", "text": "text"}
    first = cutset_from_huggingface(info, None, dataset, "dev", audio_dir=tmp_path)
    again = cutset_from_huggingface(info, None, dataset, "dev", audio_dir=tmp_path)
    assert list(first.ids) == list(again.ids) == [f"dev-{i:08d}" for i in range(len(utterances))]
    limited = cutset_from_huggingface(info, 3, dataset, "dev", audio_dir=tmp_path)
    assert list(limited.ids) == list(first.ids)[:3]


def test_dataset_ids_resolved_by_each_worker(utterances, dask_client, tmp_path):
    dataset = hf_dataset(utterances, "bytes")
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": dataset}).save_to_disk(saved)
    cuts = cutset_from_huggingface(
        INFO,
        len(utterances),
        str(saved),
        "train",
        dask_client,
        audio_dir=tmp_path / "a1",
        rows_per_chunk=4,
    )
    validate(cuts)
    assert_same_audio(cuts, utterances)
    parquet_dir = tmp_path / "parquet"
    parquet_dir.mkdir()
    dataset.to_parquet(parquet_dir / "train-00000.parquet")
    # A data directory: load_dataset builds it, and so does each reader of the row sources.
    from_parquet = cutset_from_huggingface(INFO, None, str(parquet_dir), "train", dask_client)
    assert {c.recording.sources[0].type for c in from_parquet} == {"url"}
    assert list(from_parquet.ids) == list(cuts.ids)
    assert_same_audio(from_parquet, utterances)


def test_split_of_a_dataset_dict_and_custom_fields(utterances, tmp_path):
    dd = datasets.DatasetDict({"test": hf_dataset(utterances, "paths")})
    info = {**INFO, "length": lambda row: len(row["text"])}
    cuts = cutset_from_huggingface(info, None, dd, "test", audio_dir=tmp_path)
    assert cuts[0].custom == {"length": len(utterances[0]["text"])}
    with pytest.raises(
        ConfigError, match=r"split 'train' is not in the dataset \(it has \['test'\]\)"
    ):
        cutset_from_huggingface(info, None, dd, "train", audio_dir=tmp_path)


def _bad_rows(utterances):
    rows = [
        {
            "audio": {"bytes": open(u["path"], "rb").read(), "path": None},
            "text": u["text"],
            "utt": u["utt_id"],
        }
        for u in utterances[:5]
    ]
    rows[1]["audio"] = None
    rows[2]["audio"] = {"bytes": b"not audio at all", "path": None}
    rows[3]["text"] = "  "
    return datasets.Dataset.from_list(rows)


def test_bad_row_raises_naming_it(utterances, dask_client, tmp_path):
    info = {"audio": "audio", "text": "text", "id": "utt"}
    with pytest.raises(
        ItemError, match=rf"row 1 \(utt_id '{utterances[1]['utt_id']}'\).*audio is missing"
    ) as err:
        cutset_from_huggingface(
            info, None, _bad_rows(utterances), "t", dask_client, audio_dir=tmp_path
        )
    assert err.value.index == 1


def test_bad_rows_skipped_and_recorded(utterances, dask_client, tmp_path):
    info = {"audio": "audio", "text": "text", "id": "utt"}
    cuts = cutset_from_huggingface(
        info,
        None,
        _bad_rows(utterances),
        "t",
        dask_client,
        audio_dir=tmp_path,
        on_error="skip",
        errors_path=tmp_path / "errors.jsonl",
        rows_per_chunk=2,
    )
    assert list(cuts.ids) == [utterances[0]["utt_id"], utterances[4]["utt_id"]]
    recorded = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert [e["index"] for e in recorded] == [1, 2, 3]
    assert "audio is missing" in recorded[0]["error"]
    assert "unreadable" in recorded[1]["error"]
    assert "text is empty" in recorded[2]["error"]
    assert recorded[2]["utt_id"] == utterances[3]["utt_id"]


def test_configuration_errors(utterances, tmp_path):
    dataset = hf_dataset(utterances, "paths")
    with pytest.raises(ConfigError, match=r"data_info lacks \['text'\]"):
        cutset_from_huggingface({"audio": "audio"}, None, dataset, "t", audio_dir=tmp_path)
    with pytest.raises(ConfigError, match="on_error must be one of"):
        cutset_from_huggingface(INFO, None, dataset, "t", audio_dir=tmp_path, on_error="ignore")
    dup = {**INFO, "id": lambda row: "same"}
    with pytest.raises(Exception, match="utterance id 'same' occurs more than once"):
        cutset_from_huggingface(dup, None, dataset, "t", audio_dir=tmp_path)
    with pytest.raises(ConfigError, match="cannot open dataset"):
        cutset_from_huggingface(INFO, None, str(tmp_path / "nope"), "t", audio_dir=tmp_path)
    for bad in (-1, "5", 2.5):
        with pytest.raises(ConfigError, match=r"dataset_length must be"):
            cutset_from_huggingface(INFO, bad, dataset, "t", audio_dir=tmp_path)


def test_dataset_length_beyond_the_dataset_and_errors_outside_rows(
    utterances, dask_client, tmp_path
):
    datasets.DatasetDict({"train": hf_dataset(utterances, "bytes")}).save_to_disk(tmp_path / "dd")
    n = len(utterances)
    cuts = cutset_from_huggingface(
        INFO, n + 5, str(tmp_path / "dd"), "train", dask_client, rows_per_chunk=2
    )
    assert list(cuts.ids) == [u["utt_id"] for u in utterances]
    # Given a length, only the workers open the dataset: their error names the rows and why.
    with pytest.raises(ItemError, match=r"^rows \d+\.\.\d+ of .* split 'dev' failed: split 'dev' "):
        cutset_from_huggingface(
            INFO, 4, str(tmp_path / "dd"), "dev", dask_client, audio_dir=tmp_path / "a"
        )


def test_multichannel_rows_keep_every_channel(tmp_path):
    from espnet3.data.dataset import ESPnet3Dataset

    stereo = np.stack([np.arange(800), -np.arange(800)], axis=1).astype(np.int16)
    buf = io.BytesIO()
    sf.write(buf, stereo, 8000, format="WAV")
    dataset = datasets.Dataset.from_dict(
        {"audio": [{"bytes": buf.getvalue(), "path": None}], "text": ["two"]}
    ).cast_column("audio", datasets.Audio(decode=False))
    for audio_dir in (tmp_path / "a", None):
        source = dataset if audio_dir else saved(dataset, tmp_path)
        cuts = cutset_from_huggingface(None, None, source, "t", audio_dir=audio_dir)
        validate(cuts, read_data=True)
        assert cuts[0].num_channels == 2
        np.testing.assert_array_equal(np.rint(cuts[0].load_audio().T * 32768), stereo)
        from_cuts = ESPnet3Dataset(cuts)[0]["speech"]
        assert from_cuts.shape == ESPnet3Dataset(dataset, data_info=None)[0]["speech"].shape


def test_sphere_audio_becomes_flac_lhotse_can_read(an4_sphere_dir, tmp_path, audio_cache):
    sph = sorted(an4_sphere_dir.glob("wav/*/*/*.sph"))[0]
    rows = {"audio": [{"bytes": sph.read_bytes(), "path": None}], "text": ["a"], "p": [str(sph)]}
    dataset = datasets.Dataset.from_dict(rows)
    samples = np.rint(sf.read(sph, dtype="float32")[0] * 32768)
    for info in ({"audio": "audio", "text": "text"}, {"audio": "p", "text": "text"}):
        cuts = cutset_from_huggingface(info, None, dataset, "t", audio_dir=tmp_path / "a")
        assert cuts[0].recording.sources[0].source.endswith(".flac")
        validate(cuts, read_data=True)
        np.testing.assert_array_equal(np.rint(cuts[0].load_audio()[0] * 32768), samples)
    cached = cutset_from_huggingface({"audio": "p", "text": "text"}, None, dataset, "t")
    assert cached[0].recording.sources[0].source.startswith(f"{audio_cache}/")
    np.testing.assert_array_equal(np.rint(cached[0].load_audio()[0] * 32768), samples)
    fields = resolve_fields({"audio": "p", "text": "text"})
    with pytest.raises(Espnet3Error, match=r"SPHERE audio, which Lhotse reads only through"):
        row_to_cut(dataset[0], 0, fields, None)  # neither audio_dir nor a cache to use


@pytest.mark.parametrize("mode", ["bytes", "decoded"])
def test_convert_to_dataset_via_client_map(mode, utterances, dask_client):
    dataset = hf_dataset(utterances, mode)
    futures = dask_client.map(convert_to_dataset, list(dataset), data_info=INFO, pure=False)
    items = dask_client.gather(futures)
    for item, source in zip(items, utterances, strict=True):
        assert item["utt_id"] == source["utt_id"]
        assert item["speech"].dtype == np.float32
        np.testing.assert_array_equal(
            np.rint(item["speech"] * 32768).astype(np.int16), source["samples"]
        )
        assert (item["text"], item["speaker"], item["sampling_rate"]) == (
            source["text"],
            source["speaker"],
            source["sampling_rate"],
        )


def test_ids_that_differ_only_in_unsafe_characters_get_their_own_files(
    generated_utterances, tmp_path
):
    """``spk/utt1`` and ``spk_utt1`` once shared one file: the second replaced the first."""
    two = [
        dict(generated_utterances[0], utt_id="spk/utt1"),
        dict(generated_utterances[3], utt_id="spk_utt1"),
    ]
    dataset = hf_dataset(two, "bytes")
    info = {"audio": "audio", "text": "text", "id": "utt"}
    cuts = cutset_from_huggingface(info, None, dataset, "t", audio_dir=tmp_path / "audio")
    paths = [cut.recording.sources[0].source for cut in cuts]
    assert len(set(paths)) == 2 and Path(paths[0]).name.startswith("spk%2Futt1.")
    assert_same_audio(cuts, two)


def test_non_finite_samples_are_refused_or_recorded_never_written(tmp_path):
    """A row whose array holds NaN and inf would become a FLAC of zeros and full-scale clicks."""
    good = np.sin(np.linspace(0, 60, 1600)).astype(np.float32) * 0.3
    bad = good.copy()
    bad[[5, 9]] = [np.nan, np.inf]
    dataset = datasets.Dataset.from_dict(
        {
            "audio": [{"array": a, "sampling_rate": 16000} for a in (good, bad, good)],
            "text": ["a", "b", "c"],
            "utt": ["ok0", "nan1", "ok2"],
        }
    )
    info = {"audio": "audio", "text": "text", "id": "utt"}
    with pytest.raises(ItemError, match=r"row 1 \(utt_id 'nan1'\).*2 non-finite samples"):
        cutset_from_huggingface(info, None, dataset, "t", audio_dir=tmp_path / "a")
    cuts = cutset_from_huggingface(
        info,
        None,
        dataset,
        "t",
        audio_dir=tmp_path / "b",
        on_error="skip",
        errors_path=tmp_path / "errors.jsonl",
    )
    assert list(cuts.ids) == ["ok0", "ok2"]
    (record,) = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert record["utt_id"] == "nan1" and "first at sample 5" in record["error"]
    assert not list((tmp_path / "b").rglob("*nan1*"))
