import os
import stat

import numpy as np
import pytest
from hf_datasets import hf_dataset

from espnet3.data.dataset import ESPnet3Dataset
from espnet3.data.huggingface_utils import cutset_from_huggingface
from espnet3.data.sharing import save_huggingface, save_lhotse
from espnet3.errors import Espnet3Error

INFO = {"audio": "audio", "text": "text", "speaker": "speaker", "id": "utt"}


def test_share_as_hf_on_disk_and_read_back(utterances, tmp_path):
    prepared = ESPnet3Dataset(hf_dataset(utterances, "decoded"), data_info=INFO)
    save_huggingface(prepared, tmp_path / "shared")
    back = ESPnet3Dataset(tmp_path / "shared")
    assert back.uids() == [u["utt_id"] for u in utterances]
    for i, source in enumerate(utterances):
        item = back[i]
        np.testing.assert_array_equal(
            np.rint(item["speech"] * 32768).astype(np.int16), source["samples"]
        )
        assert (item["text"], item["speaker"], item["sampling_rate"]) == (
            source["text"],
            source["speaker"],
            source["sampling_rate"],
        )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    with pytest.raises(Espnet3Error, match="already exists: remove it or choose another path"):
        save_huggingface(prepared, tmp_path / "shared")


def test_share_as_lhotse_manifests_and_read_back(utterances, tmp_path):
    cuts = cutset_from_huggingface(
        INFO, None, hf_dataset(utterances, "bytes"), "t", audio_dir=tmp_path / "audio"
    )
    save_lhotse(cuts, tmp_path / "lhotse")
    names = sorted(p.name for p in (tmp_path / "lhotse").iterdir())
    assert names == ["cuts.jsonl.gz", "recordings.jsonl.gz", "supervisions.jsonl.gz"]
    back = ESPnet3Dataset(tmp_path / "lhotse")
    assert back.uids() == [u["utt_id"] for u in utterances]
    np.testing.assert_array_equal(
        np.rint(back[0]["speech"] * 32768).astype(np.int16), utterances[0]["samples"]
    )


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o755), (0o077, 0o700)])
def test_a_shared_directory_gets_the_umasks_mode(utterances, tmp_path, umask, mode):
    cuts = cutset_from_huggingface(
        INFO, None, hf_dataset(utterances, "bytes"), "t", audio_dir=tmp_path / "audio"
    )
    previous = os.umask(umask)
    try:
        save_lhotse(cuts, tmp_path / "lhotse")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "lhotse").stat().st_mode) == mode
