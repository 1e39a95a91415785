"""The guide's ``data_info`` (``lambda x: x["audio"]["array"]``, no rate) on undecoded rows."""

import io

import datasets
import numpy as np
import pytest
import soundfile as sf
from hf_datasets import assert_same_audio, hf_dataset, saved
from lhotse import validate

from espnet3.data.dataset import ESPnet3Dataset
from espnet3.data.huggingface_utils import convert_to_dataset, cutset_from_huggingface
from espnet3.errors import ItemError

GUIDE_INFO = {"audio": lambda x: x["audio"]["array"], "text": lambda x: x["text"]}


def with_ids(info):
    return {**info, "id": "utt"}


def test_guide_array_takes_the_rate_of_the_rows_audio_and_stays_in_the_dataset(
    utterances, dask_client, tmp_path, audio_cache
):
    """A re-openable dataset: the unchanged array is the row's audio, so nothing is copied."""
    dataset = saved(hf_dataset(utterances, "bytes"), tmp_path)
    cuts = cutset_from_huggingface(with_ids(GUIDE_INFO), None, dataset, "train", dask_client)
    validate(cuts)
    assert {c.recording.sources[0].type for c in cuts} == {"url"}
    assert_same_audio(cuts, utterances)
    assert not list(audio_cache.iterdir())  # nothing written


def test_guide_array_of_decoded_rows_takes_their_rate(utterances, dask_client, tmp_path):
    """Rows holding ``{"array", "sampling_rate"}``: the rate is the row's, the audio a file."""
    dataset = hf_dataset(utterances, "decoded")
    cuts = cutset_from_huggingface(
        with_ids(GUIDE_INFO), None, dataset, "t", dask_client, audio_dir=tmp_path / "a"
    )
    assert_same_audio(cuts, utterances)


def test_guide_array_in_items_and_through_client_map(utterances, dask_client):
    items = ESPnet3Dataset(hf_dataset(utterances, "bytes"), data_info=with_ids(GUIDE_INFO))
    rows = list(hf_dataset(utterances, "bytes"))  # plain {"bytes", "path"} dicts
    mapped = dask_client.gather(
        dask_client.map(convert_to_dataset, rows, data_info=GUIDE_INFO, pure=False)
    )
    for item, other, source in zip(items, mapped, utterances, strict=True):
        for got in (item, other):
            assert got["sampling_rate"] == source["sampling_rate"]
            assert got["speech"].dtype == np.float32
            np.testing.assert_array_equal(np.rint(got["speech"] * 32768), source["samples"])


def test_a_changed_array_is_stored_as_changed(utterances, tmp_path):
    """A new array, or the row's own array changed in place, is not the row's audio."""

    def halved_in_place(row):
        samples = row["audio"]["array"]
        samples *= 0.5
        return samples

    dataset = saved(hf_dataset(utterances[:3], "bytes"), tmp_path)
    for audio in (lambda x: x["audio"]["array"] * 0.5, halved_in_place):
        cuts = cutset_from_huggingface(
            {"audio": audio, "text": "text", "id": "utt"}, None, dataset, "t"
        )
        for cut, source in zip(cuts, utterances, strict=False):
            assert cut.recording.sources[0].type == "file"
            expected = np.rint(source["samples"] / 2)
            np.testing.assert_allclose(np.rint(cut.load_audio()[0] * 32768), expected, atol=1)


def test_several_channels_are_averaged_as_datasets_does(tmp_path):
    stereo = np.stack([np.full(400, 1000), np.full(400, 3000)], axis=1).astype(np.int16)
    buf = io.BytesIO()
    sf.write(buf, stereo, 8000, format="WAV")
    dataset = datasets.Dataset.from_dict(
        {"audio": [{"bytes": buf.getvalue(), "path": None}], "text": ["two"]}
    ).cast_column("audio", datasets.Audio(decode=False))
    cuts = cutset_from_huggingface(GUIDE_INFO, None, saved(dataset, tmp_path), "t")
    assert cuts[0].num_channels == 1
    np.testing.assert_array_equal(np.rint(cuts[0].load_audio()[0] * 32768), np.full(400, 2000))


def test_the_rate_is_asked_for_only_where_it_cannot_be_known(utterances, tmp_path):
    arrays = hf_dataset(utterances[:2], "arrays")  # int16 samples, the rate in column "rate"
    bare = {"audio": "samples", "text": "text"}
    with pytest.raises(
        ItemError, match=r"holds no audio value .* add a 'sampling_rate' entry to data_info"
    ):
        cutset_from_huggingface(bare, None, arrays, "t", audio_dir=tmp_path)
    cuts = cutset_from_huggingface(
        {**bare, "sampling_rate": "rate"}, None, arrays, "t", audio_dir=tmp_path
    )
    assert cuts[0].sampling_rate == utterances[0]["sampling_rate"]
    one = hf_dataset(utterances[:1], "bytes")
    other = hf_dataset(utterances[-1:], "bytes")  # generated at 8 kHz, AN4 is 16 kHz
    assert utterances[0]["sampling_rate"] != utterances[-1]["sampling_rate"]
    two = one.add_column("other", list(other["audio"])).cast_column(
        "other", datasets.Audio(decode=False)
    )
    # The row's own array: its column is known, and so is its rate.
    own = cutset_from_huggingface(GUIDE_INFO, None, two, "t", audio_dir=tmp_path)
    assert own[0].sampling_rate == 16000
    derived = {**GUIDE_INFO, "audio": lambda x: x["audio"]["array"] * 0.5}
    with pytest.raises(ItemError, match=r"different sampling rates \(\{'audio': 16000, 'other'"):
        cutset_from_huggingface(derived, None, two, "t", audio_dir=tmp_path)
    told = {**derived, "sampling_rate": lambda x: x["audio"]["sampling_rate"]}
    assert (
        cutset_from_huggingface(told, None, two, "t", audio_dir=tmp_path)[0].sampling_rate == 16000
    )
