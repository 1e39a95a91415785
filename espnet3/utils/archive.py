"""Extract tar and zip archives without letting any member escape the target directory.

Every member is checked before anything is written: absolute names, ``..`` components, links
pointing outside the target (symbolic or hard), devices and FIFOs are refused with an error
naming the member. Tar extraction also uses tarfile's ``data`` filter where Python has it, as
a second line of defence. Members are extracted into a temporary directory beside the target
which is renamed into place only when everything succeeded, so a crash or a refused member
leaves no partial target behind.

Example:
    >>> import io, pathlib, tarfile, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with tarfile.open(d / "a.tar", "w") as tar:
    ...     info = tarfile.TarInfo("corpus/hello.txt"); info.size = 2
    ...     tar.addfile(info, io.BytesIO(b"hi"))
    >>> out = extract_archive(d / "a.tar", d / "out")
    >>> (out / "corpus" / "hello.txt").read_text()
    'hi'
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from espnet3.errors import Espnet3Error
from espnet3.utils.atomic import plain_mode


class UnsafeArchiveError(Espnet3Error):
    """An archive member would be written (or would point) outside the target directory."""


def extract_archive(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract ``archive`` (tar, tar.gz/bz2/xz, or zip) so that its content becomes ``target``.

    ``target`` must not exist yet (a complete earlier extraction is the caller's to detect,
    e.g. by checking for ``target``). Returns ``target``.
    """
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise Espnet3Error(
            f"cannot extract {archive} into {target}: it already exists; remove it to extract again"
        )
    if not archive.is_file():
        raise Espnet3Error(f"archive {archive} does not exist: download it first")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    staging.chmod(plain_mode(0o777))  # mkdtemp's 0700 would hide the data from a project group
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, staging)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, staging)
        else:
            raise Espnet3Error(f"{archive} is neither a tar nor a zip archive: check the download")
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _safe_name(archive: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchiveError(
            f"{archive}: member {name!r} would be written outside the target directory; "
            "the archive is corrupt or malicious, do not use it"
        )
    return path


def _check_link(archive: Path, member: tarfile.TarInfo, name: PurePosixPath) -> None:
    link = PurePosixPath(member.linkname.replace("\\", "/"))
    # Symlink targets are relative to the link's directory, hard-link targets to the root.
    resolved = (name.parent if member.issym() else PurePosixPath()) / link
    depth = 0
    for part in resolved.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            break
    if link.is_absolute() or depth < 0:
        raise UnsafeArchiveError(
            f"{archive}: link {member.name!r} points to {member.linkname!r}, outside the "
            "target directory; the archive is corrupt or malicious, do not use it"
        )


def _extract_tar(archive: Path, staging: Path) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        symlinks: set[PurePosixPath] = set()
        for member in members:
            name = _safe_name(archive, member.name)
            # Writing through an archived symlink could land anywhere its target leads.
            if any(parent in symlinks for parent in name.parents):
                raise UnsafeArchiveError(
                    f"{archive}: member {member.name!r} lies under a symbolic link of the same "
                    "archive; the archive is corrupt or malicious, do not use it"
                )
            if member.issym() or member.islnk():
                _check_link(archive, member, name)
                if member.issym():
                    symlinks.add(name)
            elif not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(
                    f"{archive}: member {member.name!r} is a device or FIFO; refusing to "
                    "create special files"
                )
        if hasattr(tarfile, "data_filter"):
            tar.extractall(staging, members=members, filter="data")
        else:  # Python without extraction filters: the checks above are the defence
            tar.extractall(staging, members=members)


def _extract_zip(archive: Path, staging: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            _safe_name(archive, info.filename)
            # Unix symlinks in zips are regular entries with S_IFLNK mode; zipfile would write
            # the link target as file content, which is harmless, but refuse them for clarity.
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise UnsafeArchiveError(
                    f"{archive}: member {info.filename!r} is a symbolic link; links in zip "
                    "archives are not supported"
                )
        zf.extractall(staging, members=infos)
