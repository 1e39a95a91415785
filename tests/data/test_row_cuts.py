"""Audio the dataset cannot hold for the cuts goes under the cache directory by default."""

import logging
import os
from pathlib import Path

from hf_datasets import assert_same_audio, hf_dataset
from lhotse import CutSet, validate

from espnet3.data.huggingface_utils import cutset_from_huggingface
from espnet3.data.row_cuts import CACHE_ENV

INFO = {"audio": "audio", "text": "text", "speaker": "speaker", "id": "utt"}


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_in_memory_bytes_work_without_audio_dir(
    utterances, dask_client, audio_cache, caplog, tmp_path
):
    dataset = hf_dataset(utterances, "bytes")  # in memory: no worker or reader can re-open it
    with caplog.at_level(logging.WARNING, logger="espnet3.data.hf_to_lhotse"):
        cuts = cutset_from_huggingface(INFO, None, dataset, "train", dask_client, rows_per_chunk=3)
    validate(cuts, read_data=True)
    assert_same_audio(cuts, utterances)
    folder = audio_cache / "hf_audio" / dataset._fingerprint
    sources = [c.recording.sources[0].source for c in cuts]
    assert all(s.startswith(f"{folder}{os.sep}") for s in sources)
    # The encoded audio is kept as it was, not re-encoded.
    assert Path(sources[0]).read_bytes() == Path(utterances[0]["path"]).read_bytes()
    [line] = [r.getMessage() for r in caplog.records if str(folder) in r.getMessage()]
    assert f"{len(utterances)} of {len(utterances)} rows" in line
    assert "audio_dir=" in line and CACHE_ENV in line
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    assert CutSet.from_file(tmp_path / "cuts.jsonl.gz").to_eager() == cuts

    # The same conversion again rewrites the same files and nothing else.
    before = files_under(folder)
    again = cutset_from_huggingface(INFO, None, dataset, "train", dask_client)
    assert again == cuts and files_under(folder) == before

    # Other audio for the same rows gets files of its own: the first cuts still read theirs.
    quieter = {**INFO, "audio": lambda row: row["audio"]["array"] * 0.5}
    halved = cutset_from_huggingface(quieter, None, dataset, "train", dask_client)
    assert set(halved.ids) == set(cuts.ids)
    assert not {c.recording.sources[0].source for c in halved} & set(sources)
    assert_same_audio(CutSet.from_file(tmp_path / "cuts.jsonl.gz"), utterances)
