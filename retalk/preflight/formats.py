"""File formats told by content: the first bytes of a file say what it is, whatever its name."""

from __future__ import annotations

from dataclasses import dataclass

from retalk import limits


@dataclass(frozen=True)
class Container:
    """A file format as retalk names it."""

    name: str
    """Short name: `mp4`, `wav`, `jpeg`, `mkv` …"""
    label: str
    """For people: `MP4`, `WAV audio`, `Matroska` …"""
    kind: str
    """`video`, `audio` or `image`: what such files usually hold (`unknown` for an LFS
    pointer)."""
    endings: tuple[str, ...]
    """File name endings that denote this content, the usual one first."""


_TABLE = (
    Container("mp4", "MP4", "video", ("mp4", "mov", "m4v")),
    Container("mov", "QuickTime MOV", "video", ("mov", "mp4")),
    Container("avi", "AVI", "video", ("avi",)),
    Container("wav", "WAV audio", "audio", ("wav",)),
    Container("mp3", "MP3 audio", "audio", ("mp3",)),
    Container("aac", "AAC audio (ADTS)", "audio", ("aac",)),
    Container("jpeg", "JPEG image", "image", ("jpg", "jpeg")),
    Container("png", "PNG image", "image", ("png",)),
    Container("bmp", "BMP image", "image", ("bmp",)),
    Container("webp", "WebP image", "image", ("webp",)),
    # Formats the service does not take, named so that the finding can say what the file is.
    Container("m4a", "M4A (AAC in MP4)", "audio", ("m4a",)),
    Container("3gp", "3GP", "video", ("3gp", "3g2")),
    Container("mkv", "Matroska", "video", ("mkv",)),
    Container("webm", "WebM", "video", ("webm",)),
    Container("flv", "Flash video", "video", ("flv",)),
    Container("asf", "Windows Media", "video", ("wmv", "wma", "asf")),
    Container("mpegts", "MPEG transport stream", "video", ("ts", "mts", "m2ts")),
    Container("mpegps", "MPEG program stream", "video", ("mpg", "mpeg", "vob")),
    Container("mp2", "MPEG audio layer I/II", "audio", ("mp2",)),
    Container("flac", "FLAC audio", "audio", ("flac",)),
    Container("ogg", "Ogg", "audio", ("ogg", "oga", "opus")),
    Container("aiff", "AIFF audio", "audio", ("aif", "aiff")),
    Container("amr", "AMR audio", "audio", ("amr",)),
    Container("caf", "Core Audio", "audio", ("caf",)),
    Container("gif", "GIF image", "image", ("gif",)),
    Container("tiff", "TIFF image", "image", ("tif", "tiff")),
    Container("heif", "HEIF/HEIC image", "image", ("heic", "heif")),
    Container("avif", "AVIF image", "image", ("avif",)),
    Container("ico", "ICO image", "image", ("ico",)),
)

CONTAINERS: dict[str, Container] = {c.name: c for c in _TABLE}
# Not media: named so that a report can say what stands in the file's place (see `lfs`).
CONTAINERS["lfs-pointer"] = Container("lfs-pointer", "Git LFS pointer", "unknown", ())

# What each role takes, by content. The mp4/mov family is one format to ffmpeg and to the service.
ACCEPTED: dict[str, frozenset[str]] = {
    limits.VIDEO.role: frozenset({"mp4", "mov", "3gp", "avi"}),
    limits.AUDIO.role: frozenset({"wav", "mp3", "aac"}),
    limits.IMAGE.role: frozenset({"jpeg", "png", "bmp", "webp"}),
}

MEDIA_ENDINGS: frozenset[str] = frozenset(e for c in _TABLE for e in c.endings)
"""Endings searched for when a folder is checked."""

_BMFF_BRANDS = {
    b"qt  ": "mov",
    b"M4A ": "m4a",
    b"M4B ": "m4a",
    b"M4P ": "m4a",
    b"heic": "heif",
    b"heix": "heif",
    b"hevc": "heif",
    b"heim": "heif",
    b"heis": "heif",
    b"mif1": "heif",
    b"msf1": "heif",
    b"avif": "avif",
    b"avis": "avif",
}

# QuickTime files without an `ftyp` box start straight with one of these boxes.
_QT_FIRST_BOXES = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


def sniff(head: bytes) -> Container | None:
    """The format of a file from its first bytes (at least 64 of them where the file has them),
    or None when they match nothing known. An ID3 tag is skipped by `id3_size` beforehand."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _BMFF_BRANDS:
            return CONTAINERS[_BMFF_BRANDS[brand]]
        return CONTAINERS["3gp" if brand.startswith(b"3g") else "mp4"]
    if len(head) >= 8 and head[4:8] in _QT_FIRST_BOXES:
        return CONTAINERS["mov"]
    if head[:4] == b"RIFF" and len(head) >= 12:
        riff = {b"AVI ": "avi", b"AVIX": "avi", b"WAVE": "wav", b"WEBP": "webp"}.get(head[8:12])
        return CONTAINERS[riff] if riff else None
    if head[:4] == b"RF64" and head[8:12] == b"WAVE":
        return CONTAINERS["wav"]
    for magic, name in _MAGIC:
        if head.startswith(magic):
            if name == "mkv" and b"webm" in head[:64]:
                return CONTAINERS["webm"]
            return CONTAINERS[name]
    if len(head) >= 377 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return CONTAINERS["mpegts"]
    return _mpeg_audio(head)


_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\x00\x00\x01\x00", "ico"),
    (b"\x1a\x45\xdf\xa3", "mkv"),
    (b"FLV\x01", "flv"),
    (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "asf"),
    (b"\x00\x00\x01\xba", "mpegps"),
    (b"fLaC", "flac"),
    (b"OggS", "ogg"),
    (b"#!AMR", "amr"),
    (b"caff", "caf"),
)


def _mpeg_audio(head: bytes) -> Container | None:
    """ADTS AAC and MPEG audio share a 12-bit sync word; the layer bits tell them apart."""
    if len(head) >= 4 and head[0] == 0xFF and head[1] & 0xF0 == 0xF0:
        layer = (head[1] >> 1) & 0x3
        if layer == 0:
            return CONTAINERS["aac"]
        return CONTAINERS["mp3" if layer == 1 else "mp2"]
    if len(head) >= 4 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 0x3:
        # MPEG-2.5 (sync 0xFFE), which only layer III uses in practice.
        return CONTAINERS["mp3" if (head[1] >> 1) & 0x3 == 1 else "mp2"]
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return CONTAINERS["aiff"]
    return None


def id3_size(head: bytes) -> int:
    """The length of an ID3v2 tag at the start of the file, 0 when there is none."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def from_ffprobe(format_name: str, major_brand: str | None) -> Container | None:
    """The format from ffprobe's demuxer name, for files whose first bytes said nothing."""
    if format_name.startswith("mov,"):
        brand = (major_brand or "").encode().ljust(4)[:4]
        return sniff(b"\0\0\0\0ftyp" + brand)
    for prefix, name in (
        ("matroska", "mkv"),
        ("avi", "avi"),
        ("wav", "wav"),
        ("mp3", "mp3"),
        ("aac", "aac"),
        ("flv", "flv"),
        ("asf", "asf"),
        ("mpegts", "mpegts"),
        ("mpeg", "mpegps"),
        ("flac", "flac"),
        ("ogg", "ogg"),
        ("aiff", "aiff"),
        ("amr", "amr"),
        ("caf", "caf"),
    ):
        if format_name.startswith(prefix):
            return CONTAINERS[name]
    return None
