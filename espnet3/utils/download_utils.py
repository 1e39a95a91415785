"""Upstream ESPnet3's download helpers, on espnet3's resumable download and safe extraction.

Example:
    >>> from pathlib import Path
    >>> logger = setup_logger("recipe.download", log_dir=Path("downloads"))  # doctest: +SKIP
    >>> archive = Path("downloads/an4.tar.gz")
    >>> download_url("https://example.org/an4.tar.gz", archive, logger)      # doctest: +SKIP
    >>> extract_targz(archive, Path("downloads"), logger)                    # doctest: +SKIP
    >>> extract_zip(Path("downloads/wham.zip"), Path("downloads"))           # doctest: +SKIP

The names and arguments are upstream ESPnet3's; the work is done by
:func:`espnet3.utils.download.download` and :func:`espnet3.utils.archive.extract_archive`,
and so differs on purpose:

- a download resumes after a dropped connection, is retried, and appears under its name only
  when complete; a complete file already there is kept instead of being fetched again;
- extraction refuses members that would land outside the directory (absolute names, ``..``,
  links pointing out, devices), and writes nothing until the whole archive has been unpacked.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from espnet3.errors import Espnet3Error
from espnet3.utils.archive import extract_archive
from espnet3.utils.atomic import remove_stale_temps, temp_name
from espnet3.utils.download import DownloadProgress, download

__all__ = ["DownloadProgress", "download_url", "extract_targz", "extract_zip", "setup_logger"]

log = logging.getLogger(__name__)


def setup_logger(
    name: str, log_dir: Path | None = None, level: int = logging.INFO
) -> logging.Logger:
    """The logger ``name``, printing to the console and, given ``log_dir``, to
    ``log_dir/download.log``; calling it again adds no second handler of either kind.

    The logger does not propagate: its own handlers print each message once.

    Example:
        >>> logger = setup_logger("recipe.download")
        >>> logger.propagate
        False
    """
    logger = logging.getLogger(name)
    logger.setLevel(level)
    logger.propagate = False
    formatter = logging.Formatter(
        "%(asctime)s | %(levelname)s | %(name)s | %(message)s", "%Y-%m-%d %H:%M:%S"
    )
    wanted: list[logging.Handler] = []
    # A FileHandler is a StreamHandler too, so the console handler is recognised by exact type.
    if not any(type(h) is logging.StreamHandler for h in logger.handlers):
        wanted.append(logging.StreamHandler())
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        target = os.path.abspath(Path(log_dir) / "download.log")
        if not any(getattr(h, "baseFilename", None) == target for h in logger.handlers):
            wanted.append(logging.FileHandler(target))
    for handler in wanted:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


def download_url(
    url: str,
    dst_path: Path,
    logger: logging.Logger | None = None,
    step_percent: int = 5,
    *,
    sha256: str | None = None,
) -> None:
    """Download ``url`` to ``dst_path``, logging every ``step_percent`` percent.

    ``logger=None`` logs to this module's logger. With ``sha256`` the file is verified (and a
    copy already there is checked rather than trusted). Failures raise
    :class:`~espnet3.errors.Espnet3Error` naming the URL and what to do.

    Example:
        >>> download_url("https://example.org/an4.tar.gz",
        ...              Path("downloads/an4.tar.gz"))   # doctest: +SKIP
    """
    dst_path = Path(dst_path)
    logger = logger or log
    progress = DownloadProgress(logger=logger, name=dst_path.name, step_percent=step_percent)
    logger.info("Start download: %s", dst_path.name)
    logger.info("Target directory: %s", dst_path.parent.resolve())
    download(url, dst_path, sha256=sha256, progress=progress.update)
    logger.info("Download completed: %s", dst_path.name)


def extract_targz(archive_path: Path, dst_dir: Path, logger: logging.Logger | None = None) -> None:
    """Extract the archive ``archive_path`` (tar of any compression, or zip) into ``dst_dir``.

    The archive is unpacked and checked beside ``dst_dir``'s content first; its entries are
    then moved in, merging into directories already there and replacing files of the same
    name, as ``tar`` does. An entry whose kind differs from what is there (a file where a
    directory is) stops with an error naming both, before anything is moved.

    Example:
        >>> extract_targz(Path("downloads/an4.tar.gz"), Path("downloads"))   # doctest: +SKIP
    """
    archive_path, dst_dir = Path(archive_path), Path(dst_dir)
    logger = logger or log
    logger.info("Extracting: %s", archive_path.name)
    dst_dir.mkdir(parents=True, exist_ok=True)
    # A private scratch directory per call: two extractions into one directory cannot meet,
    # and what a killed process leaves is one hidden .tmp directory.
    remove_stale_temps(dst_dir)
    scratch = Path(temp_name(Path(dst_dir) / archive_path.name))
    scratch.mkdir(mode=0o700)
    try:
        unpacked = extract_archive(archive_path, scratch / "content")
        _move_into(unpacked, dst_dir, archive_path, move=False)  # conflicts first
        _move_into(unpacked, dst_dir, archive_path, move=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("Extracted %s into %s", archive_path.name, dst_dir)


#: Upstream's name for extracting a zip: the same function (either name takes tar or zip).
extract_zip = extract_targz


def _move_into(source: Path, target: Path, archive: Path, *, move: bool) -> None:
    for entry in source.iterdir():
        dest = target / entry.name
        entry_is_dir = entry.is_dir() and not entry.is_symlink()
        # A directory already in dst_dir may be the user's symlink to another disk: follow it.
        if entry_is_dir and dest.is_dir():
            _move_into(entry, dest, archive, move=move)
        elif dest.is_dir() or (entry_is_dir and os.path.lexists(dest)):
            there = "a directory" if dest.is_dir() else "a file"
            raise Espnet3Error(
                f"cannot extract {archive} into {target}: {dest} is {there}, the archive has "
                f"{'a directory' if entry_is_dir else 'a file'} there; move {dest} away and "
                "extract again"
            )
        elif move:
            shutil.move(entry, dest)  # not os.replace: a followed symlink may cross devices
