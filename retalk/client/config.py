"""Where the client's settings come from: explicit arguments first, then the environment."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import httpx

from retalk.client.errors import InvalidSetting, MissingApiKey

DEFAULT_BASE_URL = "https://dashscope.aliyuncs.com/api/v1"
MODEL = "videoretalk"


class ApiKey:
    """The API key, kept out of every repr, str and message."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "ApiKey(****)"

    __str__ = __repr__


def load_api_key(explicit: ApiKey | str | None = None) -> ApiKey:
    """The key from the argument, else DASHSCOPE_API_KEY, else the file named by
    DASHSCOPE_API_KEY_FILE_PATH (default `~/.dashscope/api_key`). It must be one line of visible
    ASCII, as an HTTP header value must: checked here, before any request can carry it. No
    frame here holds the key in a plain local, for tracebacks that print locals."""
    if isinstance(explicit, str):
        explicit = ApiKey(explicit)
    if explicit is not None and explicit.reveal():
        return _checked(explicit, "the api_key argument")
    if os.environ.get("DASHSCOPE_API_KEY", "").strip():
        return _checked(ApiKey(os.environ["DASHSCOPE_API_KEY"]), "DASHSCOPE_API_KEY")
    path = Path(
        os.environ.get("DASHSCOPE_API_KEY_FILE_PATH") or Path.home() / ".dashscope" / "api_key"
    )
    found = _read_key_file(path)
    if not found.reveal().strip():
        raise MissingApiKey(
            "no API key: set DASHSCOPE_API_KEY, or write the key to ~/.dashscope/api_key"
        )
    return _checked(found, f"the key file {path}")


_KEY_FILE_MAX = 4096
"""Bytes of a key file read at most: a key is a few dozen."""


def _read_key_file(path: Path) -> ApiKey:
    """The key file's text; empty when there is none. A pipe, a device or a folder is refused
    without reading (a pipe would wait for ever, /dev/zero never end), and at most
    `_KEY_FILE_MAX` bytes are read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return ApiKey("")
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidSetting(f"the key file {path} is not a regular file")
        key = ApiKey(os.read(fd, _KEY_FILE_MAX + 1).decode("utf-8", errors="replace"))
    except OSError:
        return ApiKey("")
    finally:
        os.close(fd)
    if len(key.reveal()) > _KEY_FILE_MAX:
        raise InvalidSetting(f"the key file {path} is larger than a key ({_KEY_FILE_MAX} bytes)")
    return key


def _checked(given: ApiKey, source: str) -> ApiKey:
    """The key without the blank lines and spaces around it, when the rest is a key; the
    message says what is wrong and where the key came from, never the key."""
    problem = _problem(given.reveal().strip())
    if problem:
        raise InvalidSetting(f"the API key in {source} cannot be used: {problem}")
    return ApiKey(given.reveal().strip())


def _problem(key: str) -> str | None:
    if "\n" in key or "\r" in key:
        return "it has more than one line"
    if any(not ("!" <= c <= "~") for c in key):
        return "it has a space, a control or a non-ASCII character"
    return None


def base_url(explicit: str | None = None) -> str:
    """The service's address, from the argument, else DASHSCOPE_HTTP_BASE_URL; checked to be an
    http(s) URL with a host."""
    value = (explicit or os.environ.get("DASHSCOPE_HTTP_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    source = "the url argument" if explicit else "DASHSCOPE_HTTP_BASE_URL"
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, UnicodeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise InvalidSetting(
            f"the base URL in {source} is not an http(s) URL: {value[:200]!r}: set "
            f"DASHSCOPE_HTTP_BASE_URL={DEFAULT_BASE_URL} (or your region's, with its https://)"
        )
    return value


@dataclass(frozen=True)
class Timing:
    """Timeouts, deadlines, retries, polling, and the largest result. `from_env` reads
    RETALK_POLL_INTERVAL, RETALK_RETRY_BACKOFF, RETALK_DEADLINE and RETALK_TRANSFER_DEADLINE, so
    that tests and impatient users can make them short."""

    connect: float = 10.0
    """Seconds to connect."""
    read: float = 60.0
    """Seconds to wait for an answer's next bytes."""
    write: float = 60.0
    """Seconds for each chunk of an upload to leave."""
    retries: int = 4
    """Retries of a read or an upload after 429, 5xx or a failed connection."""
    backoff: float = 0.5
    """The first retry's delay; each next one doubles, with jitter."""
    backoff_cap: float = 8.0
    poll_interval: float = 1.0
    """The first wait between two queries of a task; it grows to `poll_cap`."""
    poll_cap: float = 15.0
    deadline: float = 120.0
    """Seconds one call (a query, a submit, a policy) may take in all, retries included: a
    server that sends a byte now and then cannot hold it for ever."""
    transfer_deadline: float = 3600.0
    """The same for an upload or a download, and all its retries and resumes."""
    max_result_bytes: int = 2 * 1024**3
    """The most a result download may hold: past it (or past the length it announced) the
    download stops with `InvalidAnswer` and keeps nothing."""

    @classmethod
    def from_env(cls, **overrides: float | int | None) -> Timing:
        values: dict[str, float | int] = {}
        for name, env in (
            ("poll_interval", "RETALK_POLL_INTERVAL"),
            ("backoff", "RETALK_RETRY_BACKOFF"),
            ("deadline", "RETALK_DEADLINE"),
            ("transfer_deadline", "RETALK_TRANSFER_DEADLINE"),
        ):
            if os.environ.get(env):
                values[name] = float(os.environ[env])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "poll_interval" in values:
            values.setdefault("poll_cap", max(float(values["poll_interval"]), 0.0) * 15 or 15.0)
        return cls(**values)  # type: ignore[arg-type]
