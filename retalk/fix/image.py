"""The reference image's fix: a plan made purely from the gathered file, and one Pillow pass
that carries it out.

Everything is planned in the picture as shown (EXIF orientation applied), where the face scan's
boxes lie and where the service's limits are judged (they are the same either way round).
Only what fails changes: the format, the aspect (cut around the face), the longest side
(shrunk), the file size (a lower JPEG quality, or a smaller picture), and a face too small in
the photo (cut closer around it). The spec sets no least side for a reference image: nothing
is ever scaled up.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retalk import limits
from retalk.errors import FixRefused
from retalk.fix.change import Change
from retalk.policy import Policy
from retalk.preflight.common import misnamed
from retalk.preflight.formats import ACCEPTED
from retalk.preflight.media import Media
from retalk.units import size_text

if TYPE_CHECKING:
    from retalk.preflight.faces.scan import Face

OUTPUT_FORMATS = {"jpg": ("jpeg", "JPEG"), "png": ("png", "PNG")}
"""The output endings `plan_image` writes, with retalk's format name and Pillow's."""

_SMALL_FACE_GOAL = 2.0
"""A face too small in the photo is cut around so that it is this many times the least share
(`limits.FACE_SMALL`) of the shorter side: the scan's box of the same face differs by a few
percent from one framing to the next, and the result should not sit on the bound."""
_FACE_MARGIN = 0.25
"""Room kept around the face's box on each side, in face sizes, when the crop can give it."""
_JPEG_QUALITIES = (95, 90, 85, 80, 75, 70, 60)
"""JPEG qualities tried in turn until the file fits; below the last, the picture shrinks."""
_TURNED = (5, 6, 7, 8)
"""EXIF orientations that show the stored picture turned a quarter: width and height swap."""


@dataclass(frozen=True)
class ImagePlan:
    """What `retalk fix` does to a reference image: the changes, or why it cannot."""

    changes: tuple[Change, ...]
    """Each property changed, before → after, with the code it answers (none for a conversion
    only the output's name asks for); empty when nothing is to change (see `copy`)."""
    refusal: str | None = None
    """Why no image can be made from the input (not an image, too large to decode); None when
    one can. `apply` must not be called then."""
    face_box: tuple[float, float, float, float] | None = None
    """The face the crop was placed around (x, y, width, height in shares of the picture as
    shown, as `Face.box`); None when the crop is centred on the middle, or there is no crop."""
    crop: tuple[int, int, int, int] | None = None
    """The part of the picture kept (left, top, right, bottom) in pixels of the picture as
    shown; None when it is kept whole."""
    size: tuple[int, int] | None = None
    """The output's width and height; None with a refusal."""
    output_format: str = "jpg"
    """`jpg` or `png`: the output's format, from its name's ending."""
    max_bytes: int = limits.IMAGE.max_bytes_decimal
    """The most bytes the output may have: the size limit, read as the smaller MB (10**6 bytes)
    so that no `File.NearLimit` follows."""
    shown: tuple[int, int] | None = None
    """The input's width and height as shown (EXIF orientation applied): what `crop` is in."""
    copy: bool = False
    """The input can be copied byte for byte: nothing fails, it is already in the output's
    format, and it is a single picture (no `changes`)."""

    def apply(self, source: str, output: str) -> None:
        """Writes the fixed picture to `output` (exactly that name; the caller renames it into
        place) in one pass: open `source`, apply its EXIF orientation, take its first frame,
        make its mode right for the format (alpha flattened on white for JPEG), crop, resize
        with LANCZOS, encode at a quality that keeps it within `max_bytes`.

        Raises FixRefused when `source` cannot be read or decoded (within retalk's bounds: a
        progressive JPEG over `limits.IMAGE_DECODE_MAX_PIXELS` is not) or is no longer the
        picture planned for; ValueError when the plan is a refusal; OSError when `output`
        cannot be written."""
        if self.refusal is not None or self.size is None:
            raise ValueError(self.refusal or "no size planned")
        data = _render(self, source)
        with open(output, "wb") as stream:
            stream.write(data)


def plan_image(media: Media, policy: Policy, *, output_format: str) -> ImagePlan:
    """The plan that makes a reference image the service (and `policy`) takes from the gathered
    `media` (its `faces` when the face scan ran: the crop is cut around the target face, or the
    largest; the middle of the picture without one), written as `output_format` (`jpg` or
    `png`). Pure: reads no file."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output format {output_format!r}: not one of jpg, png")
    rules = policy.image
    name, pillow_name = OUTPUT_FORMATS[output_format]
    target_bytes = min(rules.max_bytes, rules.max_bytes_decimal)
    refused = _refusal(media, policy, output_format)
    if refused is not None:
        return ImagePlan((), refusal=refused, output_format=output_format, max_bytes=target_bytes)
    assert media.image is not None and media.container is not None
    image = media.image
    width, height = (
        (image.height, image.width) if image.orientation in _TURNED else (image.width, image.height)
    )
    changes: list[Change] = []
    if media.container.name not in ACCEPTED["ref"] or not _listed(media.container.name, policy):
        changes.append(
            Change("InvalidFile.Format", "format", media.container.label, f"{pillow_name} image")
        )
    elif media.container.name != name:
        # Taken as it is, but not in the output's format: a conversion the output's name asks
        # for, which answers a rule only when the input's own name is wrong.
        code = "File.ExtensionMismatch" if misnamed(media, policy, "ref") else ""
        changes.append(Change(code, "format", media.container.label, f"{pillow_name} image"))
    if image.frames > 1 and image.format != "MPO":  # MPO: a camera's JPEG with a preview
        changes.append(Change("InvalidFile.Format", "frames", f"{image.frames}", "1 (the first)"))

    face, others = _target(media)
    box = _face_pixels(face, width, height) if face is not None else None
    near = [_face_pixels(other, width, height) for other in others]
    window = None
    if box is not None:
        small = box[3] / min(width, height) < limits.FACE_SMALL
        if small or near:
            window = _alone(box, near, width, height, rules.max_aspect, small=small)
        if window is not None and near:
            assert face is not None
            changes.append(
                Change(
                    "InvalidFile.Content",
                    "faces",
                    f"{len(near) + 1}",
                    f"1, the largest, {face.where} (cut to {_dims(window)} around it)",
                )
            )
        if window is not None and small:
            cut_short = min(window[2] - window[0], window[3] - window[1])
            changes.append(
                Change(
                    "Face.Small",
                    "face",
                    f"{_pct(box[3] / min(width, height))} of the shorter side",
                    f"{_pct(box[3] / cut_short)} (cut to {_dims(window)} around it)",
                )
            )
    crop_w, crop_h = (window[2] - window[0], window[3] - window[1]) if window else (width, height)
    short, long = sorted((crop_w, crop_h))
    if long > short * rules.max_aspect:
        long = math.floor(short * rules.max_aspect)
        crop_w, crop_h = (long, short) if crop_w >= crop_h else (short, long)
    if max(width, height) > min(width, height) * rules.max_aspect:
        where = "around the face" if box is not None else "the middle"
        changes.append(
            Change(
                "InvalidFile.ImageSize",
                "aspect",
                f"{_ratio(width, height)}:1 ({width}x{height})",
                f"{_ratio(crop_w, crop_h)}:1 ({crop_w}x{crop_h}, {where})",
            )
        )
    crop = window
    if crop is None and (crop_w, crop_h) != (width, height):
        crop = _place(crop_w, crop_h, width, height, box)
    out_w, out_h = _fit(crop_w, crop_h, rules.max_side, rules.max_aspect)
    if (out_w, out_h) != (crop_w, crop_h):
        changes.append(
            Change(
                "InvalidFile.ImageSize",
                "longest side",
                f"{max(crop_w, crop_h)} px ({crop_w}x{crop_h})",
                f"{max(out_w, out_h)} px ({out_w}x{out_h})",
            )
        )
    if media.size > target_bytes:
        code = "InvalidFile.Size" if media.size > rules.max_bytes else "File.NearLimit"
        how = "a lower JPEG quality if need be" if name == "jpeg" else "smaller if need be"
        changes.append(
            Change(
                code,
                "file size",
                size_text(media.size),
                f"at most {target_bytes:,} bytes ({how})",
            )
        )
    return ImagePlan(
        tuple(changes),
        shown=(width, height),
        face_box=face.box if face is not None and crop is not None else None,
        crop=crop,
        size=(out_w, out_h),
        output_format=output_format,
        max_bytes=target_bytes,
        copy=not changes,
    )


def _refusal(media: Media, policy: Policy, output_format: str) -> str | None:
    formats = policy.image.formats
    if output_format not in formats and OUTPUT_FORMATS[output_format][0] not in formats:
        listed = ", ".join(formats)
        return f"the project's policy takes {listed} for the reference image, not {output_format}"
    if media.unreadable is not None:
        return f"cannot be read: {media.unreadable}"
    if media.lfs is not None:
        return "is a Git LFS pointer: the picture itself is not here (git lfs pull)"
    if media.image is None or media.container is None or media.container.kind != "image":
        what = media.container.label if media.container is not None else "no picture format"
        reason = f" ({media.open_error})" if media.open_error else ""
        return f"is not a picture that can be read: it holds {what}{reason}"
    if media.open_error is not None:
        return f"the picture does not decode: {media.open_error}"
    pixels = media.image.width * media.image.height
    if pixels > limits.IMAGE_DECODE_MAX_PIXELS and media.container.name != "jpeg":
        return (
            f"{media.image.width}x{media.image.height} is too large to decode within retalk's "
            f"bounds (at most {limits.IMAGE_DECODE_MAX_PIXELS / 1e6:g} MP); shrink it first: "
            + _shrink_command(media.path, media.image.width, media.image.height, policy)
        )
    return None


def _shrink_command(path: str, width: int, height: int, policy: Policy) -> str:
    """An ffmpeg command (which has no decoding bound) that scales the picture to the longest
    side the policy takes, beside it: what `fix` can then take."""
    from retalk.fix.plan import shell_word
    from retalk.preflight.hints import tool_path

    factor = policy.image.max_side / max(width, height)
    w, h = max(2, round(width * factor / 2) * 2), max(2, round(height * factor / 2) * 2)
    stem, ending = os.path.splitext(path)
    out = f"{stem}-fixed{ending.lower()}"  # the name the cache knows to rename
    return f"ffmpeg -i {shell_word(tool_path(path))} -vf scale={w}:{h} {shell_word(tool_path(out))}"


def _listed(name: str, policy: Policy) -> bool:
    """Whether the policy lists the format (by its name or, for JPEG, its short ending)."""
    formats = policy.image.formats
    return name in formats or (name == "jpeg" and "jpg" in formats)


def _target(media: Media) -> tuple[Face | None, tuple[Face, ...]]:
    """The face to cut around (the scan's target, else the largest face; None without one),
    and the picture's other faces."""
    scan = media.faces
    if scan is None or not scan.frames or not scan.frames[0].faces:
        return None, ()
    frame = scan.frames[0]
    index = frame.target if frame.target is not None else 0
    return frame.faces[index], frame.faces[:index] + frame.faces[index + 1 :]


_Box = tuple[float, float, float, float]
"""x, y, width, height in pixels of the picture as shown."""


def _face_pixels(face: Face, width: int, height: int) -> _Box:
    x, y, w, h = face.box
    left, top = max(0.0, x * width), max(0.0, y * height)
    right, bottom = min(float(width), (x + w) * width), min(float(height), (y + h) * height)
    return left, top, max(1.0, right - left), max(1.0, bottom - top)


def _alone(
    box: _Box, others: list[_Box], width: int, height: int, max_aspect: float, *, small: bool
) -> tuple[int, int, int, int] | None:
    """The largest window of the picture's own shape (within the aspect limit) that holds the
    face `box` with its margin and none of the `others`; with `small`, at most the size in which
    the face is `_SMALL_FACE_GOAL` times the least share of the shorter side. Centred on the
    face where the edges and the other faces allow. None when no window leaves the others out.
    """
    aspect = min(max(width, height) / min(width, height), max_aspect)
    wide = width >= height
    room = 1 + 2 * _FACE_MARGIN
    along, across = (box[2], box[3]) if wide else (box[3], box[2])
    least = max(across * room, along * room / aspect)
    most = float(min(width, height))
    if small:
        most = min(most, max(least, box[3] / (limits.FACE_SMALL * _SMALL_FACE_GOAL)))
    if least > most:
        return None
    steps = 32
    for step in range(steps + 1):
        short = most - (most - least) * step / steps
        long = min(math.floor(short * max_aspect), round(short * aspect))
        w, h = (long, round(short)) if wide else (round(short), long)
        w, h = min(w, width), min(h, height)
        found = _placed_alone(box, others, w, h, width, height)
        if found is not None:
            return found
    return None


def _placed_alone(
    box: _Box, others: list[_Box], w: int, h: int, width: int, height: int
) -> tuple[int, int, int, int] | None:
    """Where a `w` x `h` window holds the face whole and touches no other face (each with a
    tenth of its size around it): the place nearest to centred on the face, or None."""
    guard = [(x - 0.1 * fw, y - 0.1 * fh, x + 1.1 * fw, y + 1.1 * fh) for x, y, fw, fh in others]
    centred = _place(w, h, width, height, box)
    lefts = {centred[0], *(math.ceil(g[2]) for g in guard), *(math.floor(g[0]) - w for g in guard)}
    tops = {centred[1], *(math.ceil(g[3]) for g in guard), *(math.floor(g[1]) - h for g in guard)}
    best: tuple[float, tuple[int, int, int, int]] | None = None
    for left in lefts:
        for top in tops:
            window = (left, top, left + w, top + h)
            if left < 0 or top < 0 or left + w > width or top + h > height:
                continue
            if not (left <= box[0] and top <= box[1]):
                continue
            if box[0] + box[2] > left + w or box[1] + box[3] > top + h:
                continue
            if any(_overlap(window, g) for g in guard):
                continue
            off = abs(left - centred[0]) + abs(top - centred[1])
            if best is None or off < best[0]:
                best = (off, window)
    return best[1] if best is not None else None


def _overlap(a: tuple[int, int, int, int], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _dims(window: tuple[int, int, int, int]) -> str:
    return f"{window[2] - window[0]}x{window[3] - window[1]}"


def _place(w: int, h: int, width: int, height: int, box: _Box | None) -> tuple[int, int, int, int]:
    """A `w` x `h` window of the picture centred on the face (the middle without one), moved
    inside the picture where the centre is too near an edge."""
    cx, cy = (box[0] + box[2] / 2, box[1] + box[3] / 2) if box else (width / 2, height / 2)
    left = min(max(0, round(cx - w / 2)), width - w)
    top = min(max(0, round(cy - h / 2)), height - h)
    return left, top, left + w, top + h


def _fit(w: int, h: int, max_side: int, max_aspect: float) -> tuple[int, int]:
    """`w` x `h` shrunk so that the longest side is at most `max_side`, the aspect still within
    `max_aspect` after rounding."""
    scale = min(1.0, max_side / max(w, h))
    if scale >= 1.0:
        return w, h
    short, long = sorted((w, h))
    new_short = max(1, round(short * scale))
    new_long = min(max_side, max(1, round(long * scale)), math.floor(new_short * max_aspect))
    return (new_long, new_short) if w >= h else (new_short, new_long)


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def _ratio(w: int, h: int) -> str:
    """Long over short, to three decimals (2001x1000 is 2.001, over the limit of 2)."""
    return f"{max(w, h) / min(w, h):.3f}".rstrip("0").rstrip(".")


# --- the pass ----------------------------------------------------------------------------------


def _render(plan: ImagePlan, source: str) -> bytes:
    """The output's bytes; FixRefused when the source does not decode in full (a check
    decodes a JPEG at an eighth of its size, which passes some damage a full decode does not)."""
    try:
        return _rendered(plan, source)
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        raise FixRefused(f"{source}: the picture does not decode: {error}") from None


def _rendered(plan: ImagePlan, source: str) -> bytes:
    from PIL import Image, ImageOps

    from retalk.preflight.media import decodable

    assert plan.size is not None
    _, pillow_name = OUTPUT_FORMATS[plan.output_format]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning: the plan bounds the size
        with Image.open(source) as opened:
            if not decodable(opened):
                raise FixRefused(
                    f"{source}: {opened.width}x{opened.height} is too large to decode within "
                    f"retalk's bounds (a progressive or multi-scan JPEG over "
                    f"{limits.IMAGE_DECODE_MAX_PIXELS / 1e6:g} MP decodes whole); shrink it first"
                )
            assert plan.shown is not None
            crop = plan.crop or (0, 0, plan.shown[0], plan.shown[1])
            _draft(opened, plan.size, crop)
            picture = ImageOps.exif_transpose(opened)
            fx, fy = picture.width / plan.shown[0], picture.height / plan.shown[1]
            if abs(fx - fy) > 0.02 or fx > 1:
                raise FixRefused(
                    f"{source}: the picture is {picture.width}x{picture.height}, not the "
                    f"{plan.shown[0]}x{plan.shown[1]} planned for: it changed meanwhile"
                )
            picture = _mode_for(picture, pillow_name)
            box = (
                round(crop[0] * fx),
                round(crop[1] * fy),
                round(crop[2] * fx),
                round(crop[3] * fy),
            )
            part = picture.crop(box) if box != (0, 0, picture.width, picture.height) else picture
            if part.size != plan.size:
                part = part.resize(plan.size, Image.Resampling.LANCZOS)
            icc = opened.info.get("icc_profile") if part.mode == opened.mode else None
    return _encode(part, pillow_name, plan.max_bytes, icc)


def _draft(image: Any, size: tuple[int, int], crop: tuple[int, int, int, int]) -> None:
    """A JPEG is decoded at the least fraction (down to an eighth) that still gives the crop at
    least its output size: a 16000 px photo is never decoded whole."""
    if image.format not in ("JPEG", "MPO"):
        return
    scale = max(size[0] / max(1, crop[2] - crop[0]), size[1] / max(1, crop[3] - crop[1]))
    if scale < 1.0:
        wanted = (math.ceil(image.width * scale), math.ceil(image.height * scale))
        image.draft(image.mode, wanted)


def _mode_for(picture: Any, pillow_name: str) -> Any:
    """The picture in a mode the output format holds: RGB or L for JPEG (alpha flattened on
    white), and for PNG RGBA only where it is not all opaque; 16-bit and float greys to 8-bit."""
    from PIL import Image

    mode = picture.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        grey = picture.convert("F") if mode != "F" else picture
        top = max(1.0, grey.getextrema()[1])
        scale = 255.0 / (65535.0 if top > 255 else 255.0)
        return grey.point(lambda v: v * scale).convert("L")
    if mode == "1":
        return picture.convert("L")
    if mode == "P":
        picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
    elif mode in ("PA", "RGBa", "La"):
        picture = picture.convert("RGBA")
    elif mode not in ("RGB", "RGBA", "L", "LA"):
        picture = picture.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    if picture.mode in ("RGBA", "LA"):
        alpha = picture.getchannel("A")
        if alpha.getextrema()[0] == 255:
            return picture.convert(picture.mode[:-1])
        if pillow_name == "JPEG":
            flat = Image.new("RGB", picture.size, (255, 255, 255))
            flat.paste(picture.convert("RGBA"), mask=alpha)
            return flat
    return picture


def _encode(picture: Any, pillow_name: str, max_bytes: int, icc: bytes | None) -> bytes:
    """The picture encoded within `max_bytes`: JPEG at the best quality of `_JPEG_QUALITIES`
    that fits, PNG as it is; past that, shrunk by the square root of the excess and tried
    again."""
    from PIL import Image

    extra: dict[str, Any] = {"icc_profile": icc} if icc else {}
    while True:
        qualities = _JPEG_QUALITIES if pillow_name == "JPEG" else (0,)
        for quality in qualities:
            buffer = io.BytesIO()
            if pillow_name == "JPEG":
                picture.save(buffer, "JPEG", quality=quality, optimize=True, **extra)
            else:
                picture.save(buffer, "PNG", **extra)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue()
        shrink = math.sqrt(max_bytes / buffer.tell()) * 0.95
        picture = picture.resize(_shrunk(picture.size, shrink), Image.Resampling.LANCZOS)


def _shrunk(size: tuple[int, int], factor: float) -> tuple[int, int]:
    """`size` times `factor`, the shorter side rounded up: the aspect never grows."""
    (short, long), wide = sorted(size), size[0] >= size[1]
    new_long = max(1, int(long * factor))
    new_short = min(short, max(1, math.ceil(new_long * short / long)))
    return (new_long, new_short) if wide else (new_short, new_long)
