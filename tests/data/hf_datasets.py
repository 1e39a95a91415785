"""Build real ``datasets.Dataset`` objects from test utterances, in each audio mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np


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
