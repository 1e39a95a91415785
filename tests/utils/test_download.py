"""download(): resume with HTTP Range, retry, checksum, against a real server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from espnet3.errors import Espnet3Error
from espnet3.utils.download import download, sha256_of

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB


class Server:
    """http.server in a thread serving ``payload`` at /file as a real file server does: with an
    ETag, ``Range: bytes=N-`` answered by 206 and ``Content-Range``, and ``If-Range`` honoured
    (another ETag: the whole file, 200). ``validators=False`` serves without ETag.

    ``drops`` lists byte counts after which successive responses cut the connection.
    """

    def __init__(self):
        self.ranges: list[str | None] = []
        self.drops: list[int] = []
        self.payload = PAYLOAD
        self.validators = True
        self.ignore_if_range = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/file":
                    self.send_error(404)
                    return
                payload = server.payload
                etag = f'"{hashlib.sha256(payload).hexdigest()[:16]}"'
                header = self.headers.get("Range")
                server.ranges.append(header)
                if_range = self.headers.get("If-Range")
                if header and if_range not in (None, etag) and not server.ignore_if_range:
                    header = None  # another version: the whole file
                start = int(header.removeprefix("bytes=").rstrip("-")) if header else 0
                if start >= len(payload):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(payload)}")
                    self.end_headers()
                    return
                body = payload[start:]
                self.send_response(206 if header else 200)
                self.send_header("Content-Length", str(len(body)))
                if header:
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}"
                    )
                if server.validators:
                    self.send_header("ETag", etag)
                self.end_headers()
                if server.drops:
                    self.wfile.write(body[: server.drops.pop(0)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_interrupted_transfer_resumes_with_range_and_verifies(server, tmp_path):
    server.drops = [300_000, 200_000]
    dest = download(server.url, tmp_path / "f.bin", sha256=SHA, backoff=0)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == [None, "bytes=300000-", "bytes=500000-"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_partial_file_from_a_killed_run_is_resumed(server, tmp_path):
    server.drops = [123_456]
    with pytest.raises(Espnet3Error, match="run again to resume"):
        download(server.url, tmp_path / "f.bin", retries=0)  # as a killed run leaves it
    download(server.url, tmp_path / "f.bin", sha256=SHA)
    assert server.ranges == [None, "bytes=123456-"]
    assert sha256_of(tmp_path / "f.bin") == SHA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


NEW_VERSION = bytes(range(255, -1, -1)) * 3000


@pytest.mark.parametrize(
    "kept",
    [
        pytest.param(123_456, id="start of the previous version"),
        pytest.param(900_000, id="longer than the new version"),
    ],
)
def test_a_part_of_another_version_is_never_spliced(server, tmp_path, kept):
    """No checksum given (allowed): the part of the old file must not be completed with the
    new one's tail, nor returned because it is at least as long."""
    server.drops = [kept]
    with pytest.raises(Espnet3Error, match="run again to resume"):
        download(server.url, tmp_path / "f.bin", retries=0)
    assert (tmp_path / ".f.bin.part").read_bytes() == PAYLOAD[:kept]
    server.payload = NEW_VERSION
    assert len(NEW_VERSION) < 900_000 < len(PAYLOAD)
    assert download(server.url, tmp_path / "f.bin").read_bytes() == NEW_VERSION


def test_a_server_that_ignores_if_range_is_caught_by_its_content_range(server, tmp_path):
    server.drops = [200_000]
    with pytest.raises(Espnet3Error):
        download(server.url, tmp_path / "f.bin", retries=0)
    server.payload, server.ignore_if_range = NEW_VERSION, True  # 206 of the new, shorter file
    assert download(server.url, tmp_path / "f.bin").read_bytes() == NEW_VERSION
    assert server.ranges[-2:] == ["bytes=200000-", None]


def test_a_part_nothing_identifies_is_downloaded_again(server, tmp_path):
    server.validators = False  # no ETag, no Last-Modified: no proof of the same file
    server.drops = [300_000]
    assert download(server.url, tmp_path / "f.bin", backoff=0).read_bytes() == PAYLOAD
    assert server.ranges == [None, None]
    (tmp_path / ".f.bin.part").write_bytes(b"x" * 1000)  # left by some other tool
    (tmp_path / "f.bin").unlink()
    assert download(server.url, tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert server.ranges[-1] is None


def test_verified_file_is_not_downloaded_again(server, tmp_path):
    download(server.url, tmp_path / "f.bin", sha256=SHA)
    mtime = (tmp_path / "f.bin").stat().st_mtime_ns
    download(server.url, tmp_path / "f.bin", sha256=SHA)
    assert server.ranges == [None]
    assert (tmp_path / "f.bin").stat().st_mtime_ns == mtime


def test_checksum_mismatch_deletes_the_download_and_says_so(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(Espnet3Error) as err:
        download(server.url, tmp_path / "f.bin", sha256=wrong)
    assert str(err.value) == (
        f"checksum mismatch for {server.url}: expected sha256 {wrong}, got {SHA}; "
        "the file was deleted. Check the expected checksum or the mirror"
    )
    assert list(tmp_path.iterdir()) == []


def test_too_many_interruptions_keep_the_part_for_a_later_resume(server, tmp_path):
    server.drops = [1000, 1000]
    with pytest.raises(
        Espnet3Error,
        match=r"failed after 2 attempts .*2000 bytes kept in .*\.f\.bin\.part: run again",
    ):
        download(server.url, tmp_path / "f.bin", retries=1, backoff=0)
    download(server.url, tmp_path / "f.bin", sha256=SHA)
    assert server.ranges[-1] == "bytes=2000-"


def test_missing_url_is_not_retried(server, tmp_path):
    with pytest.raises(Espnet3Error, match="HTTP 404 .*check the URL"):
        download(server.url + "-nope", tmp_path / "f.bin", backoff=0)
    assert server.ranges == []


def test_progress_counts_the_bytes_kept_from_an_interrupted_attempt(server, tmp_path):
    server.drops = [300_000]
    seen: list[tuple[int, int | None]] = []
    download(
        server.url,
        tmp_path / "f.bin",
        backoff=0,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert len(server.ranges) == 2
    assert {total for _, total in seen} == {len(PAYLOAD)}
    done = [d for d, _ in seen]
    # The resumed attempt goes on from the 300 000 bytes on disk instead of starting at zero.
    assert done[0] == 0 and 300_000 in done and done[-1] == len(PAYLOAD)
    assert done == sorted(done)


def test_an_unreachable_host_says_nothing_was_received_and_gives_the_hint(tmp_path, caplog):
    """``.invalid`` never resolves (RFC 2606): what an offline machine sees."""
    url = "http://archive.invalid/downloads.tar.gz"
    with pytest.raises(Espnet3Error) as err:
        download(url, tmp_path / "f.bin", retries=1, backoff=0, hint="; or give a local copy")
    message = str(err.value)
    assert message.startswith(f"downloading {url} failed after 2 attempts (")
    assert message.endswith(
        "nothing was received: check the network (or proxy); or give a local copy"
    )
    assert ".part" not in message and "interrupted" not in caplog.text
    assert list(tmp_path.iterdir()) == []
