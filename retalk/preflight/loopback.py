"""A `Remote` served on loopback, so that ffprobe and PyAV read a URL's bytes through it.

ffprobe's http protocol reads with range requests and seeks by opening new ones: here each is
answered from the `Remote`, which fetches each block from the real server once and counts it
(what ffprobe, PyAV and the structure checks read together is what was fetched). ffprobe
never sees the real URL: neither its command line (visible to every user of the machine) nor
its messages hold a signed query.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

from retalk.preflight.remote import ReadStopped, Remote

_CHUNK = 64 * 1024
_SEND_BUFFER = 64 * 1024
"""Small socket buffers, so that a reader that stops has not made the server fetch far ahead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    remote: Remote
    token: str

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a reader that hung up: nothing to print (and never a traceback)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
        super().setup()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: what matters is counted by the Remote

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        remote = self.server.remote
        if not self.path.startswith(f"/{self.server.token}/"):
            self.send_error(404)
            return
        size = remote.size
        start, end = 0, (size - 1 if size is not None else None)
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
        if wanted and size is not None:
            start = int(wanted.group(1))
            if wanted.group(2):
                end = min(int(wanted.group(2)), size - 1)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        if size is not None:
            assert end is not None
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self._send(remote, start, end)

    def _send(self, remote: Remote, start: int, end: int | None) -> None:
        position = start
        try:
            while end is None or position <= end:
                want = _CHUNK if end is None else min(_CHUNK, end - position + 1)
                data = remote.read_at(position, want)
                if not data:
                    break
                self.wfile.write(data)
                position += len(data)
        except (ReadStopped, ConnectionError, OSError):
            self.close_connection = True


@contextmanager
def served(remote: Remote, name: str) -> Iterator[str]:
    """An http URL on 127.0.0.1 that serves `remote`'s bytes, ending in `name` (the original
    ending, which ffmpeg's format probe weighs), for the block."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.remote = remote
    server.token = secrets.token_hex(8)
    # A short poll: `shutdown` waits for the loop's next look (0.5 s by default).
    serve = partial(server.serve_forever, poll_interval=0.02)
    thread = threading.Thread(target=serve, name="retalk-url", daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield f"http://127.0.0.1:{port}/{server.token}/{quote(name)}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
