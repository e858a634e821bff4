"""The face rules: pure functions from a gathered file's `FaceScan` to findings."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import TYPE_CHECKING

from retalk import limits
from retalk.findings import Finding, finding
from retalk.policy import Policy
from retalk.preflight.media import Media

if TYPE_CHECKING:
    from retalk.preflight.faces.scan import FaceScan

_REF_HINT = (
    "give --ref with a photo of the speaker's face (`retalk ref-frame` cuts one from a video)"
)


def _scan(media: Media) -> FaceScan | None:
    return media.faces


def no_face(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = _scan(media)
    if scan is None or not scan.frames or scan.any_face:
        return
    looked = len(scan.timeline) or len(scan.frames)
    yield finding(
        "Face.None",
        media.path,
        f"no face in any of {looked} frames looked at over {_s(scan.duration)}: "
        "the service will return the video unchanged",
        actual="no face",
        hint="the service wants a close, frontal shot of the speaker",
    )


def several(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = _scan(media)
    if scan is None or scan.by_reference:
        return
    crowded = [f for f in scan.frames if len(f.faces) > 1]
    first = next((f for f in scan.frames if f.faces), None)
    if not crowded or first is None:
        return
    most = max(len(f.faces) for f in crowded)
    pick = first.faces[0]
    yield finding(
        "Face.Several",
        media.path,
        f"up to {most} faces, in {len(crowded)} of {len(scan.frames)} sampled frames; the "
        f"service re-voices the largest face of the first frame with a face: at {_s(first.t)}, "
        f"the one {pick.where} ({_pct(pick.size)} of the frame)",
        actual=f"{most} faces",
        expected="one person, or a reference image",
        hint=_REF_HINT,
        at=crowded[0].t,
    )


def turned(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = _scan(media)
    if scan is None:
        return
    seen = [(f.t, f.target_face) for f in scan.frames if f.target_face is not None]
    posed = [(t, face) for t, face in seen if face.yaw is not None or face.profile]
    away = [(t, face) for t, face in posed if face.turned()]
    if not posed or len(away) / len(posed) < limits.FACE_TURNED_SHARE:
        return
    max_yaw, max_pitch = limits.FACE_MAX_YAW, limits.FACE_MAX_PITCH
    where = "" if away[0][0] is None else f", from {_s(away[0][0])}"
    share = "" if away[0][0] is None else f" in {len(away)} of {len(posed)} frames"
    measured = [face for _, face in away if face.yaw is not None]
    if measured:
        yaw = max(abs(face.yaw or 0) for face in measured)
        pitch = max(abs(face.pitch or 0) for face in measured)
        how = f"up to {yaw:.0f}° sideways, {pitch:.0f}° up or down"
        actual = f"yaw {yaw:.0f}°, pitch {pitch:.0f}°"
    else:
        how = actual = "towards profile, past what the face mesh reads"
    yield finding(
        "Face.Turned",
        media.path,
        f"the face is turned away{share} ({how}{where}); the service wants it frontal, "
        f"within about {max_yaw:.0f}°",
        actual=actual,
        expected=f"within {max_yaw:.0f}° sideways, {max_pitch:.0f}° up or down",
        hint="the result will be poor where the head is turned: choose a more frontal take",
        at=away[0][0],
    )


def small(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = _scan(media)
    if scan is None:
        return
    sizes = [f.target_face.size for f in scan.frames if f.target_face is not None]
    if not sizes:
        return
    size = statistics.median(sizes)
    if size >= limits.FACE_SMALL:
        return
    yield finding(
        "Face.Small",
        media.path,
        f"the face is {_pct(size)} of the frame's shorter side; the service wants a close "
        f"shot: at least {_pct(limits.FACE_SMALL)}",
        actual=_pct(size),
        expected=f"at least {_pct(limits.FACE_SMALL)}",
        hint=_small_hint(media, policy),
    )


def _small_hint(media: Media, policy: Policy) -> str:
    """A video's crop keeps its sides within the video's limits; a photo's, within its own."""
    if media.image is None:
        least = f"{policy.video.side.low:g} px"
        return (
            f"crop closer around the speaker (ffmpeg -vf crop=…), keeping each side {least} or more"
        )
    from retalk.preflight.hints import _io

    src, out = _io(media.path, "ref")
    rules = policy.image
    return (
        f"crop closer around the face, the long side at most {rules.max_aspect:g} times the "
        f"short and {rules.max_side} px: retalk fix {src} -o {out}"
    )


def gaps(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = _scan(media)
    if scan is None or not scan.duration or not scan.target_frames:
        return
    missing = scan.gaps()
    if not missing:
        return
    ranges = ", ".join(f"{_n(a)}-{_n(b)} s" for a, b in missing)
    within = "" if scan.spacing is None else f", times within {_n(scan.spacing / 2)} s"
    yield finding(
        "Face.Gaps",
        media.path,
        f"no target face at {ranges}{within}: the service keeps those frames as they are "
        f"({_pct(scan.coverage)} of the video shows the face)",
        actual=f"{_pct(scan.coverage)} covered",
        at=missing[0][0],
    )


def partial(media: Media, policy: Policy) -> Iterator[Finding]:
    """The scan's time budget ran out before the video's end: what follows was not seen."""
    scan = _scan(media)
    if scan is None or scan.covered is None:
        return
    from retalk.preflight.video import duration_of

    length = duration_of(media)
    whole = f" of {_s(length)}" if length else ""
    yield finding(
        "Face.Partial",
        media.path,
        f"faces were looked for over the first {_s(scan.covered)}{whole} only: the scan's "
        f"time budget ({limits.FACE_SCAN_BUDGET_S:g} s) ran out (a heavy stream to decode); "
        "the rest is not judged",
        actual=f"{_s(scan.covered)} looked at",
        hint="a lighter encode (a keyframe every second or two, a lower bitrate) is checked whole",
        at=scan.covered,
    )


def reference_match(media: Media, policy: Policy) -> Iterator[Finding]:
    scan = _scan(media)
    if scan is None or not scan.with_reference:
        return
    if scan.ref_distance is None or scan.ref_distance >= limits.FACE_OTHER_PERSON:
        best = (
            "no face to compare"
            if scan.ref_distance is None
            else (f"the nearest is {scan.ref_distance:.2f} away")
        )
        yield finding(
            "InvalidFile.FaceNotMatch",
            media.path,
            f"no face in the video matches the reference image ({best}; the same person is "
            f"under {limits.FACE_SAME_PERSON})",
            actual=best,
            expected=f"a face within {limits.FACE_SAME_PERSON} of the reference",
            hint="use a photo of a person who is in this video, or none",
        )
    elif scan.ref_distance >= limits.FACE_SAME_PERSON:
        yield finding(
            "Face.MatchUncertain",
            media.path,
            f"the reference face matches the video's best at {scan.ref_distance:.2f} (at "
            f"{_s(scan.ref_frame)}): maybe the same person, maybe not (same under "
            f"{limits.FACE_SAME_PERSON}, different from {limits.FACE_OTHER_PERSON})",
            actual=f"{scan.ref_distance:.2f}",
            expected=f"under {limits.FACE_SAME_PERSON}",
            hint="a frame of this video makes a sure reference: retalk ref-frame VIDEO -o ref.jpg",
            at=scan.ref_frame,
        )


def image_content(media: Media, policy: Policy) -> Iterator[Finding]:
    """The reference must show exactly one person."""
    scan = _scan(media)
    if scan is None or not scan.frames:
        return
    count = len(scan.frames[0].faces)
    if count == 1:
        return
    said = "no face" if count == 0 else f"{count} faces"
    yield finding(
        "InvalidFile.Content",
        media.path,
        f"{said}: the reference image must show one person's face, clearly and from the front",
        actual=said,
        expected="one face",
        hint="crop the photo to the one person (or cut a frame: retalk ref-frame VIDEO -o ref.jpg)",
    )


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _s(value: float | None) -> str:
    return "?" if value is None else f"{_n(value)} s"
