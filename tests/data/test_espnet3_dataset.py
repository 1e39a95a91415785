import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hf_datasets import data_directory, hf_dataset
from lhotse import CutSet

from espnet3.components.data.collate import CommonCollateFn
from espnet3.components.data.data_organizer import DataOrganizer
from espnet3.data.dataset import ESPnet3Dataset
from espnet3.data.huggingface_utils import cutset_from_huggingface
from espnet3.errors import ConfigError, Espnet3Error

INFO = {"audio": "audio", "text": "text", "speaker": "speaker", "id": "utt"}


def as_int16(speech):
    return np.rint(speech * 32768).astype(np.int16)


def assert_items(dataset, utterances):
    assert len(dataset) == len(utterances)
    assert dataset.uids() == [u["utt_id"] for u in utterances]
    for i, source in enumerate(utterances):
        item = dataset[i]
        assert item["utt_id"] == source["utt_id"]
        assert item["speech"].dtype == np.float32
        np.testing.assert_array_equal(as_int16(item["speech"]), source["samples"])
        assert item["text"] == source["text"]
        assert item["sampling_rate"] == source["sampling_rate"]


@pytest.mark.parametrize("mode", ["bytes", "paths", "decoded"])
def test_hf_dataset(mode, utterances):
    assert_items(ESPnet3Dataset(hf_dataset(utterances, mode), data_info=INFO), utterances)


def test_hf_dataset_dict_split_default_ids(utterances):
    import datasets

    dd = datasets.DatasetDict({"dev": hf_dataset(utterances, "paths")})
    dataset = ESPnet3Dataset(dd, split="dev", data_info={"audio": "audio", "text": "text"})
    assert dataset.uids()[:2] == ["dev-00000000", "dev-00000001"]
    assert dataset[-1]["utt_id"] == f"dev-{len(utterances) - 1:08d}"
    with pytest.raises(IndexError, match="out of range"):
        dataset[len(utterances)]


def test_the_guides_sharing_example_loads_without_a_split(utterances, tmp_path, monkeypatch):
    """Guide section 2: ``ESPnet3Dataset(load_dataset(name))``, a DatasetDict of one split."""
    from datasets import load_dataset

    monkeypatch.chdir(tmp_path)
    data_directory(utterances, tmp_path / "your_dataset_name")

    hf_dataset = load_dataset("your_dataset_name")
    dataset = ESPnet3Dataset(hf_dataset)

    assert len(dataset) == len(utterances)
    for item, source in zip(dataset, utterances, strict=True):
        np.testing.assert_array_equal(as_int16(item["speech"]), source["samples"])
        assert (item["text"], item["sampling_rate"]) == (source["text"], source["sampling_rate"])
    hf_dataset.save_to_disk(tmp_path / "saved")  # a DatasetDict directory, by path
    assert len(ESPnet3Dataset(tmp_path / "saved")) == len(utterances)


def test_several_splits_need_split_and_the_error_lists_them(utterances, tmp_path):
    from datasets import load_dataset

    data_directory(utterances, tmp_path / "d", splits=("train", "test"))
    both = load_dataset(str(tmp_path / "d"))
    with pytest.raises(ConfigError, match=r"2 splits \['test', 'train'\]: choose one with split="):
        ESPnet3Dataset(both)
    assert_items(ESPnet3Dataset(both, split="test", data_info=INFO), utterances)
    with pytest.raises(ConfigError, match=r"2 splits \['test', 'train'\]: choose one with split="):
        cutset_from_huggingface(INFO, None, str(tmp_path / "d"), None, audio_dir=tmp_path / "a")


@pytest.mark.parametrize("where", ["audio_dir", "dataset rows"])
def test_cutset_and_cut_manifest(where, utterances, tmp_path):
    if where == "audio_dir":
        source, audio_dir = hf_dataset(utterances, "bytes"), tmp_path / "a"
    else:
        hf_dataset(utterances, "bytes").save_to_disk(tmp_path / "saved")
        source, audio_dir = str(tmp_path / "saved"), None
    cuts = cutset_from_huggingface(INFO, None, source, "t", audio_dir=audio_dir)
    assert_items(ESPnet3Dataset(cuts), utterances)
    assert ESPnet3Dataset(cuts)[0]["speaker"] == utterances[0]["speaker"]
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    assert_items(ESPnet3Dataset(tmp_path / "cuts.jsonl.gz"), utterances)
    cuts.to_file(tmp_path / "cuts.jsonl")
    assert_items(ESPnet3Dataset(tmp_path / "cuts.jsonl"), utterances)


def _relative_copies(utterances, directory):
    (directory / "wav").mkdir(parents=True)
    for u in utterances:
        sf.write(directory / "wav" / f"{u['utt_id']}.wav", u["samples"], u["sampling_rate"])


def test_tsv_jsonl_and_kaldi_manifests_with_relative_paths(utterances, tmp_path):
    _relative_copies(utterances, tmp_path)
    (tmp_path / "list.tsv").write_text(
        "".join(f"{u['utt_id']}\twav/{u['utt_id']}.wav\t{u['text']}\n" for u in utterances)
    )
    assert_items(ESPnet3Dataset(tmp_path / "list.tsv"), utterances)
    lines = [
        json.dumps(
            {
                "utt_id": u["utt_id"],
                "audio": f"wav/{u['utt_id']}.wav",
                "text": u["text"],
                "speaker": u["speaker"],
            }
        )
        for u in utterances
    ]
    (tmp_path / "list.jsonl").write_text("\n".join(lines) + "\n")
    jsonl = ESPnet3Dataset(tmp_path / "list.jsonl")
    assert_items(jsonl, utterances)
    assert jsonl[0]["speaker"] == utterances[0]["speaker"]
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    ordered = sorted(utterances, key=lambda u: u["utt_id"])
    (kaldi / "wav.scp").write_text(
        "".join(f"{u['utt_id']} ../wav/{u['utt_id']}.wav\n" for u in ordered)
    )
    (kaldi / "text").write_text("".join(f"{u['utt_id']} {u['text']}\n" for u in ordered))
    (kaldi / "utt2spk").write_text("".join(f"{u['utt_id']} {u['speaker']}\n" for u in ordered))
    kaldi_ds = ESPnet3Dataset(kaldi)
    assert_items(kaldi_ds, ordered)
    assert kaldi_ds[0]["speaker"] == ordered[0]["speaker"]


def test_manifest_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("u1\ta.wav\n")
    with pytest.raises(Espnet3Error, match=r"bad.tsv:1 has 2 tab-separated fields, expected 3"):
        ESPnet3Dataset(bad)
    piped = tmp_path / "k"
    piped.mkdir()
    (piped / "wav.scp").write_text("u1 sph2pipe -f wav a.sph |\n")
    (piped / "text").write_text("u1 hi\n")
    with pytest.raises(Espnet3Error, match="piped audio .* is not supported"):
        ESPnet3Dataset(piped)
    missing = tmp_path / "m.tsv"
    missing.write_text("u1\tnope.wav\thi\n")
    with pytest.raises(Espnet3Error, match="nope.wav' does not exist"):
        ESPnet3Dataset(missing)[0]
    with pytest.raises(ConfigError, match="cannot read a int"):
        ESPnet3Dataset(3)


def test_inside_data_organizer_and_common_collate(utterances, tmp_path):
    _relative_copies(utterances, tmp_path)
    (tmp_path / "list.tsv").write_text(
        "".join(f"{u['utt_id']}\twav/{u['utt_id']}.wav\t{u['text']}\n" for u in utterances)
    )
    organizer = DataOrganizer(
        test=[
            {
                "name": "an4",
                "dataset": {
                    "_target_": "espnet3.data.dataset.ESPnet3Dataset",
                    "source": str(tmp_path / "list.tsv"),
                },
            }
        ],
        use_espnet_collator=True,
    )
    test_set = organizer.test["an4"]
    pairs = [test_set[i] for i in range(3)]
    assert [uid for uid, _ in pairs] == [u["utt_id"] for u in utterances[:3]]
    uids, batch = CommonCollateFn()(
        [(uid, {"speech": s["speech"], "text": s["text"]}) for uid, s in pairs]
    )
    assert uids == [u["utt_id"] for u in utterances[:3]]
    lengths = [len(u["samples"]) for u in utterances[:3]]
    assert batch["speech_lengths"].tolist() == lengths
    assert batch["speech"].shape == (3, max(lengths))
    first = batch["speech"][0, : lengths[0]].numpy()
    np.testing.assert_array_equal(as_int16(first), utterances[0]["samples"])
    assert batch["text"] == [u["text"] for u in utterances[:3]]


def test_lazy_cutset_is_made_eager(utterances, tmp_path):
    cuts = cutset_from_huggingface(
        INFO, None, hf_dataset(utterances, "paths"), "t", audio_dir=tmp_path
    )
    cuts.to_file(tmp_path / "c.jsonl.gz")
    assert ESPnet3Dataset(CutSet.from_file(tmp_path / "c.jsonl.gz")).uids() == list(cuts.ids)


def _zero_channel_wav(path) -> bytes:
    """A real WAV file whose header then claims 0 channels."""
    import struct

    data = bytearray(Path(path).read_bytes())
    fmt = data.find(b"fmt ") + 8
    struct.pack_into("<H", data, fmt + 2, 0)
    return bytes(data)


def test_a_corrupt_wav_header_is_refused_naming_index_and_utt_id(generated_utterances, tmp_path):
    import datasets

    from espnet3.errors import ItemError

    rows = generated_utterances[:3]
    audio = [{"bytes": Path(u["path"]).read_bytes(), "path": None} for u in rows]
    audio[1] = {"bytes": _zero_channel_wav(rows[1]["path"]), "path": None}
    dataset = datasets.Dataset.from_dict(
        {"audio": audio, "text": [u["text"] for u in rows], "utt": [u["utt_id"] for u in rows]}
    ).cast_column("audio", datasets.Audio(decode=False))
    info = {"audio": "audio", "text": "text", "id": "utt"}
    with pytest.raises(ItemError, match=r"row 1 \(utt_id 'gen1'\).*Channel count is zero"):
        cutset_from_huggingface(info, None, dataset, "t", audio_dir=tmp_path / "a")
    items = ESPnet3Dataset(dataset, data_info=info)
    assert items[0]["utt_id"] == "gen0"
    with pytest.raises(ItemError, match=r"^item 1 \(utt_id 'gen1'\) of the dataset: .*zero") as err:
        items[1]
    assert "BytesIO" not in str(err.value) and err.value.index == 1


def test_non_finite_samples_are_refused_naming_the_item(tmp_path):
    import datasets

    from espnet3.errors import ItemError

    bad = np.zeros(1600, np.float32)
    bad[3:] = np.nan
    dataset = datasets.Dataset.from_dict(
        {
            "audio": [
                {"array": a, "sampling_rate": 16000} for a in (np.zeros(1600, np.float32), bad)
            ],
            "text": ["a", "b"],
            "utt": ["ok0", "nan1"],
        }
    )
    items = ESPnet3Dataset(dataset, data_info={"audio": "audio", "text": "text", "id": "utt"})
    assert np.isfinite(items[0]["speech"]).all()
    with pytest.raises(ItemError, match=r"item 1 \(utt_id 'nan1'\).*1597 non-finite samples"):
        items[1]
