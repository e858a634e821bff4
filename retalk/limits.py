"""The service's limits as frozen data: the single source of every number retalk checks.

Each value names the section of the contract (`shared/spec/videoretalk-api.md`, whose Chinese
original wins where they differ) it comes from. No other module holds a limit.
"""

from __future__ import annotations

import datetime as _dt
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

# "The platform's current public pages add": a task not finished 3 hours after its submit fails
# (InternalError.Timeout); a finished task is forgotten after 24 hours; 1 submit a second.
TASK_TIMEOUT_S = 3 * 3600
TASK_RETENTION_S = 24 * 3600
SUBMITS_PER_S = 1.0

# "The platform's current public pages add": `GET {base}/tasks` takes start_time and end_time,
# 24 hours apart at most. Their zone is not stated: the platform writes its times (submit_time,
# the console) in China Standard Time, UTC+8, and retalk sends the list's times in it.
TASK_LIST_WINDOW_S = 24 * 3600
SERVICE_TIMEZONE = _dt.timezone(_dt.timedelta(hours=8), "CST")

# "The platform's current public pages add / Billing": post-paid, 0.08 CNY per second of the
# generated video (`usage.video_duration`), from the product's Chinese pricing page (checked
# 2026-11); the account's free quota of 1,800 seconds is not taken off a forecast.
PRICE_CNY_PER_S = 0.08
"""What one second of output costs, in CNY (yuan)."""


def _num(value: float) -> str:
    return f"{value:g}"


# ---------------------------------------------------------------------------------------------
# retalk's own calibrations: not the service's numbers, but the bounds past which retalk warns
# that the result will suffer ("a close, frontal shot; avoid profile faces and faces too small").
# Each was measured on the test faces (see tests/test_faces.py).

FACE_SAMPLES = 24
"""Frames of a video analysed in full (every face, its pose and identity), spread evenly."""
FACE_SPACING_S = 1.0
"""The longest stretch between two frames looked at (analysed, or glanced at for the target's
presence), so that any gap of 1.5 s or more in the target's presence holds one."""
FACE_GAP_MIN_S = 0.75
"""Stretches without the target shorter than this are not reported (`Face.Gaps`). A gap of
1.5 s or more always shows as at least this: its frames stand for the video from halfway to
the frames around the gap, which lie outside it."""
FACE_MIN_SCORE = 0.5
"""mediapipe's detection confidence below which a box is not a face."""
FACE_SURE_SCORE = 0.85
"""A detection on which no face mesh fits counts as a face only from this confidence on (a
spacesuit's neck ring scored 0.68)."""
FACE_TURNED_SURE = 0.8
"""The same for dlib's CNN detector, which alone finds faces turned towards profile (the mesh
may not fit them): clear faces score 0.93-1.15, faces at its size limit 0.4-0.6 (see
`faces.people`)."""
FACE_SMALL = 0.10
"""A face lower than this share of the displayed frame's shorter side is small."""
FACE_MAX_YAW = 30.0
"""Degrees of head turn (left or right) past which a face is turned."""
FACE_MAX_PITCH = 25.0
"""Degrees of nodding (up or down) past which a face is turned (0 is the mean pose of 101
near-frontal faces, see `faces.pose`)."""
FACE_TURNED_SHARE = 0.4
"""The share of the target's frames turned past the bounds that makes a `Face.Turned`."""
FACE_SAME_PERSON = 0.55
"""dlib embedding distance under which two faces are the same person (measured: 0.06-0.30)."""
FACE_OTHER_PERSON = 0.65
"""Distance from which they are different people (measured: 0.66-0.87). Between the two:
uncertain, a warning rather than an error."""

# Speech (issue: "clear, loud human speech; ambient noise and background music removed").
VAD_SPEECH = 0.5
"""silero's probability from which a 32 ms window is speech."""
VAD_NOT_SPEECH = 0.15
"""... and under which it is surely not (the noise windows of the SNR)."""
VAD_JOIN_S = 0.3
"""Pauses shorter than this join two stretches of speech."""
VAD_MIN_S = 0.2
"""Shorter stretches are clicks, not speech."""
SPEECH_MIN_SHARE = 0.05
"""Less speech than this share of the audio (or than `SPEECH_MIN_S`) is `Audio.NoSpeech`."""
SPEECH_MIN_S = 0.5
QUIET_LUFS = -35.0
"""Integrated loudness under which speech is too quiet (spoken word is mastered near -16 to
-23 LUFS)."""
NOISY_SNR_DB = 20.0
"""Speech to noise under which the voice is not clear (measured: pink noise 15 dB under the
speech reads 14 dB, music 6 dB under it 12 dB, noise 35 dB under it 35 dB, clean speech 60+)."""
SNR_CEILING_DB = 60.0
"""SNRs above this (digital silence between words) are reported as this."""
CLIP_DBFS = -0.1
"""A peak this close to full scale may be clipping ..."""
CLIPPED_SHARE = 0.001
"""... and is, when this share of samples sits there."""
PAUSE_S = 0.5
"""The least length of a pause in speech worth reporting (`Audio.Silences`)."""
JOB_LENGTH_TOLERANCE_S = 0.1
"""Video and audio lengths within this are the same: no `Job.Truncated`."""

# ---------------------------------------------------------------------------------------------
# retalk's own bounds on the work a check does, whatever a file claims: time and memory follow
# these, not the file's length or picture size.

ANALYSIS_MAX_S = 125.0
"""Seconds of audio or video analysed at most: the service takes 120 s, and a longer file is
already an `InvalidFile.Duration`; its first part is analysed, not all of it."""
DECODE_FIRST_PACKETS = 48
"""Packets tried from the start of a stream for a first frame, when the content is not
analysed: a stream none of whose first packets decode is taken as one that does not decode."""
FACE_SCAN_BUDGET_S = 20.0
"""Seconds a video's face scan may look at frames: past them it stops, and says how far it came
(`Face.Partial`). A 120 s 1080p clip takes 4 to 10 s; one of 125 Mb/s with a keyframe in 10 s,
83 s."""
UNDECODABLE_SHARE = 0.5
"""A stream of which at least this share of the packets read do not decode is taken as one
that does not decode (`InvalidFile.Openerror`): random bytes in an MP4 box or after an ADTS
sync word now and then make a frame of noise, and a clip two thirds of which is noise is no
clip the service can lip-sync."""
IMAGE_DECODE_MAX_PIXELS = 24_000_000
"""Images larger than this (a 6000 x 4000 photo) are not decoded in full, whatever their
format: the service takes 4096 px on the longest side (at most 16.8 MP with its aspect limit),
and decoding a 12000 x 12000 PNG alone takes 2.2 GB. A JPEG is decoded at a fraction of its
size instead."""
VIDEO_DECODE_MAX_BYTES = 64 * 1024 * 1024
"""Video frames larger than this once decoded (by their size and pixel format: 7680 x 4320 in
8-bit 4:2:0 is 50 MB, 8192 x 8192 100 MB, in 10-bit 4:4:4 400 MB) are not decoded: the service
takes 2048 px on a side at most, and the decoder holds several such frames. Such a video is
judged by its metadata."""
TOOL_MAX_ALLOC = 80 * 1024 * 1024
"""The largest block ffmpeg and ffprobe may allocate (`-max_alloc`): one plane of a frame up
to 8192 x 8192 in 8 bits fits; a larger frame is refused rather than decoded."""
TOOL_DEMUXERS = (
    "mov", "avi", "wav", "mp3", "aac", "image2", "image2pipe", "jpeg_pipe", "png_pipe",
    "bmp_pipe", "webp_pipe", "tiff_pipe", "gif", "gif_pipe", "ico", "matroska", "flv", "asf",
    "mpegts", "mpeg", "flac", "ogg", "aiff", "amr", "caf", "tty",
)  # fmt: skip
"""The only demuxers ffprobe may use (`-format_whitelist`): those of the formats retalk names
(`formats.CONTAINERS`). ffmpeg's others include readers built on outside libraries that
`-max_alloc` does not bound: libgme inflates a gzip body whole, 1 MB of it to 1 GB, into
2.1 GB of memory."""
TOOL_TIMEOUT_S = 60.0
"""The longest an ffprobe or ffmpeg run may take before it is stopped (a file that makes
ffprobe hang, a path swapped for a pipe)."""

# ---------------------------------------------------------------------------------------------
# More of the platform's quotas, lifetimes and price ("The platform's current public pages add",
# checked 2026-11: the API reference, the pricing page, the page on asynchronous tasks).

QUERIES_PER_S = 20.0
"""Task queries an account may send a second, all of its tasks together ("Quotas")."""
UPLOAD_LIFETIME_S = 48 * 3600
"""A temporary upload's `oss://` URL lives this long ("Temporary upload of a local file")."""

# How retalk reads a URL input (`retalk check https://…`): its own bounds, not the service's.
URL_MAX_REDIRECTS = 5
"""Redirects followed before a URL counts as unreachable. The service does not say how many it
follows; common HTTP clients stop between 5 and 20: retalk follows few, as the service may."""
URL_SAMPLE_BYTES = 256 * 1024
"""The first bytes of a URL read to measure its rate (and kept: the headers are in them)."""
URL_SAMPLE_S = 2.0
"""... or the seconds spent reading them, when the server is slower than that."""
URL_BLOCK_BYTES = 64 * 1024
"""The unit of the range requests that read a URL's metadata: what is read is counted in it."""
URL_READ_MAX_BYTES = 80 * 1024 * 1024
"""Bytes of a URL read at most for its metadata (an MP4's index may take 64 MB); past them,
reading stops and the file is reported as not measured."""
URL_HEADER_READ_BYTES = 1024 * 1024
"""Bytes of a URL read at most, past its first bytes, when only its header is wanted: a file
announced over its role's size limit (refused by its length whatever else it says), an image
too large to decode over a URL."""
URL_IMAGE_DECODE_MAX_BYTES = 4 * 1024 * 1024
"""An image URL announced at most this long is decoded through ranges (every byte read);
a larger one only with `--download`: without it, its header is read, not its pixels."""

# ---------------------------------------------------------------------------------------------
# `retalk fix`: retalk's own targets for what it writes, inside the service's limits.

FIX_SIZE_SHARE = 0.85
"""The share of the size limit (its smaller, decimal reading) a fixed file is planned to fill
at most: the rest is room for the container and the encoder's rate control."""
FIX_COPY_OVERHEAD = 0.02
"""The share a remux's container may add to its streams' bytes: a copy estimated within the
size limit with this margin stays a copy (the encoder's `FIX_SIZE_SHARE` is for re-encodes)."""
FIX_AUDIO_BITRATE = 192_000
"""Bits a second of a video's audio track when it must be re-encoded (AAC)."""
FIX_LEAST_RATE = 16_000
"""The lowest sample rate a WAV is brought down to for the size limit: enough for speech."""
FIX_LOUDNESS_LUFS = -18.0
"""The integrated loudness quiet speech is brought to (spoken word: -16 to -23 LUFS)."""
FIX_TRUE_PEAK_DBFS = -1.5
"""The true peak that gain may not push speech past."""
