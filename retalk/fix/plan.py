"""The planner: from a gathered file to what `retalk fix` does with it, and nothing else.

A pure function of the `Media`, its role, the policy and the output's name. Its `Plan` is one of:
nothing to change (the file is copied, byte for byte), one ffmpeg command, one Pillow pass (a
reference image, `retalk.fix.image`), or a refusal with its reason. The hints of `retalk check`
are made from the same plan (`retalk.fix.hints`), so that a hint and a fix cannot disagree.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

from retalk import limits
from retalk.fix.change import Change
from retalk.limits import Span
from retalk.policy import Policy
from retalk.preflight.audio import codec_fits
from retalk.preflight.audio import duration_of as audio_duration
from retalk.preflight.common import container_taken, misnamed
from retalk.preflight.hints import shell_path, shell_quote, tool_path
from retalk.preflight.media import Media
from retalk.preflight.probe import Stream
from retalk.preflight.video import duration_of as video_duration
from retalk.preflight.video import fps_of

OUTPUT_FORMATS = {"mp4": "video", "mov": "video", "wav": "audio", "mp3": "audio"}
"""The endings `fix` writes for video and audio, with their role (images: `IMAGE_FORMATS`)."""
IMAGE_FORMATS = {"jpg": "ref", "jpeg": "ref", "png": "ref"}
"""The endings `fix` writes for a reference image."""
_DEFAULT = {"video": "mp4", "audio": "wav", "ref": "jpg"}
_BY_CONTAINER = {
    "mp4": "mp4",
    "mov": "mov",
    "wav": "wav",
    "mp3": "mp3",
    "jpeg": "jpg",
    "png": "png",
}
_LABEL = {"mp4": "MP4", "mov": "MOV", "wav": "WAV", "mp3": "MP3"}
# Audio codecs each output container carries as they are (else AAC in MP4/MOV).
_CARRIED = {
    "mp4": ("aac", "mp3", "alac", "ac3", "eac3", "opus"),
    "mov": ("aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "pcm_s16be"),
}
_PCM = ("pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_u8")
# Bits a sample of a WAV's codec holds as copied (at most: ADPCM holds about 4).
_BITS = {"pcm_s24le": 24, "pcm_s32le": 32, "pcm_f32le": 32, "pcm_f64le": 64, "pcm_s64le": 64}


@dataclass(frozen=True)
class Plan:
    """What `fix` will do with one file."""

    source: str
    """The input, as named."""
    output: str
    """The file to write."""
    role: str
    """`video`, `audio` or `ref`."""
    changes: tuple[Change, ...] = ()
    """One line per rule whose limit the output meets and the input did not."""
    argv: tuple[str, ...] | None = None
    """The ffmpeg command (program first), when one is run; None for a copy, an image pass or
    a refusal."""
    refusal: str | None = None
    """Why the file cannot be fixed, when it cannot: nothing is written then."""
    image: object | None = field(default=None, compare=False)
    """The image plan (`retalk.fix.image.ImagePlan`) of a reference image with changes."""

    @property
    def copy(self) -> bool:
        """True when the file conforms as it is: `fix` copies it, byte for byte."""
        return self.refusal is None and self.argv is None and self.image is None

    @property
    def fixed_codes(self) -> frozenset[str]:
        """The finding codes this plan answers."""
        return frozenset(c.code for c in self.changes if c.code)

    def command(self) -> str:
        """The plan as one shell line, ready to paste: the ffmpeg command, or for an image
        `retalk fix PHOTO -o OUTPUT`; empty for a copy or a refusal."""
        if self.argv is not None:
            return " ".join(shell_word(a) for a in self.argv)
        if self.image is not None:
            return f"retalk fix {shell_path(self.source)} -o {shell_path(self.output)}"
        return ""


def shell_word(word: str) -> str:
    """One argument quoted for a shell, printable (`$'…'` for a name that is not)."""
    return shell_quote(word)


def default_output(path: str, role: str, media: Media | None = None) -> str:
    """`STEM-fixed.EXT` beside the input: the ending of its content's format when `fix` writes
    that format for the role (a MOV stays a MOV), else the role's usual one (MP4, WAV, JPEG)."""
    folder, name = os.path.split(path)
    stem = os.path.splitext(name)[0] or "input"
    ending = _DEFAULT[role]
    content = media.container.name if media is not None and media.container else None
    by_content = _BY_CONTAINER.get(content or "")
    taken = OUTPUT_FORMATS if role != "ref" else IMAGE_FORMATS
    if by_content is not None and taken.get(by_content) == role:
        ending = by_content
    return os.path.join(folder, f"{stem}-fixed.{ending}")


def output_format(output: str) -> str:
    """The format an output's name asks for (`mp4`, `mov`, `wav`, `mp3`, `jpg`, `png`);
    ValueError for any other ending."""
    ending = os.path.splitext(output)[1].lower().lstrip(".")
    if ending in OUTPUT_FORMATS or ending in IMAGE_FORMATS:
        return "jpg" if ending == "jpeg" else ending
    raise ValueError(
        f"cannot write .{ending or '(no ending)'}: name the output .mp4 or .mov (video), "
        ".wav or .mp3 (audio), .jpg or .png (reference image)"
    )


def role_of_output(output: str) -> str:
    """The role an output's format is for."""
    fmt = output_format(output)
    return OUTPUT_FORMATS.get(fmt) or IMAGE_FORMATS[fmt]


def plan_fix(
    media: Media,
    role: str,
    policy: Policy,
    output: str,
    *,
    defaulted: bool = False,
) -> Plan:
    """What `fix` does to make `media`, in `role`, into a file `policy` passes at `output`.
    With `defaulted` (the output is `default_output`'s), a file that conforms in a format the
    service takes but `fix` does not write (an AVI, raw AAC) is copied under its own ending
    rather than converted. A clip under the 2 s is refused (check's hint says the same)."""
    refusal = _refusal(media, role)
    if refusal is not None:
        return Plan(media.path, output, role, refusal=refusal)
    if role == "ref":
        return _image(media, policy, output)
    plan = (_video if role == "video" else _audio)(media, policy, output)
    content = media.container.name if media.container is not None else ""
    only_format = all(c.what in ("container", "format") for c in plan.changes)
    if defaulted and plan.changes and only_format and content in _KEPT.get(role, ()):
        plan = Plan(media.path, f"{os.path.splitext(output)[0]}.{content}", role)
    return _renamed(plan, media, policy) if plan.copy else plan


def _renamed(plan: Plan, media: Media, policy: Policy) -> Plan:
    """A copy under an ending that says its content answers the input's misnamed ending
    (`File.ExtensionMismatch`): say so, as a change."""
    usual = misnamed(media, policy, plan.role)
    ending = os.path.splitext(plan.output)[1].lower().lstrip(".")
    if usual is None or media.container is None or ending not in media.container.endings:
        return plan
    before = f".{media.ending}" if media.ending else "no ending"
    return replace(plan, changes=(Change("File.ExtensionMismatch", "name", before, f".{ending}"),))


# Formats the service takes that `fix` does not write: a conforming file in one is copied.
_KEPT = {"video": ("avi",), "audio": ("aac",)}


def _refusal(media: Media, role: str) -> str | None:
    if media.unreadable is not None:
        return f"cannot read it: {media.unreadable}"
    if media.lfs is not None:
        return "it is a Git LFS pointer, not the file: fetch it first (git lfs pull)"
    if media.size == 0:
        return "the file is empty (0 bytes)"
    if media.missing_bytes:
        return f"it is cut short ({media.missing_bytes:,} bytes missing): fetch it again"
    kind = media.kind
    if media.open_error is not None:
        return f"cannot open it: {media.open_error}"
    if role == "video" and kind == "audio":
        return "this looks like audio: the roles look swapped (give it as the audio)"
    if role == "video" and kind == "image":
        return "this looks like an image: the roles look swapped (give it as the reference)"
    if role == "ref" and kind != "image":
        return f"this looks like {kind}, not a picture: cut a frame with retalk ref-frame VIDEO"
    if role == "audio" and (media.probe is None or media.probe.audio is None):
        return "it holds no audio stream"
    if role == "video" and (media.probe is None or media.probe.video is None):
        return "it holds no video stream"
    return None


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") + " s"


def _arg(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _length(
    seconds: float | None, span: Span, how: str
) -> tuple[Change | None, float | None, bool, str | None]:
    """The length change, if any: (the change, the length to make, whether it lengthens,
    a refusal). Too long or on the 120 s edge: cut to a second inside (clear of
    `File.NearLimit`). On the 2 s edge: lengthened to half a second inside (`how`: looped,
    padded); under 2 s, a refusal (the issue's "clear refusal for a clip under 2 s")."""
    if seconds is None:
        return None, None, False, None
    low, high, margin = span.low, span.high, limits.DURATION_MARGIN_S
    if seconds < low:
        return (
            None,
            None,
            False,
            (
                f"{_seconds(seconds)} long, under the {low:g} s the service takes: fix does not "
                "lengthen a clip that short; record or cut a longer one"
            ),
        )
    if seconds < low + margin:
        target = low + 0.5
        code = "InvalidFile.Duration" if seconds < low else "File.NearLimit"
        change = Change(code, "length", _seconds(seconds), f"{_seconds(target)} ({how})")
        return change, target, True, None
    if seconds > high - margin:
        target = high - 1.0
        code = "InvalidFile.Duration" if seconds > high else "File.NearLimit"
        return Change(code, "length", _seconds(seconds), _seconds(target)), target, False, None
    return None, None, False, None


def _budget_bits(policy_bytes: int, service_bytes_decimal: int) -> float:
    """Bits the output may hold: under the size limit, and under its decimal reading (which the
    service may use: `File.NearLimit`), with room for the container."""
    return min(policy_bytes, service_bytes_decimal) * 8 * limits.FIX_SIZE_SHARE


def _video(media: Media, policy: Policy, output: str) -> Plan:
    from retalk.policy import SERVICE

    assert media.probe is not None and media.probe.video is not None
    stream = media.probe.video
    span = policy.video
    seconds = video_duration(media)
    length, trim, loop, short = _length(seconds, span.duration, "looped")
    if short is not None:
        return Plan(media.path, output, "video", refusal=short)
    fmt = output_format(output)
    changes: list[Change] = []
    filters: list[str] = []
    encode = loop  # a copy cannot be looped cleanly

    codec = stream.codec_name or "unknown"
    if codec not in span.codecs:
        changes.append(Change("InvalidFile.Format", "video codec", codec, "h264"))
        encode = True

    fps, _ = fps_of(stream)
    tolerance = limits.FPS_TOLERANCE
    if fps is not None and not span.fps.low - tolerance <= fps <= span.fps.high + tolerance:
        target = span.fps.low if fps < span.fps.low else span.fps.high
        rate = Change("InvalidFile.FPS", "frame rate", f"{_arg(fps)} fps", f"{target:g} fps")
        changes.append(rate)
        filters.append(f"fps={target:g}")
        encode = True

    size = stream.display_size
    sides = None
    if size is not None and size[0] > 0 and size[1] > 0:
        sides = _sides(size, span.side.low, span.side.high)
        if sides is not None:
            (width, height), (pad_w, pad_h) = sides
            after = f"{pad_w}x{pad_h}" + (
                f" (scaled to {width}x{height}, padded)"
                if (pad_w, pad_h) != (width, height)
                else ""
            )
            changes.append(
                Change("InvalidFile.Resolution", "displayed sides", f"{size[0]}x{size[1]}", after)
            )
            filters.append(f"scale={width}:{height}")
            if (pad_w, pad_h) != (width, height):
                filters.append(f"pad={pad_w}:{pad_h}:(ow-iw)/2:(oh-ih)/2")
            filters.append("setsar=1")
            encode = True

    if length is not None:
        changes.append(length)

    out_seconds = trim if trim is not None else (seconds or 0.0)
    service = SERVICE.video
    budget = _budget_bits(span.max_bytes, service.max_bytes_decimal)
    audio = media.probe.audio
    audio_copy = audio is not None and (audio.codec_name or "") in _CARRIED[fmt]
    audio_bits = 0.0
    if audio is not None:
        audio_bits = float(
            (audio.bit_rate or limits.FIX_AUDIO_BITRATE) if audio_copy else limits.FIX_AUDIO_BITRATE
        )
    limit = min(span.max_bytes, service.max_bytes_decimal)
    over = media.size > limit
    for_size = False
    if not encode and out_seconds > 0:
        # A copy keeps the streams' bytes: re-encode only when they alone would be over.
        estimate = _copy_bytes(media, stream, audio_bits, seconds, out_seconds)
        for_size = encode = estimate * (1 + limits.FIX_COPY_OVERHEAD) > limit
    cap = None
    if encode and out_seconds > 0:
        cap = max(int((budget / out_seconds - audio_bits) / 1000), 100)
        out_size = sides[1] if sides is not None else size
        if not for_size and cap * 1000 >= _raw_bits(out_size, filters, fps):
            cap = None  # more than an uncompressed stream: the cap cannot bind
    if over or for_size:
        code = "InvalidFile.Size" if media.size > span.max_bytes or for_size else "File.NearLimit"
        after = f"at most {cap:,} kb/s of video" if cap is not None else "the streams alone"
        changes.append(Change(code, "size", f"{media.size / limits.MIB:.1f} MB", after))
    if encode and size is not None and sides is None and (size[0] % 2 or size[1] % 2):
        even = (size[0] // 2 * 2, size[1] // 2 * 2)
        filters.insert(0, f"crop={even[0]}:{even[1]}")
        changes.append(
            Change(
                "",
                "sides",
                f"{size[0]}x{size[1]}",
                f"{even[0]}x{even[1]} (cropped by a pixel: H.264 in 4:2:0 needs even sides)",
            )
        )

    in_fmt = media.container.name if media.container is not None else "unknown"
    if in_fmt != fmt:
        label = media.container.label if media.container is not None else "unknown"
        changes.append(
            Change(_format_code(media, policy, "video"), "container", label, _LABEL[fmt])
        )

    if not changes:
        return Plan(media.path, output, "video")
    if audio is not None and not audio_copy:
        # Not a rule's change (the service hears the job's audio, not this track), but a
        # change all the same: said, so that nothing is altered in silence.
        codec_name = audio.codec_name or "unknown"
        aac = f"AAC {limits.FIX_AUDIO_BITRATE // 1000} kb/s ({_LABEL[fmt]} takes no {codec_name})"
        changes.append(Change("", "sound track", codec_name, aac))

    argv: list[str] = [
        "ffmpeg",
        *(("-stream_loop", "-1") if loop else ()),
        "-i",
        tool_path(media.path),
    ]
    if trim is not None:
        argv += ["-t", _arg(trim)]
    argv += ["-map", "0:v:0", "-map", "0:a:0?"]
    if encode:
        if filters:
            argv += ["-vf", ",".join(filters)]
        argv += ["-c:v", "libx264", "-preset", "fast", "-crf", "18", "-pix_fmt", "yuv420p"]
        if cap is not None:
            argv += ["-maxrate", f"{cap}k", "-bufsize", f"{cap}k"]
    else:
        argv += ["-c:v", "copy"]
        if codec == "hevc":
            argv += ["-tag:v", "hvc1"]  # QuickTime and many players take H.265 only so tagged
    if audio is not None:
        if audio_copy:
            argv += ["-c:a", "copy"]
        else:
            argv += ["-c:a", "aac", "-b:a", f"{limits.FIX_AUDIO_BITRATE // 1000}k"]
    argv += ["-movflags", "+faststart", tool_path(output)]
    return Plan(media.path, output, "video", tuple(changes), tuple(argv))


def _format_code(media: Media, policy: Policy, role: str) -> str:
    """The code of a change of format: the rule's that fails (`InvalidFile.Format`, or a
    misnamed ending's `File.ExtensionMismatch`); none for a conversion only the output's name
    asks for."""
    if not container_taken(media, role) or (role == "audio" and not codec_fits(media)):
        return "InvalidFile.Format"
    return "File.ExtensionMismatch" if misnamed(media, policy, role) else ""


def _copy_bytes(
    media: Media, stream: Stream, audio_bits: float, seconds: float | None, out_seconds: float
) -> float:
    """The bytes a copy of the streams holds for `out_seconds`: by their bit rates, else the
    file's share."""
    assert media.probe is not None
    rate = stream.bit_rate or media.probe.bit_rate
    if rate:
        return (rate + audio_bits) * out_seconds / 8
    return media.size * out_seconds / max(seconds or out_seconds, 1e-3)


def _raw_bits(size: tuple[int, int] | None, filters: list[str], fps: float | None) -> float:
    """Bits a second of the output holds uncompressed (8-bit 4:2:0): more than any encode
    of it, so a cap above it cannot bind; infinite when the sides or the rate are unknown."""
    rate = next((float(f[4:]) for f in filters if f.startswith("fps=")), fps)
    if size is None or not rate:
        return math.inf
    return size[0] * size[1] * 12 * rate


def _sides(
    size: tuple[int, int], low: float, high: float
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The displayed sides scaled (keeping the aspect) and padded so that both fit
    [low, high]; None when they already do."""
    width, height = size
    if low <= width <= high and low <= height <= high:
        return None
    short, long = min(width, height), max(width, height)
    factor = low / short if short < low else high / long
    factor = min(factor, high / long)  # too elongated for one scale: fit the long side, pad
    scaled_w = min(max(_even(width * factor), 2), int(high))
    scaled_h = min(max(_even(height * factor), 2), int(high))
    pad_w = max(scaled_w, math.ceil(low / 2) * 2)
    pad_h = max(scaled_h, math.ceil(low / 2) * 2)
    return (scaled_w, scaled_h), (pad_w, pad_h)


def _audio(media: Media, policy: Policy, output: str) -> Plan:
    from retalk.policy import SERVICE

    assert media.probe is not None and media.probe.audio is not None
    stream: Stream = media.probe.audio
    span = policy.audio
    seconds = audio_duration(media)[0]
    length, trim, pad, short = _length(seconds, span.duration, "padded with silence")
    if short is not None:
        return Plan(media.path, output, "audio", refusal=short)
    fmt = output_format(output)
    changes: list[Change] = []
    cut: list[str] = []
    options: list[str] = []
    codec = stream.codec_name or "unknown"
    in_fmt = media.container.name if media.container is not None else "unknown"

    # Kept as it is: a file of the output's format that check passes (any codec in a WAV).
    kept = in_fmt == fmt and media.kind == "audio" and container_taken(media, "audio")
    kept = kept and codec_fits(media)
    carried = codec in _PCM if fmt == "wav" else codec == "mp3"
    encode = not kept and not carried
    if not kept:
        label = media.container.label if media.container is not None else "unknown"
        code = _format_code(media, policy, "audio")
        changes.append(Change(code, "format", f"{label} ({codec})", _LABEL[fmt]))

    if length is not None and trim is not None:
        changes.append(length)
        cut = ["-t", _arg(trim)]
    afilters = [f"apad=whole_dur={_arg(trim)}"] if pad and trim is not None else []
    encode = encode or pad
    out_seconds = trim if trim is not None else (seconds or 0.0)

    gain = _gain(media)
    if gain is not None:
        scan = media.speech
        assert scan is not None and scan.loudness is not None
        after = scan.loudness + gain
        changes.append(
            Change("Audio.Quiet", "loudness", f"{scan.loudness:.1f} LUFS", f"{after:.1f} LUFS")
        )
        afilters.append(f"volume={gain:.1f}dB")
        encode = True

    rate = stream.sample_rate or 44100
    channels = stream.channels or 1
    budget = _budget_bits(span.max_bytes, SERVICE.audio.max_bytes_decimal)
    over = media.size > min(span.max_bytes, SERVICE.audio.max_bytes_decimal)
    if fmt == "wav":
        depth = 16 if encode else _BITS.get(codec, 16)
        # Mono first, then a lower rate: only as far as the limit needs.
        new_channels, new_rate = channels, rate
        while out_seconds * new_rate * new_channels * depth > budget and (
            new_channels > 1 or new_rate > limits.FIX_LEAST_RATE
        ):
            if new_channels > 1:
                new_channels = 1
                depth = 16
            else:
                new_rate = max(limits.FIX_LEAST_RATE, new_rate // 2)
        if new_channels != channels:
            changes.append(Change("InvalidFile.Size", "channels", str(channels), "1 (mono)"))
            options += ["-ac", "1"]
            encode = True
        if new_rate != rate:
            changes.append(
                Change("InvalidFile.Size", "sample rate", f"{rate} Hz", f"{new_rate} Hz")
            )
            options += ["-ar", str(new_rate)]
            encode = True
    if over and not any(c.code == "InvalidFile.Size" for c in changes):
        code = "InvalidFile.Size" if media.size > span.max_bytes else "File.NearLimit"
        changes.append(
            Change(code, "size", f"{media.size / limits.MIB:.1f} MB", "the audio stream alone")
        )

    if not changes:
        return Plan(media.path, output, "audio")
    if afilters:
        options = ["-af", ",".join(afilters), *options]
    argv = ["ffmpeg", "-i", tool_path(media.path), *cut, "-map", "0:a:0", *options]
    if fmt == "wav":
        argv += ["-c:a", "pcm_s16le" if encode else "copy"]
    else:
        argv += ["-c:a", "libmp3lame", "-q:a", "2"] if encode else ["-c:a", "copy"]
    argv += ["-map_metadata", "-1", tool_path(output)]
    return Plan(media.path, output, "audio", tuple(changes), tuple(argv))


def _gain(media: Media) -> float | None:
    """The one gain (dB) that brings quiet speech to a spoken-word loudness, measured on the
    speech scan, held under the true-peak ceiling; None when the speech is loud enough, or was
    not measured (no `Audio.Quiet`)."""
    scan = media.speech
    if scan is None or scan.loudness is None:
        return None
    least = min(limits.SPEECH_MIN_S, scan.duration / 2)
    if scan.speech_seconds < least or scan.speech_share < limits.SPEECH_MIN_SHARE:
        return None  # no speech to bring up: `Audio.NoSpeech` speaks
    if scan.loudness >= limits.QUIET_LUFS:
        return None
    gain = limits.FIX_LOUDNESS_LUFS - scan.loudness
    if scan.true_peak is not None:
        gain = min(gain, limits.FIX_TRUE_PEAK_DBFS - scan.true_peak)
    return gain if gain > 0 else None


def _image(media: Media, policy: Policy, output: str) -> Plan:
    from retalk.fix.image import plan_image

    fmt = output_format(output)
    planned = plan_image(media, policy, output_format=fmt)
    if planned.refusal is not None:
        return Plan(media.path, output, "ref", refusal=planned.refusal)
    changes = tuple(planned.changes)
    if not changes:
        return Plan(media.path, output, "ref")
    return Plan(media.path, output, "ref", changes, image=planned)
