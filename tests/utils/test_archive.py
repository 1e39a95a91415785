"""Safe extraction: malicious tar and zip members are refused and nothing lands outside."""

from __future__ import annotations

import itertools
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from espnet3.errors import Espnet3Error
from espnet3.utils.archive import UnsafeArchiveError, extract_archive
from tests.archives import ESCAPE, file_member, link_member, make_tar, tree


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ([file_member("../evil")], "member '../evil' would be written outside the target"),
        ([file_member("a/../../evil")], "member 'a/../../evil' would be written outside"),
        ([file_member("/tmp/evil-abs")], "member '/tmp/evil-abs' would be written outside"),
        (
            [link_member("s", "../../evil", tarfile.SYMTYPE)],
            "link 's' points to '../../evil', outside",
        ),
        (
            [link_member("s", "/etc/passwd", tarfile.SYMTYPE)],
            "link 's' points to '/etc/passwd', outside",
        ),
        ([link_member("d/s", "../..", tarfile.SYMTYPE)], "link 'd/s' points to '../..', outside"),
        ([link_member("h", "../evil", tarfile.LNKTYPE)], "link 'h' points to '../evil', outside"),
        ([link_member("h", "/etc/passwd", tarfile.LNKTYPE)], "link 'h' points to '/etc/passwd'"),
        (
            [link_member("s", "good", tarfile.SYMTYPE), file_member("s/evil")],
            "member 's/evil' lies under a symbolic link",
        ),
        ([link_member("fifo", "", tarfile.FIFOTYPE)], "member 'fifo' is a device or FIFO"),
    ],
)
def test_malicious_tar_is_rejected_and_writes_nothing(tmp_path, members, message):
    archive = make_tar(tmp_path / "bad.tar", members)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError) as err:
        extract_archive(archive, work / "out")
    assert message in str(err.value)
    assert "do not use it" in str(err.value) or "refusing" in str(err.value)
    assert tree(work) == []
    assert tree(tmp_path) == ["bad.tar", "work"]
    assert not Path("/tmp/evil-abs").exists()


def test_zip_with_parent_reference_is_rejected(tmp_path):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good.txt", "ok")
        zf.writestr("../evil.txt", "evil")
    with pytest.raises(UnsafeArchiveError, match="member '../evil.txt' would be written outside"):
        extract_archive(archive, tmp_path / "work" / "out")
    assert tree(tmp_path) == ["bad.zip", "work"]


def test_zip_symlink_is_rejected(tmp_path):
    archive = tmp_path / "link.zip"
    info = zipfile.ZipInfo("s")
    info.external_attr = 0o120777 << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="member 's' is a symbolic link"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_good_zip_and_inside_links_extract(tmp_path):
    archive = tmp_path / "good.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/b.txt", "zip")
    assert (extract_archive(archive, tmp_path / "z") / "a" / "b.txt").read_text() == "zip"
    tar = make_tar(tmp_path / "links.tar", [link_member("good/alias", "ok.txt", tarfile.SYMTYPE)])
    out = extract_archive(tar, tmp_path / "t")
    assert (out / "good" / "alias").read_text() == "ok"
    assert (out / "good" / "alias").is_symlink()


def test_real_mini_an4_archive_extracts(tmp_path, mini_an4_archive):
    out = extract_archive(mini_an4_archive, tmp_path / "an4")
    assert len(list(out.rglob("*.sph"))) == 8
    assert (out / "downloads" / "an4" / "etc" / "an4_train.transcription").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["an4"]
    # Readable like a directory made with mkdir, not private like mkdtemp's.
    made = tmp_path / "made"
    made.mkdir()
    assert stat.S_IMODE(out.stat().st_mode) == stat.S_IMODE(made.stat().st_mode)


def test_existing_target_missing_archive_and_non_archive_are_explained(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "x.tar").write_bytes(b"not an archive at all")
    with pytest.raises(Espnet3Error, match="into .*out: it already exists; remove it"):
        extract_archive(tmp_path / "x.tar", tmp_path / "out")
    with pytest.raises(Espnet3Error, match="archive .*missing.tar does not exist"):
        extract_archive(tmp_path / "missing.tar", tmp_path / "o2")
    with pytest.raises(Espnet3Error, match="x.tar is neither a tar nor a zip archive"):
        extract_archive(tmp_path / "x.tar", tmp_path / "o3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.tar"]


@pytest.mark.parametrize(
    "order", [(0, 1, 2), (2, 1, 0), (1, 2, 0), (1, 2), (2, 1)], ids=lambda o: "-".join(map(str, o))
)
def test_links_that_escape_through_other_links_are_refused_in_any_order(tmp_path, order):
    """file a/b, link c -> a/b/.., link a/b -> ..: c then resolves to the target's parent."""
    archive = make_tar(tmp_path / "bad.tar", [ESCAPE[i] for i in order])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UnsafeArchiveError, match="appears twice|link 'c' points to 'a/b/..'"):
        extract_archive(archive, work / "out")
    assert tree(work) == []


def test_a_link_loop_and_a_member_under_a_directory_made_a_file_are_refused(tmp_path):
    loop = make_tar(
        tmp_path / "loop.tar",
        [link_member("x", "y", tarfile.SYMTYPE), link_member("y", "x", tarfile.SYMTYPE)],
    )
    with pytest.raises(UnsafeArchiveError, match="link 'x' points to 'y'"):
        extract_archive(loop, tmp_path / "o1")
    clash = make_tar(tmp_path / "clash.tar", [file_member("f"), file_member("f/g")])
    with pytest.raises(UnsafeArchiveError, match="lies under 'f', which the archive made a file"):
        extract_archive(clash, tmp_path / "o2")


def test_a_python_without_the_data_filter_extracts_by_the_same_rules(tmp_path, monkeypatch):
    """A stand-in for Python 3.10.0-3.10.11/3.11.0-3.11.3 (Debian bookworm's 3.11.2), which
    cannot run here: the attacks are refused as before, and what is written gets the data
    filter's metadata (no setuid/setgid/sticky bits, no group or other write)."""
    monkeypatch.delattr(tarfile, "data_filter")
    for order in itertools.permutations(ESCAPE):
        with pytest.raises(UnsafeArchiveError):
            extract_archive(make_tar(tmp_path / "evil.tar", list(order)), tmp_path / "evil")
        assert not (tmp_path / "evil").exists()
    setuid = file_member("good/run.sh")
    setuid.mode = 0o6777
    out = extract_archive(make_tar(tmp_path / "ok.tar", [setuid]), tmp_path / "out")
    assert tree(out) == ["good", "good/ok.txt", "good/run.sh"]
    assert (out / "good" / "ok.txt").read_text() == "ok"
    assert stat.S_IMODE((out / "good" / "run.sh").stat().st_mode) == 0o755
