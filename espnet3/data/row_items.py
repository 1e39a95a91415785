"""One Hugging Face dataset row -> the item an ESPnet3 dataset yields.

Example:
    >>> row = {"audio": {"array": [0.0, 0.5], "sampling_rate": 8000}, "text": "hi"}
    >>> convert_to_dataset(row, index=3)["utt_id"]
    '00000003'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from espnet3.data.fields import custom_names, plain, resolve_fields
from espnet3.data.row_audio import row_audio, with_audio_values
from espnet3.data.row_cuts import utt_id


def convert_to_dataset(
    row: Mapping[str, Any],
    data_info: Mapping[str, Any] | None = None,
    index: int = 0,
    *,
    id_prefix: str = "",
) -> dict[str, Any]:
    """One row -> the item an ESPnet3 dataset yields: ``utt_id``, ``speech``, ``text``, ...

    ``speech`` is float32 in [-1, 1), ``(frames,)`` or ``(frames, channels)``. Undecoded
    audio values (``{"bytes", "path"}``) also answer ``["array"]`` and ``["sampling_rate"]``,
    and a bare array takes the rate of the row's audio (see :mod:`espnet3.data.row_audio`).
    It is a module-level function of plain arguments, so it pickles to Dask workers.

    Example:
        >>> row = {"audio": {"array": [0.0, 0.5], "sampling_rate": 8000}, "text": "hi"}
        >>> item = convert_to_dataset(row, index=3)
        >>> item["utt_id"], item["speech"].dtype.name, item["text"], item["sampling_rate"]
        ('00000003', 'float32', 'hi', 8000)
        >>> # on a cluster: client.map(convert_to_dataset, rows, data_info=info)
    """
    fields = resolve_fields(data_info)
    row = with_audio_values(row)
    audio, _ = row_audio(row, fields, keep_encoded=False)
    item = {
        "utt_id": utt_id(row, index, fields, id_prefix),
        "speech": audio.read("float32"),
        "sampling_rate": audio.sampling_rate,
        "text": fields["text"](row),
    }
    for name in ("speaker", "language", *custom_names(fields)):
        if name in fields:
            item[name] = plain(fields[name](row))
    return item
