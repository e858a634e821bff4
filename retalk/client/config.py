"""Where the client's settings come from: explicit arguments first, then the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from retalk.client.errors import MissingApiKey

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


def load_api_key(explicit: str | None = None) -> ApiKey:
    """The key from the argument, else DASHSCOPE_API_KEY, else the file named by
    DASHSCOPE_API_KEY_FILE_PATH (default `~/.dashscope/api_key`)."""
    if explicit:
        return ApiKey(explicit.strip())
    if os.environ.get("DASHSCOPE_API_KEY", "").strip():
        return ApiKey(os.environ["DASHSCOPE_API_KEY"].strip())
    path = Path(
        os.environ.get("DASHSCOPE_API_KEY_FILE_PATH") or Path.home() / ".dashscope" / "api_key"
    )
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    if not text:
        raise MissingApiKey(
            "no API key: set DASHSCOPE_API_KEY, or write the key to ~/.dashscope/api_key"
        )
    return ApiKey(text)


def base_url(explicit: str | None = None) -> str:
    return (explicit or os.environ.get("DASHSCOPE_HTTP_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


@dataclass(frozen=True)
class Timing:
    """Timeouts, retries and polling. `from_env` reads RETALK_POLL_INTERVAL and
    RETALK_RETRY_BACKOFF, so that tests and impatient users can make them short."""

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

    @classmethod
    def from_env(cls, **overrides: float | int | None) -> Timing:
        values: dict[str, float | int] = {}
        for name, env in (
            ("poll_interval", "RETALK_POLL_INTERVAL"),
            ("backoff", "RETALK_RETRY_BACKOFF"),
        ):
            if os.environ.get(env):
                values[name] = float(os.environ[env])
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "poll_interval" in values:
            values.setdefault("poll_cap", max(float(values["poll_interval"]), 0.0) * 15 or 15.0)
        return cls(**values)  # type: ignore[arg-type]
