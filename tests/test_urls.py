"""`retalk check` on http(s) URLs, as the service would fetch them: a threaded HTTP server here
serves the test media with Range support, counts every byte it sends, and misbehaves on demand,
chosen by the path's first part:

    /ok/NAME              200, or 206 to a Range request (bytes=a-b, bytes=a-)
    /norange/NAME         200 with the whole file, whatever the Range
    /nolength/NAME        200, no Content-Length (the body until the connection closes), no ranges
    /slow/BPS/NAME        as ok, sending BPS bytes a second
    /hang/NAME            reads the request, never answers
    /404/NAME             404
    /lie/SIZE/NAME        as ok, announcing SIZE bytes (Content-Range total, Content-Length)
    /redirect/N/REST      N redirects (302), then /REST
    /changing/NAME        as ok, with an ETag that changes on every request (If-Match: 412)
    /slowstart/NAME       as ok, its first 128 KB of each answer at 256 KB/s
    /gzip/NAME            as norange, with `Content-Encoding: gzip`, whatever was accepted
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import CompletedProcess
from urllib.parse import unquote

import pytest

import retalk
from retalk import limits
from retalk.job import Job, Parameters
from retalk.preflight.remote import redact
from retalk.preflight.url import reach
from tests.support import run_measured

Run = Callable[..., CompletedProcess[str]]
RETALK = str(Path(sys.executable).with_name("retalk"))


@dataclass
class Counts:
    """What the server did."""

    sent: int = 0
    """Body bytes written, every request counted."""
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(path, Range header) of each request."""
    encodings: list[str] = field(default_factory=list)
    """The Accept-Encoding header of each request."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, n: int) -> None:
        with self.lock:
            self.sent += n


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    folder: Path
    counts: Counts
    released: threading.Event

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # A small send buffer: what is counted as sent is close to what the reader took.
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
        super().setup()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        counts = self.server.counts
        with counts.lock:
            counts.requests.append((self.path, self.headers.get("Range", "")))
            counts.encodings.append(self.headers.get("Accept-Encoding", ""))
        parts = unquote(self.path.split("?", 1)[0]).lstrip("/").split("/")
        mode = parts[0]
        if mode == "redirect":
            left = int(parts[1])
            rest = "/".join(parts[2:])
            target = f"/redirect/{left - 1}/{rest}" if left > 1 else f"/{rest}"
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "hang":
            self.server.released.wait(60)
            self.close_connection = True
            return
        if mode == "404":
            self._plain(404, b"no such object")
            return
        etag = f'"v{len(counts.requests)}"' if mode == "changing" else '"v0"'
        if self.headers.get("If-Match") not in (None, etag):
            self._plain(412, b"precondition failed")
            return
        rate = float(parts[1]) if mode == "slow" else 256_000.0 if mode == "slowstart" else None
        slow_for = 128 * 1024 if mode == "slowstart" else None
        lie = int(parts[1]) if mode == "lie" else None
        name = parts[2] if mode in ("slow", "lie") else parts[-1]
        path = self.server.folder / name
        if not path.is_file():
            self._plain(404, b"no such file")
            return
        size = path.stat().st_size
        announced = lie if lie is not None else size
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if mode == "nolength":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self._body(path, 0, size, rate, slow_for)
            return
        if wanted and mode not in ("norange", "gzip"):
            start = int(wanted.group(1))
            end = int(wanted.group(2)) if wanted.group(2) else announced - 1
            end = min(end, announced - 1)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{announced}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = (start, min(end + 1, size) - start)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{announced}")
            self.send_header("Content-Length", str(end - start + 1))
        else:
            body = (0, size)
            self.send_response(200)
            self.send_header("Content-Length", str(announced))
        if mode not in ("norange", "gzip"):
            self.send_header("Accept-Ranges", "bytes")
        if mode == "gzip":
            self.send_header("Content-Encoding", "gzip")
        self.send_header("ETag", etag)
        self.end_headers()
        self._body(path, *body, rate, slow_for)
        if lie is not None:
            self.close_connection = True

    def _plain(self, status: int, text: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def _body(
        self, path: Path, start: int, count: int, rate: float | None, slow_for: int | None
    ) -> None:
        """`count` bytes of `path` from `start`, at `rate` bytes a second (for the first
        `slow_for` bytes only, when given), else as fast as the reader takes them."""
        sent = 0
        try:
            with open(path, "rb") as stream:
                stream.seek(start)
                while sent < count:
                    slow = rate is not None and (slow_for is None or sent < slow_for)
                    step = max(1, int(rate / 8)) if slow and rate else 4096
                    piece = stream.read(min(step, count - sent))
                    if not piece:
                        return
                    self.wfile.write(piece)
                    self.server.counts.add(len(piece))
                    sent += len(piece)
                    if slow and rate:
                        time.sleep(len(piece) / rate)
                        if self.server.released.is_set():
                            return
        except (ConnectionError, OSError):
            self.close_connection = True


@dataclass
class Served:
    """A running server: its base URL (`http://127.0.0.1:PORT`) and its counts."""

    base: str
    counts: Counts

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"


@contextmanager
def serving(folder: Path) -> Iterator[Served]:
    """The server on an ephemeral loopback port, serving `folder`, for the block."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.folder = folder
    server.counts = Counts()
    server.released = threading.Event()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}", server.counts)
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()
        thread.join()


def refused_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def web(media: Path) -> Iterator[Served]:
    """The test media served over loopback HTTP."""
    with serving(media) as served:
        yield served


def _settled(web: Served, before: int, expected: object) -> int:
    """The bytes the server counts as sent since `before`, once its handlers have counted the
    last write (a reader can have the bytes a moment before the writer counts them)."""
    deadline = time.monotonic() + 2
    while web.counts.sent - before != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return web.counts.sent - before


def _codes(report: retalk.Report) -> set[str]:
    return {f.code for f in report.findings}


def _url_facts(report: retalk.Report) -> dict[str, object]:
    return dict(report.inputs[0].facts["url"])


SIGNED = "?OSSAccessKeyId=LTAI5tSECRETKEY&Expires=1893456000&Signature=c2VjcmV0%2Bsig"
"""A signed URL's query, as OSS writes it: none of it may be printed."""
SECRETS = ("LTAI5tSECRETKEY", "c2VjcmV0", "Signature", "OSSAccessKeyId")


# -- the verdict of a URL is the verdict of the file ----------------------------------------


def test_a_good_clip_as_a_url_has_the_files_verdict(web: Served, media: Path) -> None:
    local = retalk.check_video(media / "good.mp4", content=False)
    remote = retalk.check_url(web.url("ok/good.mp4"), "video", content=False)
    assert remote.ok and local.ok
    assert _codes(remote) == _codes(local)
    same = ("codec", "width", "height", "fps", "duration", "size_bytes", "container")
    assert {k: remote.inputs[0].facts[k] for k in same} == {
        k: local.inputs[0].facts[k] for k in same
    }
    assert remote.inputs[0].facts["decoded"]["frames"] >= 1  # the first frames decoded


def test_urls_and_files_together_are_reported_in_their_order(web: Served, media: Path) -> None:
    url = web.url("ok/fps61.mp4")
    report = retalk.check_paths(
        [url, str(media / "fps12.mp4"), web.url("404/x.mp4")], content=False, jobs=1
    )
    assert [i.path for i in report.inputs] == [url, str(media / "fps12.mp4"), web.url("404/x.mp4")]
    assert [f.code for f in report.findings] == [
        "InvalidFile.FPS",
        "InvalidFile.FPS",
        "InvalidURL.ConnectionRefused",
    ]


def test_a_bad_fps_clip_is_read_through_ranges_not_downloaded(web: Served, media: Path) -> None:
    size = (media / "fps61.mp4").stat().st_size
    web.counts.requests.clear()
    sent = web.counts.sent
    report = retalk.check_url(web.url("ok/fps61.mp4"), content=False)
    assert _codes(report) == {"InvalidFile.FPS"}
    facts = _url_facts(report)
    # Engaged: every request was a range request, and what retalk counts is what was sent.
    requests = [r for p, r in web.counts.requests if p.endswith("fps61.mp4")]
    assert requests and all(re.fullmatch(r"bytes=\d+-\d+", r) for r in requests)
    assert facts["range_requests"] is True and facts["announced_bytes"] == size
    assert facts["bytes_read"] == _settled(web, sent, facts["bytes_read"])
    assert int(str(facts["bytes_read"])) < size / 4


def test_a_url_without_range_support_is_read_from_its_start(web: Served, media: Path) -> None:
    size = (media / "fps61.mp4").stat().st_size
    report = retalk.check_url(web.url("norange/fps61.mp4"), content=False)
    assert _codes(report) == {"InvalidFile.FPS"}
    facts = _url_facts(report)
    assert facts["range_requests"] is False and facts["requests"] == 1
    assert int(str(facts["bytes_read"])) < size / 2


def test_a_url_that_does_not_announce_its_length(web: Served) -> None:
    report = retalk.check_url(web.url("nolength/fps61.mp4"), content=False)
    assert _codes(report) == {"InvalidFile.FPS", "File.Unmeasured"}
    unmeasured = next(f for f in report.findings if f.code == "File.Unmeasured")
    assert "size limit was not checked" in unmeasured.message
    assert report.inputs[0].facts["size_bytes"] is None


# -- the service's InvalidURL codes, in seconds -----------------------------------------------


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (f"http://127.0.0.1:{refused_port()}/clip.mp4", "refused"),
        ("404/clip.mp4", "HTTP 404"),
        ("redirect/6/ok/good.mp4", "redirects more than 5 times"),
    ],
    ids=["refused", "404", "redirect-loop"],  # the same in every xdist worker: not the port
)
def test_urls_the_service_cannot_download_are_refused(web: Served, url: str, said: str) -> None:
    started = time.monotonic()
    report = retalk.check_url(url if "://" in url else web.url(url), "video")
    assert time.monotonic() - started < 5
    assert report.codes == ("InvalidURL.ConnectionRefused",)
    assert said in report.findings[0].message
    assert not report.ok


def test_a_url_that_never_answers_is_a_timeout(web: Served) -> None:
    started = time.monotonic()
    report = retalk.check_url(web.url("hang/good.mp4"), "video", url_timeout=1.5)
    assert 1.4 < time.monotonic() - started < 5
    assert report.codes == ("InvalidURL.Timeout",)


def test_a_slow_url_is_a_timeout_by_its_measured_rate(web: Served) -> None:
    # 4 KB/s for 538 KB: 130 s. Told from 2 s of it, with the service's own 60 s.
    sent = web.counts.sent
    started = time.monotonic()
    report = retalk.check_url(web.url("slow/4000/fps12.mp4"), "video")
    assert time.monotonic() - started < 6
    assert report.codes == ("InvalidURL.Timeout",)
    message = report.findings[0].message
    assert re.search(r"sends \d KB/s", message) and "over the 60 s the service waits" in message
    assert web.counts.sent - sent < 20_000  # engaged: the estimate, not the download


def test_a_slow_url_that_ends_in_time_passes(web: Served) -> None:
    # 1 MB/s for 538 KB: half a second, well within 60 s.
    report = retalk.check_url(web.url("slow/1000000/fps12.mp4"), "video", content=False)
    assert report.codes == ("InvalidFile.FPS",)
    assert float(str(_url_facts(report)["download_estimate_s"])) < 5


def test_a_slow_start_is_not_taken_for_a_slow_server(web: Served) -> None:
    # The first 256 KB come at about 400 KB/s: 300 MB would take 12 minutes at that rate.
    # Measured again on what follows (full speed), the download ends in time.
    web.counts.requests.clear()
    report = retalk.check_url(web.url("slowstart/300MiB+1.mp4"), "video", content=False)
    assert "InvalidFile.Size" in report.codes and "InvalidURL.Timeout" not in report.codes
    assert ("/slowstart/300MiB+1.mp4", "bytes=262144-") in web.counts.requests  # engaged
    assert float(str(_url_facts(report)["download_estimate_s"])) < 60
    assert int(str(_url_facts(report)["bytes_read"])) < 32 * limits.MIB  # not the 300 MB


def test_redirects_are_followed_as_the_service_would(web: Served) -> None:
    report = retalk.check_url(web.url("redirect/3/ok/fps61.mp4"), content=False)
    assert report.codes == ("InvalidFile.FPS",)
    assert _url_facts(report)["redirects"] == 3


# -- the size, without the body ---------------------------------------------------------------


def test_an_announced_length_over_the_limit_is_judged_without_the_body(
    web: Served, media: Path
) -> None:
    sent = web.counts.sent
    report = retalk.check_url(web.url("ok/300MiB+1.mp4"), "video", content=False)
    assert "InvalidFile.Size" in report.codes
    assert report.inputs[0].facts["size_bytes"] == 300 * limits.MIB + 1
    assert web.counts.sent - sent < 2 * limits.MIB  # of 300 MB


def test_a_server_that_lies_about_its_length(web: Served) -> None:
    # It announces 400 MB and has 2.7 MB: judged by what it announces (as the service would
    # meet it), and never read for more than a few blocks.
    sent = web.counts.sent
    report = retalk.check_url(web.url("lie/400000000/good.mp4"), "video", content=False)
    assert "InvalidFile.Size" in report.codes
    assert web.counts.sent - sent < limits.MIB


def _noise_png(path: Path, side: int) -> Path:
    """A PNG of random pixels, stored uncompressed: `side` x `side` x 3 bytes and a little."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, compress_level=0)
    return path


def test_an_image_over_the_limit_is_judged_by_its_header(tmp_path: Path) -> None:
    # 11 MB: its length refuses it; Pillow reads the size from the first bytes (IHDR), and
    # the picture is never decoded over the URL (which read every byte of it).
    size = _noise_png(tmp_path / "big.png", 1900).stat().st_size
    assert size > limits.IMAGE.max_bytes
    with serving(tmp_path) as served:
        report = retalk.check_url(served.url("ok/big.png"), content=False)
        assert report.codes == ("InvalidFile.Size",)
        assert report.inputs[0].facts["width"] == 1900
        facts = _url_facts(report)
        assert int(str(facts["bytes_read"])) < limits.MIB
        assert _settled(served, 0, facts["bytes_read"]) < limits.MIB


def test_a_file_over_the_limit_is_read_no_further_than_its_header(
    tmp_path: Path, media: Path
) -> None:
    # An MP3 behind a 31 MB ID3 tag: ffprobe would read the whole tag for the audio after it.
    # Its length refuses it: reading stops 1 MB past the first bytes, and says so.
    body = b"x\0\0\0\0" + bytes(31 * limits.MIB)
    frame = b"PRIV" + len(body).to_bytes(4, "big") + b"\0\0" + body
    size = bytes((len(frame) >> shift) & 127 for shift in (21, 14, 7, 0))
    (tmp_path / "tagged.mp3").write_bytes(
        b"ID3\3\0\0" + size + frame + (media / "good.mp3").read_bytes()
    )
    with serving(tmp_path) as served:
        report = retalk.check_url(served.url("ok/tagged.mp3"), "audio", content=False)
    assert set(report.codes) == {"InvalidFile.Size", "File.Unmeasured"}
    assert any("over the 30 MB limit" in f.message for f in report.findings)
    assert int(str(_url_facts(report)["bytes_read"])) < 2 * limits.MIB


def test_a_large_image_under_the_limit_is_not_decoded_over_a_url(
    tmp_path: Path, web: Served
) -> None:
    # 5 MB: within the 10 MB limit, over the 4 MB decoded through ranges: its header is read,
    # and a note says that its pixels were not decoded. A small one is still decoded whole.
    _noise_png(tmp_path / "large.png", 1300)
    with serving(tmp_path) as served:
        report = retalk.check_url(served.url("ok/large.png"), "ref", content=False)
        assert report.codes == ("URL.NotDecoded",) and report.ok
        assert int(str(_url_facts(report)["bytes_read"])) < limits.MIB
    cut = retalk.check_url(web.url("ok/cut.jpg"), "ref", content=False)
    assert "InvalidFile.Openerror" in cut.codes


def _gzip_bomb(path: Path, gib: int = 1) -> Path:
    """A gzip file of about 1 MB per GiB of zeros it expands to, written in a moment: with a
    full flush the dictionary starts afresh, so each MiB of zeros compresses to the same
    bytes, compressed once."""
    zeros = bytes(limits.MIB)
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    first = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(1024 * gib):
        crc = zlib.crc32(zeros, crc)
    trailer = struct.pack("<II", crc, (1024 * gib * limits.MIB) & 0xFFFFFFFF)
    body = first + again * (1024 * gib - 1) + packer.compress(b"") + packer.flush()[:-8]
    with open(path, "wb") as out:
        out.write(body + trailer)
    return path


@pytest.mark.parametrize("how", ["ranges", "download", "file"])
def test_a_gzip_bomb_is_read_as_its_bytes(tmp_path: Path, how: str) -> None:
    # 1 MB that a decompressing reader expands to 1 GiB of zeros, sent encoded although
    # `identity` was asked for. The service reads a URL's bytes as a file, and so does retalk:
    # never inflated (ffmpeg's libgme reader inflated it whole, to 2.1 GB), not a video.
    size = _gzip_bomb(tmp_path / "v.mp4").stat().st_size
    head = zlib.decompressobj(31).decompress((tmp_path / "v.mp4").read_bytes()[:4096], 4096)
    assert size < 2 * limits.MIB and head == bytes(4096)  # a gzip stream of zeros
    args = ["check", "--no-content", *(["--download"] if how == "download" else [])]
    with serving(tmp_path) as served:
        target = str(tmp_path / "v.mp4") if how == "file" else served.url("gzip/v.mp4")
        started = time.monotonic()
        done, peak_mb = run_measured([*args, target], timeout=60)
        spent = time.monotonic() - started
        assert set(served.counts.encodings) == (set() if how == "file" else {"identity"})
        assert served.counts.sent <= size
    assert done.returncode == 1, done.stderr
    assert "InvalidFile.Openerror" in done.stdout
    assert "none of the media formats retalk reads" in done.stdout
    assert "Traceback" not in done.stderr
    assert spent < 10
    assert peak_mb < 300, f"{peak_mb:.0f} MB"


def test_download_stops_at_the_size_limit(web: Served) -> None:
    # Announced over the limit: not downloaded at all; unannounced: not past the limit.
    sent = web.counts.sent
    big = retalk.check_url(web.url("ok/300MiB+1.mp4"), "video", download=True)
    assert {"InvalidFile.Size", "URL.ContentSkipped"} <= set(big.codes)
    assert web.counts.sent - sent < 2 * limits.MIB
    sent = web.counts.sent
    audio = retalk.check_url(web.url("nolength/30MiB+1.wav"), "audio", download=True)
    assert set(audio.codes) == {"InvalidFile.Size", "URL.ContentSkipped"}
    assert "over 30 MB" in next(f.message for f in audio.findings if f.code.startswith("URL."))
    assert web.counts.sent - sent < 40 * limits.MIB


def test_a_url_that_changes_while_it_is_read_is_not_judged(web: Served) -> None:
    # face.mp4 has its index at the end: read by a range after the first bytes, which the
    # ETag of the first answer no longer matches.
    report = retalk.check_url(web.url("changing/face.mp4"), "video", content=False)
    assert report.codes == ("File.Unmeasured",)
    assert "changed while it was read" in report.findings[0].message
    same = retalk.check_url(web.url("ok/face.mp4"), "video", content=False)
    assert same.codes == ()


def test_an_oss_url_is_not_checked() -> None:
    report = retalk.check_url("oss://dashscope-instant/abc/2026-11-30/clip.mp4", "video")
    assert report.codes == ("URL.NotChecked",)
    assert report.ok


def test_reach_is_the_submitters_check(web: Served) -> None:
    assert reach(web.url("ok/good.mp4")) is None
    assert reach("oss://bucket/clip.mp4") is None
    failure = reach(web.url("404/clip.mp4"))
    assert failure is not None and failure.code == "InvalidURL.ConnectionRefused"


def test_url_timeout_can_only_be_shorter_than_the_services() -> None:
    for wrong in (0, -1, 61):
        with pytest.raises(ValueError, match="url_timeout"):
            retalk.check_url("http://127.0.0.1:9/clip.mp4", url_timeout=wrong)


def test_redact_keeps_secrets_out() -> None:
    assert redact("https://u:pw@b.example.com/a/clip.mp4?Signature=x#f") == (
        "https://b.example.com/a/clip.mp4?…"
    )
    assert redact("http://h/clip.mp4") == "http://h/clip.mp4"


# -- the command ------------------------------------------------------------------------------


def _no_secret(result: CompletedProcess[str]) -> None:
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_check_of_a_signed_url_hides_its_query(run: Run, web: Served) -> None:
    result = run("check", "--no-content", web.url("ok/fps61.mp4" + SIGNED))
    assert result.returncode == 1
    _no_secret(result)
    assert f"{web.url('ok/fps61.mp4')}?…: InvalidFile.FPS" in result.stdout
    assert re.search(r"read \d+ KB of 1\.9 MB", result.stdout)
    shown = run("check", "--format", "json", "--no-content", web.url("404/a.mp4" + SIGNED))
    assert shown.returncode == 1
    _no_secret(shown)
    assert json.loads(shown.stdout)["findings"][0]["code"] == "InvalidURL.ConnectionRefused"


def test_sarif_locates_a_url_at_its_address(run: Run, web: Served) -> None:
    result = run("check", "--no-content", "--format", "sarif", web.url("ok/fps61.mp4" + SIGNED))
    assert result.returncode == 1
    _no_secret(result)
    location = json.loads(result.stdout)["runs"][0]["results"][0]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == web.url("ok/fps61.mp4")


def test_check_exit_codes_of_urls(run: Run, web: Served) -> None:
    good = run("check", "--no-content", web.url("ok/good.mp4"))
    assert good.returncode == 0, good.stdout + good.stderr
    hang = run("check", "--url-timeout", "1", web.url("hang/clip.mp4"))
    assert hang.returncode == 1 and "InvalidURL.Timeout" in hang.stdout
    _no_secret(hang)
    assert run("check", "--url-timeout", "61", web.url("ok/good.mp4")).returncode == 2


def test_a_job_of_urls_with_its_cost(run: Run, web: Served) -> None:
    result = run(
        "check",
        "--no-content",
        "--format",
        "json",
        "--video",
        web.url("ok/good.mp4" + SIGNED),
        "--audio",
        web.url("ok/speech.wav"),
    )
    assert result.returncode == 0, result.stderr
    _no_secret(result)
    report = json.loads(result.stdout)
    job = report["job"]
    assert job["billable_seconds"] == pytest.approx(3.0, abs=0.05)
    assert job["cost_cny"] == round(job["billable_seconds"] * limits.PRICE_CNY_PER_S, 2)
    assert [i["role"] for i in report["inputs"]] == ["video", "audio"]
    text = run("check", "--no-content", "--video", web.url("ok/good.mp4"), "--audio",
               web.url("ok/speech.wav"))  # fmt: skip
    assert "billed 3 s ≈ 0.24 CNY" in text.stdout


def test_download_gives_the_content_findings(run: Run, web: Served) -> None:
    before = set(os.listdir(tempfile.gettempdir()))
    args = ("--video", web.url("ok/good.mp4" + SIGNED), "--audio", web.url("ok/speech.wav"))
    skipped = run("check", "--format", "json", *args)
    codes = {f["code"] for f in json.loads(skipped.stdout)["findings"]}
    assert "URL.ContentSkipped" in codes and "Face.None" not in codes
    fetched = run("check", "--format", "json", "--download", *args)
    assert fetched.returncode == 0, fetched.stderr
    _no_secret(fetched)
    report = json.loads(fetched.stdout)
    codes = {f["code"] for f in report["findings"]}
    assert "Face.None" in codes and "URL.ContentSkipped" not in codes  # good.mp4 shows no face
    video, audio = report["inputs"]
    assert video["facts"]["url"]["downloaded"] and "faces" in video["facts"]
    assert audio["facts"]["speech"]["speech_seconds"] > 1
    left = {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("retalk-url-")}
    assert not left - before  # the temporary download is removed


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_download_ended_by_a_signal_leaves_nothing(
    web: Served, tmp_path: Path, sent: signal.Signals, code: int
) -> None:
    # 2.7 MB at 200 KB/s: 14 s, within the 60 s; ended after 2.5 s, mid-download.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    url = web.url("slow/200000/good.mp4")
    before = web.counts.sent
    process = subprocess.Popen(
        [RETALK, "check", "--download", "--video", url, "--audio", web.url("ok/speech.wav")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.5)
    assert web.counts.sent - before > limits.URL_SAMPLE_BYTES  # engaged: downloading
    process.send_signal(sent)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("retalk-url-")]


# -- the job value and its cost ---------------------------------------------------------------


def test_check_takes_a_job_with_its_parameters(media: Path) -> None:
    job = Job(str(media / "good.mp4"), str(media / "speech.wav"))
    report = retalk.check(job, content=False)
    assert report.job is not None
    assert report.job["parameters"] == {"video_extension": False}
    assert report.job["cost_cny"] == round(report.job["billable_seconds"] * 0.08, 2)
    extended = retalk.check(
        Job(job.video, job.audio, parameters=Parameters(video_extension=True)), content=False
    )
    assert extended.job is not None and extended.job["output_duration"] > 7
    assert "Job.Extended" in extended.codes
    bad = Job(job.video, job.audio, parameters=Parameters(query_face_threshold=150))
    assert "InvalidParameter" in retalk.check(bad, content=False).codes
