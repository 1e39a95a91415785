"""Archives for tests and the reliability cases: hostile tar members and a large mini_an4.

Example:
    >>> import tarfile
    >>> link_member("s", "/etc/passwd", tarfile.SYMTYPE).issym()
    True
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def make_tar(path: Path, members: list[tarfile.TarInfo]) -> Path:
    """A tar at ``path`` holding a harmless ``good/ok.txt``, then ``members`` in order."""
    with tarfile.open(path, "w") as tar:
        ok = tarfile.TarInfo("good/ok.txt")
        ok.size = 2
        tar.addfile(ok, io.BytesIO(b"ok"))
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


def file_member(name: str) -> tarfile.TarInfo:
    """A 4-byte regular file member."""
    info = tarfile.TarInfo(name)
    info.size = 4
    return info


def link_member(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    """A link (or device: ``kind`` is a tarfile type) member pointing at ``target``."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def tree(root: Path) -> list[str]:
    """Every path under ``root``, relative and sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


ESCAPE = [  # the members of a link-ordering attack: each link alone looks harmless
    file_member("a/b"),
    link_member("c", "a/b/..", tarfile.SYMTYPE),
    link_member("a/b", "..", tarfile.SYMTYPE),
]


def big_archive(source: Path, target: Path, copies: int) -> Path:
    """The real archive with every train utterance repeated ``copies`` times under new ids."""
    with tarfile.open(source) as src:
        members = {m.name: (m, src.extractfile(m).read() if m.isfile() else None) for m in src}
    etc = "downloads/an4/etc/"
    trans = members[etc + "an4_train.transcription"][1].decode().splitlines()
    fileids = members[etc + "an4_train.fileids"][1].decode().splitlines()
    extra = {}
    originals = list(zip(trans, fileids, strict=True))
    for k in range(copies):
        for line, fid in originals:
            folder, utt = fid.rsplit("/", 1)
            session, speaker, channel = utt.split("-")  # AN4's session-speaker-channel
            new = f"{session}x{k:04d}-{speaker}-{channel}"
            extra[f"downloads/an4/wav/{folder}/{new}.sph"] = f"downloads/an4/wav/{fid}.sph"
            trans.append(line.replace(f"({utt})", f"({new})"))
            fileids.append(f"{folder}/{new}")
    with tarfile.open(target, "w") as dst:  # uncompressed: quick to write and read
        for name, (member, data) in members.items():
            if name == etc + "an4_train.transcription":
                data = ("\n".join(trans) + "\n").encode()
            elif name == etc + "an4_train.fileids":
                data = ("\n".join(fileids) + "\n").encode()
            if data is not None:
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
        for name, original in extra.items():
            info = tarfile.TarInfo(name)
            data = members[original][1]
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return target
