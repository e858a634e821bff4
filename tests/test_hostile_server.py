"""The client against a hostile server: a real HTTP server on loopback that answers with every
malformed, oversized, slow or lying answer the attack run found. The library raises a retalk
exception for each (sync and async), the command line says one line and exits non-zero without
a traceback, and the key shows nowhere: not in messages, tracebacks with locals, or debug logs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gzip
import json
import logging
import os
import subprocess
import threading
import time
import traceback
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from retalk.client import (
    ApiError,
    AsyncClient,
    Client,
    InvalidAnswer,
    InvalidRequest,
    InvalidResult,
    InvalidSetting,
    NotFound,
    RateLimited,
    ResultExpired,
    ServerError,
    SubmitLost,
    Task,
    TaskStatus,
    Timing,
    TransportError,
    Usage,
)

KEY = "sk-hostile-SECRET-4b1d"
QUICK = Timing(
    retries=1, backoff=0.01, backoff_cap=0.02, deadline=1.0, transfer_deadline=1.5,
    max_result_bytes=1_000_000,
)  # fmt: skip
RESULT = bytes(range(256)) * 400  # 102,400 bytes
ETAG = '"v1"'

Behaviour = Callable[["_Handler"], None]
both = pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class Hostile(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[Seen] = []
        self.behave: list[Behaviour] = []
        """One behaviour per request, the last one repeated."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up on a lie is the point, not news

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def base(self) -> str:
        return self.origin + "/api/v1"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Hostile

    def do_GET(self) -> None:
        n = len(self.server.seen)
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
        behave = self.server.behave
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            behave[min(n, len(behave) - 1)](self)

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Hostile]:
    hostile = Hostile()
    threading.Thread(target=hostile.serve_forever, daemon=True).start()
    yield hostile
    hostile.shutdown()
    hostile.server_close()


def send(h: _Handler, status: int, body: bytes, *headers: tuple[str, str]) -> None:
    h.send_response(status)
    names = {k.lower() for k, _ in headers}
    for name, value in headers:
        h.send_header(name, value)
    if "content-length" not in names and "transfer-encoding" not in names:
        h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def answer(data: Any, status: int = 200) -> Behaviour:
    return lambda h: send(
        h, status, json.dumps(data).encode(), ("Content-Type", "application/json")
    )


def raw(status: int, body: bytes, *headers: tuple[str, str]) -> Behaviour:
    return lambda h: send(h, status, body, *headers)


def task_answer(**output: Any) -> Behaviour:
    return answer({"request_id": "req-7", "output": {"task_id": "t-1", **output}})


@functools.cache
def _bomb() -> bytes:
    """256 MB of zeros gzipped (made once: making it takes a second, which a hostile
    server answering within a test's deadline cannot spend per request)."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1 << 20)
    return b"".join(squeeze.compress(zeros) for _ in range(256)) + squeeze.flush()


def trickle_headers(h: _Handler) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        time.sleep(0.2)


def trickle_body(h: _Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", "1000")
    h.end_headers()
    for _ in range(1000):
        h.wfile.write(b" ")
        h.wfile.flush()
        time.sleep(0.2)


def redirect_loop(h: _Handler) -> None:
    send(h, 302, b"", ("Location", h.path))


@dataclass
class Case:
    behave: list[Behaviour]
    error: type[ApiError]
    said: str
    request_id: str | None = None
    timing: Timing = field(default=QUICK)


QUERY_CASES = {
    "output is a string": Case(
        [answer({"request_id": "req-7", "output": "oops"})],
        InvalidAnswer, "output is a string, not an object", "req-7",
    ),
    "video_url is a number": Case(
        [task_answer(task_status="SUCCEEDED", video_url=12345)],
        InvalidAnswer, "output.video_url is a number, not an http(s) URL", "req-7",
    ),
    "video_url is a file path": Case(
        [task_answer(task_status="SUCCEEDED", video_url="file:///etc/passwd")],
        InvalidAnswer, "output.video_url is not an http(s) URL", "req-7",
    ),
    "SUCCEEDED without a result": Case(
        [task_answer(task_status="SUCCEEDED")], InvalidAnswer, "output.video_url is missing",
    ),
    "task_status is a number": Case(
        [task_answer(task_status=3)], InvalidAnswer, "output.task_status is a number",
    ),
    "usage is a list": Case(
        [answer({"output": {"task_id": "t", "task_status": "RUNNING"}, "usage": [1]})],
        InvalidAnswer, "usage is a list",
    ),
    "not JSON": Case([raw(200, b"<html>hello</html>")], InvalidAnswer, "not JSON"),
    "deep JSON": Case([raw(200, b"[" * 200_000)], InvalidAnswer, "nested too deep"),
    "redirect loop": Case([redirect_loop], InvalidAnswer, "too many redirects"),
    "bad gzip": Case(
        [raw(200, b"this is not gzip", ("Content-Encoding", "gzip"))],
        InvalidAnswer, "corrupt",
    ),
    "cut gzip": Case(
        [raw(200, gzip.compress(b'{"output": {}}' * 100)[:30], ("Content-Encoding", "gzip"))],
        InvalidAnswer, "cut short",
    ),
    "gzip bomb": Case(
        [raw(200, _bomb(), ("Content-Encoding", "gzip"))], InvalidAnswer, "larger than 4,194,304",
    ),
    "endless JSON": Case([raw(200, b" " * (5 << 20) + b"{}")], InvalidAnswer, "larger than"),
    "an encoding not asked for": Case(
        [raw(200, b"xx", ("Content-Encoding", "br"))], InvalidAnswer, "did not ask for",
    ),
    "a byte at a time, headers": Case([trickle_headers], TransportError, "deadline of 1 s"),
    "a byte at a time, body": Case([trickle_body], TransportError, "deadline of 1 s"),
    "Retry-After of a day": Case(
        [raw(429, b'{"code": "Throttling", "message": "slow down"}', ("Retry-After", "86400"))],
        RateLimited, "it asks to wait 86400 s",
    ),
    "the key echoed": Case(
        [answer({"code": "InvalidParameter", "message": f"bad {KEY}", "request_id": "r"}, 400)],
        InvalidRequest, "bad ****",
    ),
    "the key echoed in capitals": Case(
        [answer({"code": "InvalidParameter", "message": f"bad {KEY.upper()}"}, 400)],
        InvalidRequest, "bad ****",
    ),
    "the key %-encoded, in part": Case(
        [answer({"code": "InvalidParameter", "message": "bad sk%2Dhostile-SECRET-%34b1d"}, 400)],
        InvalidRequest, "bad ****",
    ),
    "the key as the request id": Case(
        [answer({"code": "InvalidParameter", "message": "bad", "request_id": f"r-{KEY}"}, 400)],
        InvalidRequest, "bad", request_id="r-****",
    ),
    "the key as Retry-After": Case(
        [raw(429, b'{"code": "Throttling", "message": "slow down"}', ("Retry-After", KEY))],
        RateLimited, "slow down",
    ),
}  # fmt: skip


def _query(base: str, asynchronous: bool, timing: Timing = QUICK) -> Task:
    if not asynchronous:
        with Client(api_key=KEY, url=base, timing=timing) as client:
            return client.get("t-1")

    async def run() -> Task:
        async with AsyncClient(api_key=KEY, url=base, timing=timing) as client:
            return await client.get("t-1")

    return asyncio.run(run())


def _no_key_in(error: BaseException) -> None:
    shown = "".join(
        traceback.TracebackException.from_exception(error, capture_locals=True).format()
    )
    assert KEY not in shown and KEY not in str(error) and KEY not in repr(error.args)
    assert error.__context__ is None or error.__suppress_context__


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("name", list(QUERY_CASES))
def test_a_malformed_answer_is_a_retalk_error(
    server: Hostile, name: str, asynchronous: bool
) -> None:
    case = QUERY_CASES[name]
    server.behave = case.behave
    started = time.monotonic()
    with pytest.raises(case.error) as caught:
        _query(server.base, asynchronous, case.timing)
    assert server.seen and server.seen[0].path == "/api/v1/tasks/t-1"  # it was asked
    assert server.seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert case.said in str(caught.value)
    if case.request_id:
        assert caught.value.request_id == case.request_id
    assert time.monotonic() - started < 3.5
    _no_key_in(caught.value)


@both
def test_a_redirect_loop_is_followed_then_refused(server: Hostile, asynchronous: bool) -> None:
    server.behave = [redirect_loop]
    with pytest.raises(InvalidAnswer):
        _query(server.base, asynchronous)
    assert len(server.seen) > 5  # it was followed, and stopped


@both
def test_a_gzip_bomb_stays_small(server: Hostile, asynchronous: bool) -> None:
    import tracemalloc

    server.behave = [raw(200, _bomb(), ("Content-Encoding", "gzip"))]
    tracemalloc.start()
    try:
        with pytest.raises(InvalidAnswer):
            _query(server.base, asynchronous)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20  # 256 MB inflated, were it read whole


@both
def test_a_huge_retry_after_is_capped_and_said(
    server: Hostile, caplog: pytest.LogCaptureFixture, asynchronous: bool
) -> None:
    server.behave = [raw(429, b"{}", ("Retry-After", "86400")), answer({"output": {}})]
    caplog.set_level(logging.INFO, logger="retalk.client")
    with pytest.raises(RateLimited):
        _query(server.base, asynchronous, Timing(retries=2, deadline=5.0))
    assert len(server.seen) == 1  # a 60 s wait would pass the deadline: no retry
    assert "Retry-After 86400 s (capped at 60 s)" in caplog.text
    assert "deadline is near" in caplog.text


# The key: checked as a header value before any request, and never shown.


BAD_KEYS = {
    "more than one line": f"{KEY}\nsecond-line",
    "non-ASCII": f"{KEY}é",
    "a space": f"{KEY} x",
}
"""Module constants, so that no test frame holds a key in a local: a traceback printed with its
locals shows the frames it passed through, and only retalk's must be proven clean."""


@pytest.mark.parametrize("problem", list(BAD_KEYS))
def test_a_key_that_is_not_a_header_value_is_refused(
    server: Hostile, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, problem: str
) -> None:
    server.behave = [task_answer(task_status="RUNNING")]
    monkeypatch.setenv("DASHSCOPE_API_KEY", BAD_KEYS[problem])
    with pytest.raises(InvalidSetting) as bad:
        Client(url=server.base)
    assert "DASHSCOPE_API_KEY" in str(bad.value) and problem in str(bad.value)
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    key_file = tmp_path / "api_key"
    key_file.write_text(BAD_KEYS[problem] + "\n")
    monkeypatch.setenv("DASHSCOPE_API_KEY_FILE_PATH", str(key_file))
    with pytest.raises(InvalidSetting) as from_file:
        AsyncClient(url=server.base)
    assert str(key_file) in str(from_file.value)
    with pytest.raises(InvalidSetting) as given:
        Client(api_key=BAD_KEYS[problem], url=server.base)
    assert "the api_key argument" in str(given.value)
    for error in (bad.value, from_file.value, given.value):
        _no_key_in(error)
        assert "second-line" not in str(error)
    assert server.seen == []  # refused before any request
    key_file.write_text(f"\n{KEY}\n\n")  # blank lines around one key are fine
    with Client(url=server.base, timing=QUICK) as client:
        assert client.get("t-1").status is TaskStatus.RUNNING
    assert server.seen[0].headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("url", ["http://[::1/api/v1", "ftp://127.0.0.1/api/v1", "127.0.0.1:80"])
def test_a_bad_base_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidSetting) as bad:
        Client(api_key=KEY, url=url)
    assert "not an http(s) URL" in str(bad.value)


def test_the_debug_logs_never_show_the_key(
    server: Hostile, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    server.behave = [
        answer({"code": "InvalidParameter", "message": f"echo {KEY}"}, 400),
        task_answer(task_status="SUCCEEDED", video_url=f"{server.origin}/r/result.mp4"),
        raw(200, RESULT, ("ETag", ETAG)),
    ]
    caplog.set_level(logging.DEBUG)
    with Client(api_key=KEY, url=server.base, timing=QUICK) as client:
        with pytest.raises(InvalidRequest):
            client.get("t-1")
        link = client.get("t-1").video_url
        assert link is not None
        client.download(link, tmp_path / "out.mp4")  # a link: no verification of the bytes
    assert "send_request_headers" in caplog.text  # httpcore's debug log was on
    assert KEY not in caplog.text


# Downloads: resume only a part known to be this result's; never keep a wrong file.


def ranged(h: _Handler, body: bytes = RESULT, etag: str = ETAG) -> None:
    """A result host that honours Range and If-Range, as OSS does."""
    asked = h.headers.get("Range")
    if_range = h.headers.get("If-Range")
    if asked and (if_range is None or if_range == etag):
        start = int(asked.removeprefix("bytes=").rstrip("-"))
        if start >= len(body):
            return send(h, 416, b"", ("Content-Range", f"bytes */{len(body)}"))
        span = f"bytes {start}-{len(body) - 1}/{len(body)}"
        return send(h, 206, body[start:], ("Content-Range", span), ("ETag", etag))
    send(h, 200, body, ("ETag", etag))


def _record(target: Path, url: str, length: int = len(RESULT), etag: str = ETAG) -> None:
    source = url.split("?")[0]
    known = {"source": source, "etag": etag, "last_modified": None, "length": length}
    target.with_name(f".{target.name}.part.json").write_text(json.dumps(known))


def _part(target: Path) -> Path:
    return target.with_name(f".{target.name}.part")


def _download(url: str, target: Path, asynchronous: bool, timing: Timing = QUICK) -> Path:
    if not asynchronous:
        with Client(api_key=KEY, url="http://127.0.0.1:9/api/v1", timing=timing) as client:
            return client.download(url, target)

    async def run() -> Path:
        async with AsyncClient(api_key=KEY, url="http://127.0.0.1:9/api/v1", timing=timing) as c:
            return await c.download(url, target)

    return asyncio.run(run())


def _ranges(server: Hostile) -> list[str | None]:
    return [seen.headers.get("Range") for seen in server.seen]


@both
def test_a_recorded_part_is_resumed_with_if_range(
    server: Hostile, tmp_path: Path, asynchronous: bool
) -> None:
    server.behave = [ranged]
    url = f"{server.origin}/r/result.mp4?Signature=abc"
    target = tmp_path / "out.mp4"
    _part(target).write_bytes(RESULT[:40_000])
    _record(target, f"{server.origin}/r/result.mp4?Signature=old")  # a fresh link, same object
    assert _download(url, target, asynchronous).read_bytes() == RESULT
    assert _ranges(server) == ["bytes=40000-"]
    assert server.seen[0].headers["If-Range"] == ETAG
    assert "Authorization" not in server.seen[0].headers  # the key goes to the service only
    assert not _part(target).exists() and not list(tmp_path.glob("*.json"))


@both
@pytest.mark.parametrize("record", ["none", "another URL", "another length"])
def test_a_stale_or_foreign_part_is_never_kept(
    server: Hostile, tmp_path: Path, asynchronous: bool, record: str
) -> None:
    server.behave = [ranged]
    url = f"{server.origin}/r/result.mp4"
    target = tmp_path / "out.mp4"
    _part(target).write_bytes(b"junk from another task" * 100)
    if record == "another URL":
        _record(target, f"{server.origin}/r/other.mp4")
    elif record == "another length":
        _record(target, url, length=1_000)  # shorter than the part
    assert _download(url, target, asynchronous).read_bytes() == RESULT
    assert _ranges(server) == [None]  # asked from 0: the part was not this result's


def _206_from_zero(h: _Handler) -> None:
    span = f"bytes 0-{len(RESULT) - 1}/{len(RESULT)}"
    send(h, 206, RESULT, ("Content-Range", span), ("ETag", ETAG))


def _416(h: _Handler) -> None:
    send(h, 416, b"", ("Content-Range", f"bytes */{len(RESULT)}"))


@both
@pytest.mark.parametrize(
    "first",
    [_206_from_zero, _416, lambda h: ranged(h, RESULT[::-1], '"v2"')],
    ids=["206 from 0", "416", "changed"],
)
def test_a_resume_that_does_not_match_starts_over(
    server: Hostile, tmp_path: Path, asynchronous: bool, first: Behaviour
) -> None:
    server.behave = [first, ranged]
    url = f"{server.origin}/r/result.mp4"
    target = tmp_path / "out.mp4"
    _part(target).write_bytes(RESULT[:40_000])
    _record(target, url)
    saved = _download(url, target, asynchronous).read_bytes()
    assert _ranges(server)[0] == "bytes=40000-"  # it tried to resume
    assert saved in (RESULT, RESULT[::-1])  # and got a whole file, never a splice
    assert len(saved) == len(RESULT)


def _short(h: _Handler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(len(RESULT)))
    h.send_header("ETag", ETAG)
    h.end_headers()
    h.wfile.write(RESULT[:30_000])
    h.wfile.flush()
    h.close_connection = True


def _longer(h: _Handler) -> None:
    """A 206 that announces the rest, then sends more (chunked, so nothing stops it)."""
    start = int(h.headers["Range"].removeprefix("bytes=").rstrip("-"))
    h.send_response(206)
    h.send_header("Content-Range", f"bytes {start}-{len(RESULT) - 1}/{len(RESULT)}")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    chunk = RESULT * 2
    h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n")


def _endless(h: _Handler) -> None:
    h.send_response(200)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    block = bytes(64 * 1024)
    for _ in range(100_000):
        h.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")


def _gzipped(h: _Handler) -> None:
    send(h, 200, _bomb(), ("Content-Encoding", "gzip"))


@both
@pytest.mark.parametrize(
    ("behave", "error", "said", "resumed"),
    [
        ([_short], TransportError, "download: the connection dropped", False),
        ([_longer], InvalidAnswer, "longer than the 102,400 bytes announced", True),
        ([_endless], InvalidAnswer, "larger than 1,000,000 bytes", False),
        ([_gzipped], InvalidAnswer, "compressed ('gzip'), which retalk did not ask for", False),
        ([raw(200, b"x", ("Content-Length", "5000000000"))], InvalidAnswer, "announces", False),
    ],
    ids=["short", "longer", "endless", "gzip (a bomb)", "announced too large"],
)
def test_a_download_that_lies_keeps_no_file(
    server: Hostile,
    tmp_path: Path,
    asynchronous: bool,
    behave: list[Behaviour],
    error: type[ApiError],
    said: str,
    resumed: bool,
) -> None:
    server.behave = behave
    url = f"{server.origin}/r/result.mp4"
    target = tmp_path / "out.mp4"
    if resumed:
        _part(target).write_bytes(RESULT[:40_000])
        _record(target, url)
    with pytest.raises(error) as caught:
        _download(url, target, asynchronous)
    assert said in str(caught.value)
    assert server.seen  # it was asked
    assert not target.exists()
    if error is InvalidAnswer:
        assert not _part(target).exists() and not list(tmp_path.glob("*.json"))


@both
def test_a_short_body_is_resumed_then_whole(
    server: Hostile, tmp_path: Path, asynchronous: bool
) -> None:
    server.behave = [_short, ranged]
    target = tmp_path / "out.mp4"
    assert _download(f"{server.origin}/r/result.mp4", target, asynchronous).read_bytes() == RESULT
    assert _ranges(server) == [None, "bytes=30000-"]


@both
def test_an_endless_download_ends_at_the_deadline(
    server: Hostile, tmp_path: Path, asynchronous: bool
) -> None:
    server.behave = [_endless]
    timing = Timing(transfer_deadline=1.0, retries=0)  # no cap short of 2 GiB: the clock stops it
    started = time.monotonic()
    with pytest.raises(TransportError) as late:
        _download(f"{server.origin}/r/result.mp4", tmp_path / "out.mp4", asynchronous, timing)
    assert "deadline of 1 s" in str(late.value)
    assert time.monotonic() - started < 3
    assert not (tmp_path / "out.mp4").exists()


# The command line: one line, a non-zero exit, no traceback, no key.


@pytest.fixture
def cli_env(server: Hostile, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DASHSCOPE_API_KEY": KEY,
        "DASHSCOPE_HTTP_BASE_URL": server.base,
        "RETALK_RETRY_BACKOFF": "0.01",
        "RETALK_DEADLINE": "1",
        "RETALK_TRANSFER_DEADLINE": "1",
        "HOME": str(tmp_path),
    }


CLI_CASES = {
    "output is a string": ("output is a string", 3),
    "video_url is a number": ("output.video_url is a number", 3),
    "deep JSON": ("nested too deep", 3),
    "redirect loop": ("too many redirects", 3),
    "bad gzip": ("corrupt", 3),
    "gzip bomb": ("larger than", 3),
    "a byte at a time, headers": ("deadline of 1 s", 3),
    "a byte at a time, body": ("deadline of 1 s", 3),
    "the key echoed": ("bad ****", 1),
}


def _one_clean_line(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("retalk: ") and result.stderr.count("\n") == 1, result.stderr
    assert KEY not in result.stdout + result.stderr


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_a_malformed_answer_is_one_line(
    run: Callable[..., subprocess.CompletedProcess[str]],
    server: Hostile,
    cli_env: dict[str, str],
    name: str,
) -> None:
    said, code = CLI_CASES[name]
    server.behave = QUERY_CASES[name].behave
    result = run("status", "t-1", env=cli_env)
    assert server.seen
    _one_clean_line(result, code)
    assert said in result.stderr


def test_cli_control_characters_are_escaped(
    run: Callable[..., subprocess.CompletedProcess[str]], server: Hostile, cli_env: dict[str, str]
) -> None:
    message = "line one\nretalk: forged\x1b[2J\u202eevil"
    server.behave = [task_answer(task_status="FAILED", code="InvalidFile.FPS", message=message)]
    shown = run("status", "t-1", env=cli_env)
    assert shown.returncode == 1 and shown.stdout.count("\n") == 1  # FAILED: exit 1
    assert "line one\\nretalk: forged\\x1b[2J\\u202eevil" in shown.stdout
    server.behave = [answer({"code": "InvalidParameter", "message": message}, 400)]
    refused = run("status", "t-1", env=cli_env)
    _one_clean_line(refused, 1)
    assert "\x1b" not in refused.stderr


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"DASHSCOPE_HTTP_BASE_URL": "http://[::1/api/v1"}, "not an http(s) URL"),
        ({"DASHSCOPE_API_KEY": KEY + "é"}, "non-ASCII"),
        ({"DASHSCOPE_API_KEY": KEY + "\nsecond"}, "more than one line"),
    ],
)
def test_cli_bad_settings_exit_3(
    run: Callable[..., subprocess.CompletedProcess[str]],
    server: Hostile,
    cli_env: dict[str, str],
    change: dict[str, str],
    said: str,
) -> None:
    server.behave = [task_answer(task_status="RUNNING")]
    result = run("status", "t-1", env={**cli_env, **change})
    _one_clean_line(result, 3)
    assert said in result.stderr
    assert server.seen == []


KEY_FILES = {
    "a second line": "it has more than one line",
    "a pipe": "is not a regular file",
    "a device": "is not a regular file",
    "too large": "larger than a key",
}


@pytest.mark.parametrize("kind", list(KEY_FILES))
def test_cli_a_key_file_that_is_no_key_file_is_refused_at_once(
    run: Callable[..., subprocess.CompletedProcess[str]],
    server: Hostile,
    cli_env: dict[str, str],
    tmp_path: Path,
    kind: str,
) -> None:
    """A pipe would be waited on for ever, /dev/zero read until memory runs out; a second
    line would reach httpcore's debug log."""
    key_file = tmp_path / "key"
    if kind == "a second line":
        key_file.write_text(f"{KEY}\nsomething else\n")
    elif kind == "a pipe":
        os.mkfifo(key_file)
    elif kind == "a device":
        key_file.symlink_to("/dev/zero")
    else:
        key_file.write_text("k" * 100_000)
    env = {k: v for k, v in cli_env.items() if k != "DASHSCOPE_API_KEY"}
    result = run("status", "t-1", env={**env, "DASHSCOPE_API_KEY_FILE_PATH": str(key_file)})
    _one_clean_line(result, 3)
    assert str(key_file) in result.stderr and server.seen == []
    assert KEY_FILES[kind] in result.stderr


def test_cli_a_stale_part_is_not_the_result(
    run: Callable[..., subprocess.CompletedProcess[str]],
    server: Hostile,
    cli_env: dict[str, str],
    tmp_path: Path,
    media: Path,
) -> None:
    video = (media / "face.mp4").read_bytes()  # a real result: the command verifies it
    url = f"{server.origin}/r/result.mp4"
    query = answer(
        {
            "request_id": "req-7",
            "output": {"task_id": "t-1", "task_status": "SUCCEEDED", "video_url": url},
            "usage": {"video_duration": 3.0},
        }
    )
    server.behave = [query, lambda h: ranged(h, video)]
    target = tmp_path / "out.mp4"
    _part(target).write_bytes(b"a part left by another task" * 10)
    result = run("download", "t-1", str(target), env=cli_env)
    assert result.returncode == 0, result.stderr
    assert [s.path for s in server.seen] == ["/api/v1/tasks/t-1", "/r/result.mp4"]
    assert _ranges(server) == [None, None]  # asked from 0
    assert target.read_bytes() == video


def test_cli_an_endless_download_stops(
    run: Callable[..., subprocess.CompletedProcess[str]],
    server: Hostile,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    url = f"{server.origin}/r/result.mp4"
    server.behave = [task_answer(task_status="SUCCEEDED", video_url=url), _endless]
    started = time.monotonic()
    result = run("download", "t-1", str(tmp_path / "out.mp4"), env=cli_env)
    _one_clean_line(result, 3)
    assert "deadline" in result.stderr and time.monotonic() - started < 10
    assert not (tmp_path / "out.mp4").exists()


@both
@pytest.mark.parametrize(
    ("listing", "body", "said"),
    [
        (True, {"request_id": "req-9", "tasks": "none"}, "tasks is a string, not a list"),
        (True, {"tasks": [{"task_id": "t", "task_status": "RUNNING"}], "total": -1}, "total"),
        (False, {"request_id": "req-9", "data": {"policy": "p"}}, "data.signature is missing"),
        (False, {"data": {**dict.fromkeys(("policy", "signature", "upload_dir",
                 "oss_access_key_id"), "x"), "upload_host": 5}}, "data.upload_host is a number"),
    ],
    ids=["list: tasks a string", "list: total negative", "policy: missing", "policy: host"],
)  # fmt: skip
def test_list_and_upload_policy_answers_are_checked(
    server: Hostile, tmp_path: Path, asynchronous: bool, listing: bool, body: Any, said: str
) -> None:
    server.behave = [answer(body)]
    media = tmp_path / "a.wav"
    media.write_bytes(b"RIFF")

    async def run_async() -> object:
        async with AsyncClient(api_key=KEY, url=server.base, timing=QUICK) as client:
            return await (client.list() if listing else client.upload(media))

    with pytest.raises(InvalidAnswer) as caught:
        if asynchronous:
            asyncio.run(run_async())
        else:
            with Client(api_key=KEY, url=server.base, timing=QUICK) as client:
                client.list() if listing else client.upload(media)
    assert server.seen[0].path.startswith("/api/v1/tasks" if listing else "/api/v1/uploads")
    assert len(server.seen) == 1  # nothing was sent on to a host the answer named
    assert said in str(caught.value)
    _no_key_in(caught.value)


@both
def test_a_redirect_to_the_key_is_not_logged(
    server: Hostile, caplog: pytest.LogCaptureFixture, asynchronous: bool
) -> None:
    """A server may redirect to an address holding the key: the retry log names the step,
    not the address."""
    server.behave = [raw(302, b"", ("Location", f"/api/v1/tasks/{KEY}")), raw(503, b"")]
    caplog.set_level(logging.INFO, logger="retalk.client")
    with pytest.raises(ApiError):
        _query(server.base, asynchronous)
    assert any(seen.path.endswith(KEY) for seen in server.seen)  # it was followed there
    assert "retrying" in caplog.text and "GET (query)" in caplog.text
    assert KEY not in caplog.text


# A submit's lost answer: never sent again; a connection that never opened, or a 429, may be.


def _read_body(h: _Handler) -> bytes:
    return h.rfile.read(int(h.headers.get("Content-Length") or 0))


def _hang_up(h: _Handler) -> None:
    """Reads the whole request, then closes without a word: the answer is lost."""
    _read_body(h)
    h.close_connection = True
    h.connection.shutdown(2)


def _sit(h: _Handler) -> None:
    """Reads the whole request, then answers later than the client waits."""
    _read_body(h)
    time.sleep(2.5)
    send(h, 200, b"{}")


def _posted(server: Hostile) -> int:
    return sum(seen.method == "POST" for seen in server.seen)


SUBMIT_ANSWER = {"request_id": "r", "output": {"task_id": "t-9", "task_status": "PENDING"}}


def _after_the_body(behave: Behaviour) -> Behaviour:
    """`behave` once the request's body is read, as a gateway or the service answers."""

    def then(h: _Handler) -> None:
        _read_body(h)
        behave(h)

    return then


LOST = {
    "read timeout": [_sit],
    "dropped after the body": [_hang_up],
    "502 from a gateway": [_after_the_body(raw(502, b"<html>Bad Gateway</html>"))],
    "504 from a gateway": [
        _after_the_body(
            answer({"code": "GatewayTimeout", "message": "timed out", "request_id": "r"}, 504)
        )
    ],
    "200 that cannot be read": [_after_the_body(raw(200, b"<html>accepted</html>"))],
    "200 without a task id": [
        _after_the_body(answer({"request_id": "r", "output": {"task_status": "PENDING"}}))
    ],
}


def _submit(base: str, asynchronous: bool, timing: Timing = QUICK) -> Task:
    urls = ("http://x/v.mp4", "http://x/a.wav")
    if not asynchronous:
        with Client(api_key=KEY, url=base, timing=timing) as client:
            return client.submit(*urls)

    async def run() -> Task:
        async with AsyncClient(api_key=KEY, url=base, timing=timing) as client:
            return await client.submit(*urls)

    return asyncio.run(run())


@both
@pytest.mark.parametrize("how", list(LOST))
def test_a_lost_submit_answer_is_submit_lost_and_sent_once(
    server: Hostile, asynchronous: bool, how: str
) -> None:
    server.behave = [*LOST[how], _after_the_body(answer(SUBMIT_ANSWER))]  # a second try would do
    # A read timeout long enough for a loaded machine to serve the others in time.
    timing = Timing(read=1.5, retries=3, backoff=0.01, deadline=5.0)
    before = datetime.now(UTC)
    with pytest.raises(SubmitLost) as lost:
        _submit(server.base, asynchronous, timing)
    assert _posted(server) == 1  # never sent again
    assert before <= lost.value.sent_at <= datetime.now(UTC)
    assert lost.value.sent_at.tzinfo is not None and lost.value.step == "submit"
    assert isinstance(lost.value, TransportError)
    assert "a task may exist" in str(lost.value)
    _no_key_in(lost.value)


@both
def test_a_submit_refused_by_the_service_is_not_lost_and_sent_once(
    server: Hostile, asynchronous: bool
) -> None:
    server.behave = [_after_the_body(answer({"code": "InternalError", "message": "oops"}, 500))]
    with pytest.raises(ServerError):
        _submit(server.base, asynchronous, Timing(retries=3, backoff=0.01))
    assert _posted(server) == 1


@both
def test_a_throttled_submit_waits_as_asked_then_goes(server: Hostile, asynchronous: bool) -> None:
    throttled = raw(
        429, b'{"code": "Throttling.RateQuota", "message": "slow"}', ("Retry-After", "0.3")
    )
    server.behave = [_after_the_body(throttled), _after_the_body(answer(SUBMIT_ANSWER))]
    started = time.monotonic()
    task = _submit(server.base, asynchronous, Timing(retries=3, backoff=0.01))
    assert task.task_id == "t-9" and _posted(server) == 2
    assert time.monotonic() - started >= 0.3  # the Retry-After was honoured


@both
def test_a_submit_that_never_connected_is_not_lost(asynchronous: bool) -> None:
    port = _closed_port()
    with pytest.raises(TransportError) as failed:
        _submit(f"http://127.0.0.1:{port}/api/v1", asynchronous, Timing(retries=1, backoff=0.01))
    assert not isinstance(failed.value, SubmitLost)  # nothing was sent
    assert f"could not connect to http://127.0.0.1:{port}" in str(failed.value)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A download's retries: exactly the configured number, not retries within retries.


def _nothing(h: _Handler) -> None:
    h.close_connection = True
    h.connection.shutdown(2)


@both
@pytest.mark.parametrize(
    ("behave", "error"),
    [(_nothing, TransportError), (raw(503, b"", ("Retry-After", "0")), ServerError)],
    ids=["dropped", "503"],
)
def test_a_download_is_tried_exactly_retries_plus_one_times(
    server: Hostile, tmp_path: Path, asynchronous: bool, behave: Behaviour, error: type[ApiError]
) -> None:
    server.behave = [behave]
    timing = Timing(retries=3, backoff=0.01, backoff_cap=0.02, transfer_deadline=5.0)
    with pytest.raises(error):
        _download(f"{server.origin}/r/result.mp4", tmp_path / "out.mp4", asynchronous, timing)
    assert len(server.seen) == 1 + 3  # was 5 x 5 with the retries nested
    assert not (tmp_path / "out.mp4").exists()


# An expired result link: ResultExpired with its time, nothing saved.

EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired.</Message><RequestId>5F1</RequestId>"
    b"<Expires>2026-11-29T10:00:00.000Z</Expires><ServerTime>2026-11-30T10:00:00.000Z"
    b"</ServerTime></Error>"
)


@both
@pytest.mark.parametrize("expires", ["none", "future"], ids=["no Expires=", "a skewed clock"])
def test_an_expired_link_is_result_expired_and_keeps_nothing(
    server: Hostile, tmp_path: Path, asynchronous: bool, expires: str
) -> None:
    server.behave = [raw(403, EXPIRED_XML, ("Content-Type", "application/xml"))]
    url = f"{server.origin}/r/result.mp4"
    if expires == "future":  # the link says it is good; the storage's clock says not
        url += f"?Expires={int(time.time()) + 600}&Signature=x"
    target = tmp_path / "out.mp4"
    _part(target).write_bytes(RESULT[:40_000])
    _record(target, url)
    with pytest.raises(ResultExpired) as expired:
        _download(url, target, asynchronous)
    assert len(server.seen) == 1  # asked once: an expired link is not retried
    assert expired.value.expired_at == datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
    assert "expired at 2026-11-29 10:00 UTC" in str(expired.value)
    assert not target.exists() and not _part(target).exists()
    assert not list(tmp_path.glob("*.json"))


@both
def test_an_expired_answer_without_its_time_names_no_false_one(
    server: Hostile, tmp_path: Path, asynchronous: bool
) -> None:
    """Refused as expired, with no `<Expires>`, by a link that claims to live for centuries:
    no date is made up from the link."""
    xml = EXPIRED_XML.replace(b"<Expires>", b"<Other>").replace(b"</Expires>", b"</Other>")
    assert xml != EXPIRED_XML
    server.behave = [raw(403, xml, ("Content-Type", "application/xml"))]
    url = f"{server.origin}/r/result.mp4?Expires=9999999999&Signature=x"
    with pytest.raises(ResultExpired) as expired:
        _download(url, tmp_path / "out.mp4", asynchronous)
    assert expired.value.expired_at is None
    assert str(expired.value) == "the result link expired: nothing was saved"


@both
def test_a_link_already_past_is_not_asked(
    server: Hostile, tmp_path: Path, asynchronous: bool
) -> None:
    server.behave = [ranged]
    past = int(time.time()) - 5
    with pytest.raises(ResultExpired) as expired:
        _download(f"{server.origin}/r/result.mp4?Expires={past}", tmp_path / "o.mp4", asynchronous)
    assert server.seen == [] and expired.value.expired_at == datetime.fromtimestamp(past, UTC)


# A result is verified: a SUCCEEDED task, a video, its billed length.


def _succeeded(url: str, duration: float, status: str = "SUCCEEDED") -> Task:
    return Task("t-1", TaskStatus(status), video_url=url, usage=Usage(video_duration=duration))


def _download_task(task: Task, target: Path, asynchronous: bool) -> Path:
    timing = dataclasses.replace(QUICK, max_result_bytes=10_000_000)  # real videos
    if not asynchronous:
        with Client(api_key=KEY, url="http://127.0.0.1:9/api/v1", timing=timing) as client:
            return client.download(task, target)

    async def run() -> Path:
        async with AsyncClient(api_key=KEY, url="http://127.0.0.1:9/api/v1", timing=timing) as c:
            return await c.download(task, target)

    return asyncio.run(run())


@both
@pytest.mark.parametrize(
    ("served", "billed", "status", "said"),
    [
        ("bytes", 3.0, "SUCCEEDED", "ffprobe cannot open it"),
        ("audio", 7.54, "SUCCEEDED", "no video stream"),
        ("video", 3.2, "SUCCEEDED", "it lasts 3.000 s, the task billed 3.2 s"),
        ("video", 3.0, "RUNNING", "the task is RUNNING, not SUCCEEDED"),
    ],
    ids=["not a video", "no video stream", "5 frames short", "not SUCCEEDED"],
)
def test_a_result_that_is_not_the_tasks_video_is_not_kept(
    server: Hostile,
    tmp_path: Path,
    media: Path,
    asynchronous: bool,
    served: str,
    billed: float,
    status: str,
    said: str,
) -> None:
    body = {"bytes": RESULT, "audio": (media / "speech.wav").read_bytes()}.get(served)
    video = body if body is not None else (media / "face.mp4").read_bytes()
    server.behave = [lambda h: ranged(h, video)]
    target = tmp_path / "out.mp4"
    task = _succeeded(f"{server.origin}/r/result.mp4", billed, status)
    with pytest.raises(InvalidResult) as invalid:
        _download_task(task, target, asynchronous)
    assert said in str(invalid.value) and invalid.value.task_id == "t-1"
    assert len(server.seen) == (0 if status != "SUCCEEDED" else 1)
    assert not target.exists() and not _part(target).exists()
    assert not list(tmp_path.glob("*.json"))


@both
def test_a_result_within_two_frames_is_kept(
    server: Hostile, tmp_path: Path, media: Path, asynchronous: bool
) -> None:
    video = (media / "face.mp4").read_bytes()  # 3 s at 25 fps: 2 frames is 0.08 s
    server.behave = [lambda h: ranged(h, video)]
    task = _succeeded(f"{server.origin}/r/result.mp4", 3.07)
    assert _download_task(task, tmp_path / "out.mp4", asynchronous).read_bytes() == video


# Addresses and settings: what was tried, and what to set.


def test_a_connection_error_names_the_address_and_nothing_else() -> None:
    port = _closed_port()
    base = f"http://someone:hunter2@127.0.0.1:{port}/api/v1"  # a user, a password, a path
    with (
        Client(api_key=KEY, url=base, timing=Timing(retries=0)) as client,
        pytest.raises(TransportError) as failed,
    ):
        client.get("t-1")
    assert f"query: could not connect to http://127.0.0.1:{port} (ConnectError)" == str(
        failed.value
    )
    _no_key_in(failed.value)


@both
def test_a_base_url_without_api_v1_says_what_to_set(server: Hostile, asynchronous: bool) -> None:
    server.behave = [raw(404, b"<html>Not Found</html>")]

    async def run_async() -> None:
        async with AsyncClient(api_key=KEY, url=server.origin, timing=QUICK) as client:
            await client.check_access()

    with pytest.raises(NotFound) as missing:
        if asynchronous:
            asyncio.run(run_async())
        else:
            with Client(api_key=KEY, url=server.origin, timing=QUICK) as client:
                client.check_access()
    assert server.seen[0].path.startswith("/tasks?")  # one cheap call
    assert f"no such API at {server.origin}" in str(missing.value)
    assert "DASHSCOPE_HTTP_BASE_URL=https://dashscope.aliyuncs.com/api/v1" in str(missing.value)


@pytest.mark.parametrize("url", ["localhost:8000/api/v1", "dashscope.aliyuncs.com/api/v1"])
def test_a_base_url_without_a_scheme_is_refused_at_once(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidSetting) as bad:
        Client(api_key=KEY, url=url)
    assert time.monotonic() - started < 2  # no retries: at once
    assert "DASHSCOPE_HTTP_BASE_URL=https://dashscope.aliyuncs.com/api/v1" in str(bad.value)


# The task list: times as the service writes them, windows of 24 hours, every page.


def _pages(tasks: int) -> Behaviour:
    def behave(h: _Handler) -> None:
        from urllib.parse import parse_qs, urlsplit

        query = {k: v[0] for k, v in parse_qs(urlsplit(h.path).query).items()}
        size, number = int(query["page_size"]), int(query["page_no"])
        window = query["start_time"]
        listed = [
            {"task_id": f"{window}-{n}", "task_status": "SUCCEEDED", "video_url": "http://x/r"}
            for n in range(tasks)
        ][(number - 1) * size : number * size]
        answer({"tasks": listed, "page_no": number, "page_size": size, "total": tasks})(h)

    return behave


@both
def test_tasks_between_walks_every_page_of_every_window(
    server: Hostile, asynchronous: bool
) -> None:
    server.behave = [_pages(5)]
    start = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)  # 08:00 in the service's zone (UTC+8)
    end = start + timedelta(hours=30)

    async def run_async() -> list[Task]:
        async with AsyncClient(api_key=KEY, url=server.base, timing=QUICK) as client:
            return [t async for t in client.tasks_between(start, end, page_size=2)]

    if asynchronous:
        found = asyncio.run(run_async())
    else:
        with Client(api_key=KEY, url=server.base, timing=QUICK) as client:
            found = list(client.tasks_between(start, end, page_size=2))
    assert len(found) == 10 and len({t.task_id for t in found}) == 10  # 2 windows x 5
    windows = sorted({s.path.split("start_time=")[1][:14] for s in server.seen})
    assert windows == ["20261129080000", "20261130080000"]
    assert any("end_time=20261130080000" in s.path for s in server.seen)  # 24 h, no more
    assert any("end_time=20261130140000" in s.path for s in server.seen)
    assert len(server.seen) == 2 * 3  # 3 pages of 2 in each


def test_a_list_window_over_24_hours_is_refused_before_asking(server: Hostile) -> None:
    with Client(api_key=KEY, url=server.base, timing=QUICK) as client:
        with pytest.raises(ValueError, match="at most 24 hours"):
            client.list(start_time="20261129000000", end_time="20261130000001")
        with pytest.raises(ValueError, match="YYYYMMDDhhmmss"):
            client.list(start_time="2026-11-29")
    assert server.seen == []
