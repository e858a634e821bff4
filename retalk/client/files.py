"""Files on the way up and down: a progress-counting reader, and a resumable, atomic writer."""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

import httpx

from retalk.client.errors import InvalidAnswer, TransportError

MAX_RESTARTS = 2
"""Downloads started over from 0 (a range that did not match) before giving up."""

Progress = Callable[[int, int | None], None]
"""Called with the bytes done so far and the total (None when unknown)."""


class CountingReader:
    """A file that reports how much of it has been read (httpx streams uploads from it in
    chunks, so the memory of an upload stays flat). Rewinding for a retry restarts the count."""

    def __init__(self, stream: BinaryIO, total: int, progress: Progress | None) -> None:
        self._stream, self._total, self._progress, self._done = stream, total, progress, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._done += len(chunk)
        if self._progress is not None:
            self._progress(self._done, self._total)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self._stream.seek(offset, whence)
        self._done = position
        return position

    def tell(self) -> int:
        return self._stream.tell()

    def fileno(self) -> int:
        return self._stream.fileno()


class PartialFile:
    """A download in `.name.part` beside the target, renamed over it once whole and checked: an
    interrupted download never leaves a truncated result under its real name.

    The part is resumed only when it is known: `.name.part.json` records the address it came
    from (without the query, where a link's signature changes), the server's validator (a
    strong ETag or Last-Modified) and the whole length. A resume asks `Range` with `If-Range`,
    and takes only a 206 whose Content-Range starts at the bytes held and has the recorded
    length; anything else, and any part without a matching record, starts over from 0. A body
    longer than announced, or than a result can be, stops the download and keeps nothing.
    """

    def __init__(self, target: Path, url: str, cap: int, what: str = "download") -> None:
        self.target, self.cap, self.what = target, cap, what
        self.part = target.with_name(f".{target.name}.part")
        self.record = target.with_name(f".{target.name}.part.json")
        self.source = _source(url)
        self.offset = self.done = 0
        self.length: int | None = None
        """The whole result's length, when known."""
        self._out: BinaryIO | None = None

    def request_headers(self) -> dict[str, str]:
        """Range and If-Range when the part is this address's, as recorded; else the part and
        its record go, and the download starts from 0."""
        headers = {"Accept-Encoding": "identity"}
        known = self._load()
        have = self._size()
        validator = known.get("etag") or known.get("last_modified") if known else None
        length = known.get("length") if known else None
        if (
            have
            and known
            and known.get("source") == self.source
            and isinstance(validator, str)
            and isinstance(length, int)
            and have < length
        ):
            self.offset, self.length = have, length
            self._etag = known.get("etag")
            return {**headers, "Range": f"bytes={have}-", "If-Range": validator}
        self.discard()
        self.offset, self.length, self._etag = 0, None, None
        return headers

    def start(self, status: int, headers: httpx.Headers) -> bool:
        """Whether to write this answer's body; False: the part went, ask again from 0."""
        if status == 416 and self.offset:
            return self._restart()
        if status == 206:
            span = _content_range(headers.get("Content-Range", ""))
            etag = headers.get("ETag")
            if self.offset:
                if (
                    span is None
                    or span[0] != self.offset
                    or span[2] != self.length
                    or (etag and self._etag and etag != self._etag)
                ):
                    return self._restart()
                self.done = self.offset
                self._open(append=True)
                return True
            if span is None or span[0] != 0:
                raise InvalidAnswer(self.what, "a partial answer (206) to a request for all of it")
            self.length = span[2]
        elif status == 200:
            self.length = _int(headers.get("Content-Length"))
            if headers.get("Content-Encoding", "identity").lower() != "identity":
                self.length = None  # the announced length is of the encoded body
        else:
            raise InvalidAnswer(self.what, f"HTTP {status} to a download")
        if self.length is not None and self.length > self.cap:
            raise InvalidAnswer(
                self.what, f"it announces {self.length:,} bytes, more than a result can be"
            )
        self.done = 0
        self._open(append=False)
        self._remember(headers)
        return True

    def write(self, piece: bytes) -> None:
        assert self._out is not None
        self.done += len(piece)
        if self.length is not None and self.done > self.length:
            self.discard()
            raise InvalidAnswer(
                self.what, f"the body is longer than the {self.length:,} bytes announced"
            )
        if self.done > self.cap:
            self.discard()
            raise InvalidAnswer(
                self.what, f"the body is larger than a result can be ({self.cap:,} bytes)"
            )
        self._out.write(piece)

    def complete(self) -> None:
        """The part is closed and whole; a short one is a dropped connection."""
        self.close()
        if self.length is not None and self.done < self.length:
            raise TransportError(
                f"{self.what}: the connection dropped after {self.done:,} of {self.length:,} bytes"
            )

    def commit(self, overwrite: bool = True) -> Path:
        """The whole part, under the target's name. Without `overwrite`, a file already there
        stays and FileExistsError is raised (the part is kept for a later call)."""
        if overwrite:
            os.replace(self.part, self.target)
        else:
            try:
                os.link(self.part, self.target)  # fails, atomically, when the target exists
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: a check, then the rename
                if self.target.exists():
                    raise FileExistsError(errno.EEXIST, "exists", str(self.target)) from None
                os.replace(self.part, self.target)
            else:
                self.part.unlink()
        self.record.unlink(missing_ok=True)
        return self.target

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def discard(self) -> None:
        self.close()
        self.part.unlink(missing_ok=True)
        self.record.unlink(missing_ok=True)

    def _restart(self) -> bool:
        self.discard()
        return False

    def _open(self, append: bool) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(self.part, "ab" if append else "wb")  # noqa: SIM115  # closed by close(), on every path

    def _remember(self, headers: httpx.Headers) -> None:
        """The record that lets a later call resume: only with a validator and a length."""
        etag = headers.get("ETag")
        etag = etag if etag and not etag.startswith("W/") else None
        modified = headers.get("Last-Modified")
        if self.length is None or not (etag or modified):
            self.record.unlink(missing_ok=True)
            return
        self._etag = etag
        known = {
            "source": self.source,
            "etag": etag,
            "last_modified": modified,
            "length": self.length,
        }
        self.record.write_text(json.dumps(known))

    def _load(self) -> dict[str, Any] | None:
        try:
            known = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        return known if isinstance(known, dict) else None

    def _size(self) -> int:
        try:
            return self.part.stat().st_size
        except FileNotFoundError:
            return 0


def _source(url: str) -> str:
    """An address without its query and fragment: a result link's signature is in its query."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def _content_range(value: str) -> tuple[int, int, int] | None:
    """`bytes START-END/TOTAL` as numbers, when it is that and consistent."""
    found = _RANGE.fullmatch(value.strip())
    if not found:
        return None
    start, end, total = (int(n) for n in found.groups())
    return (start, end, total) if start <= end < total else None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None
