"""The project policy as frozen data: which findings count, and limits stricter than the
service's. Picklable and hashable, so that it can be sent to worker processes; `fingerprint`
names what changes the rules' outcomes (for a result cache's key)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from retalk import limits
from retalk.codes import strict_fails
from retalk.limits import AudioLimits, FileLimits, ImageLimits, Span, VideoLimits

DEFAULT = "default"
"""The source of a value no one set: the service's limit, or retalk's default."""
COMMAND_LINE = "command line"


@dataclass(frozen=True)
class Policy:
    """What a check judges by (`video`, `audio`, `image` limits, `face_samples`), and which of
    its findings count (`select`, `ignore`, `strict`, `per_path_ignores`), with where each
    value came from. `Policy()` is the service's limits with every finding selected."""

    select: tuple[str, ...] = ()
    """Code prefixes to keep (empty: all); the longest matching prefix of `select` and
    `ignore` decides, as flake8 does."""
    ignore: tuple[str, ...] = ()
    strict: bool | tuple[str, ...] = False
    """True: warnings fail the check too; a tuple of prefixes: the warnings whose code starts
    with one of them do."""
    per_path_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(glob, prefixes) pairs: the findings of paths matching the glob (relative to `root`) whose
    code starts with one of the prefixes are dropped."""
    root: str | None = None
    """The folder `per_path_ignores` globs are relative to: the config file's."""
    video: VideoLimits = limits.VIDEO
    audio: AudioLimits = limits.AUDIO
    image: ImageLimits = limits.IMAGE
    face_samples: int = limits.FACE_SAMPLES
    """Frames of a video analysed in full."""
    config: str | None = None
    """The config file read, as shown to people; None when none was."""
    sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(key, where its value came from) for the keys not at their default."""

    def source(self, key: str) -> str:
        """Where the value of `key` (`select`, `video.max-side` …) came from."""
        return dict(self.sources).get(key, DEFAULT)

    def limits_for(self, role: str) -> FileLimits:
        """The limits of a role (`video`, `audio`, `ref`) in force."""
        return {"video": self.video, "audio": self.audio, "ref": self.image}[role]

    def fingerprint(self) -> str:
        """A short, stable hash of what changes the rules' outcomes: the limits and the number
        of sampled frames (selection is applied after judging, and is not in it)."""
        judged = {
            "video": asdict(self.video),
            "audio": asdict(self.audio),
            "image": asdict(self.image),
            "face_samples": self.face_samples,
        }
        text = json.dumps(judged, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def strict_on(self, code: str) -> bool:
        """Whether a warning of `code` fails the check."""
        return strict_fails(self.strict, code)


SERVICE = Policy()
"""The service's own limits, every finding selected: what a check without a policy uses."""


@dataclass(frozen=True)
class LimitKey:
    """A key of the policy's limit tables (`[tool.retalk.video] max-side`)."""

    table: str
    """`video`, `audio` or `ref`."""
    name: str
    bound: str
    """`min` or `max`: a policy value may only be at least, or at most, the service's."""
    unit: str
    integer: bool
    get: Callable[[Any], float]
    set: Callable[[Any, float], Any]

    @property
    def key(self) -> str:
        return f"{self.table}.{self.name}"

    def service(self) -> float:
        """The service's value."""
        return self.get(SERVICE.limits_for(self.table))


def _span(attr: str, end: str) -> tuple[Callable[[Any], float], Callable[[Any, float], Any]]:
    def get(role: Any) -> float:
        return float(getattr(getattr(role, attr), end))

    def put(role: Any, value: float) -> Any:
        span: Span = getattr(role, attr)
        bounds = {"low": span.low, "high": span.high, end: value}
        return replace(role, **{attr: Span(bounds["low"], bounds["high"], span.unit)})

    return get, put


def _plain(attr: str) -> tuple[Callable[[Any], float], Callable[[Any, float], Any]]:
    def get(role: Any) -> float:
        return float(getattr(role, attr))

    def put(role: Any, value: float) -> Any:
        return replace(role, **{attr: value})

    return get, put


def _keys() -> tuple[LimitKey, ...]:
    size = ("max-size-mb", "max", "MB", True, *_plain("max_mb"))
    duration = (
        ("min-duration", "min", "s", False, *_span("duration", "low")),
        ("max-duration", "max", "s", False, *_span("duration", "high")),
    )
    rows: list[tuple[str, tuple[Any, ...]]] = [
        ("video", size),
        *(("video", row) for row in duration),
        ("video", ("min-fps", "min", "fps", False, *_span("fps", "low"))),
        ("video", ("max-fps", "max", "fps", False, *_span("fps", "high"))),
        ("video", ("min-side", "min", "px", True, *_span("side", "low"))),
        ("video", ("max-side", "max", "px", True, *_span("side", "high"))),
        ("audio", size),
        *(("audio", row) for row in duration),
        ("ref", size),
        ("ref", ("max-aspect", "max", ":1", False, *_plain("max_aspect"))),
        ("ref", ("max-side", "max", "px", True, *_plain("max_side"))),
    ]
    return tuple(LimitKey(table, *row) for table, row in rows)


LIMIT_KEYS = _keys()
"""Every limit a policy may make stricter, in the order `retalk config` shows them."""
