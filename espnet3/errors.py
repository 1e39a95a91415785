"""Errors meant to be read by people.

Every error espnet3 raises on purpose derives from :class:`Espnet3Error`; the command line
prints such errors as one message without a traceback (``--debug`` shows it). A message names
the thing, the value, and what to do.

Each class is also the built-in type upstream ESPnet3 raises in the same situation, so code
written for it (``except RuntimeError:``) keeps working:

=====================  ===========================  ==========================================
class                  also a                       raised when
=====================  ===========================  ==========================================
ConfigError            ValueError                   a config value is missing, unknown or wrong
ModuleMissingError     ValueError, ModuleNotFound   a module a config names cannot be found
UnknownIdError         KeyError, ValueError         an utterance id (or a name) nothing holds
SetupError             RuntimeError                 the parts cannot be put together
ContractError          AssertionError               an object or file breaks a step's contract
MissingMethodError     AssertionError, Attribute    an object lacks a method a step calls
ItemError              (only Espnet3Error)          processing one item failed
=====================  ===========================  ==========================================

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


class ModuleMissingError(ConfigError, ModuleNotFoundError):
    """A module or package a config names cannot be found (also a ``ModuleNotFoundError``)."""


class UnknownIdError(Espnet3Error, KeyError, ValueError):
    """An utterance id, or another name looked up, that nothing holds.

    A ``KeyError`` as for any mapping, and a ``ValueError`` as upstream ESPnet3 raises.
    """

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""


class SetupError(Espnet3Error, RuntimeError):
    """The parts cannot be put together as configured.

    A train list without a valid list, a shard count the world size does not divide, a
    package the chosen backend needs and cannot import. Also a ``RuntimeError``, the type
    upstream ESPnet3 raises in these cases, so code written for it catches it unchanged.
    """


class ContractError(Espnet3Error, AssertionError):
    """An object or file breaks the contract a step relies on.

    A preprocessor that is not callable, combined datasets whose items have different keys,
    a file a step reads that is not there. Also an ``AssertionError``, the type upstream
    ESPnet3 raises (with ``assert``) in these cases.
    """


class MissingMethodError(ContractError, AttributeError):
    """An object lacks a method a step calls (also an ``AttributeError``)."""


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
