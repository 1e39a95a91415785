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
OutsideScopeError      RuntimeError                 a training/inference stage is asked for
ContractError          AssertionError               an object or file breaks a step's contract
MissingMethodError     AssertionError, Attribute    an object lacks a method a step calls
IncompleteError        FileNotFoundError            an output a step expects finished is not
MissingFileError       FileNotFoundError            a file a config names does not exist
ItemError              the item's own error type    processing one item failed
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
import functools
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


class OutsideScopeError(SetupError):
    """A stage of upstream ESPnet3's systems that is not data preparation (train, infer ...).

    Example:
        >>> err = OutsideScopeError("infer")
        >>> err.stage, isinstance(err, RuntimeError), str(err)[:33]
        ('infer', True, 'the infer stage is not part of th')
    """

    def __init__(self, stage: str):
        super().__init__(
            f"the {stage} stage is not part of this distribution, which prepares data "
            f"(create_dataset, collect_stats, ...): run {stage} with ESPnet3's own system on "
            "the data prepared here"
        )
        self.stage = stage


class ContractError(Espnet3Error, AssertionError):
    """An object or file breaks the contract a step relies on.

    A preprocessor that is not callable, combined datasets whose items have different keys,
    a file a step reads that is not there. Also an ``AssertionError``, the type upstream
    ESPnet3 raises (with ``assert``) in these cases.
    """


class MissingMethodError(ContractError, AttributeError):
    """An object lacks a method a step calls (also an ``AttributeError``)."""


class IncompleteError(Espnet3Error, FileNotFoundError):
    """An output a step expects to be finished is not (a shard without ``done``).

    Also a ``FileNotFoundError``, as upstream ESPnet3 raises.
    """

    def __str__(self) -> str:  # OSError would format its arguments as (errno, strerror)
        return str(self.args[0]) if self.args else ""


class MissingFileError(Espnet3Error, FileNotFoundError):
    """A file a config names (a config file, an include, a ``${load_line:}``) does not exist.

    Example:
        >>> str(MissingFileError(2, "config file not found; check the path", "conf/x.yaml"))
        'config file not found; check the path: conf/x.yaml'
    """

    def __str__(self) -> str:
        return f"{self.strerror}: {self.filename}"


class ItemError(Espnet3Error):
    """Processing one item failed; the message names its index (and ``utt_id`` when known).

    ``worker_traceback`` holds the traceback text from the process that ran the item. Made with
    :meth:`caused_by`, it is also of the type the item raised, so ``except ValueError:``
    written for upstream ESPnet3 (where the item's own exception arrives) still catches it.
    """

    def __init__(self, message: str, index: int | None = None, worker_traceback: str = ""):
        super().__init__(message, index, worker_traceback)
        self.index = index
        self.worker_traceback = worker_traceback

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self) -> tuple:
        cause = type(self).__bases__[-1] if type(self) is not ItemError else None
        return _rebuild_item_error, (cause, *self.args)

    @classmethod
    def caused_by(
        cls, cause: type | None, message: str, index: int | None = None, worker_traceback: str = ""
    ) -> ItemError:
        """An :class:`ItemError` that is also a ``cause`` (when that type can be combined).

        Example:
            >>> err = ItemError.caused_by(KeyError, "forward failed on index 3: KeyError: 'x'")
            >>> isinstance(err, KeyError), isinstance(err, ItemError), str(err)
            (True, True, "forward failed on index 3: KeyError: 'x'")
        """
        try:
            return _item_error_class(cause)(message, index, worker_traceback)
        except Exception:  # a cause whose constructor wants other arguments
            return ItemError(message, index, worker_traceback)


def add_note(exc: BaseException, note: str) -> None:
    """Attach ``note`` to ``exc`` (:pep:`678`; tracebacks show it on Python 3.11 and later).

    Example:
        >>> err = ValueError("bad sample rate")
        >>> add_note(err, "espnet3: raised by item 3 of the map")
        >>> err.__notes__
        ['espnet3: raised by item 3 of the map']
    """
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:  # Python 3.10: kept where 3.11 keeps it, for code that reads __notes__
        exc.__notes__ = [*getattr(exc, "__notes__", []), note]


@functools.cache
def _item_error_class(cause: type | None) -> type[ItemError]:
    if (
        not isinstance(cause, type)
        or not issubclass(cause, Exception)
        or issubclass(cause, Espnet3Error)
    ):
        return ItemError
    try:
        return type(f"ItemError[{cause.__name__}]", (ItemError, cause), {"__module__": __name__})
    except TypeError:  # built-in types whose layouts cannot be combined (OSError and kin)
        return ItemError


def _rebuild_item_error(
    cause: type | None, message: str, index: int | None, worker_traceback: str
) -> ItemError:
    return ItemError.caused_by(cause, message, index, worker_traceback)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` if none is close.

    Example:
        >>> did_you_mean("walltme", ["walltime", "memory"])
        " (did you mean 'walltime'?)"
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
