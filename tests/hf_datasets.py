"""Build real ``datasets.Dataset`` objects from test utterances, in each audio mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def hf_dataset(utterances: list[dict], mode: str):
    """A ``datasets.Dataset`` holding ``utterances`` with its audio in the given ``mode``.

    ``bytes``: an ``Audio(decode=False)`` column of encoded WAV bytes; ``paths``: file path
    strings; ``decoded``: ``{"array", "sampling_rate"}`` dicts of float32 samples, the form
    ``datasets`` decodes to; ``arrays``: int16 sample lists with a separate rate column.
    """
    import datasets

    base = {
        "text": [u["text"] for u in utterances],
        "speaker": [u["speaker"] for u in utterances],
        "utt": [u["utt_id"] for u in utterances],
    }
    if mode == "bytes":
        audio = [
            {"bytes": Path(u["path"]).read_bytes(), "path": Path(u["path"]).name}
            for u in utterances
        ]
        return datasets.Dataset.from_dict({"audio": audio, **base}).cast_column(
            "audio", datasets.Audio(decode=False)
        )
    if mode == "paths":
        return datasets.Dataset.from_dict({"audio": [u["path"] for u in utterances], **base})
    if mode == "decoded":
        audio = [
            {"array": u["samples"].astype(np.float32) / 32768, "sampling_rate": u["sampling_rate"]}
            for u in utterances
        ]
        return datasets.Dataset.from_dict({"audio": audio, **base})
    if mode == "arrays":
        return datasets.Dataset.from_dict(
            {
                "samples": [u["samples"] for u in utterances],
                "rate": [u["sampling_rate"] for u in utterances],
                **base,
            }
        )
    raise ValueError(mode)


def saved(dataset, tmp_path):
    """``dataset`` written with ``save_to_disk`` and loaded back (memory-mapped)."""
    import datasets

    dataset.save_to_disk(tmp_path / "saved")
    return datasets.load_from_disk(tmp_path / "saved")


def assert_same_audio(cuts, utterances):
    """The cuts hold exactly the utterances' samples, rates and texts (matched by id)."""
    by_id = {u["utt_id"]: u for u in utterances}
    assert sorted(cuts.ids) == sorted(by_id)
    for cut in cuts:
        source = by_id[cut.id]
        assert cut.sampling_rate == source["sampling_rate"]
        assert cut.num_samples == len(source["samples"])
        loaded = np.rint(cut.load_audio()[0] * 32768).astype(np.int16)
        np.testing.assert_array_equal(loaded, source["samples"])
        if cut.recording.sources[0].type == "file":
            on_disk, _ = sf.read(cut.recording.sources[0].source, dtype="int16")
            np.testing.assert_array_equal(on_disk, source["samples"])
        assert cut.supervisions[0].text == source["text"]


def data_directory(utterances: list[dict], directory: Path, splits=("train",)) -> Path:
    """A local data directory laid out as the hub serves datasets; ``load_dataset`` reads it.

    One parquet file per split under ``data/``, the audio embedded as encoded bytes in an
    ``Audio()`` column (decoded on access, as hub datasets are).
    """
    import datasets

    (directory / "data").mkdir(parents=True)
    for split in splits:
        table = hf_dataset(utterances, "bytes").cast_column("audio", datasets.Audio())
        table.to_parquet(str(directory / "data" / f"{split}-00000-of-00001.parquet"))
    return directory
