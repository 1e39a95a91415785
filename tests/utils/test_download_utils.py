"""download_utils: upstream's helpers over a real HTTP server on 127.0.0.1 and real archives."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import logging
import tarfile
import threading
from pathlib import Path

import pytest

from espnet3.errors import ConfigError, Espnet3Error
from espnet3.utils.archive import UnsafeArchiveError
from espnet3.utils.download import DownloadProgress
from espnet3.utils.download_utils import download_url, extract_targz, setup_logger

PAYLOAD = bytes(range(256)) * 2000  # 512 000 bytes


@pytest.fixture
def served(tmp_path):
    """Serve tmp_path/www over HTTP; yields (base URL, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "an4.bin").write_bytes(PAYLOAD)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    handler = functools.partial(Handler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def logger():
    """A propagating logger, so caplog sees what the helpers log."""
    return logging.getLogger("tests.download_utils")


def messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def test_download_url_fetches_and_logs_progress(served, tmp_path, logger, caplog):
    base, _ = served
    dst = tmp_path / "downloads" / "an4.bin"
    with caplog.at_level(logging.INFO, logger=logger.name):
        download_url(f"{base}/an4.bin", dst, logger, step_percent=25)
    assert dst.read_bytes() == PAYLOAD
    logged = messages(caplog)
    assert logged[0] == "Start download: an4.bin"
    assert logged[1] == f"Target directory: {dst.parent.resolve()}"
    assert logged[-1] == "Download completed: an4.bin"
    assert [m.split(": ")[1].split(" ")[0] for m in logged[2:-1]] == ["0%", "100%"]


def test_download_url_keeps_a_complete_file_and_checks_sha256(served, tmp_path, caplog):
    base, requests = served
    dst = tmp_path / "an4.bin"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    download_url(f"{base}/an4.bin", dst, sha256=sha)
    with caplog.at_level(logging.INFO):
        download_url(f"{base}/an4.bin", dst, sha256=sha)  # logger=None: module logger
    assert requests == ["/an4.bin"]
    assert any("already downloaded" in m for m in messages(caplog))
    assert "Download completed: an4.bin" in messages(caplog)
    with pytest.raises(Espnet3Error, match="checksum mismatch"):
        download_url(f"{base}/an4.bin", tmp_path / "other.bin", sha256="0" * 64)
    assert not (tmp_path / "other.bin").exists()


def test_download_progress_logs_each_step_once(logger, caplog):
    progress = DownloadProgress(logger=logger, name="f", step_percent=10)
    with caplog.at_level(logging.INFO, logger=logger.name):
        for done in (0, 5, 10, 15, 99, 100, 120):  # urlretrieve overshoots the last block
            progress(block_num=done, block_size=1, total_size=100)
    assert [m.split(": ")[1].split(" ")[0] for m in messages(caplog)] == [
        "0%",
        "10%",
        "99%",
        "100%",
    ]


def test_download_progress_unknown_size_and_bad_step(logger, caplog):
    progress = DownloadProgress(logger=logger, name="f")
    with caplog.at_level(logging.INFO, logger=logger.name):
        progress.update(1 << 20, None)
        progress.update(2 << 20, None)
    assert messages(caplog) == ["Downloading f: size unknown, 1.0MB so far"]
    with pytest.raises(ConfigError, match="from 1 to 100, got 0"):
        DownloadProgress(logger=None, name="f", step_percent=0)


def make_targz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def tree(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


def test_extract_targz_merges_into_the_directory_like_tar(tmp_path, logger, caplog):
    downloads = tmp_path / "downloads"
    archive = make_targz(tmp_path / "an4.tar.gz", {"an4/wav/a.wav": b"new", "an4/etc/list": b"a\n"})
    (downloads / "an4" / "wav").mkdir(parents=True)
    (downloads / "an4" / "wav" / "a.wav").write_bytes(b"old")
    (downloads / "an4" / "wav" / "keep.wav").write_bytes(b"mine")
    with caplog.at_level(logging.INFO, logger=logger.name):
        extract_targz(archive, downloads, logger)
    assert tree(downloads) == {
        "an4": None,
        "an4/etc": None,
        "an4/etc/list": b"a\n",
        "an4/wav": None,
        "an4/wav/a.wav": b"new",
        "an4/wav/keep.wav": b"mine",
    }
    assert messages(caplog)[0] == "Extracting: an4.tar.gz"


def test_extract_targz_follows_a_directory_symlink_already_there(tmp_path):
    # Users point downloads/an4 at a bigger disk; the archive's an4/ goes there.
    elsewhere = tmp_path / "big_disk" / "an4"
    elsewhere.mkdir(parents=True)
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "an4").symlink_to(elsewhere)
    archive = make_targz(tmp_path / "an4.tar.gz", {"an4/etc/list": b"a\n"})
    extract_targz(archive, tmp_path / "downloads")
    assert (tmp_path / "downloads" / "an4").is_symlink()
    assert tree(elsewhere) == {"etc": None, "etc/list": b"a\n"}


def test_extract_targz_into_a_new_directory_without_logger(tmp_path):
    archive = make_targz(tmp_path / "x.tar.gz", {"a.txt": b"a"})
    extract_targz(archive, tmp_path / "new" / "dir")
    assert tree(tmp_path / "new") == {"dir": None, "dir/a.txt": b"a"}


def test_extract_targz_refuses_unsafe_members_and_writes_nothing(tmp_path):
    archive = make_targz(tmp_path / "evil.tar.gz", {"ok.txt": b"ok", "../evil": b"x"})
    dst = tmp_path / "dst"
    with pytest.raises(UnsafeArchiveError, match="'../evil' would be written outside"):
        extract_targz(archive, dst)
    assert tree(dst) == {}
    assert not (tmp_path / "evil").exists()


def test_extract_targz_refuses_a_file_where_a_directory_is_before_moving_anything(tmp_path):
    archive = make_targz(tmp_path / "x.tar.gz", {"a.txt": b"a", "data": b"a file"})
    (tmp_path / "dst" / "data").mkdir(parents=True)
    with pytest.raises(Espnet3Error, match=r"dst/data is a directory, the archive has a file"):
        extract_targz(archive, tmp_path / "dst")
    assert tree(tmp_path / "dst") == {"data": None}  # no a.txt, no scratch directory


def test_setup_logger_adds_each_handler_once(tmp_path):
    name = f"tests.setup_logger.{tmp_path.name}"
    try:
        logger = setup_logger(name, log_dir=tmp_path / "logs")
        assert setup_logger(name, log_dir=tmp_path / "logs") is logger
        logger.info("hello")
        kinds = sorted(type(h).__name__ for h in logger.handlers)
        assert kinds == ["FileHandler", "StreamHandler"]
        assert logger.propagate is False
        assert "| INFO | " in (tmp_path / "logs" / "download.log").read_text()
        assert "hello" in (tmp_path / "logs" / "download.log").read_text()
    finally:
        for handler in logging.getLogger(name).handlers[:]:
            handler.close()
            logging.getLogger(name).removeHandler(handler)


def test_extract_zip_unpacks_a_zip_and_refuses_one_that_escapes(tmp_path):
    import zipfile

    from espnet3.utils.download_utils import extract_zip

    good = tmp_path / "wham.zip"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("wham_noise/tr/a.wav", b"RIFF")
        z.writestr("wham_noise/cv/b.wav", b"RIFF2")
    extract_zip(good, tmp_path / "dst")
    assert tree(tmp_path / "dst")["wham_noise/cv/b.wav"] == b"RIFF2"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("ok.txt", b"ok")
        z.writestr("../../evil.txt", b"x")
    with pytest.raises(UnsafeArchiveError, match="would be written outside"):
        extract_zip(evil, tmp_path / "dst2")
    assert tree(tmp_path / "dst2") == {} and not (tmp_path / "evil.txt").exists()
