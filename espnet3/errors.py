"""Errors meant to be read by people.

Every error espnet3 raises on purpose derives from :class:`Espnet3Error`; the command line
prints such errors as one message without a traceback (``--debug`` shows it). A message names
the thing, the value, and what to do.

Example:
    >>> try:
    ...     raise ConfigError("parallel.n_workers must be a positive integer, got 0: set it to 1 or more")
    ... except Espnet3Error as err:
    ...     print(err)
    parallel.n_workers must be a positive integer, got 0: set it to 1 or more
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class Espnet3Error(Exception):
    """Base class of errors that carry a complete, human-readable message."""


class ConfigError(Espnet3Error, ValueError):
    """A configuration value is missing, unknown or of the wrong kind."""


class ItemError(Espnet3Error):
    """Processing one item failed; the message names its index (and ``utt_id`` when known).

    ``worker_traceback`` holds the traceback text from the process that ran the item.
    """

    def __init__(self, message: str, index: int | None = None, worker_traceback: str = ""):
        super().__init__(message, index, worker_traceback)
        self.index = index
        self.worker_traceback = worker_traceback

    def __str__(self) -> str:
        return self.args[0]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` if none is close.

    Example:
        >>> did_you_mean("walltme", ["walltime", "memory"])
        " (did you mean 'walltime'?)"
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
