"""The one place where rules are registered. A rule is a small object: its name, the codes it
can give, the roles it judges, and a pure function from a gathered `Media` and the `Policy` in
force to findings. Job rules judge the job as a whole (`job.Job`). Findings are listed in the
order of `FILE_RULES`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from retalk.findings import Finding, finding
from retalk.policy import Policy
from retalk.preflight import audio, common, image, job, lfs, speech_rules, url, video
from retalk.preflight.faces import rules as faces
from retalk.preflight.media import Media

ROLES = ("video", "audio", "ref")
UNREADABLE = "unreadable"
"""The pseudo-role of a file that could not be read at all: only its own rule judges it."""
UNKNOWN = "unknown"
"""The pseudo-role of a file neither its content nor its name gives a role."""
LFS_POINTER = "lfs-pointer"
"""The pseudo-role of a Git LFS pointer: the file is not here, only its own rule judges it."""
CHECK_FAILED = "check-failed"
"""The pseudo-role of a file whose check's worker process died (`open_error` says how)."""
URL_NOT_READ = "url-not-read"
"""The pseudo-role of a URL of which nothing could be read: the service could not download it
(`InvalidURL.*`), or it is an `oss://` URL."""
_URL = "InvalidURL.ConnectionRefused InvalidURL.Timeout"


@dataclass(frozen=True)
class Rule:
    """A rule on one file: `judge(media, policy)` gives findings of `codes` only."""

    name: str
    codes: frozenset[str]
    roles: tuple[str, ...]
    judge: Callable[[Media, Policy], Iterable[Finding]]


@dataclass(frozen=True)
class JobRule:
    """A rule on a job as a whole: `judge(job, policy)` gives findings of `codes` only."""

    name: str
    codes: frozenset[str]
    judge: Callable[[job.Job, Policy], Iterable[Finding]]


def _rule(name: str, codes: str, roles: str, judge: Callable[..., Iterable[Finding]]) -> Rule:
    return Rule(name, frozenset(codes.split()), tuple(roles.split()), judge)


def _each_role(name: str, codes: str, roles: str, judge: Callable[..., Any]) -> list[Rule]:
    """One rule per role, for the shared rules that take the role's limits."""
    return [_rule(name, codes, role, partial(judge, role=role)) for role in roles.split()]


def unreadable(media: Media, policy: Policy) -> Iterator[Finding]:
    """Nothing could be read: no such file, a folder, a pipe, no permission."""
    if media.unreadable is not None:
        yield finding("File.Unreadable", media.path, media.unreadable, actual=media.unreadable)


def check_failed(media: Media, policy: Policy) -> Iterator[Finding]:
    """The worker process checking the file died: it was not judged."""
    reason = media.open_error or "its check ended abnormally"
    message = f"not judged: {reason}; check it alone (--jobs 1) to see more"
    yield finding("File.CheckFailed", media.path, message, actual=reason)


def no_role(media: Media, policy: Policy) -> Iterator[Finding]:
    """Neither content nor name says what the file is."""
    reason = media.open_error or "it is no format ffprobe or Pillow knows"
    yield finding(
        "InvalidFile.Openerror",
        media.path,
        f"cannot be opened as video, audio or image: {reason}",
        actual=reason,
    )


_ERR, _OPEN, _NEAR = "InvalidFile.Format", "InvalidFile.Openerror", "File.NearLimit"

FILE_RULES: tuple[Rule, ...] = (
    _rule("unreadable", "File.Unreadable", UNREADABLE, unreadable),
    _rule("no-role", _OPEN, UNKNOWN, no_role),
    _rule("lfs-pointer", "File.LfsPointer", LFS_POINTER, lfs.pointer),
    _rule("check-failed", "File.CheckFailed", CHECK_FAILED, check_failed),
    _rule("url-reachable", _URL, f"{URL_NOT_READ} video audio ref", url.reachable),
    _rule("url-not-read", "URL.NotChecked", URL_NOT_READ, url.not_read),
    _rule(
        "url-read",
        "File.Unmeasured URL.ContentSkipped URL.NotDecoded",
        "video audio ref",
        url.read_notes,
    ),
    *_each_role("container", _ERR, "video audio ref", common.container),
    *_each_role("openable", _OPEN, "video audio ref", common.openable),
    *_each_role("cut-short", f"{_OPEN} File.Truncated", "video audio", common.cut_short),
    *_each_role("damaged", "File.Damaged", "video audio", common.damaged),
    _rule("has-video", _OPEN, "video", video.has_video),
    _rule("video-codec", _ERR, "video", video.codec),
    _rule("audio-codec", _ERR, "audio", audio.codec),
    *_each_role("size", f"InvalidFile.Size {_NEAR}", "video audio ref", common.size),
    _rule(
        "video-duration", f"InvalidFile.Duration {_NEAR} File.Unmeasured", "video", video.duration
    ),
    _rule(
        "audio-duration", f"InvalidFile.Duration {_NEAR} File.Unmeasured", "audio", audio.duration
    ),
    _rule("frame-rate", "InvalidFile.FPS File.Unmeasured", "video", video.frame_rate),
    _rule("resolution", "InvalidFile.Resolution", "video", video.resolution),
    _rule("image-shape", "InvalidFile.ImageSize", "ref", image.shape),
    *_each_role("ending", "File.ExtensionMismatch", "video audio ref", common.ending),
    _rule(
        "reference-match",
        "InvalidFile.FaceNotMatch Face.MatchUncertain",
        "video",
        faces.reference_match,
    ),
    _rule("image-content", "InvalidFile.Content", "ref", faces.image_content),
    _rule("no-face", "Face.None", "video", faces.no_face),
    _rule("several-faces", "Face.Several", "video", faces.several),
    _rule("turned", "Face.Turned", "video ref", faces.turned),
    _rule("small", "Face.Small", "video ref", faces.small),
    _rule("gaps", "Face.Gaps", "video", faces.gaps),
    _rule("partial-scan", "Face.Partial", "video", faces.partial),
    _rule("speech-unmeasured", "File.Unmeasured", "audio", speech_rules.unmeasured),
    _rule("no-speech", "Audio.NoSpeech", "audio", speech_rules.no_speech),
    _rule("quiet", "Audio.Quiet", "audio", speech_rules.quiet),
    _rule("noisy", "Audio.Noisy", "audio", speech_rules.noisy),
    _rule("clipped", "Audio.Clipped", "audio", speech_rules.clipped),
    _rule("silences", "Audio.Silences", "audio", speech_rules.silences),
)

JOB_RULES: tuple[JobRule, ...] = (
    JobRule("missing-input", frozenset({"InvalidParameter"}), job.missing_input),
    JobRule("parameters", frozenset({"InvalidParameter"}), job.parameters),
    JobRule("length", frozenset({"Job.Extended", "Job.Truncated"}), job.length),
    JobRule("speech-without-face", frozenset({"Job.SpeechWithoutFace"}), job.speech_without_face),
)


def rules_for(role: str) -> tuple[Rule, ...]:
    """The rules that judge a file in `role` (or a pseudo-role), in the order of their findings."""
    return _BY_ROLE[role]


_PSEUDO_ROLES = (UNREADABLE, UNKNOWN, LFS_POINTER, CHECK_FAILED, URL_NOT_READ)
_BY_ROLE: dict[str, tuple[Rule, ...]] = {
    role: tuple(r for r in FILE_RULES if role in r.roles) for role in (*ROLES, *_PSEUDO_ROLES)
}


def judge_file(media: Media, role: str, policy: Policy) -> tuple[Finding, ...]:
    """Every finding the rules of `role` give on `media` under `policy`."""
    return tuple(f for rule in rules_for(role) for f in rule.judge(media, policy))


def judge_job(inputs: job.Job, policy: Policy) -> tuple[Finding, ...]:
    """Every finding the job rules give."""
    return tuple(f for rule in JOB_RULES for f in rule.judge(inputs, policy))


def declared_codes() -> frozenset[str]:
    """Every code some rule declares."""
    codes: set[str] = set()
    every: tuple[Rule | JobRule, ...] = (*FILE_RULES, *JOB_RULES)
    for rule in every:
        codes |= rule.codes
    return frozenset(codes)


RULES_VERSION = 5  # bump when a rule's outcome changes: the result cache keys on it
