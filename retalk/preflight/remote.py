"""A URL input read as the service would fetch it, without downloading it whole.

`open_remote` asks for the first bytes (`Range: bytes=0-…`, `limits.URL_SAMPLE_BYTES`),
following a few redirects (`limits.URL_MAX_REDIRECTS`). What the service's download would meet
(a refused connection, a name that does not resolve, an error answer, no answer) is a
`Failure` with the service's `InvalidURL.*` code; so is a transfer that, at the rate measured
on those first bytes, cannot end within the time the service gives it (60 s): its answer's
delay plus the announced length over that rate. Otherwise a `Remote` serves the file's bytes
to the readers (ffprobe, PyAV, the structure checks) by range requests of whole blocks
(`limits.URL_BLOCK_BYTES`), each block fetched once, and counts what it fetched. A server that
takes no ranges is read from the start as one stream, as far as the readers need.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from retalk import limits
from retalk.units import size_text

if TYPE_CHECKING:
    import httpx

_SETTLE_BYTES = 1024 * 1024
"""Bytes read at least before a faster rate than the first bytes' is believed."""

REFUSED = "InvalidURL.ConnectionRefused"
TIMEOUT = "InvalidURL.Timeout"


@dataclass(frozen=True)
class Failure:
    """Why the service could not download a URL."""

    code: str
    """`InvalidURL.ConnectionRefused` or `InvalidURL.Timeout`."""
    reason: str
    """In words, without the URL."""


class ReadStopped(OSError):
    """Reading a URL stopped before the readers had what they asked for (retalk's bound on
    bytes, the server's error or silence): the file is not judged by what was read."""


def redact(url: str) -> str:
    """`url` fit to print: its query (a signed URL's `Signature`, `OSSAccessKeyId`,
    `security-token`) shown as `?…`, its user and password and its fragment dropped."""
    base = url.split("#", 1)[0]
    base, mark, _ = base.partition("?")
    scheme, sep, rest = base.partition("://")
    if sep:
        host, slash, path = rest.partition("/")
        base = f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}"
    return base + ("?…" if mark else "")


def ending_of(url: str) -> str:
    """The ending of the URL's path (`mp4`), lower case, without its query."""
    path = redact(url).removesuffix("?…").partition("://")[2].partition("/")[2]
    return os.path.splitext(unquote(path))[1].lower().lstrip(".")


def name_of(url: str) -> str:
    """The last part of the URL's path, decoded (`clip.mp4`); `input` when there is none."""
    path = redact(url).removesuffix("?…").partition("://")[2].partition("/")[2]
    name = unquote(path.rsplit("/", 1)[-1])
    return "".join(c for c in name if c.isprintable() and c not in "/\\") or "input"


class Remote:
    """An open URL: its announced length, whether it takes ranges, and its bytes on demand
    (`read_at`, safe from several threads). Close it when done."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        size: int | None,
        ranges: bool,
        redirects: int,
        timeout: float,
        started: float,
    ) -> None:
        self._client = client
        self.url = url
        """Where the redirects led (what is read from)."""
        self.size = size
        """The announced length (`Content-Range` total or `Content-Length`); None when the
        server does not say."""
        self.ranges = ranges
        """Whether it answered the range request with a range (206)."""
        self.redirects = redirects
        self.timeout = timeout
        self.started = started
        """`time.monotonic()` when the first request left."""
        self.fetched = 0
        """Bytes received from the server, every request counted."""
        self.requests = 1
        self.rate: float | None = None
        """Bytes a second of the first bytes' transfer."""
        self.estimate_s: float | None = None
        """How long the whole transfer would take at that rate, the answer's delay included."""
        self.stopped: str | None = None
        """Why reading stopped short, when it did."""
        self.read_max = limits.URL_READ_MAX_BYTES
        self.read_max_why = (
            f"its metadata was not found in the first {size_text(self.read_max)} read"
        )
        """The bound on `fetched` for the readers, and what is said when they reach it."""
        self._lock = threading.Lock()
        self._blocks: dict[int, bytes] = {}
        self._head = bytearray()  # no ranges: every byte read from the start
        self._stream: Iterator[bytes] | None = None
        self._response: httpx.Response | None = None
        self._ended = False
        self._sampled = 0
        self._sample_s = 0.0
        self.etag: str | None = None
        """The first answer's `ETag`: each range must come from the same file (`If-Match`)."""

    # -- reading --------------------------------------------------------------------------

    def read_at(self, offset: int, count: int) -> bytes:
        """Up to `count` bytes at `offset` (fewer at the end); raises `ReadStopped`."""
        if count <= 0 or (self.size is not None and offset >= self.size):
            return b""
        if self.size is not None:
            count = min(count, self.size - offset)
        with self._lock:
            if self.stopped is not None:
                raise ReadStopped(self.stopped)
            if self.ranges:
                return self._from_blocks(offset, count)
            return self._from_stream(offset, count)

    def open(self) -> RemoteFile:
        """A file object over the URL's bytes (a position of its own)."""
        return RemoteFile(self)

    def _from_blocks(self, offset: int, count: int) -> bytes:
        block = limits.URL_BLOCK_BYTES
        first, last = offset // block, (offset + count - 1) // block
        missing = [i for i in range(first, last + 1) if i not in self._blocks]
        while missing:
            run_end = missing[0]
            while run_end + 1 in missing:
                run_end += 1
            self._fetch(missing[0], run_end)
            missing = [i for i in missing if i > run_end]
        data = b"".join(self._blocks.get(i, b"") for i in range(first, last + 1))
        start = offset - first * block
        return data[start : start + count]

    def _fetch(self, first: int, last: int) -> None:
        import httpx

        block = limits.URL_BLOCK_BYTES
        start, end = first * block, (last + 1) * block - 1
        if self.size is not None:
            end = min(end, self.size - 1)
        self._allow(end - start + 1)
        headers = {"Range": f"bytes={start}-{end}"}
        if self.etag:
            headers["If-Match"] = self.etag
        try:
            with self._client.stream("GET", self.url, headers=headers) as response:
                self.requests += 1
                if response.status_code == 412:
                    self._stop("it changed while it was read (its ETag)")
                if response.status_code != 206 or _range_start(response) != start:
                    self._stop(f"the server answered a range request with HTTP "
                               f"{response.status_code}")  # fmt: skip
                body = bytearray()
                for chunk in response.iter_raw():
                    self.fetched += len(chunk)
                    body += chunk
                    if len(body) > end - start + 1:
                        break
        except httpx.HTTPError as error:
            self._stop(f"reading it failed: {_reason(error)}")
        for i in range(first, last + 1):
            piece = bytes(body[(i - first) * block : (i - first + 1) * block])
            if piece:
                self._blocks[i] = piece

    def _from_stream(self, offset: int, count: int) -> bytes:
        import httpx

        want = offset + count
        try:
            while len(self._head) < want and not self._ended:
                self._allow(min(want - len(self._head), limits.URL_BLOCK_BYTES))
                chunk = next(self._stream, b"") if self._stream is not None else b""
                if not chunk:
                    self._ended = True
                    break
                self.fetched += len(chunk)
                self._head += chunk
        except httpx.HTTPError as error:
            self._stop(f"reading it failed: {_reason(error)}")
        return bytes(self._head[offset:want])

    def _allow(self, more: int) -> None:
        if self.fetched + more > self.read_max:
            self._stop(self.read_max_why)

    @property
    def length(self) -> int | None:
        """The announced length; failing it, the length of a file already read to its end."""
        if self.size is not None:
            return self.size
        return len(self._head) if self._ended and not self.ranges else None

    def header_only(self, why: str) -> None:
        """Let the readers read no more than `limits.URL_HEADER_READ_BYTES` past what was read
        so far; `why`: the reason, said when they reach that bound."""
        self.read_max = min(self.read_max, self.fetched + limits.URL_HEADER_READ_BYTES)
        self.read_max_why = f"{why}: no more than its header was read"

    def _stop(self, why: str) -> None:
        self.stopped = self.stopped or why
        raise ReadStopped(why)

    # -- the first request ----------------------------------------------------------------

    def _take_sample(self, response: httpx.Response, answered: float) -> None:
        """Reads the first bytes of `response` (a sample of the server's rate), keeps them."""
        sample = bytearray()
        stream = response.iter_raw()
        began = time.monotonic()
        for chunk in stream:
            sample += chunk
            self.fetched += len(chunk)
            if len(sample) >= limits.URL_SAMPLE_BYTES:
                break
            if time.monotonic() - began >= min(limits.URL_SAMPLE_S, self.timeout):
                break
        else:
            self._ended = True
        spent = time.monotonic() - began
        self._sampled, self._sample_s = len(sample), spent
        if sample and spent > 0:
            self.rate = len(sample) / spent
        if self.size is not None and self.rate and len(sample) < self.size:
            self.estimate_s = (answered - self.started) + self.size / self.rate
        if self.ranges:
            self._keep_blocks(bytes(sample))
            response.close()
        else:
            self._head = sample
            self._stream = stream
            self._response = response

    def refine_rate(self) -> None:
        """Measures the rate again, on what follows the first bytes, read for
        `limits.URL_SAMPLE_S`: those come slower than the rest (TCP's slow start), and a
        URL is not called too slow on them alone. The estimate is then the time spent so far
        and the rest over the new rate. Not when the first bytes took that long already."""
        import httpx

        if self.size is None or self._ended or self._sample_s >= limits.URL_SAMPLE_S:
            return
        window = min(limits.URL_SAMPLE_S, self.timeout)
        began, got = time.monotonic(), 0
        try:
            if self.ranges:
                headers = {"Range": f"bytes={self._sampled}-"}
                with self._client.stream("GET", self.url, headers=headers) as response:
                    self.requests += 1
                    if response.status_code != 206:
                        return
                    for chunk in response.iter_raw():
                        got += len(chunk)
                        self.fetched += len(chunk)
                        if time.monotonic() - began >= window or self._settled(got, began):
                            break
            else:
                while time.monotonic() - began < window and self._stream is not None:
                    self._allow(limits.URL_BLOCK_BYTES)
                    chunk = next(self._stream, b"")
                    if not chunk:
                        break
                    got += len(chunk)
                    self.fetched += len(chunk)
                    self._head += chunk
                    if self._settled(got, began):
                        break
        except (httpx.HTTPError, ReadStopped):
            return  # the first estimate stands
        spent = time.monotonic() - began
        if got and spent > 0:
            self.rate = got / spent
            left = max(self.size - self._sampled - got, 0)
            self.estimate_s = (time.monotonic() - self.started) + left / self.rate

    def _settled(self, got: int, began: float) -> bool:
        """Whether `got` bytes since `began` already show the download ending well in time
        (in half the time allowed): no need to read on for the rest of the window."""
        spent = time.monotonic() - began
        if got < _SETTLE_BYTES or spent <= 0 or self.size is None:
            return False
        left = max(self.size - self._sampled - got, 0)
        return (time.monotonic() - self.started) + left * spent / got <= self.timeout / 2

    def _keep_blocks(self, sample: bytes) -> None:
        block = limits.URL_BLOCK_BYTES
        whole = self._ended or (self.size is not None and len(sample) >= self.size)
        for i in range(0, len(sample), block):
            piece = sample[i : i + block]
            if len(piece) == block or whole:
                self._blocks[i // block] = piece

    def close(self) -> None:
        """Let the connection and the bytes go."""
        if self._response is not None:
            self._response.close()
        self._client.close()
        self._blocks.clear()
        self._head = bytearray()

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the whole file -------------------------------------------------------------------

    def download(self, out: io.BufferedWriter, cap: int) -> Failure | int:
        """Writes the whole file to `out`, stopping past `cap` bytes, within the service's
        time (from the first request): the bytes written (more than `cap`: over it), or the
        `Failure` the service would meet."""
        import httpx

        deadline = self.started + self.timeout
        written = 0
        try:
            with self._client.stream("GET", self.url) as response:
                self.requests += 1
                if response.status_code >= 400:
                    return Failure(REFUSED, f"it answers HTTP {response.status_code}")
                for chunk in response.iter_raw():
                    self.fetched += len(chunk)
                    out.write(chunk)
                    written += len(chunk)
                    if written > cap:
                        return written
                    if time.monotonic() > deadline:
                        return Failure(TIMEOUT, f"its download took over {self.timeout:g} s")
        except httpx.TimeoutException:
            return Failure(TIMEOUT, f"its download stalled for {self.timeout:g} s")
        except httpx.HTTPError as error:
            return Failure(REFUSED, f"its download failed: {_reason(error)}")
        return written


class RemoteFile(io.RawIOBase):
    """A read-only, seekable file object over a `Remote`."""

    def __init__(self, remote: Remote) -> None:
        super().__init__()
        self._remote = remote
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._position
        elif whence == io.SEEK_END:
            if self._remote.size is None:
                raise OSError("the length of the URL is not known")
            offset += self._remote.size
        self._position = max(offset, 0)
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._remote.read_at(self._position, len(view))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)


def open_remote(url: str, timeout: float) -> Remote | Failure:
    """The URL opened, its first bytes read (see the module docstring), or why the service
    could not download it."""
    import httpx

    from retalk import __version__

    client = httpx.Client(
        follow_redirects=True,
        max_redirects=limits.URL_MAX_REDIRECTS,
        timeout=httpx.Timeout(timeout),
        # The bytes as stored: a compressed transfer would count, and read, other bytes.
        headers={"User-Agent": f"retalk/{__version__}", "Accept-Encoding": "identity"},
    )
    started = time.monotonic()
    try:
        request = client.build_request(
            "GET", url, headers={"Range": f"bytes=0-{limits.URL_SAMPLE_BYTES - 1}"}
        )
        response = client.send(request, stream=True)
        if response.status_code == 206 and _range_start(response) != 0:
            # A range it was not asked for: read it as the service does, without one.
            response.close()
            response = client.send(client.build_request("GET", url), stream=True)
    except Exception as error:  # anything httpx raises: what the service's fetch would meet
        client.close()
        return _failure(error, timeout)
    answered = time.monotonic()
    status = response.status_code
    if status == 416:  # a range of an empty file
        size: int | None = 0
    elif status >= 400:
        response.close()
        client.close()
        return Failure(REFUSED, f"it answers HTTP {status}")
    elif status == 206 and _range_start(response) == 0:
        size = _range_total(response)
    else:
        size = _length(response) if status == 200 else None
    ranges = status == 206 and _range_start(response) == 0
    remote = Remote(
        client, str(response.url), size, ranges, len(response.history), timeout, started
    )
    remote.etag = response.headers.get("etag")
    try:
        if status != 416:
            remote._take_sample(response, answered)
        else:
            response.close()
    except httpx.TimeoutException:
        remote.close()
        return Failure(TIMEOUT, f"it stopped sending for {timeout:g} s")
    except httpx.HTTPError as error:
        remote.close()
        return Failure(REFUSED, f"its transfer failed: {_reason(error)}")
    if remote.estimate_s is not None and remote.estimate_s > timeout:
        remote.refine_rate()
    if remote.estimate_s is not None and remote.estimate_s > timeout and remote.rate:
        remote.close()
        assert remote.size is not None
        return Failure(
            TIMEOUT,
            f"it sends {size_text(int(remote.rate))}/s: its {size_text(remote.size)} would take "
            f"about {remote.estimate_s:.0f} s, over the {timeout:g} s {_whose(timeout)}",
        )
    return remote


def _whose(timeout: float) -> str:
    if timeout == limits.URL_DOWNLOAD_TIMEOUT_S:
        return "the service waits for a download"
    return f"allowed (the service waits {limits.URL_DOWNLOAD_TIMEOUT_S} s)"


def _failure(error: Exception, timeout: float) -> Failure:
    import httpx

    if isinstance(error, httpx.TooManyRedirects):
        return Failure(REFUSED, f"it redirects more than {limits.URL_MAX_REDIRECTS} times")
    if isinstance(error, httpx.TimeoutException):
        return Failure(TIMEOUT, f"no answer within {timeout:g} s")
    if isinstance(error, httpx.UnsupportedProtocol | httpx.InvalidURL | ValueError):
        return Failure(REFUSED, "it is not a URL that can be fetched")
    if isinstance(error, httpx.ConnectError):
        return Failure(REFUSED, f"cannot connect: {_reason(error)}")
    return Failure(REFUSED, f"the request failed: {_reason(error)}")


def _reason(error: BaseException) -> str:
    # httpx's messages name the OS error ("[Errno 111] Connection refused"), never the URL.
    said = str(error) or type(error).__name__
    said = re.sub(r"\[Errno -?\d+\] ", "", said)
    return redact(said) if "://" in said else said


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _range_start(response: httpx.Response) -> int | None:
    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    return int(match.group(1)) if match else None


def _range_total(response: httpx.Response) -> int | None:
    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
    if match is None or match.group(3) == "*":
        return None
    return int(match.group(3))


def _length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None
