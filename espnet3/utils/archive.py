"""Extract tar and zip archives without letting any member escape the target directory.

Every member is checked before anything is written, against the tree the members build (as
the filesystem would resolve it, links included): absolute names, ``..`` components, a member
under a symbolic link, a name given twice (a later member would replace the first), links
that resolve outside the target through earlier or later links, devices and FIFOs are refused
with an error naming the member. The order of the members cannot change the verdict. Tar
extraction then runs with tarfile's ``data`` filter as a second line of defence; on a Python
without it (before 3.10.12 and 3.11.4, Debian bookworm's 3.11.2 among them) the same rules
for what is written are applied here: no setuid, setgid or sticky bits, no group or other
write, files owned by the extracting user. Members are extracted into a temporary
directory beside the target which is renamed into place only when everything succeeded, so a
crash or a refused member leaves no partial target behind.

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

import copy
import os
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from espnet3.errors import Espnet3Error
from espnet3.utils.atomic import remove_stale_temps, temp_name


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
    remove_stale_temps(target.parent)  # what a killed extraction left: a copy of the corpus
    staging = Path(temp_name(target))
    staging.mkdir()
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


class _Plan:
    """The tree a tar archive's members build, checked member by member and as a whole."""

    def __init__(self, archive: Path):
        self.archive = archive
        self.kinds: dict[PurePosixPath, str] = {}  # "file" | "dir" | "link"
        self.links: dict[PurePosixPath, PurePosixPath] = {}  # symbolic link -> its target

    def add(self, member: tarfile.TarInfo) -> None:
        name = _safe_name(self.archive, member.name)
        if name == PurePosixPath("."):
            return
        kind = "link" if member.issym() else "dir" if member.isdir() else "file"
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            self._refuse(member, "is a device or FIFO; refusing to create special files")
        for parent in list(name.parents)[:-1]:
            if self.kinds.get(parent) == "link":
                self._refuse(member, "lies under a symbolic link of the same archive")
            if self.kinds.setdefault(parent, "dir") != "dir":
                self._refuse(member, f"lies under {str(parent)!r}, which the archive made a file")
        if name in self.kinds and not (kind == "dir" == self.kinds[name]):
            self._refuse(member, "appears twice (a later member would replace what the first made)")
        self.kinds[name] = kind
        if member.issym():
            self.links[name] = PurePosixPath(member.linkname.replace("\\", "/"))
        elif member.islnk():  # a hard link's target is a file the archive already holds
            target = PurePosixPath(member.linkname.replace("\\", "/"))
            if target.is_absolute() or ".." in target.parts:
                raise UnsafeArchiveError(
                    f"{self.archive}: link {member.name!r} points to {member.linkname!r}, outside "
                    "the target directory; the archive is corrupt or malicious, do not use it"
                )
            if self.kinds.get(target) != "file" or any(p in self.links for p in target.parents):
                self._refuse(member, f"is a hard link to {member.linkname!r}, not a file of it")

    def check_links(self) -> None:
        """Every symbolic link, resolved through all the others, stays inside the target."""
        for name, target in self.links.items():
            if target.is_absolute() or self._resolve(name.parent / target, 0) is None:
                raise UnsafeArchiveError(
                    f"{self.archive}: link {str(name)!r} points to {str(target)!r}, outside the "
                    "target directory; the archive is corrupt or malicious, do not use it"
                )

    def _resolve(self, path: PurePosixPath, depth: int) -> PurePosixPath | None:
        """``path`` as the filesystem resolves it in this tree; ``None`` if it leaves it."""
        if depth > 40:  # a loop of links: the filesystem gives up too
            return None
        current = PurePosixPath()
        for part in path.parts:
            if part == "..":
                if current == PurePosixPath():
                    return None
                current = current.parent
            elif part != ".":
                current = current / part
                if current in self.links:
                    target = self.links[current]
                    if target.is_absolute():
                        return None
                    current = self._resolve(current.parent / target, depth + 1)
                    if current is None:
                        return None
        return current

    def _refuse(self, member: tarfile.TarInfo, why: str) -> None:
        raise UnsafeArchiveError(
            f"{self.archive}: member {member.name!r} {why}; the archive is corrupt or "
            "malicious, do not use it"
        )


def _extract_tar(archive: Path, staging: Path) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        plan = _Plan(archive)
        for member in members:
            plan.add(member)
        plan.check_links()
        if hasattr(tarfile, "data_filter"):
            tar.extractall(staging, members=members, filter="data")
        else:  # members already judged above; write them as the data filter would
            tar.extractall(staging, members=[_as_data(m) for m in members])


#: Mode bits the ``data`` filter clears: setuid, setgid, sticky, group and other write.
_UNSAFE_MODE = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH


def _as_data(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """A copy of a judged member with the metadata tarfile's ``data`` filter would give it."""
    member = copy.copy(member)
    member.mode &= ~_UNSAFE_MODE
    if member.isfile():
        member.mode |= stat.S_IRUSR | stat.S_IWUSR
    member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
    return member


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
