"""Rules every role shares, and the wording of numbers in findings."""

from __future__ import annotations

from collections.abc import Iterator

from retalk import limits
from retalk.findings import Finding, finding
from retalk.limits import FileLimits, Span
from retalk.preflight import hints
from retalk.preflight.formats import ACCEPTED
from retalk.preflight.media import Media
from retalk.units import size_text

ROLE_WORDS = {"video": "video", "audio": "audio", "ref": "reference image"}


def size(media: Media, role: FileLimits) -> Iterator[Finding]:
    if media.size > role.max_bytes:
        yield finding(
            "InvalidFile.Size",
            media.path,
            f"{media.size:,} bytes ({size_text(media.size)}), the service takes at most "
            f"{role.max_mb} MB ({role.max_bytes:,} bytes)",
            expected=f"at most {role.max_mb} MB ({role.max_bytes:,} bytes)",
            actual=f"{size_text(media.size)} ({media.size:,} bytes)",
            hint=hints.shrink(media.path, role.role),
        )
    elif media.size > role.max_bytes_decimal:
        yield finding(
            "File.NearLimit",
            media.path,
            f"{media.size:,} bytes: over {role.max_mb} MB if the service counts a MB as "
            f"1,000,000 bytes, within it if 1,048,576",
            expected=f"at most {role.max_mb} MB",
            actual=f"{media.size:,} bytes",
            hint=hints.shrink(media.path, role.role),
        )


def container(media: Media, role: FileLimits) -> Iterator[Finding]:
    """A format the role does not take, by content."""
    accepted = ACCEPTED[role.role]
    if media.container is not None and media.container.name in accepted:
        return
    if media.container is None and media.probe is None:
        return  # nothing opened it: `openable` speaks
    what = media.container.label if media.container else _ffprobe_format(media)
    takes = ", ".join(f.upper() for f in role.formats if f != "jpg")
    misnamed = media.ending in role.formats
    named = f" (named .{media.ending})" if misnamed else ""
    yield finding(
        "InvalidFile.Format",
        media.path,
        f"holds {what}{named}; the service takes {takes} for the {ROLE_WORDS[role.role]}",
        expected=takes,
        actual=what,
        hint=hints.convert(media.path, role.role),
    )


def _ffprobe_format(media: Media) -> str:
    assert media.probe is not None
    return media.probe.format_long_name or media.probe.format_name


def openable(media: Media, role: FileLimits) -> Iterator[Finding]:
    if media.open_error is None:
        return
    if media.container is not None and media.container.name not in ACCEPTED[role.role]:
        return  # the format finding says enough
    yield finding(
        "InvalidFile.Openerror",
        media.path,
        f"cannot be opened as {ROLE_WORDS[role.role]}: {media.open_error}",
        actual=media.open_error,
        hint="check that it plays; export or download it again",
    )


def damaged(media: Media, role: FileLimits) -> Iterator[Finding]:
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


def cut_short(media: Media, role: FileLimits) -> Iterator[Finding]:
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


def ending(media: Media, role: FileLimits) -> Iterator[Finding]:
    """The name's ending should say what the content is, and be one the service lists."""
    found = media.container
    if found is None or found.name not in ACCEPTED[role.role]:
        return
    if media.ending in found.endings and media.ending in role.formats:
        return
    usual = next(e for e in found.endings if e in role.formats)
    named = f"named .{media.ending}" if media.ending else "has no file name ending"
    yield finding(
        "File.ExtensionMismatch",
        media.path,
        f"{named} but holds {found.label}; the service may judge the format by name: "
        f"rename it to .{usual}",
        expected=f".{usual}",
        actual=f".{media.ending}" if media.ending else "no ending",
    )


def duration(media: Media, value: float | None, span: Span, role: str) -> Iterator[Finding]:
    if media.open_error is not None:
        return
    if value is None:
        yield finding(
            "File.Unmeasured",
            media.path,
            f"the file does not say how long it is; the service takes {span.describe()}",
            expected=span.describe(),
        )
        return
    if value not in span:
        yield finding(
            "InvalidFile.Duration",
            media.path,
            f"{seconds(value)}, the service takes {span.describe()}",
            expected=span.describe(),
            actual=seconds(value),
            hint=hints.trim(media.path, role, too_long=value > span.high, limit=span),
        )
        return
    margin = limits.DURATION_MARGIN_S
    edge = (
        span.low if value < span.low + margin else span.high if value > span.high - margin else None
    )
    if edge is not None:
        yield finding(
            "File.NearLimit",
            media.path,
            f"{seconds(value)}, within {margin * 1000:g} ms of the {edge:g} s limit: the "
            "service's document says both 'between' and 'not less/more than', so it may reject it",
            expected=span.describe(),
            actual=seconds(value),
            hint=hints.trim(media.path, role, too_long=edge == span.high, limit=span),
        )


def seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + " s"


def number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")
