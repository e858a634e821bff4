"""Answers read with bounds: on their size once decoded (a gzip bomb stops at the cap, having
inflated no more than a chunk past it), and on the time the whole call may take, headers
included (a server that sends a byte now and then, each within the read timeout, is cut off)."""

from __future__ import annotations

import ssl
import time
import typing
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpcore
import httpx

from retalk.client.errors import InvalidAnswer, TransportError

ACCEPT_ENCODING = "gzip, deflate"
"""What the client asks for: the encodings `Decoder` undoes with a bound."""
_PIECE = 1 << 20
"""The most one step of inflating may produce."""


class Decoder:
    """Undoes a body's Content-Encoding, raising InvalidAnswer past `cap` decoded bytes."""

    def __init__(self, encoding: str, cap: int, what: str, *, identity: bool = False) -> None:
        """`identity`: only an uncompressed body is taken (a download asks for no other, and
        its length is then the announced one)."""
        self.cap, self.what, self.size = cap, what, 0
        coding = encoding.strip().lower()
        if identity and coding not in ("", "identity"):
            raise InvalidAnswer(
                what, f"the body is compressed ({coding[:40]!r}), which retalk did not ask for"
            )
        if coding in ("", "identity"):
            self._inflate: zlib._Decompress | None = None
        elif coding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            self._inflate = zlib.decompressobj()
        else:
            raise InvalidAnswer(
                what, f"the body is in an encoding retalk did not ask for ({coding[:40]!r})"
            )

    def feed(self, raw: bytes) -> Iterator[bytes]:
        if self._inflate is None:
            yield self._count(raw)
            return
        pending = raw
        while pending and not self._inflate.eof:
            try:
                piece = self._inflate.decompress(pending, min(self.cap - self.size + 1, _PIECE))
            except zlib.error:
                raise InvalidAnswer(self.what, "the compressed body is corrupt") from None
            pending = self._inflate.unconsumed_tail
            yield self._count(piece)

    def end(self) -> None:
        """The body is over: a compressed one must have ended too."""
        if self._inflate is not None and not self._inflate.eof:
            raise InvalidAnswer(self.what, "the compressed body is cut short")

    def _count(self, piece: bytes) -> bytes:
        self.size += len(piece)
        if self.size > self.cap:
            raise InvalidAnswer(self.what, f"the body is larger than {self.cap:,} bytes")
        return piece


class Deadline:
    """The time one call may take in all: every request it sends gets no phase timeout longer
    than what is left, and every chunk read checks it, so a server that trickles a byte now and
    then is cut off at most a read timeout's length past it."""

    def __init__(self, seconds: float, timeout: httpx.Timeout, what: str) -> None:
        self.seconds, self.what, self._timeout = seconds, what, timeout
        self.ends = time.monotonic() + seconds

    def left(self) -> float:
        return self.ends - time.monotonic()

    def check(self) -> None:
        if self.left() <= 0:
            raise self.expired()

    def expired(self) -> TransportError:
        return TransportError(
            f"{self.what}: timed out (not done within the call's deadline of {self.seconds:g} s)"
        )

    @contextmanager
    def active(self) -> Iterator[None]:
        """Every socket operation of the sync client, while this holds, waits no longer than
        what is left (see `deadline_transport`)."""
        token = _ENDS.set(self.ends)
        try:
            yield
        finally:
            _ENDS.reset(token)

    def timeout(self) -> httpx.Timeout:
        self.check()
        left = max(self.left(), 0.001)

        def bound(phase: float | None) -> float:
            return left if phase is None else min(phase, left)

        t = self._timeout
        return httpx.Timeout(
            connect=bound(t.connect), read=bound(t.read), write=bound(t.write), pool=bound(t.pool)
        )


_ENDS: ContextVar[float | None] = ContextVar("retalk_deadline", default=None)


def _bound(timeout: float | None, late: type[Exception]) -> float | None:
    """`timeout`, shortened to what is left of the active deadline."""
    ends = _ENDS.get()
    if ends is None:
        return timeout
    left = ends - time.monotonic()
    if left <= 0:
        raise late("the call's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        bound = _bound(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, bound))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        bound = _bound(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, bound, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        bound = _bound(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, bound, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_transport() -> httpx.HTTPTransport:
    """httpx's transport, its sockets held to the active `Deadline`. httpx offers no overall
    timeout, and its per-read one restarts with every byte; httpcore takes a network backend,
    which httpx does not pass on, so it is set on the pool httpx made."""
    transport = httpx.HTTPTransport()
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is not None:  # else (another httpx) the per-phase and per-chunk bounds remain
        pool._network_backend = _Backend(backend)  # type: ignore[union-attr]
    return transport
