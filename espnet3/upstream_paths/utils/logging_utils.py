"""Logging for recipe runs: one format, a log file per stage, and what a run was made of.

Upstream ESPnet3's recipe scripts (``egs3/TEMPLATE/<task>/run.py``) call these: the format
names the host and the stage of every line (``[host] time (file:line) LEVEL: [stage] text``);
:func:`configure_logging` adds a console handler (and a ``run.log``, rotated to ``run1.log``
... when one exists); :func:`set_stage_log_handler` sends a stage's lines to
``<dir>/<stage>.log``; :func:`log_stage_metadata` records the command, Python, working
directory, config files, git state, cluster and runtime environment and the configs.

Example:
    >>> log = configure_logging()
    >>> with log_stage("create_dataset"):
    ...     log.info("building")                              # doctest: +SKIP
    [host] 2026-12-07 12:00:00 UTC (run.py:12) INFO:	[create_dataset] building
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import logging
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from espnet3.parallel.schedulers import job_variables

LOG_FORMAT = (
    "[%(hostname)s] %(asctime)s (%(filename)s:%(lineno)d) %(levelname)s:\t[%(stage)s] %(message)s"
)
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %Z"
#: Environment variables of MPI launchers, logged with each stage. Those of batch jobs are
#: the caller's to give (``job_variables``: ``espnet3.parallel.schedulers.job_variables()``),
#: as this layer knows no scheduler.
MPI_PREFIXES = ("OMPI_", "PMI_", "MPI_")
#: Environment variables that change how a run computes, logged with each stage.
RUNTIME_PREFIXES = ("NCCL_", "CUDA_", "ROCM_", "OMP_", "MKL_", "OPENBLAS_", "UCX_", "NVIDIA_")
RUNTIME_KEYS = (
    "PATH",
    "PYTHONPATH",
    "LD_LIBRARY_PATH",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "WORLD_SIZE",
    "MASTER_ADDR",
    "MASTER_PORT",
)

_STAGE = contextvars.ContextVar("espnet3_log_stage", default="main")
_HOST = socket.gethostname()
#: Marks the handler :func:`set_stage_log_handler` added, so the next stage replaces it.
_STAGE_HANDLER = "_espnet3_stage_log"


class _RunFields(logging.Filter):
    """Gives every record the host and stage the format prints."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.hostname = _HOST
        record.stage = _STAGE.get()
        return True


_FIELDS = _RunFields()


@contextlib.contextmanager
def log_stage(name: str) -> Iterator[None]:
    """Label every line logged inside the block with stage ``name``."""
    token = _STAGE.set(name)
    try:
        yield
    finally:
        _STAGE.reset(token)


def _formatted(handler: logging.Handler) -> logging.Handler:
    handler.setFormatter(logging.Formatter(fmt=LOG_FORMAT, datefmt=DATE_FORMAT))
    if _FIELDS not in handler.filters:
        handler.addFilter(_FIELDS)
    return handler


def set_log_format(
    log_format: str | None = None, date_format: str | None = None, apply: bool = True
) -> None:
    """Change the format (and date format) of the run's lines; ``apply`` reformats the
    handlers the root logger has now."""
    global LOG_FORMAT, DATE_FORMAT
    LOG_FORMAT = log_format or LOG_FORMAT
    DATE_FORMAT = date_format or DATE_FORMAT
    if apply:
        for handler in logging.getLogger().handlers:
            _formatted(handler)


def configure_logging(
    log_dir: Path | None = None, level: int = logging.INFO, filename: str = "run.log"
) -> logging.Logger:
    """Console logging at ``level`` (and ``<log_dir>/<filename>``, an existing one rotated to
    ``<name>1<suffix>``, ``<name>2<suffix>`` ...); warnings go to the log. Calling it again adds
    nothing twice. Returns the ``espnet3`` logger."""
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(h, logging.StreamHandler) for h in root.handlers):
        root.addHandler(_formatted(logging.StreamHandler()))
    if log_dir is not None:
        target = (Path(log_dir) / filename).resolve()
        if not any(_writes_to(h, target) for h in root.handlers):
            root.addHandler(_formatted(_file_handler(target)))
    logging.captureWarnings(True)
    return logging.getLogger("espnet3")


def set_stage_log_handler(log_dir: Path | None, filename: str) -> Path | None:
    """Send the lines logged from now on to ``<log_dir>/<filename>`` too (an existing file
    rotated), instead of the previous stage's file; the path, or ``None`` without a dir."""
    if log_dir is None:
        return None
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _STAGE_HANDLER, False)]:
        root.removeHandler(handler)
        handler.close()
    target = (Path(log_dir) / filename).resolve()
    handler = _formatted(_file_handler(target))
    setattr(handler, _STAGE_HANDLER, True)
    root.addHandler(handler)
    return target


def _file_handler(target: Path) -> logging.FileHandler:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        os.replace(target, next_rotated_path(target))
    return logging.FileHandler(target, encoding="utf-8")


def next_rotated_path(target: Path) -> Path:
    """The first free ``<stem><n><suffix>`` beside ``target`` (``run1.log``, ``run2.log`` ...).

    Example:
        >>> next_rotated_path(Path("/nonexistent/run.log")).name
        'run1.log'
    """
    for n in range(1, 1_000_000):
        candidate = target.with_name(f"{target.stem}{n}{target.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"no free rotated name beside {target}")


def _writes_to(handler: logging.Handler, target: Path) -> bool:
    name = getattr(handler, "baseFilename", None)
    return isinstance(handler, logging.FileHandler) and name and Path(name).resolve() == target


# ----- what a run was made of -------------------------------------------------------------
def log_stage_metadata(logger: logging.Logger, system: Any, args: Any) -> None:
    """Log the run (command, configs, git, environment) and the system's resolved configs."""
    configs = {
        name: getattr(args, f"{name.lower()}_config", None)
        for name in ("Training", "Inference", "Metrics")
    }
    log_run_metadata(
        logger,
        argv=sys.argv,
        configs={name: Path(path) if path else None for name, path in configs.items()},
        write_requirements=bool(getattr(args, "write_requirements", False)),
    )
    log_env_metadata(logger)
    from omegaconf import OmegaConf

    for name in ("training", "inference", "metrics"):
        config = getattr(system, f"{name}_config", None)
        if config is not None:
            text = OmegaConf.to_yaml(config, resolve=True)
            logger.info("%s config content:\n%s", name.capitalize(), text)


def log_run_metadata(
    logger: logging.Logger,
    argv: Sequence[str] | None = None,
    configs: Mapping[str, Path | None] | None = None,
    write_requirements: bool = False,
) -> None:
    """Log when and how the run started: command, Python, working directory, config files and
    git state; with ``write_requirements``, ``requirements.txt`` beside the log file."""
    argv = list(sys.argv if argv is None else argv)
    logger.info("=== ESPnet3 run started: %s ===", datetime.datetime.now().isoformat())
    logger.info("Command: %s %s", sys.executable, shlex.join(argv))
    logger.info("Python: %s (%s)", sys.version.split()[0], platform.platform())
    logger.info("Working directory: %s", Path.cwd())
    for name, path in (configs or {}).items():
        if path is not None:
            logger.info("%s config: %s", name, Path(path).resolve())
    git = get_git_metadata()
    if git:
        logger.info("Git: %s", ", ".join(f"{k}={v}" for k, v in git.items()))
    if write_requirements:
        _write_requirements(logger)


def get_git_metadata(cwd: Path | None = None) -> dict[str, str]:
    """``commit``, ``short_commit``, ``branch``, ``origin_url`` and ``worktree`` (clean or
    dirty) of the git checkout ``cwd`` is in; ``{}`` outside one."""
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return {}
    status = _git(["status", "--porcelain"], cwd)
    meta = {
        "commit": commit,
        "short_commit": commit[:8],
        "branch": _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd),
        "origin_url": _git(["config", "--get", "remote.origin.url"], cwd),
        "worktree": "unknown" if status is None else ("dirty" if status else "clean"),
    }
    return {k: v for k, v in meta.items() if v is not None}


def _git(args: list[str], cwd: Path | None) -> str | None:
    if shutil.which("git") is None:
        return None
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _run_pip_freeze() -> str:
    """The installed packages, as ``pip freeze`` prints them."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "freeze"], capture_output=True, text=True, check=False
    )
    return out.stdout


def _write_requirements(logger: logging.Logger) -> None:
    folder = next(
        (
            Path(h.baseFilename).parent
            for lg in (logger, logging.getLogger())
            for h in lg.handlers
            if isinstance(h, logging.FileHandler)
        ),
        None,
    )
    if folder is None:
        logger.warning("Skipping requirements export: no file logger configured.")
        return
    from espnet3.utils.atomic import atomic_write_text

    path = folder / "requirements.txt"
    atomic_write_text(path, _run_pip_freeze())
    logger.info("Wrote requirements snapshot: %s", path)


def log_env_metadata(
    logger: logging.Logger,
    cluster_prefixes: Iterable[str] | None = None,
    runtime_prefixes: Iterable[str] = RUNTIME_PREFIXES,
    runtime_keys: Iterable[str] = RUNTIME_KEYS,
) -> None:
    """Log the cluster (``cluster_prefixes``; by default every scheduler family's job
    variables and MPI's) and runtime environment variables, and torch's build."""
    if cluster_prefixes is None:
        cluster_prefixes = (*job_variables(), *MPI_PREFIXES)
    cluster = _environment(tuple(cluster_prefixes), ())
    runtime = _environment(tuple(runtime_prefixes), tuple(runtime_keys))
    logger.info("Cluster env:\n%s", cluster or "  (none)")
    logger.info("Runtime env:\n%s", runtime or "  (none)")
    torch = sys.modules.get("torch")
    if torch is not None:  # only when the run loaded it: logging must not import torch
        logger.info(
            "PyTorch: version=%s, cuda.available=%s", torch.__version__, torch.cuda.is_available()
        )


def _environment(prefixes: tuple[str, ...], keys: tuple[str, ...]) -> str:
    names = sorted(n for n in os.environ if n.startswith(prefixes) or n in keys)
    return "\n".join(f"  {n}={os.environ[n]}" for n in names)


# ----- names of things, for logs ----------------------------------------------------------
def build_qualified_name(obj: Any) -> str:
    """``module.QualName`` of a class or of an object's class; containers with their size.

    Example:
        >>> build_qualified_name(dict), build_qualified_name([1, 2])
        ('builtins.dict', 'list(len=2)')
    """
    if isinstance(obj, (list, tuple, set, dict)):
        return f"{type(obj).__name__}(len={len(obj)})"
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def build_callable_name(func: Any) -> str:
    """``module.name`` of a function, or the qualified name of a callable object's class.

    Example:
        >>> build_callable_name(len)
        'builtins.len'
    """
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    module = getattr(func, "__module__", None)
    if name and module and not isinstance(func, type) and callable(func):
        if hasattr(func, "__code__") or type(func).__name__ == "builtin_function_or_method":
            return f"{module}.{name}"
    return build_qualified_name(func)
