"""The emulator's defences at the level of connections and request framing: a listen backlog
fit for hundreds of clients at once, deadlines on reading, a declared body length checked before
a byte of the body is read, and a bounded way to hang up on a client that is still sending."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from email.message import Message
from http.server import ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseRequestHandler
from typing import TYPE_CHECKING, Any

from retalk import __version__

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

BACKLOG = 1024
"""Connections the kernel holds for the server before it accepts them. The kernel caps it at
net.core.somaxconn (see `backlog`)."""
PROGRESS = 64 * 1024
"""Bytes of a body that buy its sender another idle timeout: a sender slower than this per
timeout is dropped, however steadily it trickles."""
LINGER_S = 1.0
LINGER_BYTES = 64 << 20
"""After refusing a body unread: how long, and how much of it, is read and thrown away so that
the sender sees the answer rather than a reset."""
_SOMAXCONN = Path("/proc/sys/net/core/somaxconn")


class Server(ThreadingHTTPServer):
    """A thread per connection, up to `max_connections` at once: beyond them a connection is
    answered 503 at once and closed, rather than given a thread to hold."""

    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseRequestHandler],
        max_connections: int,
    ) -> None:
        self.max_connections = max_connections
        self.open = self.peak = 0
        self._count = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count:
            full = self.open >= self.max_connections
            if not full:
                self.open += 1
                self.peak = max(self.peak, self.open)
        if full:
            _turn_away(request)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except RuntimeError:  # no thread to be had
            self._closed()
            self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._closed()

    def _closed(self) -> None:
        with self._count:
            self.open -= 1


_BUSY = json.dumps(
    {"code": "ServiceUnavailable", "message": "Too many connections, please try again later."}
).encode()


def _turn_away(connection: socket.socket) -> None:
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"X-Retalk-Emulator: {__version__}\r\n"
        f"Content-Length: {len(_BUSY)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    try:
        connection.settimeout(0.0)  # a new socket's send buffer takes it, or nothing is owed
        connection.send(head.encode() + _BUSY)
    except OSError:
        pass


def backlog(asked: int = BACKLOG) -> int:
    """The backlog the kernel grants for `asked`: listen() silently caps it at somaxconn."""
    try:
        cap = int(_SOMAXCONN.read_text())
    except (OSError, ValueError):
        return asked
    return min(asked, cap)


class DeadlineReader(io.RawIOBase):
    """A socket's reading side that fails with TimeoutError once `deadline` (time.monotonic)
    has passed, however the bytes trickle in: a per-read timeout alone lets a client that
    sends one byte a second hold a connection forever. Every PROGRESS bytes renew it."""

    def __init__(self, connection: socket.socket, idle: float) -> None:
        self._connection, self.idle = connection, idle
        self.renew()

    def renew(self) -> None:
        self.deadline, self._fed = time.monotonic() + self.idle, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the client was idle too long")
        self._connection.settimeout(left)
        try:
            got = self._connection.recv_into(buffer)
        finally:
            self._connection.settimeout(self.idle)  # what writes to the client may take
        self._fed += got
        if self._fed >= PROGRESS:
            self.renew()
        return got


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


def declared_length(headers: Message, *, required: bool, limit: int) -> int | Refusal:
    """The body length a request declares, or why it is refused before its body is read.
    Chunked bodies are refused: the service's clients always send a length."""
    if headers.get_all("Transfer-Encoding"):
        return Refusal(411, "MissingContentLength", "Chunked bodies are not accepted.")
    values = headers.get_all("Content-Length") or []
    if not values:
        if required:
            return Refusal(411, "MissingContentLength", "You must provide the Content-Length.")
        return 0
    if len(set(values)) > 1 or not re.fullmatch(r"\d{1,19}", values[0].strip()):
        return Refusal(400, "InvalidArgument", "The Content-Length is not valid.")
    length = int(values[0])
    if length > limit:
        return Refusal(413, "RequestTooLarge", "The request body is too large.")
    return length


def hang_up(connection: socket.socket) -> None:
    """Close after an answer sent while the client may still be sending: stop writing, then
    read and discard for a bounded while, so the answer is not lost to a reset."""
    buffer = bytearray(PROGRESS)
    left, end = LINGER_BYTES, time.monotonic() + LINGER_S
    try:
        connection.shutdown(socket.SHUT_WR)
        while left > 0 and (wait := end - time.monotonic()) > 0:
            connection.settimeout(wait)
            got = connection.recv_into(buffer)
            if not got:
                break
            left -= got
    except OSError:
        pass


def client_gone(connection: socket.socket, idle: float) -> bool:
    """Whether the client has hung up, without waiting or consuming anything."""
    connection.settimeout(0.0)
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        connection.settimeout(idle)
