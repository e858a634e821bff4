"""Rules every role shares, and the wording of numbers in findings."""

from __future__ import annotations

from collections.abc import Iterator

from retalk import limits
from retalk.findings import Finding, finding
from retalk.limits import Span
from retalk.policy import SERVICE, Policy
from retalk.preflight import hints
from retalk.preflight.formats import ACCEPTED
from retalk.preflight.media import Media
from retalk.units import size_text

ROLE_WORDS = {"video": "video", "audio": "audio", "ref": "reference image"}


def size(media: Media, policy: Policy, role: str) -> Iterator[Finding]:
    """Over the size limit; or over the service's if its MB is 10**6 bytes (it does not say)."""
    mine, service = policy.limits_for(role), SERVICE.limits_for(role)
    if media.size > mine.max_bytes:
        limit = (
            f"the service takes at most {mine.max_mb} MB ({mine.max_bytes:,} bytes)"
            if media.size > service.max_bytes
            else project(f"{mine.max_mb} MB", f"up to {service.max_mb} MB", over=True)
        )
        yield finding(
            "InvalidFile.Size",
            media.path,
            f"{media.size:,} bytes ({size_text(media.size)}), {limit}",
            expected=f"at most {mine.max_mb} MB ({mine.max_bytes:,} bytes)",
            actual=f"{size_text(media.size)} ({media.size:,} bytes)",
            hint=hints.shrink(media.path, role),
            policy_only=media.size <= service.max_bytes,
        )
    elif media.size > service.max_bytes_decimal:
        yield finding(
            "File.NearLimit",
            media.path,
            f"{media.size:,} bytes: over {service.max_mb} MB if the service counts a MB as "
            f"1,000,000 bytes, within it if 1,048,576",
            expected=f"at most {service.max_mb} MB",
            actual=f"{media.size:,} bytes",
            hint=hints.shrink(media.path, role),
        )


def project(mine: str, service: str, *, over: bool) -> str:
    """The words of a limit the project's policy sets, stricter than the service's:
    `over the project's 1920 px (the service takes up to 2048 px)`."""
    return f"{'over' if over else 'under'} the project's {mine} (the service takes {service})"


def beyond(value: float, span: Span, service: Span, shown: str | None = None) -> str:
    """The limit `value` is outside of, as the message's end: the service's range, or the
    project's stricter bound when only that one is crossed."""
    if service.low <= value <= service.high:
        unit = f" {span.unit}" if span.unit else ""
        over = value > span.high
        mine = f"{number(span.high if over else span.low)}{unit}"
        edge = f"up to {number(service.high)}" if over else f"from {number(service.low)}"
        theirs = f"{edge}{unit}"
        return project(mine, theirs, over=over)
    return f"the service takes {shown or service.describe()}"


def container(media: Media, policy: Policy, role: str) -> Iterator[Finding]:
    """A format the role does not take, by content."""
    taken = policy.limits_for(role)
    if container_taken(media, role):
        return
    if media.container is None and media.probe is None:
        return  # nothing opened it: `openable` speaks
    what = media.container.label if media.container else _ffprobe_format(media)
    takes = ", ".join(f.upper() for f in taken.formats if f != "jpg")
    named_as = media.ending in taken.formats
    named = f" (named .{media.ending})" if named_as else ""
    yield finding(
        "InvalidFile.Format",
        media.path,
        f"holds {what}{named}; the service takes {takes} for the {ROLE_WORDS[role]}",
        expected=takes,
        actual=what,
        hint=_swapped(media, role) or hints.convert(media.path, role),
    )


def _swapped(media: Media, role: str) -> str | None:
    """What to say of a file whose content is another role's (a WAV given as the video)."""
    kind = media.kind
    if role == "video" and kind == "audio":
        return "this looks like audio: the roles look swapped (give it as the audio)"
    if role in ("video", "audio") and kind == "image":
        return "this looks like an image: the roles look swapped (give it as the reference)"
    if role == "ref" and kind in ("video", "audio"):
        return f"this looks like {kind}, not a picture: the roles look swapped"
    return None


def _ffprobe_format(media: Media) -> str:
    assert media.probe is not None
    return media.probe.format_long_name or media.probe.format_name


def openable(media: Media, policy: Policy, role: str) -> Iterator[Finding]:
    """Nothing of it decodes (set when the file was gathered or analysed)."""
    if media.open_error is None:
        return
    if media.container is not None and media.container.name not in ACCEPTED[role]:
        return  # the format finding says enough
    yield finding(
        "InvalidFile.Openerror",
        media.path,
        f"cannot be opened as {ROLE_WORDS[role]}: {media.open_error}",
        actual=media.open_error,
        hint="check that it plays; export or download it again",
    )


def damaged(media: Media, policy: Policy, role: str) -> Iterator[Finding]:
    """Packets that do not decode, in a stream of which others do (none at all is an
    `InvalidFile.Openerror`, set when the file was gathered or analysed)."""
    decoded = media.decoded
    if decoded is None or not decoded.failed or media.open_error is not None:
        return
    if media.missing_bytes and decoded.failed == 1:
        return  # the packet the cut ends in: the cut's own finding says it
    where = ", ".join(seconds(t) for t in decoded.failed_at[:3])
    more = " …" if decoded.failed > 3 else ""
    read = "packets read" if decoded.whole else "packets read from its start"
    yield finding(
        "File.Damaged",
        media.path,
        f"{decoded.failed} of the {decoded.packets} {decoded.kind} {read} do not decode "
        f"(at {where}{more}: {decoded.error}); the analysis judged the rest",
        actual=f"{decoded.failed} of {decoded.packets} packets",
        hint="check that it plays; export it again from the original",
    )


def cut_short(media: Media, policy: Policy, role: str) -> Iterator[Finding]:
    """Bytes missing at the end. An MP4/MOV whose index points past the end cannot be decoded
    to the end (the service's `Openerror`); a WAV, AVI or AAC stream plays up to the cut."""
    if not media.missing_bytes or media.open_error is not None:
        return
    where = f"ends {media.missing_bytes:,} bytes before its own header says"
    if media.container is not None and media.container.name in ("mp4", "mov", "3gp", "m4a"):
        yield finding(
            "InvalidFile.Openerror",
            media.path,
            f"is cut short: it {where}",
            actual=f"{media.missing_bytes:,} bytes missing",
            hint="the copy or download was interrupted: fetch the file again",
        )
    else:
        yield finding(
            "File.Truncated",
            media.path,
            f"{where}: it was probably cut short, and plays only up to the cut",
            actual=f"{media.missing_bytes:,} bytes missing",
            hint="the copy or download was interrupted: fetch the file again",
        )


def container_taken(media: Media, role: str) -> bool:
    """Whether the role takes the file's format, by content (the `container` rule's test, which
    `fix`'s planner shares)."""
    return media.container is not None and media.container.name in ACCEPTED[role]


def misnamed(media: Media, policy: Policy, role: str) -> str | None:
    """The ending a file of a taken format should have, when its name's disagrees (the
    `ending` rule's test, which `fix`'s planner shares); None when the name is right."""
    found = media.container
    formats = policy.limits_for(role).formats
    if found is None or found.name not in ACCEPTED[role]:
        return None
    if media.ending in found.endings and media.ending in formats:
        return None
    return next(e for e in found.endings if e in formats)


def ending(media: Media, policy: Policy, role: str) -> Iterator[Finding]:
    """The name's ending should say what the content is, and be one the service lists."""
    found = media.container
    usual = misnamed(media, policy, role)
    if found is None or usual is None:
        return
    named = f"named .{media.ending}" if media.ending else "has no file name ending"
    yield finding(
        "File.ExtensionMismatch",
        media.path,
        f"{named} but holds {found.label}; the service may judge the format by name: "
        f"rename it to .{usual}",
        expected=f".{usual}",
        actual=f".{media.ending}" if media.ending else "no ending",
    )


def duration(
    media: Media, value: float | None, span: Span, service: Span, role: str
) -> Iterator[Finding]:
    """Outside `span` (the policy's), or within a few ms of the service's bounds, which its
    document words two ways."""
    if media.open_error is not None:
        return
    if value is None:
        yield finding(
            "File.Unmeasured",
            media.path,
            f"the file does not say how long it is; the service takes {service.describe()}",
            expected=span.describe(),
        )
        return
    if value not in span:
        yield finding(
            "InvalidFile.Duration",
            media.path,
            f"{seconds(value)}, {beyond(value, span, service)}",
            expected=span.describe(),
            actual=seconds(value),
            hint=hints.trim(media.path, role, too_long=value > span.high, limit=span),
            policy_only=service.low <= value <= service.high,
        )
        return
    margin = limits.DURATION_MARGIN_S
    edge = (
        service.low
        if value < service.low + margin
        else service.high
        if value > service.high - margin
        else None
    )
    if edge is not None:
        yield finding(
            "File.NearLimit",
            media.path,
            f"{seconds(value)}, within {margin * 1000:g} ms of the {edge:g} s limit: the "
            "service's document says both 'between' and 'not less/more than', so it may reject it",
            expected=span.describe(),
            actual=seconds(value),
            hint=hints.trim(media.path, role, too_long=edge == service.high, limit=span),
        )


def seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + " s"


def number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
