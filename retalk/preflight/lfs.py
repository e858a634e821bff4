"""Git LFS pointers: the small text file a checkout holds in place of a media file when LFS has
not fetched it (no `git lfs pull`, or `GIT_LFS_SKIP_SMUDGE`). It is not a broken file, it is a
file that is not here: a warning in a check, a sure rejection as an upload.

The format (git-lfs's spec/v1): `key value` lines, each ended by a newline, `version` first,
then the others in key order; `oid sha256:<64 hex digits>` and `size <bytes>` are required.
git-lfs reads a pointer only from a blob under 1024 bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retalk.findings import Finding, Input, finding
from retalk.units import size_text

if TYPE_CHECKING:
    from collections.abc import Iterator

    from retalk.policy import Policy
    from retalk.preflight.media import Media

MAX_BYTES = 1023
"""git-lfs takes a blob of fewer than 1024 bytes as a pointer candidate, and no larger one."""
VERSION = b"version https://git-lfs.github.com/spec/v1"
_OLD_VERSION = b"version https://hawser.github.com/spec/v1"
"""The format's name before it was renamed git-lfs; git-lfs still reads it."""
_LINE = re.compile(r"([a-z0-9.-]+) ([^\n]*)")
_OID = re.compile(r"sha256:([0-9a-f]{64})")
CONTAINER = "lfs-pointer"
"""A pointer's `container` fact: what a report tells one by."""


@dataclass(frozen=True)
class Pointer:
    """What a pointer says of the file it stands for."""

    oid: str
    """The file's SHA-256, hexadecimal."""
    size: int
    """The file's size in bytes."""

    def to_facts(self) -> dict[str, object]:
        """As `Input.facts["lfs"]`."""
        return {"oid": f"sha256:{self.oid}", "size_bytes": self.size}


def looks_like(head: bytes, size: int) -> bool:
    """Whether a file of `size` bytes starting with `head` may be a pointer (then `parse` the
    whole of it): small, and starting with a version line."""
    return size <= MAX_BYTES and head.startswith((VERSION, _OLD_VERSION))


def parse(data: bytes) -> Pointer | None:
    """The pointer in `data` (a whole file), or None when it is not one."""
    if len(data) > MAX_BYTES or not data.startswith((VERSION, _OLD_VERSION)):
        return None
    try:
        # A checkout without LFS that turns line ends to CRLF (core.autocrlf) does so to it too.
        text = data.decode("ascii").replace("\r\n", "\n")
    except UnicodeDecodeError:
        return None
    if not text.endswith("\n"):
        return None
    fields: dict[str, str] = {}
    for line in text[:-1].split("\n"):
        match = _LINE.fullmatch(line)
        if match is None or match[1] in fields:
            return None
        fields[match[1]] = match[2]
    keys = list(fields)
    if f"version {fields['version']}".encode() not in (VERSION, _OLD_VERSION):
        return None
    if keys[1:] != sorted(keys[1:]):
        return None
    oid = _OID.fullmatch(fields.get("oid", ""))
    size = fields.get("size", "")
    if oid is None or not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        return None
    return Pointer(oid[1], int(size))


def pointer(media: Media, policy: Policy) -> Iterator[Finding]:
    """The rule on a gathered pointer: a `File.LfsPointer` warning that names the real file's
    size and how to fetch it; nothing of the file itself can be judged."""
    if media.lfs is None:
        return
    message = (
        f"a Git LFS pointer, not the file: the real file ({size_text(media.lfs.size)}) is not "
        "checked out here, so it was not checked; run `git lfs pull`"
    )
    yield finding(
        "File.LfsPointer",
        media.path,
        message,
        actual=f"a {media.size}-byte LFS pointer",
        hint=_fetch(media.path),
    )


def input_of(media: Media, role: str | None) -> Input:
    """A pointer as a report's input: its own size, and what it points to."""
    assert media.lfs is not None
    facts = {"size_bytes": media.size, "container": CONTAINER, "lfs": media.lfs.to_facts()}
    return Input(media.path, "unknown", role, facts)


def _fetch(path: str) -> str:
    """The command that fetches the file. Not `--include=PATH`: that takes a path from the
    repository's top, which a path as given (absolute, or from a subfolder) often is not."""
    return "git lfs pull"
