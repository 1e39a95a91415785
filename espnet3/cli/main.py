"""Parse the command line, run one subcommand, and turn errors into one readable line.

Every subcommand module has ``add_parser(subparsers)``, which registers the subcommand and
sets ``func(args) -> int`` as its handler. An :class:`~espnet3.errors.Espnet3Error` is printed
as ``espnet3: error: MESSAGE`` on stderr with exit status 1 (``--debug`` shows the traceback
instead); Ctrl-C exits with status 130 once everything started has been shut down.

Example:
    >>> main(["cluster", "check", "recipes/mini_an4/asr/conf/local.yaml"])   # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from espnet3.errors import Espnet3Error
from espnet3.utils.progress import log as progress_log
from espnet3.utils.progress import unfinished

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from espnet3 import __version__
    from espnet3.cli import cluster, create_dataset, data, jobs, run

    parser = argparse.ArgumentParser(
        prog="espnet3",
        description="Speech data preparation that runs unchanged in process, on a local Dask "
        "cluster or on an HPC scheduler (the config's parallel: section decides).",
    )
    parser.add_argument("--version", action="version", version=f"espnet3 {__version__}")
    _add_debug(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (create_dataset, run, jobs, cluster, data):
        module.add_parser(subparsers)
    for sub in _subparsers(parser):  # --debug works before or after the subcommand
        _add_debug(sub, default=argparse.SUPPRESS)
    return parser


def _add_debug(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help="show tracebacks and debug logging on errors",
    )


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand parser below ``parser``, at any depth."""
    found = []
    for action in parser._actions:  # argparse keeps them only here
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += [sub, *_subparsers(sub)]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    # Overrides may follow options (`DIR --config F a=b`), which argparse alone cannot take
    # once the positionals have been consumed; such leftovers are added to the overrides.
    args, extra = parser.parse_known_args(argv)
    if extra and hasattr(args, "overrides") and not any(x.startswith("-") for x in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(format="espnet3: %(levelname)s: %(message)s")
    logging.getLogger("tornado.application").addFilter(not_a_sync_cancel_race)
    # Dask sets its loggers to INFO; only the root handler's level keeps them quiet. Progress,
    # and where the work runs, are said at INFO (see espnet3.utils.progress).
    handler = logging.getLogger().handlers[0]
    handler.setLevel(logging.DEBUG if args.debug else logging.INFO)
    if not args.debug:
        handler.addFilter(warnings_and_progress)
    progress_log.setLevel(logging.INFO)
    try:
        return args.func(args)
    except Espnet3Error as err:
        if args.debug:
            raise
        print(f"espnet3: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        came = "; ".join(unfinished())
        print(
            "espnet3: interrupted; finished work is kept, run again to resume"
            + (f" ({came})" if came else ""),
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into a reader that stopped early (| head)
        # Point stdout at /dev/null so that the flush at exit does not fail once more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def warnings_and_progress(record: logging.LogRecord) -> bool:
    """A logging filter: warnings and errors, and the INFO lines of ``espnet3.progress``."""
    return record.levelno >= logging.WARNING or record.name == progress_log.name


def not_a_sync_cancel_race(record: logging.LogRecord) -> bool:
    """A logging filter: False for distributed's ``sync()`` failing to cancel on Ctrl-C.

    On Ctrl-C, ``distributed.utils.sync`` schedules a ``cancel`` of the call it waits for; when
    the call has not started yet, that ``cancel`` raises NameError (its future is unset) and
    tornado logs the traceback around the one line espnet3 prints. Nothing is lost: the call
    never started. Every other record passes.
    """
    error = record.exc_info[1] if record.exc_info else None
    return not (
        isinstance(error, NameError)
        and "'future'" in str(error)
        and "sync.<locals>.cancel" in record.getMessage()
    )


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())
