"""The audio that ``data_info`` names in one row, its sampling rate, and the column it is.

``data_info['audio']`` may return anything :func:`~espnet3.data.audio.load_audio` reads. A
bare array carries no rate: it comes from ``data_info['sampling_rate']`` when given, else from
the row's own audio value (the guide's ``lambda x: x["audio"]["array"]`` needs nothing more).
Only a row with no audio value, or with several at different rates, needs the entry.

Rows read undecoded hold ``{"bytes", "path"}`` values; :func:`with_audio_values` wraps them
as :class:`~espnet3.data.audio.AudioValue`, which decodes ``["array"]`` with soundfile as
``datasets`` would with torchcodec. When the function hands back that array unchanged,
:func:`row_audio` names the column, so a cut can point at the encoded audio in the dataset
instead of storing the samples again.

Example:
    >>> import io, numpy as np, soundfile as sf
    >>> from espnet3.data.fields import resolve_fields
    >>> buf = io.BytesIO(); sf.write(buf, np.zeros(80, np.int16), 8000, format="WAV")
    >>> row = with_audio_values({"audio": {"bytes": buf.getvalue(), "path": None}, "text": "hi"})
    >>> fields = resolve_fields({"audio": lambda x: x["audio"]["array"], "text": "text"})
    >>> audio, column = row_audio(row, fields)
    >>> audio.sampling_rate, audio.num_samples, column
    (8000, 80, 'audio')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from espnet3.data.audio import AudioValue, LoadedAudio, load_audio
from espnet3.errors import Espnet3Error

_UNDECODED_KEYS = frozenset(("bytes", "path"))


def with_audio_values(row: Any) -> Any:
    """``row`` with each undecoded ``{"bytes", "path"}`` value wrapped as an ``AudioValue``.

    The row itself is left unchanged (a copy is made when something is wrapped).

    Example:
        >>> with_audio_values({"a": {"bytes": None, "path": "x.wav"}, "n": 1})["a"]
        AudioValue(column='a', path='x.wav')
    """
    if not isinstance(row, Mapping):
        return row
    wrapped = None
    for name, value in row.items():
        if _is_undecoded(value):
            wrapped = dict(row) if wrapped is None else wrapped
            wrapped[name] = AudioValue(value, column=name)
    return row if wrapped is None else wrapped


def _is_undecoded(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and not isinstance(value, AudioValue)
        and value.keys() == _UNDECODED_KEYS
        and (value["bytes"] is not None or bool(value["path"]))
    )


def row_audio(
    row: Any, fields: Mapping[str, Callable], *, keep_encoded: bool = True
) -> tuple[LoadedAudio, str | None]:
    """The row's audio and the dataset column that holds it unchanged (``None``: none does).

    With ``keep_encoded`` (what a cut wants), the row's own array comes back as the encoded
    audio it was decoded from; without it (what an item wants), as the samples.
    """
    value = fields["audio"](row)
    rate = fields["sampling_rate"](row) if "sampling_rate" in fields else None
    if isinstance(value, AudioValue):
        return value.loaded(), value.column
    if not _is_bare(value):
        return load_audio(value, rate), None
    own = _own_value(row, value)
    if own is not None and (rate is None or int(rate) == own.loaded().sampling_rate):
        if keep_encoded:
            return own.loaded(), own.column
        rate = own.loaded().sampling_rate
    return load_audio(value, rate if rate is not None else rate_of_row(row)), None


def _is_bare(value: Any) -> bool:
    return isinstance(value, (np.ndarray, list)) or hasattr(value, "numpy")


def _own_value(row: Any, array: Any) -> AudioValue | None:
    if not isinstance(row, Mapping):
        return None
    for value in row.values():
        if isinstance(value, AudioValue) and value.is_own_array(array):
            return value
    return None


def rate_of_row(row: Any) -> int:
    """The sampling rate of the audio value(s) in ``row``, when they agree on one.

    Example:
        >>> rate_of_row({"audio": {"array": [0.0], "sampling_rate": 16000}, "text": "a"})
        16000
    """
    rates = {}
    if isinstance(row, Mapping):
        for name, value in row.items():
            found = _rate_of(value)
            if found is not None:
                rates[name] = found
    if len(set(rates.values())) == 1:
        return next(iter(rates.values()))
    if not rates:
        columns = sorted(row) if isinstance(row, Mapping) else type(row).__name__
        raise Espnet3Error(
            f"audio is a bare array and the row holds no audio value to take its sampling rate "
            f"from (row: {columns}): add a 'sampling_rate' entry to data_info, a column name or "
            "a function of the row, e.g. {'sampling_rate': lambda row: 16000}"
        )
    raise Espnet3Error(
        f"audio is a bare array and the row's audio values have different sampling rates "
        f"({rates}): add a 'sampling_rate' entry to data_info saying which, e.g. "
        f"{{'sampling_rate': lambda row: row[{next(iter(rates))!r}]['sampling_rate']}}"
    )


def _rate_of(value: Any) -> int | None:
    if isinstance(value, AudioValue):
        return value.loaded().sampling_rate
    if isinstance(value, Mapping) and value.get("sampling_rate") is not None:
        return int(value["sampling_rate"])
    if hasattr(value, "get_samples_played_in_range"):  # torchcodec decoder: its output rate
        return int(value.get_samples_played_in_range(0, 0).sample_rate)
    return None
