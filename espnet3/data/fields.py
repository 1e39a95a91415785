"""``data_info``: which value of a dataset row is the audio, the text, the speaker, ...

Each entry maps a field name to a column name or to a function of the row. ``audio`` and
``text`` are required; ``id`` (the utterance id), ``sampling_rate`` (for bare arrays),
``speaker`` and ``language`` are understood; every other entry is kept as custom metadata.
Column names are turned into :func:`operator.itemgetter`, so a ``data_info`` of strings
pickles to any worker.

Example:
    >>> fields = resolve_fields({"audio": "file", "text": lambda row: row["words"].lower()})
    >>> fields["text"]({"words": "HELLO"}), fields["audio"]({"file": "a.wav"})
    ('hello', 'a.wav')
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from espnet3.errors import ConfigError

REQUIRED = ("audio", "text")
#: Fields with a fixed meaning; any other ``data_info`` entry is custom metadata.
KNOWN = ("audio", "text", "id", "sampling_rate", "speaker", "language")

DEFAULT_DATA_INFO: Mapping[str, str] = {"audio": "audio", "text": "text"}


def resolve_fields(data_info: Mapping[str, Any] | None) -> dict[str, Callable[[Any], Any]]:
    """Check ``data_info`` and return field name -> function of a row.

    Example:
        >>> sorted(resolve_fields(None))
        ['audio', 'text']
    """
    data_info = DEFAULT_DATA_INFO if data_info is None else data_info
    if not isinstance(data_info, Mapping):
        raise ConfigError(
            f"data_info must map field names to column names or functions of a row, got "
            f"{type(data_info).__name__}: e.g. {{'audio': 'audio', 'text': 'sentence'}}"
        )
    missing = [name for name in REQUIRED if name not in data_info]
    if missing:
        raise ConfigError(
            f"data_info lacks {missing} (it has {sorted(data_info)}): add e.g. "
            f"{{'audio': 'audio', 'text': 'sentence'}}"
        )
    fields = {}
    for name, how in data_info.items():
        if isinstance(how, str):
            fields[name] = operator.itemgetter(how)
        elif callable(how):
            fields[name] = how
        else:
            raise ConfigError(
                f"data_info[{name!r}] must be a column name or a function of the row, "
                f"got {type(how).__name__} {how!r}"
            )
    return fields


def custom_names(fields: Mapping[str, Any]) -> list[str]:
    """The ``data_info`` entries kept as custom metadata.

    Example:
        >>> custom_names({"audio": 0, "text": 0, "gender": 0})
        ['gender']
    """
    return [name for name in fields if name not in KNOWN]


def plain(value: Any) -> Any:
    """``value`` as JSON-ready Python (numpy scalars and arrays become numbers and lists).

    Example:
        >>> import numpy as np
        >>> plain({"a": np.int64(3), "b": np.arange(2)})
        {'a': 3, 'b': [0, 1]}
    """
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
