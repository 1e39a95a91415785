"""HDF5 stores (one dataset per utterance) read as ESPnet3 items, files written with h5py."""

import pickle

import h5py
import numpy as np
import pytest
import torch

from espnet3.data.dataset import ESPnet3Dataset
from espnet3.errors import Espnet3Error


def as_int16(speech):
    return np.rint(speech * 32768).astype(np.int16)


def write_store(path, utterances, *, feats=None):
    """Waveforms as int16 with their rate and text; ``feats`` as matrices without a rate."""
    with h5py.File(path, "w") as f:
        for u in utterances:
            stored = f.create_dataset(u["utt_id"], data=u["samples"])
            stored.attrs["sampling_rate"] = u["sampling_rate"]
            stored.attrs["text"] = u["text"]
            stored.attrs["speaker"] = np.bytes_(u["speaker"])  # a fixed-length string
            stored.attrs["snr"] = 20.5
        for name, matrix in (feats or {}).items():
            f.create_dataset(name, data=matrix).attrs["text"] = f"features of {name}"
    return path


def test_waveforms_and_features_in_one_file(utterances, tmp_path):
    matrix = np.arange(12, dtype=np.float64).reshape(6, 2)
    path = write_store(tmp_path / "train.h5", utterances, feats={"zz-feats": matrix})
    dataset = ESPnet3Dataset(path)
    ordered = sorted(utterances, key=lambda u: u["utt_id"])
    assert dataset.uids() == [u["utt_id"] for u in ordered] + ["zz-feats"]
    for item, u in zip(dataset, ordered, strict=False):
        assert item["speech"].dtype == np.float32
        np.testing.assert_array_equal(as_int16(item["speech"]), u["samples"])
        assert (item["sampling_rate"], item["text"], item["speaker"], item["snr"]) == (
            u["sampling_rate"],
            u["text"],
            u["speaker"],
            20.5,
        )
    last = dataset[-1]
    assert sorted(last) == ["feats", "text", "utt_id"]
    assert last["feats"].dtype == np.float32
    np.testing.assert_array_equal(last["feats"], matrix)


def test_float_and_multichannel_waveforms(tmp_path):
    stereo = np.stack([np.linspace(-0.5, 0.5, 100), np.zeros(100)], axis=1).astype(np.float32)
    with h5py.File(tmp_path / "s.hdf5", "w") as f:
        f["u"] = stereo
        f["u"].attrs["sampling_rate"] = 8000
        f["v"] = np.array([1, 2], np.uint8)
        f["v"].attrs["sampling_rate"] = 8000
    dataset = ESPnet3Dataset(tmp_path / "s.hdf5")
    np.testing.assert_array_equal(dataset[0]["speech"], stereo)
    with pytest.raises(Espnet3Error, match=r"s.hdf5:/v: waveform of dtype uint8 is not supported"):
        dataset[1]


def test_read_in_forked_and_spawned_workers(utterances, dask_client, tmp_path):
    """The file handle is per process: DataLoader forks after a read, Dask unpickles."""
    dataset = ESPnet3Dataset(write_store(tmp_path / "t.h5", utterances))
    expected = {u["utt_id"]: u["samples"] for u in utterances}
    dataset[0]  # this process now holds an open handle
    pickle.loads(pickle.dumps(dataset))  # which is not pickled along
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=2, multiprocessing_context="fork"
    )
    for item in loader:
        np.testing.assert_array_equal(as_int16(item["speech"].numpy()), expected[item["utt_id"]])
    [shared] = dask_client.scatter([dataset], broadcast=True)
    got = dask_client.gather(dask_client.map(_item, [shared] * len(dataset), range(len(dataset))))
    for utt, speech in got:
        np.testing.assert_array_equal(as_int16(speech), expected[utt])


def _item(dataset, index):
    item = dataset[index]
    return item["utt_id"], item["speech"]


def test_groups_and_unreadable_files_are_refused(tmp_path):
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f.create_group("u1")["speech"] = np.zeros(4, np.int16)
    with pytest.raises(Espnet3Error, match=r"\['u1'\] are groups, not datasets: the layout is"):
        ESPnet3Dataset(tmp_path / "g.h5")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    with pytest.raises(Espnet3Error, match=r"bad.h5 is not a readable HDF5 file"):
        ESPnet3Dataset(tmp_path / "bad.h5")
