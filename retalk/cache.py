"""The result cache: a file's report stored under a key of its content, so that a second check
of unchanged files reads nothing but their bytes and probes nothing.

The key: the file's size and a SHA-256 hash of all its bytes (twice BLAKE2b's speed where the
CPU has SHA instructions: 0.3 s for 300 MiB), its name's ending (lower case:
findings depend on it), the check mode (with content or `--no-content`), retalk's version,
`RULES_VERSION` and the caller's `settings_key` (the policy in force). An entry is one small
JSON file, written atomically (a temporary file, then `os.replace`), holding the report as it
was judged under a placeholder name (`PLACEHOLDER`), so that a renamed or copied file's report
names the new path, in its hints too. A stat memo (device, inode, size, times → hash) spares
re-reading unchanged files; any change of bytes changes the size or a time, and so re-reads.

Whatever goes wrong with the cache (a corrupt entry, one of a future format, a folder that is a
file, unwritable or full) is a miss, never an error: the check goes on without it. An entry is
trusted for its findings' codes and texts and its facts, no more: only a regular file of at
most `_ENTRY_MAX` bytes is read (never a FIFO, a device or a symlink), its body must match the
SHA-256 it carries, each finding's severity is the one `retalk.codes.CODES` gives its code (an
unknown code is a miss), it names exactly one input, and the report must render in every
format; anything else is a miss.

Imports nothing heavy: a hit loads no model, no numpy, no PyAV, no Pillow and runs no ffprobe.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shlex
import stat
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retalk import __version__
from retalk.codes import CODES
from retalk.findings import Finding, Input, Report
from retalk.preflight.hints import shell_path

FORMAT = 2
"""The layout of an entry; entries of another format are misses."""
_ENTRIES = "v1"
"""The folder of the entries, under the cache folder."""
_ENTRY_MAX = 4 * 1024 * 1024
"""An entry or a stat memo larger than this is not read (a report is a few KiB)."""
_ENTRY_NAME = re.compile(r"[0-9a-f]{40}\.json")
_SHARD_NAME = re.compile(r"[0-9a-f]{2}")
_TEMPORARY_NAME = re.compile(r"\.(?:[0-9a-f]{40}\.json|stat-memo\.json)\.\d+\.tmp")

PLACEHOLDER = "@retalk-input@"
"""Stands for the file's path (without its ending) in a stored report."""

MAX_AGE_S = 30 * 24 * 3600
"""Entries unused that long are removed (looked at once a day, when an entry is written)."""
MAX_ENTRIES = 50_000
"""Past that many entries, the least recently used are removed at the daily look."""
_MEMO_MAX = 20_000
_RACY_NS = 2_000_000_000
"""A file changed this recently is not memoised: a second write in the same clock tick could
keep its size and times (as git's racily clean entries)."""

_NOT_STORED = ("File.Unreadable", "Face.Partial")
"""Findings of a report that is not stored: nothing was read, or the result depends on the
machine's speed (the face scan ran out of time)."""
UNSETTLED = "unsettled"
"""The key of a template (`retalk.preflight.many.template_of`) whose result depends on a
tool run that timed out: never stored."""


class Unusable(Exception):
    """The cache folder cannot be used (it is a file, or cannot be read); the message says why."""


def default_dir() -> Path:
    """`RETALK_CACHE_DIR` if set, else the platform's cache folder + `retalk`."""
    chosen = os.environ.get("RETALK_CACHE_DIR")
    if chosen:
        return Path(chosen)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "retalk"


def placeholder(path: str) -> str:
    """The name a report is judged under for the cache: `PLACEHOLDER` with `path`'s ending."""
    return PLACEHOLDER + _ending(path)


def _ending(path: str) -> str:
    return os.path.splitext(path)[1].lower()


@dataclass
class Stats:
    """What a cache folder holds."""

    folder: Path
    entries: int
    size: int


class ResultCache:
    """Reports by content key, in `folder` (default: `default_dir()`)."""

    def __init__(self, folder: Path | str | None = None, *, settings_key: str = "") -> None:
        self.folder = Path(folder) if folder is not None else default_dir()
        self.settings_key = settings_key
        self._entries = self.folder / _ENTRIES
        self._memo_path = self.folder / "stat-memo.json"
        self._memo: dict[str, list[Any]] | None = None
        self._memo_changed = False
        # (key, path) → the file's state when it was hashed
        self._hashed: dict[tuple[str, str], tuple[int, int, int]] = {}
        self.hits = 0
        self.stores = 0

    # -- keys

    def key(self, path: str, *, content: bool, settings: str = "") -> str | None:
        """The key of `path`'s result checked with `content` under `settings` (the policy's
        fingerprint) and this cache's `settings_key`; None when it cannot be read."""
        from retalk.preflight.source import open_regular

        try:
            fd, info = open_regular(path)
        except OSError:
            return None
        try:
            digest = self._memoised(info)
            if digest is None:
                with open(fd, "rb", closefd=False) as stream:
                    digest = hashlib.file_digest(stream, "sha256").hexdigest()
                self._memoise(info, digest)
        except OSError:
            return None
        finally:
            os.close(fd)
        parts = {
            "size": info.st_size,
            "sha256": digest,
            "ending": _ending(path),
            "content": content,
            "retalk": __version__,
            "rules": _rules_version(),
            "settings": [self.settings_key, settings],
        }
        key = json.dumps(parts, sort_keys=True)
        self._hashed[key, path] = _state(info)
        return key

    def _memoised(self, info: os.stat_result) -> str | None:
        memo = self._load_memo()
        seen = memo.get(f"{info.st_dev}:{info.st_ino}")
        if seen is not None and seen[:3] == [info.st_size, info.st_mtime_ns, info.st_ctime_ns]:
            return str(seen[3])
        return None

    def _memoise(self, info: os.stat_result, digest: str) -> None:
        if time.time_ns() - max(info.st_mtime_ns, info.st_ctime_ns) < _RACY_NS:
            return
        memo = self._load_memo()
        memo[f"{info.st_dev}:{info.st_ino}"] = [
            info.st_size, info.st_mtime_ns, info.st_ctime_ns, digest
        ]  # fmt: skip
        self._memo_changed = True

    def _load_memo(self) -> dict[str, list[Any]]:
        if self._memo is None:
            self._memo = {}
            with contextlib.suppress(OSError, ValueError, RecursionError):
                data = json.loads(read_regular(self._memo_path))
                if isinstance(data, dict) and data.get("format") == FORMAT:
                    self._memo = {
                        k: v
                        for k, v in data.get("files", {}).items()
                        if isinstance(v, list) and len(v) == 4
                    }
        return self._memo

    def flush(self) -> None:
        """Write the stat memo, when it changed (kept to its newest `_MEMO_MAX` files)."""
        if not self._memo_changed or self._memo is None:
            return
        files = dict(list(self._memo.items())[-_MEMO_MAX:])
        self._memo_changed = False
        _write_atomic(self._memo_path, {"format": FORMAT, "files": files})

    # -- entries

    def _entry(self, key: str) -> Path:
        """Where the entry of `key` lies. Raises OSError when the entries' folder is a symbolic
        link: what lies at its end is not retalk's to read, write or remove."""
        if self._entries.is_symlink():
            raise OSError(errno.ELOOP, "the cache's entries folder is a symbolic link")
        name = hashlib.blake2b(key.encode(), digest_size=20).hexdigest()
        return self._entries / name[:2] / f"{name}.json"

    def get(self, key: str, path: str) -> Report | None:
        """The report stored under `key`, naming `path`; None on a miss (or a bad entry)."""
        try:
            entry = self._entry(key)
            data = json.loads(read_regular(entry))
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                return None
            body = data["body"]
            if hashlib.sha256(body.encode()).hexdigest() != data["sha256"]:
                return None  # truncated, corrupt or edited
            stored = json.loads(body)
            if stored["key"] != key:
                return None
            report = named(stored["report"], path)
            if not _renders(report):
                return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return None
        self.hits += 1
        with contextlib.suppress(OSError):
            if time.time() - entry.stat().st_mtime > 24 * 3600:
                os.utime(entry)  # used: kept from the pruning for another 30 days
        return report

    def put(self, key: str, template: Mapping[str, Any], path: str) -> bool:
        """Store the report of `path` judged under `placeholder(path)` (see `storable`); False
        when the cache could not take it, or `path` changed since its key was made (the report
        may be of other bytes)."""
        if not storable(template):
            return False
        body = json.dumps({"key": key, "report": template}, separators=(",", ":"))
        try:
            if _state(os.stat(path)) != self._hashed.get((key, path)):
                return False
        except OSError:
            return False
        try:
            entry = self._entry(key)
        except OSError:
            return False
        digest = hashlib.sha256(body.encode()).hexdigest()
        ok = _write_atomic(entry, {"format": FORMAT, "sha256": digest, "body": body})
        if ok:
            self.stores += 1
            self._prune_daily()
        return ok

    def _prune_daily(self) -> None:
        stamp = self.folder / "last-prune"
        try:
            if time.time() - stamp.stat().st_mtime < 24 * 3600:
                return
        except FileNotFoundError:
            pass
        except OSError:
            return
        with contextlib.suppress(OSError):
            stamp.touch()
            self.prune()

    def prune(self, *, max_age_s: float = MAX_AGE_S, max_entries: int = MAX_ENTRIES) -> int:
        """Remove entries unused for `max_age_s`, and the least recently used past
        `max_entries`; how many were removed."""
        now = time.time()
        kept: list[tuple[float, Path]] = []
        removed = 0
        for entry in self._files():
            try:
                used = entry.stat().st_mtime
                if now - used > max_age_s:
                    entry.unlink()
                    removed += 1
                else:
                    kept.append((used, entry))
            except OSError:
                continue
        if len(kept) > max_entries:
            for _, entry in sorted(kept)[: len(kept) - max_entries]:
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed += 1
        for left in self._files(_TEMPORARY_NAME):  # a writer killed mid-write left it
            with contextlib.suppress(OSError):
                if now - left.stat().st_mtime > 3600:
                    left.unlink()
        return removed

    def _files(self, name: re.Pattern[str] = _ENTRY_NAME) -> Iterator[Path]:
        """The files of the entries' folder named as retalk names them (`name`), in the shard
        folders retalk makes: nothing else there is retalk's."""
        for shard in self._shards():
            with contextlib.suppress(OSError):
                yield from (
                    p for p in shard.iterdir() if name.fullmatch(p.name) and not p.is_symlink()
                )

    def _shards(self) -> list[Path]:
        if self._entries.is_symlink():
            return []  # not retalk's (see `_entry`)
        try:
            return [
                p
                for p in self._entries.iterdir()
                if _SHARD_NAME.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
            ]
        except OSError:
            return []

    def usable(self) -> None:
        """Raise `Unusable` when the cache folder cannot hold entries: it (or its entries'
        folder) is not a folder, or cannot be entered; a folder yet to be made is usable."""
        if self._entries.is_symlink():
            raise Unusable(f"{self._entries} is a symbolic link, not retalk's folder")
        for folder in (self.folder, self._entries):
            try:
                info = os.stat(folder)
            except FileNotFoundError:
                return
            except OSError as error:
                raise Unusable(f"{folder}: {error.strerror or error}") from None
            if not stat.S_ISDIR(info.st_mode):
                raise Unusable(f"{folder} is not a folder")
            if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
                raise Unusable(f"{folder}: {os.strerror(errno.EACCES)}")

    def stats(self) -> Stats:
        """The number of entries and their bytes."""
        entries = size = 0
        for entry in self._files():
            with contextlib.suppress(OSError):
                size += entry.stat().st_size
                entries += 1
        return Stats(self.folder, entries, size)

    def clear(self) -> Stats:
        """Remove every entry, the stat memo and what retalk's writers left; folders only when
        that leaves them empty (anything else in them is not retalk's, and stays). What was
        removed."""
        entries = size = 0
        for entry in self._files():
            with contextlib.suppress(OSError):
                length = entry.lstat().st_size
                entry.unlink()
                entries += 1
                size += length
        for left in self._files(_TEMPORARY_NAME):
            with contextlib.suppress(OSError):
                left.unlink()
        for shard in self._shards():
            with contextlib.suppress(OSError):
                shard.rmdir()  # only when empty
        with contextlib.suppress(OSError):
            self._entries.rmdir()
        for own in (self._memo_path, self.folder / "last-prune"):
            with contextlib.suppress(OSError):
                if not own.is_symlink() and own.is_file():
                    own.unlink()
        with contextlib.suppress(OSError):
            for left in self.folder.iterdir():
                if _TEMPORARY_NAME.fullmatch(left.name) and left.is_file():
                    left.unlink()
        self._memo = None
        return Stats(self.folder, entries, size)


def _state(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns


def _rules_version() -> int:
    from retalk.preflight.rules import RULES_VERSION

    return RULES_VERSION


def read_regular(path: Path) -> bytes:
    """The bytes of `path` if it is a regular file (no symlink followed, never waiting on a
    FIFO) of at most `_ENTRY_MAX` bytes; OSError otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        if info.st_size > _ENTRY_MAX:
            raise OSError(errno.EFBIG, "too large for a cache entry", str(path))
        with open(fd, "rb", closefd=False) as stream:
            data = stream.read(_ENTRY_MAX + 1)
    finally:
        os.close(fd)
    if len(data) > _ENTRY_MAX:
        raise OSError(errno.EFBIG, "too large for a cache entry", str(path))
    return data


def _renders(report: Report) -> bool:
    """Whether every renderer takes `report` (facts of an odd type in an entry would crash
    one): an entry is trusted only that far."""
    from retalk.report import FORMATS, RenderOptions

    try:
        for render in FORMATS.values():
            render(report, RenderOptions())
    except Exception:  # whatever an odd value makes a renderer raise: the entry is not used
        return False
    return True


def _write_atomic(path: Path, data: Mapping[str, Any]) -> bool:
    """Write JSON to `path` through a temporary file beside it and `os.replace`: a reader, a
    parallel writer or a kill mid-write never sees half an entry. False when it cannot."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(data, out, separators=(",", ":"))
        os.replace(temporary, path)
    except (OSError, ValueError, TypeError):
        with contextlib.suppress(OSError):
            temporary.unlink()
        return False
    return True


def storable(template: Mapping[str, Any]) -> bool:
    """Whether a report may be stored: something was read, and nothing in it depends on the
    machine's speed."""
    if template.get(UNSETTLED):
        return False
    return not any(f.get("code") in _NOT_STORED for f in template.get("findings", ()))


def named(template: Mapping[str, Any], path: str) -> Report:
    """The report of a template (`Report.to_dict()` of one judged under `placeholder(path)`)
    with the placeholder replaced by `path`: in paths, and in messages and hints, where it
    stands quoted for a shell and as the stem of an output name (`clip-fixed.mp4`). Each
    finding's severity is its code's (`retalk.codes.CODES`); a template not of one input, with
    an unknown code or a value of the wrong type raises ValueError, KeyError or TypeError."""
    swap = _swapper(path)
    if len(template["inputs"]) != 1 or template.get("job") is not None:
        raise ValueError("a stored report names exactly one input, and no job")
    inputs = tuple(
        Input(
            path,
            _str(i["kind"]),
            _optional(i["role"], str),
            _swapped(_of(i["facts"], dict), swap),
        )
        for i in template["inputs"]
    )
    findings = tuple(
        Finding(
            f["code"],
            CODES[_str(f["code"])].severity,
            path,
            swap(_str(f["message"])),
            _text(f.get("expected"), swap),
            _text(f.get("actual"), swap),
            _text(f.get("hint"), swap),
            _optional(f.get("at"), (int, float)),
            _of(f.get("policy_only", False), bool),
        )
        for f in _of(template["findings"], list)
    )
    return Report(inputs, findings)


def _of(value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TypeError(f"{value!r} is not of the type expected")
    return value


def _str(value: Any) -> str:
    return str(_of(value, str))


def _optional(value: Any, kind: type | tuple[type, ...]) -> Any:
    return None if value is None else _of(value, kind)


def _text(value: Any, swap: Any) -> str | None:
    return None if value is None else str(swap(_str(value)))


def _swapped(value: Any, swap: Any) -> Any:
    if isinstance(value, str):
        return swap(value)
    if isinstance(value, dict):
        return {k: _swapped(v, swap) for k, v in value.items()}
    if isinstance(value, list):
        return [_swapped(v, swap) for v in value]
    return value


def _swapper(path: str) -> Any:
    """A function replacing every form of `placeholder(path)` in a text by that of `path`."""
    stand_in = placeholder(path)
    stem = os.path.splitext(os.path.basename(path))[0] or "input"
    forms = {stand_in: path}
    forms[shlex.quote(stand_in)] = shell_path(path)  # the same key when no quoting is needed
    folder = os.path.dirname(path)  # the output is named beside the input
    for ending in {"mp4", "mov", "wav", "mp3", "jpg", "png", _ending(path).lstrip(".")}:
        fixed = os.path.join(folder, f"{stem}-fixed.{ending}")
        forms[shlex.quote(f"{PLACEHOLDER}-fixed.{ending}")] = shell_path(fixed)
    pattern = re.compile("|".join(re.escape(k) for k in sorted(forms, key=len, reverse=True)))

    def swap(text: str) -> str:
        if PLACEHOLDER not in text:
            return text
        return pattern.sub(lambda match: forms[match.group(0)], text)

    return swap
