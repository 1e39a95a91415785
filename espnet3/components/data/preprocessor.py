"""Preprocessors that need the utterance id: ``preprocessor(uid, sample)``.

A plain preprocessor is any callable ``preprocessor(sample) -> sample``. One that derives from
:class:`AbsPreprocessor` (or from ESPnet2's ``espnet2.train.preprocessor.AbsPreprocessor`` when
ESPnet2 is installed) is called as ``preprocessor(uid, sample)``, which is how ESPnet2's
tokenizing preprocessors are written.

Example:
    >>> class Tag(AbsPreprocessor):
    ...     def __call__(self, uid, data):
    ...         return {**data, "uid": uid}
    >>> apply_preprocessor(Tag(), "utt1", {"text": "hi"})
    {'text': 'hi', 'uid': 'utt1'}
    >>> apply_preprocessor(lambda d: {**d, "n": 1}, "utt1", {})
    {'n': 1}
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any


class AbsPreprocessor(ABC):
    """A preprocessor called with the utterance id: ``__call__(uid, data) -> data``."""

    @abstractmethod
    def __call__(self, uid: str, data: dict[str, Any]) -> dict[str, Any]:
        """Return the processed sample for utterance ``uid``."""


@functools.cache
def _uid_preprocessor_classes() -> tuple[type, ...]:
    try:
        from espnet2.train.preprocessor import AbsPreprocessor as Espnet2AbsPreprocessor
    except (ImportError, OSError):  # ESPnet2 is optional; a torchaudio build for another torch
        return (AbsPreprocessor,)  # fails to load its library with OSError
    return (AbsPreprocessor, Espnet2AbsPreprocessor)


def takes_uid(preprocessor: Callable | None) -> bool:
    """True when ``preprocessor`` is called as ``preprocessor(uid, sample)``.

    Example:
        >>> takes_uid(str.upper)
        False
    """
    return isinstance(preprocessor, _uid_preprocessor_classes())


def apply_preprocessor(
    preprocessor: Callable | None, uid: str, sample: Any, with_uid: bool | None = None
) -> Any:
    """Run ``preprocessor`` on ``sample``: as ``preprocessor(uid, sample)`` when ``with_uid``
    (by default: when :func:`takes_uid` says so), else as ``preprocessor(sample)``."""
    if preprocessor is None:
        return sample
    if takes_uid(preprocessor) if with_uid is None else with_uid:
        return preprocessor(uid, sample)
    return preprocessor(sample)
