"""The OSS side of the emulator: PostObject policies as OSS writes them (an expiry and a list of
conditions, signed), and the multipart form of an upload read as a stream: its fields are read
and judged before a byte of the file is written anywhere.

A policy's conditions bind the form: `{"x-oss-forbid-overwrite": "true"}` means the form must
say the same, so a client cannot lift the protection by changing the field (OSS answers such a
form 403 AccessDenied "Policy Condition failed")."""

from __future__ import annotations

import base64
import datetime as dt
import json
import mmap
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORM_LIMIT = 64 * 1024
"""Bytes of form allowed before the file's part: fields are small, a file has no business
hiding in front."""
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Policy:
    max_size: int
    forbid_overwrite: bool


def statement(expires: float, upload_dir: str, max_size: int) -> dict[str, Any]:
    moment = dt.datetime.fromtimestamp(expires, dt.UTC)
    return {
        "expiration": moment.strftime(_TIME)[:-4] + "Z",  # milliseconds, as OSS writes it
        "conditions": [
            ["content-length-range", 0, max_size],
            ["starts-with", "$key", upload_dir + "/"],
            {"x-oss-object-acl": "private"},
            {"x-oss-forbid-overwrite": "true"},
        ],
    }


def judge(statement: dict[str, Any], fields: dict[str, str], now: float) -> Policy | str:
    """What a decoded, authentic policy allows this form, or why it refuses it."""
    try:
        expires = dt.datetime.strptime(statement["expiration"], _TIME).replace(tzinfo=dt.UTC)
        conditions = list(statement["conditions"])
    except (KeyError, TypeError, ValueError):
        return "Invalid Policy"
    if now > expires.timestamp():
        return "Invalid according to Policy: Policy expired."
    max_size, forbid = 5 << 30, fields.get("x-oss-forbid-overwrite", "false") == "true"
    for condition in conditions:
        if isinstance(condition, dict):
            for name, wanted in condition.items():
                if fields.get(name) != wanted:
                    return _failed(["eq", f"${name}", wanted])
                if name == "x-oss-forbid-overwrite":
                    forbid = wanted == "true"
        elif condition[0] == "starts-with" and condition[1] == "$key":
            if not fields.get("key", "").startswith(condition[2]):
                return _failed(condition)
        elif condition[0] == "content-length-range":
            max_size = int(condition[2])
    return Policy(max_size, forbid)


def _failed(condition: list[Any]) -> str:
    return f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}"


def decode(policy: str) -> dict[str, Any] | None:
    try:
        decoded = json.loads(base64.b64decode(policy, validate=True))
    except (ValueError, RecursionError):
        return None
    return decoded if isinstance(decoded, dict) else None


@dataclass
class FormHead:
    """The fields before the file, and the first bytes of the file that came with them."""

    fields: dict[str, str]
    file_start: bytes
    consumed: int
    """Bytes of the body read so far: the fields, and `file_start`."""


def read_head(read: Callable[[int], bytes], boundary: bytes, length: int) -> FormHead | str:
    """Read a form up to its file's first bytes, never more than FORM_LIMIT bytes of it.
    `read(n)` gives up to n bytes (b"" at the end)."""
    buffer = b""
    while len(buffer) < min(length, FORM_LIMIT):
        chunk = read(min(FORM_LIMIT, length) - len(buffer))
        if not chunk:
            return "the form ended early"
        buffer += chunk
        head = _parse_head(buffer, b"--" + boundary)
        if head is not None:
            return FormHead(head[0], head[1], len(buffer))
    return "the form has no file within its first 64 KiB"


def _parse_head(buffer: bytes, delimiter: bytes) -> tuple[dict[str, str], bytes] | None:
    fields: dict[str, str] = {}
    position = buffer.find(delimiter)
    while position >= 0:
        head_start = position + len(delimiter)
        head_end = buffer.find(b"\r\n\r\n", head_start)
        if head_end < 0:
            return None
        head = buffer[head_start:head_end].decode("utf-8", "replace")
        name = re.search(r'name="([^"]*)"', head)
        if name and name.group(1) == "file":
            return fields, buffer[head_end + 4 :]
        following = buffer.find(b"\r\n" + delimiter, head_end + 4)
        if following < 0:
            return None
        if name:
            fields[name.group(1)] = buffer[head_end + 4 : following].decode("utf-8", "replace")
        position = following + 2
    return None


def closing_size(boundary: bytes) -> int:
    """The fewest bytes that can follow a file that is the form's last part."""
    return len(b"\r\n--" + boundary + b"--")


def cut_at_close(spool: Path, boundary: bytes) -> bool:
    """Truncate a spooled file part at the form's closing delimiter; False unless that
    delimiter is the first after the file and only a line end follows it (the file must be
    the form's last part)."""
    delimiter = b"\r\n--" + boundary
    with open(spool, "r+b") as out:
        size = out.seek(0, 2)
        if size < len(delimiter):
            return False
        with mmap.mmap(out.fileno(), 0, access=mmap.ACCESS_READ) as body:
            end = body.find(delimiter)
            tail = bytes(body[end + len(delimiter) :]) if end >= 0 else b""
        if end < 0 or tail not in (b"--", b"--\r\n"):
            return False
        out.truncate(end)
    return True
