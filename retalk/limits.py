"""The service's limits as frozen data: the single source of every number retalk checks.

Each value names the section of the contract (`shared/spec/videoretalk-api.md`, whose Chinese
original wins where they differ) it comes from. No other module holds a limit.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
"""The unit of the size limits. The document writes "MB" without saying which: retalk takes the
larger reading (2**20 bytes) as the hard limit, and warns (`File.NearLimit`) above the smaller
(10**6 bytes)."""

DECIMAL_MB = 1_000_000


@dataclass(frozen=True)
class Span:
    """A closed range of accepted values, with the unit it is written in."""

    low: float
    high: float
    unit: str

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        return f"{_num(self.low)} to {_num(self.high)} {self.unit}".rstrip()


@dataclass(frozen=True)
class FileLimits:
    """What the service accepts for one input role."""

    role: str
    """`video`, `audio` or `ref`: the input's name in the submit body, short."""
    field: str
    """The field of the submit body this role fills."""
    formats: tuple[str, ...]
    """The format names the service lists; also the file name endings it expects."""
    max_mb: int
    """The size limit in MB (see `MIB`)."""

    @property
    def max_bytes(self) -> int:
        return self.max_mb * MIB

    @property
    def max_bytes_decimal(self) -> int:
        return self.max_mb * DECIMAL_MB


@dataclass(frozen=True)
class VideoLimits(FileLimits):
    codecs: tuple[str, ...]
    """ffprobe's codec names of H.264 and H.265."""
    duration: Span
    fps: Span
    side: Span
    """Each displayed side, width and height alike."""


@dataclass(frozen=True)
class AudioLimits(FileLimits):
    duration: Span


@dataclass(frozen=True)
class ImageLimits(FileLimits):
    max_aspect: float
    """Long side over short side."""
    max_side: int


# "Input limits / Video" and the `input.video_url` row of the parameter table.
VIDEO = VideoLimits(
    role="video",
    field="input.video_url",
    formats=("mp4", "avi", "mov"),
    max_mb=300,
    codecs=("h264", "hevc"),
    duration=Span(2, 120, "s"),
    fps=Span(15, 60, "fps"),
    side=Span(640, 2048, "px"),
)

# "Input limits / Audio" and the `input.audio_url` row.
AUDIO = AudioLimits(
    role="audio",
    field="input.audio_url",
    formats=("wav", "mp3", "aac"),
    max_mb=30,
    duration=Span(2, 120, "s"),
)

# "Input limits / Reference image" and the `input.ref_image_url` row.
IMAGE = ImageLimits(
    role="ref",
    field="input.ref_image_url",
    formats=("jpeg", "jpg", "png", "bmp", "webp"),
    max_mb=10,
    max_aspect=2.0,
    max_side=4096,
)

BY_ROLE: dict[str, FileLimits] = {limits.role: limits for limits in (VIDEO, AUDIO, IMAGE)}

# "Boundaries the document leaves unclear": 2 s < d < 2 min in one place, 2 s <= d <= 120 s in
# another. Outside [2, 120] is an error; within this much of a bound, a warning.
DURATION_MARGIN_S = 0.05

# Not in the document: ffprobe's average frame rate of a constant-rate file can miss the nominal
# rate by a rounding step (60.004 for 60). Rates within this of a bound count as on it.
FPS_TOLERANCE = 0.005

# "Parameters": `parameters.query_face_threshold`, newer page only.
QUERY_FACE_THRESHOLD = Span(120, 200, "")
QUERY_FACE_THRESHOLD_DEFAULT = 170

# "Endpoints": the result link's life after the task ends; "Error codes": the download timeout.
RESULT_URL_LIFETIME_S = 24 * 3600
URL_DOWNLOAD_TIMEOUT_S = 60


def _num(value: float) -> str:
    return f"{value:g}"
