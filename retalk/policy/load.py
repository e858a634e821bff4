"""Reading a project's policy: `[tool.retalk]` in `pyproject.toml`, or the top level of a
`.retalk.toml`, the nearest from the current folder upward (or the file `--config` names).
Every mistake in it is a `PolicyError` that names the file, the key and the value."""

from __future__ import annotations

import difflib
import math
import os
import stat
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from retalk.errors import PolicyError
from retalk.policy.model import COMMAND_LINE, LIMIT_KEYS, SERVICE, LimitKey, Policy
from retalk.policy.selection import check_prefixes

PYPROJECT = "pyproject.toml"
DOTFILE = ".retalk.toml"
_NAMES = (DOTFILE, PYPROJECT)
"""In the order they win when a folder holds both, as ruff's `.ruff.toml` wins over its
`pyproject.toml`."""

_TOP_KEYS = ("select", "ignore", "strict", "per-path-ignores", "face-samples")
_TABLES = ("video", "audio", "ref")
FACE_SAMPLES_MAX = 240
"""More frames than this would not be analysed within the scan's time budget anyway."""
MAX_CONFIG_BYTES = 1024 * 1024
"""A config file larger than this is refused, unread (a policy is a few hundred bytes); a
larger pyproject.toml is not read for `[tool.retalk]` when searching upward."""


class _Unusable(Exception):
    """A config file that cannot be read or parsed, with the words that say why (the caller
    adds the name); `content`: what is wrong is in its text, not in reaching it."""

    def __init__(self, reason: str, *, content: bool = False) -> None:
        super().__init__(reason)
        self.content = content


@dataclass(frozen=True)
class Overrides:
    """What the command line sets; None: the config's value (or the default) stands."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    strict: bool | None = None


def find_config(start: str | os.PathLike[str] | None = None) -> str | None:
    """The nearest `.retalk.toml`, or `pyproject.toml` with a `[tool.retalk]` table, from
    `start` (the current folder) upward; None when there is none. A pyproject.toml without
    the table is passed over, as ruff does."""
    folder = os.path.abspath(start or os.getcwd())
    while True:
        for name in _NAMES:
            candidate = os.path.join(folder, name)
            if not os.path.isfile(candidate):
                continue
            if name == DOTFILE or _has_table(candidate):
                return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _has_table(path: str) -> bool:
    """Whether a pyproject.toml has `[tool.retalk]`; an unreadable or broken one is not
    passed over silently: reading it says what is wrong. One over `MAX_CONFIG_BYTES` is
    passed over, unread."""
    try:
        data = _parse(path)
    except _TooLarge:
        return False
    except _Unusable:
        return True
    tool = data.get("tool")
    return isinstance(tool, dict) and "retalk" in tool


class _TooLarge(_Unusable):
    pass


def _parse(path: str) -> dict[str, Any]:
    """The TOML of a config file, read without blocking (a FIFO, a device: refused), at most
    `MAX_CONFIG_BYTES` of it; raises `_Unusable` with the reason."""
    # O_NONBLOCK: opening a FIFO nobody writes to returns at once (then fstat refuses it).
    flags = os.O_RDONLY
    for name in ("O_NONBLOCK", "O_NOCTTY", "O_CLOEXEC"):  # POSIX only: none on Windows
        flags |= getattr(os, name, 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise _Unusable("no such file") from None
    except PermissionError:
        raise _Unusable("no permission to read it") from None
    except OSError as error:
        raise _Unusable(f"cannot be read: {error.strerror or error}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise _Unusable("is a folder, not a config file")
        if not stat.S_ISREG(mode):
            raise _Unusable("not a regular file (a pipe, a device or a socket): not read")
        size = os.fstat(descriptor).st_size
        data = b"" if size > MAX_CONFIG_BYTES else _read_at_most(descriptor, MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise _Unusable(f"cannot be read: {error.strerror or error}") from None
    finally:
        os.close(descriptor)
    if size > MAX_CONFIG_BYTES or len(data) > MAX_CONFIG_BYTES:
        raise _TooLarge(
            f"{max(size, len(data)):,} bytes, over the {MAX_CONFIG_BYTES // 1024**2} MB a "
            "config file may be: not read"
        )
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise _Unusable("not valid TOML: not UTF-8 text", content=True) from None
    except tomllib.TOMLDecodeError as error:
        raise _Unusable(f"not valid TOML: {error}", content=True) from None
    except ValueError as error:  # a number past Python's digit limit for int()
        raise _Unusable(f"not readable TOML: {error}", content=True) from None
    except RecursionError:
        raise _Unusable("its arrays or tables nest too deeply to be read", content=True) from None
    except MemoryError:
        raise _Unusable("ran out of memory reading it", content=True) from None


def _read_at_most(descriptor: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = os.read(descriptor, min(65536, limit - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def load_policy(
    config: str | os.PathLike[str] | None = None,
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    strict: bool | None = None,
    search: bool = True,
) -> Policy:
    """The policy in force: the file `config` names, else (with `search`) the nearest config
    file from the current folder upward, else the service's limits; then the command line's
    `select`, `ignore` and `strict` (None: not given) over the file's. Raises `PolicyError`
    for anything wrong in them."""
    overrides = Overrides(
        None if select is None else tuple(select),
        None if ignore is None else tuple(ignore),
        strict,
    )
    if config is not None:
        path = os.fspath(config)
        policy = _from_file(path, f"--config {path}", pyproject=_is_pyproject(path))
    else:
        found = find_config() if search else None
        policy = (
            _from_file(found, _shown(found), pyproject=_is_pyproject(found)) if found else SERVICE
        )
    return _override(policy, overrides)


def _is_pyproject(path: str) -> bool:
    return os.path.basename(path) == PYPROJECT


def _shown(path: str) -> str:
    """A config file's path as people read it: relative to the current folder."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _override(policy: Policy, given: Overrides) -> Policy:
    sources = dict(policy.sources)
    changes: dict[str, Any] = {}
    for key in ("select", "ignore"):
        value = getattr(given, key)
        if value is not None:
            check_prefixes(value, f"--{key}")
            changes[key] = value
            sources[key] = COMMAND_LINE
    if given.strict is not None:
        # --strict over a list of prefixes adds every warning to it: it must not drop what the
        # list names beyond them (File.LfsPointer). "" stands for "every warning" (see
        # `codes.strict_fails`); a user's prefixes are never empty.
        listed = policy.strict if given.strict and isinstance(policy.strict, tuple) else ()
        changes["strict"] = ("", *listed) if listed else given.strict
        sources["strict"] = COMMAND_LINE
    return replace(policy, **changes, sources=tuple(sources.items()))


def _from_file(path: str, origin: str, *, pyproject: bool) -> Policy:
    shown = path if origin.startswith("--config") else _shown(path)
    named = origin if origin.startswith("--config") else shown
    try:
        data = _parse(path)
    except _Unusable as problem:
        raise PolicyError(f"{shown if problem.content else named}: {problem}") from None
    table: Any = data
    prefix = ""
    if pyproject:
        table = data.get("tool", {}).get("retalk", {}) if isinstance(data.get("tool"), dict) else {}
        prefix = "tool.retalk"
    if not isinstance(table, dict):
        raise PolicyError(f"{shown} [{prefix}]: must be a table")
    reader = _Reader(shown, prefix, origin)
    return reader.policy(table, os.path.dirname(os.path.abspath(path)))


class _Reader:
    """Turns a config table into a `Policy`, each mistake a `PolicyError` that says where."""

    def __init__(self, shown: str, prefix: str, origin: str) -> None:
        self.shown = shown
        self.prefix = prefix
        self.origin = origin

    def where(self, table: str | None = None) -> str:
        name = ".".join(p for p in (self.prefix, table) if p)
        return f"{self.shown} [{name}]" if name else self.shown

    def source(self, table: str | None = None) -> str:
        if self.origin.startswith("--config"):
            return self.origin
        return self.where(table)

    def fail(self, key: str, message: str, table: str | None = None) -> PolicyError:
        return PolicyError(f"{self.where(table)} {key}: {message}")

    def policy(self, table: Mapping[str, Any], root: str) -> Policy:
        self._known(table, (*_TOP_KEYS, *_TABLES), None)
        sources: dict[str, str] = {}
        changes: dict[str, Any] = {}
        for key in ("select", "ignore"):
            if key in table:
                changes[key] = self._prefixes(key, table[key])
                sources[key] = self.source()
        if "strict" in table:
            value = table["strict"]
            changes["strict"] = (
                value if isinstance(value, bool) else self._prefixes("strict", value, "a boolean")
            )
            sources["strict"] = self.source()
        if "per-path-ignores" in table:
            changes["per_path_ignores"] = self._per_path(table["per-path-ignores"])
            sources["per-path-ignores"] = self.source()
        if "face-samples" in table:
            changes["face_samples"] = self._samples(table["face-samples"])
            sources["face-samples"] = self.source()
        policy = replace(SERVICE, **changes)
        for name in _TABLES:
            if name in table:
                policy = self._limits(policy, name, table[name], sources)
        return replace(policy, root=root, config=self.shown, sources=tuple(sources.items()))

    def _known(self, table: Mapping[str, Any], known: Sequence[str], where: str | None) -> None:
        for key in table:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f" (known: {', '.join(known)})"
            raise PolicyError(f"{self.where(where)}: unknown key {key!r}{hint}")

    def _prefixes(self, key: str, value: Any, alternative: str = "") -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            either = f"{alternative} or " if alternative else ""
            raise self.fail(key, f"must be {either}a list of code prefixes, not {_toml(value)}")
        check_prefixes(value, f"{self.where()} {key}")
        return tuple(value)

    def _per_path(self, value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
        key = "per-path-ignores"
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table of glob = [code prefixes], not {_toml(value)}")
        pairs = []
        for glob, prefixes in value.items():
            if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
                raise self.fail(
                    f"{key} {glob!r}", f"must be a list of code prefixes, not {_toml(prefixes)}"
                )
            check_prefixes(prefixes, f"{self.where()} {key} {glob!r}")
            pairs.append((glob, tuple(prefixes)))
        return tuple(pairs)

    def _samples(self, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail("face-samples", f"must be a whole number, not {_toml(value)}")
        if not 1 <= value <= FACE_SAMPLES_MAX:
            raise self.fail(
                "face-samples", f"{value} is outside 1 to {FACE_SAMPLES_MAX} frames analysed"
            )
        return value

    def _limits(self, policy: Policy, name: str, table: Any, sources: dict[str, str]) -> Policy:
        keys = {k.name: k for k in LIMIT_KEYS if k.table == name}
        if not isinstance(table, dict):
            raise PolicyError(f"{self.where(name)}: must be a table, not {_toml(table)}")
        self._known(table, tuple(keys), name)
        role: Any = policy.limits_for(name)
        for key_name, value in table.items():
            key = keys[key_name]
            role = key.set(role, self._limit(key, value))
            sources[key.key] = self.source(name)
        self._ordered(role, name, table)
        if name == "video":
            return replace(policy, video=role)
        if name == "audio":
            return replace(policy, audio=role)
        return replace(policy, image=role)

    def _limit(self, key: LimitKey, value: Any) -> float:
        number = (int,) if key.integer else (int, float)
        if not isinstance(value, number) or isinstance(value, bool):
            kind = "a whole number" if key.integer else "a number"
            raise self.fail(key.name, f"must be {kind}, not {_toml(value)}", key.table)
        if isinstance(value, int) and abs(value) >= 10**15:  # a float of it would overflow
            digits = len(str(abs(value)))
            raise self.fail(key.name, f"must be under 10^15, not {digits} digits", key.table)
        if not math.isfinite(value):
            raise self.fail(key.name, f"must be a finite number, not {_toml(value)}", key.table)
        service = key.service()
        shown = f"{key.name} = {value}"
        if key.bound == "max" and value > service:
            raise PolicyError(
                f"{self.where(key.table)} {shown}: the service takes at most "
                f"{_num(service)}{_unit(key)}; a policy can only be stricter"
            )
        if key.bound == "min" and value < service:
            raise PolicyError(
                f"{self.where(key.table)} {shown}: the service takes at least "
                f"{_num(service)}{_unit(key)}; a policy can only be stricter"
            )
        least = 1.0 if key.bound == "max" else 0.0
        if value < least:
            raise PolicyError(f"{self.where(key.table)} {shown}: must be at least {_num(least)}")
        return int(value) if key.integer else float(value)

    def _ordered(self, role: Any, name: str, table: Mapping[str, Any]) -> None:
        """A min above its max (`min-duration = 50` with `max-duration = 40`, or above the
        service's max) is a mistake, not a policy no file can meet."""
        for attr, what in (("duration", "duration"), ("fps", "fps"), ("side", "side")):
            span = getattr(role, attr, None)
            if span is None or span.low <= span.high:
                continue
            low, high = f"min-{what}", f"max-{what}"
            said_high = (
                f"max-{what} = {table[high]}"
                if high in table
                else f"the service's {_num(span.high)} {span.unit}"
            )
            raise PolicyError(
                f"{self.where(name)} {low} = {table.get(low, _num(span.low))} is above {said_high}"
            )


def _unit(key: LimitKey) -> str:
    return key.unit if key.unit == ":1" else f" {key.unit}"


def _num(value: float) -> str:
    return f"{value:g}"


def _toml(value: Any, depth: int = 0) -> str:
    """A value as it reads in TOML, for messages (a list nested deeper than two shown as
    `[…]`)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        if depth >= 2:
            return "[…]"
        return "[" + ", ".join(_toml(v, depth + 1) for v in value) + "]"
    return str(value)
