"""Every finding code retalk can give, with its severity and a one-line meaning.

Codes of what the service would reject are the service's own (`InvalidFile.*`); retalk's own
warnings and facts have codes of their own, stable across releases. The README documents every
code here (a test keeps the two in step). `ALIASES` keeps older spellings of a code working.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How much a finding matters for the job."""

    ERROR = "error"
    """The service would reject the input."""
    WARNING = "warning"
    """The service accepts it, but the result will suffer or may be rejected."""
    INFO = "info"
    """A fact worth knowing."""


@dataclass(frozen=True)
class Code:
    name: str
    severity: Severity
    summary: str
    service: bool
    """True for the service's own error codes."""


def _table(severity: Severity, service: bool, meanings: dict[str, str]) -> list[Code]:
    return [Code(name, severity, summary, service) for name, summary in meanings.items()]


_SERVICE_ERRORS = {
    "InvalidFile.Format": "not a container, codec or image format the service takes",
    "InvalidFile.Size": "file over its size limit (300 MB video, 30 MB audio, 10 MB image)",
    "InvalidFile.Duration": "video or audio shorter than 2 s or longer than 120 s",
    "InvalidFile.FPS": "video frame rate outside 15 to 60 fps",
    "InvalidFile.Resolution": "a displayed video side outside 640 to 2048 px",
    "InvalidFile.ImageSize": "image long/short side over 2, or longest side over 4096 px",
    "InvalidFile.Openerror": "the file cannot be opened as video, audio or image",
    "InvalidFile.Content": "the reference image shows no face, or more than one",
    "InvalidFile.FaceNotMatch": "no face in the video matches the reference image",
    "InvalidParameter": "a job without a required input: input.video_url and input.audio_url",
    "InvalidURL.ConnectionRefused": "the service could not download the URL: refused, no such "
    "host, or an error answer",
    "InvalidURL.Timeout": "the service could not download the URL within 60 s",
}
_OWN_ERRORS = {
    "File.Unreadable": "no such file, a folder, not a regular file, or no permission to read it",
    "File.CheckFailed": "the check of the file ended abnormally (its worker process died)",
}
_WARNINGS = {
    "File.ExtensionMismatch": "the file name's ending disagrees with its content",
    "File.NearLimit": "a value on an ambiguous edge of a limit: the service may reject it",
    "File.Truncated": "the file ends before its header says: probably cut short",
    "File.Damaged": "some of the packets read do not decode: the analysis saw the rest",
    "File.Unmeasured": "a limit could not be checked: the file does not say the value, or "
    "its measure ran out of time",
    "File.LfsPointer": "a Git LFS pointer, not the media file: run `git lfs pull`",
    "Face.None": "no face in any sampled frame of the video",
    "Face.Several": "more than one face in the video, and no reference to choose",
    "Face.Turned": "the target's head is turned past the bounds in many frames",
    "Face.Small": "the target's face is under a tenth of the frame's shorter side",
    "Face.Partial": "the face scan ran out of time: only the video's start was looked at",
    "Face.MatchUncertain": "the reference face may or may not be the video's person",
    "Audio.NoSpeech": "(almost) no speech in the audio: silence, music or noise only",
    "Audio.Quiet": "the speech is far quieter than normal speech",
    "Audio.Noisy": "noise or music competes with the voice (low speech to noise ratio)",
    "Audio.Clipped": "a measurable share of the samples sit at full scale",
    "Job.Truncated": "the output will be cut to the shorter of video and audio",
    "Job.SpeechWithoutFace": "speech where the video shows no target face: not lip-synced",
}
_INFO = {
    "Face.Gaps": "where the video has no target face, and how much of it has",
    "Audio.Silences": "the pauses in the speech, where the service closes the mouth",
    "Job.Extended": "the video will be played back and forth to the audio's length",
    "URL.NotChecked": "an oss:// URL: the platform's storage, which cannot be read here",
    "URL.ContentSkipped": "a URL's faces and speech are analysed only with --download",
    "URL.NotDecoded": "a URL's image over 4 MB: its pixels are decoded only with --download",
}

CODES: dict[str, Code] = {
    code.name: code
    for code in (
        *_table(Severity.ERROR, True, _SERVICE_ERRORS),
        *_table(Severity.ERROR, False, _OWN_ERRORS),
        *_table(Severity.WARNING, False, _WARNINGS),
        *_table(Severity.INFO, False, _INFO),
    )
}

ALIASES: dict[str, str] = {"InvalidFile.FaceNotMach": "InvalidFile.FaceNotMatch"}
"""Older spelling → the code as retalk reports it. The service's original document spells the
face mismatch `FaceNotMach`; its current pages, and retalk, `FaceNotMatch`."""


def current(code: str) -> str:
    """`code` as retalk spells it now: an alias becomes its current code."""
    return ALIASES.get(code, code)


def widen(prefixes: Iterable[str] | str) -> tuple[str, ...]:
    """`prefixes` (one string is one prefix) with, for each alias one of them selects, the
    alias's current code: so that `--ignore InvalidFile.FaceNotMach` drops
    `InvalidFile.FaceNotMatch`."""
    given = (prefixes,) if isinstance(prefixes, str) else tuple(prefixes)
    extra = tuple(
        code for alias, code in ALIASES.items() if alias.startswith(given) and code not in given
    )
    return given + extra


NOT_STRICT = ("File.LfsPointer",)
"""Warnings that `strict = true` (and `--strict`) leave aside: a Git LFS pointer says that the
file is not here, not that it is wrong, and a checkout without LFS must not block every commit.
A strict list of prefixes that names one makes it fail."""


NEVER_DROPPED = ("File.Unreadable", "File.CheckFailed")
"""Errors no selection drops (`select`, `ignore`, per-path ignores): a file that was not read,
or whose check did not end, was not judged, and must never pass for one that was."""


def strict_fails(strict: bool | tuple[str, ...], code: str) -> bool:
    """Whether a warning of `code` fails a check under `strict` (`True`: every warning but
    `NOT_STRICT`; prefixes: those whose code starts with one; an empty prefix among them, as
    `--strict` over a policy's list: every warning but `NOT_STRICT`, and the listed ones)."""
    if isinstance(strict, bool):
        return strict and not code.startswith(NOT_STRICT)
    named = tuple(prefix for prefix in strict if prefix)
    return code.startswith(named) or ("" in strict and not code.startswith(NOT_STRICT))
