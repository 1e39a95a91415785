"""Kaldi ``feats.scp`` directories read as ESPnet3 items, archives written by kaldiio itself."""

import kaldiio
import numpy as np
import pytest

from espnet3.components.data.collate import CommonCollateFn
from espnet3.data.dataset import ESPnet3Dataset
from espnet3.errors import Espnet3Error


def features(utterances, dtype=np.float32):
    """A (frames, 4) matrix per utterance, computed from its samples (frames of 160)."""
    out = {}
    for u in utterances:
        frames = u["samples"][: len(u["samples"]) // 160 * 160].reshape(-1, 160) / 32768.0
        energy = np.log(np.mean(frames**2, axis=1) + 1e-8)
        out[u["utt_id"]] = np.stack(
            [energy, frames.mean(1), frames.std(1), np.abs(frames).max(1)], axis=1
        ).astype(dtype)
    return out


def kaldi_dir(directory, utterances, feats, *, text=True, speakers=True):
    directory.mkdir(parents=True, exist_ok=True)
    ordered = sorted(utterances, key=lambda u: u["utt_id"])
    with kaldiio.WriteHelper(f"ark,scp:{directory}/feats.ark,{directory}/feats.scp") as write:
        for u in ordered:
            write(u["utt_id"], feats[u["utt_id"]])
    if text:
        (directory / "text").write_text("".join(f"{u['utt_id']} {u['text']}\n" for u in ordered))
    if speakers:
        (directory / "utt2spk").write_text(
            "".join(f"{u['utt_id']} {u['speaker']}\n" for u in ordered)
        )
    return ordered


def test_feats_scp_directory_items(utterances, tmp_path):
    feats = features(utterances)
    ordered = kaldi_dir(tmp_path / "train", utterances, feats)
    for source in (tmp_path / "train", tmp_path / "train" / "feats.scp"):
        dataset = ESPnet3Dataset(source)
        assert dataset.uids() == [u["utt_id"] for u in ordered]
        for item, u in zip(dataset, ordered, strict=True):
            assert sorted(item) == ["feats", "speaker", "text", "utt_id"]
            assert item["feats"].dtype == np.float32
            np.testing.assert_array_equal(item["feats"], feats[u["utt_id"]])
            assert (item["text"], item["speaker"]) == (u["text"], u["speaker"])
    uids, batch = CommonCollateFn()([(i["utt_id"], {"feats": i["feats"]}) for i in dataset])
    assert batch["feats_lengths"].tolist() == [len(feats[u]) for u in uids]
    assert batch["feats"].shape[2] == 4


def test_doubles_compression_and_no_text(utterances, tmp_path):
    doubles = features(utterances[:3], np.float64)
    kaldi_dir(tmp_path / "d", utterances[:3], doubles, text=False, speakers=False)
    item = ESPnet3Dataset(tmp_path / "d")[0]
    assert sorted(item) == ["feats", "utt_id"]
    assert item["feats"].dtype == np.float32
    np.testing.assert_array_equal(item["feats"], doubles[item["utt_id"]].astype(np.float32))
    packed = tmp_path / "c"
    packed.mkdir()
    kaldiio.save_ark(
        str(packed / "feats.ark"),
        features(utterances[:3]),
        scp=str(packed / "feats.scp"),
        compression_method=2,
    )
    expected = kaldiio.load_scp(str(packed / "feats.scp"))
    for item in ESPnet3Dataset(packed):
        np.testing.assert_array_equal(item["feats"], expected[item["utt_id"]])


def test_relative_ark_paths_from_the_recipe_root_or_the_directory(
    utterances, tmp_path, monkeypatch
):
    feats = features(utterances[:2])
    recipe = tmp_path / "s5"
    (recipe / "data" / "train").mkdir(parents=True)
    monkeypatch.chdir(recipe)
    (recipe / "mfcc").mkdir()
    # Kaldi's convention: paths relative to the recipe root, where the scripts run.
    kaldiio.save_ark("mfcc/raw_mfcc.1.ark", feats, scp="data/train/feats.scp")
    assert (recipe / "data/train/feats.scp").read_text().split()[1].startswith("mfcc/")
    from_root = ESPnet3Dataset("data/train")
    # A directory that carries its own archive: paths relative to it, wherever it is read.
    monkeypatch.chdir(recipe / "data" / "train")
    kaldiio.save_ark("own.ark", feats, scp="feats.scp")
    monkeypatch.chdir(tmp_path)
    beside = ESPnet3Dataset(recipe / "data" / "train")
    for dataset in (from_root, beside):
        for item in dataset:
            np.testing.assert_array_equal(item["feats"], feats[item["utt_id"]])


def test_wav_scp_and_feats_scp_in_one_directory(utterances, tmp_path):
    feats = features(utterances[:2])
    ordered = kaldi_dir(tmp_path, utterances[:2], feats)
    (tmp_path / "wav.scp").write_text("".join(f"{u['utt_id']} {u['path']}\n" for u in ordered))
    audio = ESPnet3Dataset(tmp_path)[0]  # the directory reads wav.scp, as it always has
    assert "speech" in audio and "feats" not in audio
    assert "speech" in ESPnet3Dataset(tmp_path / "wav.scp")[0]
    chosen = ESPnet3Dataset(tmp_path / "feats.scp")[0]  # naming the file picks the features
    np.testing.assert_array_equal(chosen["feats"], feats[ordered[0]["utt_id"]])
    assert "speech" not in chosen


def test_items_read_on_dask_workers(utterances, dask_client, tmp_path):
    feats = features(utterances)
    kaldi_dir(tmp_path, utterances, feats)
    dataset = ESPnet3Dataset(tmp_path)
    [shared] = dask_client.scatter([dataset], broadcast=True)
    got = dask_client.gather(dask_client.map(_item, [shared] * len(dataset), range(len(dataset))))
    for utt, matrix in got:
        np.testing.assert_array_equal(matrix, feats[utt])


def _item(dataset, index):
    item = dataset[index]
    return item["utt_id"], item["feats"]


def test_errors_name_the_entry(utterances, tmp_path):
    feats = features(utterances[:2])
    kaldi_dir(tmp_path / "k", utterances[:2], feats)
    first = sorted(feats)[0]
    (tmp_path / "k" / "text").write_text(f"{first} only one\n")
    with pytest.raises(Espnet3Error, match=r"text has no transcript for 1 utterance"):
        ESPnet3Dataset(tmp_path / "k")
    piped = tmp_path / "p"
    piped.mkdir()
    (piped / "feats.scp").write_text("u1 copy-feats ark:a.ark ark:- |\n")
    with pytest.raises(Espnet3Error, match=r"feats.scp u1: piped features .* not supported"):
        ESPnet3Dataset(piped)
    (piped / "feats.scp").write_text("u1\n")
    with pytest.raises(Espnet3Error, match=r"feats.scp u1: no archive given"):
        ESPnet3Dataset(piped)
    gone = tmp_path / "g"
    gone.mkdir()
    (gone / "feats.scp").write_text(f"u1 {gone}/missing.ark:5\n")
    with pytest.raises(Espnet3Error, match=r"u1: feature archive of .*missing.ark:5' does not"):
        ESPnet3Dataset(gone)[0]
    audio = tmp_path / "w"
    audio.mkdir()
    samples = utterances[0]["samples"]
    kaldiio.save_ark(str(audio / "a.ark"), {"u1": (16000, samples)}, scp=str(audio / "feats.scp"))
    with pytest.raises(Espnet3Error, match=r"u1: .* holds tuple .*list audio in wav.scp"):
        ESPnet3Dataset(audio)[0]
