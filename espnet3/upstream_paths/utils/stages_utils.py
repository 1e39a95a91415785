"""Choose and run a recipe's stages, as upstream ESPnet3's ``run.py`` does.

``run.py --stages create_dataset collect_stats`` runs those stages of the system in the
recipe's order (``all``: every one). Each stage is a method of the system, called without
arguments (its settings are in the configs), with its lines in ``<stage dir>/<stage>.log``
(the system's ``stage_log_dirs``) and a header recording the run. An espnet3 error a stage
raises (a message for people: what, the value, what to do) ends the script with that one
line, without a traceback; any other error is logged with its traceback and raised.

Example:
    >>> resolve_stages(["collect_stats", "create_dataset"],
    ...                ["create_dataset", "train_tokenizer", "collect_stats"])
    ['create_dataset', 'collect_stats']
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from espnet3.errors import Espnet3Error
from espnet3.parallel.schedulers import rank_variables
from espnet3.utils.logging_utils import log_stage, log_stage_metadata, set_stage_log_handler

log = logging.getLogger(__name__)

#: Environment variables that give a process its rank, in the order they are trusted: torch's,
#: then the batch schedulers' (each family names its own), then MPI launchers'.
_RANK_ENV_KEYS = (
    "RANK",
    "LOCAL_RANK",
    *rank_variables(),
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
    "MPI_RANK",
)
#: How the ``train`` stage logs when several processes run it: ``rank0`` or ``per_rank``.
STAGE_LOG_MODES = ("rank0", "per_rank")


def resolve_stages(requested: Sequence[str], stages: Sequence[str]) -> list[str]:
    """The requested stages in the recipe's order; every stage for ``all``."""
    if "all" in requested:
        return list(stages)
    wanted = set(requested)
    return [stage for stage in stages if stage in wanted]


def parse_cli_and_stage_args(
    parser: argparse.ArgumentParser, stages: Sequence[str]
) -> tuple[argparse.Namespace, list[str]]:
    """Parse the command line; the arguments and the stages to run, in order."""
    args = parser.parse_args()
    return args, resolve_stages(args.stages, stages)


def run_stages(
    system: Any,
    stages_to_run: Sequence[str],
    args: argparse.Namespace | None = None,
    log: logging.Logger | None = None,
) -> None:
    """Run each stage of ``system`` in order (``args.dry_run``: only say what would run)."""
    log = log or logging.getLogger("espnet3")
    dry_run = bool(getattr(args, "dry_run", False))
    _one_line_errors()
    for stage in stages_to_run:
        method = getattr(system, stage, None)
        if method is None:
            raise AttributeError(f"System has no stage method: {stage}")
        with log_stage(stage):
            if dry_run:
                log.info("[DRY RUN] would run stage: %s", stage)
                continue
            log_dir, filename = _stage_log(system, stage, log)
            set_stage_log_handler(Path(log_dir) if log_dir else None, filename=filename)
            log_stage_metadata(log, system=system, args=args)
            log.info("=== [START] stage: %s ===", stage)
            started = time.perf_counter()
            try:
                method()
            except TypeError as err:
                log.exception("Stage '%s' failed (bad arguments)", stage)
                raise TypeError(
                    f"Stage '{stage}' does not accept CLI arguments; put all settings in the "
                    "YAML config."
                ) from err
            except Espnet3Error as err:  # a message for people: one line, no traceback
                log.error("Stage '%s' failed: %s", stage, err)
                err.logged = True  # type: ignore[attr-defined]
                raise
            except Exception:
                log.exception("Stage '%s' failed after %.2fs", stage, time.perf_counter() - started)
                raise
            log.info("=== [DONE] stage: %s (%.2fs) ===", stage, time.perf_counter() - started)


def _stage_log(system: Any, stage: str, log: logging.Logger) -> tuple[Any, str]:
    """Where the stage's log goes; ``train`` on a rank other than 0 logs per ``stage_log_mode``."""
    dirs = system.stage_log_dirs
    log_dir = dirs.get(stage) or dirs.get("default")
    if stage != "train":
        return log_dir, f"{stage}.log"
    mode = _get_stage_log_mode(system)
    if mode not in STAGE_LOG_MODES:
        log.error(
            "Unknown stage_log_mode=%r (expected 'rank0' or 'per_rank'); falling back to 'rank0'.",
            mode,
        )
        mode = "rank0"
    rank = _get_process_rank()
    if mode == "per_rank":
        return log_dir, f"train_rank{rank}.log"
    return (log_dir if rank == 0 else None), "train.log"


def _get_stage_log_mode(system: Any) -> str:
    return str(getattr(system.training_config, "stage_log_mode", "rank0")).lower()


def _get_process_rank() -> int:
    """This process's rank: ``torch.distributed``'s when it runs, else the environment's."""
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None:
        try:
            if distributed.is_available() and distributed.is_initialized():
                return int(distributed.get_rank())
        except Exception:  # a half-initialised process group: the environment says
            pass
    for key in _RANK_ENV_KEYS:
        value = os.environ.get(key, "")
        if value.isdigit():
            return int(value)
    return 0


def _one_line_errors() -> None:
    """Make an uncaught espnet3 error end the script with its one-line message (once: a stage
    already logged it), not a traceback."""
    if getattr(sys.excepthook, "espnet3", False):
        return
    previous = sys.excepthook

    def hook(kind: type, error: BaseException, trace: Any) -> None:
        if not isinstance(error, Espnet3Error):
            previous(kind, error, trace)
        elif not getattr(error, "logged", False):
            print(f"espnet3: {error}", file=sys.stderr)

    hook.espnet3 = True  # type: ignore[attr-defined]
    sys.excepthook = hook
