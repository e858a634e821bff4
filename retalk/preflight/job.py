"""The job as a whole: what the service will make of this video and this audio together.

Pure: from the gathered inputs and the `video_extension` parameter to the job's facts and
findings (the job rules, registered in `rules.py`). The document's rules: the output is cut to
the shorter input, unless `video_extension` is set and the audio is longer, when the video
plays forward, backward, forward … until the audio ends. The output's length is what
`usage.video_duration` bills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from retalk import limits
from retalk.findings import Finding, finding
from retalk.job import Parameters
from retalk.policy import Policy
from retalk.preflight import audio, video
from retalk.preflight.media import Media


@dataclass(frozen=True)
class Plan:
    """The output the service will make."""

    video: float
    audio: float
    extension: bool
    """`parameters.video_extension`."""

    @property
    def extended(self) -> bool:
        return self.extension and self.audio > self.video + limits.JOB_LENGTH_TOLERANCE_S

    @property
    def output(self) -> float:
        """Seconds of output, and of billing."""
        return self.audio if self.extended else min(self.video, self.audio)

    @property
    def passes(self) -> int:
        """Times the video plays, forward and backward, to fill the output."""
        return max(1, math.ceil(self.output / self.video - 1e-9)) if self.video else 1

    def video_time(self, t: float) -> float:
        """The moment of the video shown at `t` seconds of the output."""
        if not self.video:
            return 0.0
        turn, offset = divmod(t, self.video)
        return offset if int(turn) % 2 == 0 else self.video - offset


def plan_of(video_media: Media, audio_media: Media, extension: bool) -> Plan | None:
    video_s = video.duration_of(video_media) if video_media.open_error is None else None
    audio_s = audio.duration_of(audio_media)[0] if audio_media.open_error is None else None
    if not video_s or not audio_s:
        return None
    return Plan(video_s, audio_s, extension)


def job_facts(plan: Plan | None, parameters: Parameters) -> dict[str, Any]:
    """The report's `job`: the `parameters` as sent, and with both inputs' lengths the output,
    its bill (`billable_seconds`) and its forecast cost (`cost_cny`, at
    `limits.PRICE_CNY_PER_S`, before any free quota)."""
    facts: dict[str, Any] = {"parameters": parameters.to_wire()}
    if plan is not None:
        facts.update(
            video_duration=round(plan.video, 3),
            audio_duration=round(plan.audio, 3),
            output_duration=round(plan.output, 3),
            billable_seconds=round(plan.output, 3),
            cost_cny=cost_cny(plan.output),
            video_passes=plan.passes,
        )
    return facts


def cost_cny(seconds: float) -> float:
    """What `seconds` of output cost, in CNY, rounded to the fen."""
    return round(round(seconds, 3) * limits.PRICE_CNY_PER_S, 2)


@dataclass(frozen=True)
class Job:
    """What the job rules judge: the inputs given (gathered), and the output they make."""

    video: Media | None
    audio: Media | None
    ref: Media | None
    plan: Plan | None
    parameters: Parameters = field(default_factory=Parameters)
    """The submit's `parameters`."""


def missing_input(job: Job, policy: Policy) -> list[Finding]:
    """`input.video_url` and `input.audio_url` are required: a job without either is the
    service's `InvalidParameter`, whatever its other inputs."""
    given = next((m for m in (job.video, job.audio, job.ref) if m is not None), None)
    path = given.path if given is not None else ""
    found = []
    for media, limits_of, option in (
        (job.video, policy.video, "--video"),
        (job.audio, policy.audio, "--audio"),
    ):
        if media is None:
            found.append(
                finding(
                    "InvalidParameter",
                    path,
                    f"the job has no {limits_of.role}: the service requires {limits_of.field}",
                    expected=f"the job's {limits_of.role} ({limits_of.field})",
                    actual=f"no {limits_of.role}",
                    hint=f"give the job's {limits_of.role} with {option}",
                )
            )
    return found


def parameters(job: Job, policy: Policy) -> list[Finding]:
    """Parameters the service refuses (`InvalidParameter`): a face threshold out of range, or
    without a reference image."""
    try:
        job.parameters.check(job.ref is not None)
    except ValueError as error:
        given = next((m for m in (job.video, job.audio, job.ref) if m is not None), None)
        return [
            finding(
                "InvalidParameter",
                given.path if given is not None else "",
                f"parameters: {error}",
                expected=f"query_face_threshold {limits.QUERY_FACE_THRESHOLD.describe()}, "
                "with a reference image",
                actual=f"query_face_threshold {job.parameters.query_face_threshold}",
            )
        ]
    return []


def length(job: Job, policy: Policy) -> list[Finding]:
    """The output cut to the shorter input, or the video played back and forth."""
    if job.plan is None or job.video is None:
        return []
    return _length(job.video.path, job.plan)


def _length(path: str, plan: Plan) -> list[Finding]:
    gap = abs(plan.video - plan.audio)
    if plan.extended:
        return [
            finding(
                "Job.Extended",
                path,
                f"the video ({_s(plan.video)}) will play {_passes(plan.passes)} to last as long "
                f"as the audio ({_s(plan.audio)})",
                actual=f"{plan.passes} passes",
            )
        ]
    if gap <= limits.JOB_LENGTH_TOLERANCE_S:
        return []
    if plan.audio > plan.video:
        message = (
            f"the output will be {_s(plan.output)}, the video's length: the audio's last "
            f"{_s(gap)} (of {_s(plan.audio)}) will be cut"
        )
        hint = "add --video-extension to play the video back and forth to the audio's length"
    else:
        message = (
            f"the output will be {_s(plan.output)}, the audio's length: the video's last "
            f"{_s(gap)} (of {_s(plan.video)}) will be cut"
        )
        hint = "trim the video to the audio, or lengthen the audio"
    return [
        finding(
            "Job.Truncated",
            path,
            message,
            actual=f"video {_s(plan.video)}, audio {_s(plan.audio)}",
            expected="the same length",
            hint=hint,
            at=plan.output,
        )
    ]


def speech_without_face(job: Job, policy: Policy) -> list[Finding]:
    """Speech, within the output, over frames whose sampled neighbour shows no target face."""
    if job.plan is None or job.video is None or job.audio is None:
        return []
    video_media, plan = job.video, job.plan
    scan, speech = video_media.faces, job.audio.speech
    if scan is None or speech is None or not scan.target_frames:
        return []
    spans = scan.spans()

    looked = scan.duration or 0.0

    def face_at(t: float) -> bool:
        moment = plan.video_time(t)
        if moment > looked:
            return True  # not looked at (see `FaceScan.covered`): no claim either way
        return any(start <= moment <= end and shown for start, end, shown in spans)

    step = 0.1
    missing: list[list[float]] = []
    for start, end in speech.speech:
        t = start
        while t < min(end, plan.output):
            if not face_at(t):
                if missing and t - missing[-1][1] <= step + 1e-9:
                    missing[-1][1] = t + step
                else:
                    missing.append([t, t + step])
            t += step
    total = sum(b - a for a, b in missing)
    if total < limits.PAUSE_S:
        return []
    ranges = ", ".join(f"{_n(a)}-{_n(b)} s" for a, b in missing)
    return [
        finding(
            "Job.SpeechWithoutFace",
            video_media.path,
            f"speech at {ranges} of the output falls where the video shows no target face: "
            f"those {total:.1f} s will not be lip-synced",
            actual=f"{total:.1f} s",
            hint="cut the video so that the speaker is in frame while they speak",
            at=missing[0][0],
        )
    ]


def _passes(count: int) -> str:
    if count == 2:
        return "forward, then backward,"
    return f"forward, backward, forward … {count} passes in all,"


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _s(value: float) -> str:
    return f"{_n(value)} s"
