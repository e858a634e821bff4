"""The gathering parts on their own: ffprobe's JSON to a typed record, formats by first bytes,
the structure readers; and the rules as the pure functions they are."""

from __future__ import annotations

import io
import struct
from fractions import Fraction
from pathlib import Path

import pytest

from retalk.preflight.check import judge
from retalk.preflight.formats import id3_size, sniff
from retalk.preflight.media import Media
from retalk.preflight.probe import Probe, Stream, parse_probe
from retalk.preflight.structure import bmff_missing_bytes, riff_missing_bytes, scan_adts


def _video(**stream: object) -> dict[str, object]:
    base = {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080}
    return {"format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2"}, "streams": [{**base, **stream}]}


@pytest.mark.parametrize(
    ("stream", "rotation", "display"),
    [
        ({}, 0, (1920, 1080)),
        (
            {"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]},
            270,
            (1080, 1920),
        ),
        ({"side_data_list": [{"rotation": 90}]}, 90, (1080, 1920)),
        ({"side_data_list": [{"rotation": 180}]}, 180, (1920, 1080)),
        ({"tags": {"rotate": "270"}}, 270, (1080, 1920)),
    ],
)
def test_rotation_turns_the_displayed_size(stream, rotation, display) -> None:
    (parsed,) = parse_probe(_video(**stream)).streams
    assert parsed.rotation == rotation
    assert parsed.display_size == display


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("30/1", Fraction(30)),
        ("30000/1001", Fraction(30000, 1001)),
        ("0/0", None),
        ("", None),
        (None, None),
    ],
)
def test_frame_rates(rate, expected) -> None:
    (parsed,) = parse_probe(_video(avg_frame_rate=rate)).streams
    assert parsed.avg_frame_rate == expected


def test_cover_art_is_not_video() -> None:
    data = {
        "format": {"format_name": "mp3"},
        "streams": [
            {"index": 0, "codec_type": "audio", "codec_name": "mp3"},
            {
                "index": 1,
                "codec_type": "video",
                "codec_name": "png",
                "disposition": {"attached_pic": 1},
            },
        ],
    }
    probe = parse_probe(data)
    assert probe.video is None
    assert probe.audio is not None and probe.audio.codec_name == "mp3"


def _media(*streams: Stream, duration: float | None = None) -> Media:
    probe = Probe("mov,mp4,m4a,3gp,3g2,mj2", None, duration, None, "isom", streams)
    return Media("x.mp4", 1000, "mp4", sniff(b"\0\0\0\x18ftypisom" + b"\0" * 16), probe)


def test_unknown_frame_rate_and_duration_are_said_not_guessed() -> None:
    stream = Stream(0, "video", "h264", width=1280, height=720)
    report = judge(_media(stream), "video")
    assert report.codes == ("File.Unmeasured", "File.Unmeasured")


@pytest.mark.parametrize(
    ("stream", "fps"),
    [
        (Stream(0, "video", "h264", nb_frames=300, duration=10.0), 30.0),
        (Stream(0, "video", "h264", r_frame_rate=Fraction(25)), 25.0),
        (Stream(0, "video", "h264", avg_frame_rate=Fraction(12), r_frame_rate=Fraction(30)), 12.0),
    ],
)
def test_frame_rate_fallbacks(stream: Stream, fps: float) -> None:
    (item,) = judge(_media(stream, duration=10.0), "video").inputs
    assert item.facts["fps"] == fps


@pytest.mark.parametrize(
    ("fps", "ok"),
    [
        (Fraction(1499, 100), False),
        (Fraction(15), True),
        (Fraction(60004, 1000), True),
        (Fraction(6001, 100), False),
    ],
)
def test_frame_rate_bounds_allow_only_rounding(fps: Fraction, ok: bool) -> None:
    stream = Stream(0, "video", "h264", width=1280, height=720, avg_frame_rate=fps, duration=10.0)
    assert ("InvalidFile.FPS" not in judge(_media(stream), "video").codes) is ok


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"\0\0\0\x20ftypisom", "mp4"),
        (b"\0\0\0\x14ftypqt  ", "mov"),
        (b"\0\0\0\x08wide\0\0\0\0mdat", "mov"),
        (b"\0\0\0\x1cftypM4A ", "m4a"),
        (b"\0\0\0\x1cftyp3gp5", "3gp"),
        (b"\0\0\0\x1cftypheic", "heif"),
        (b"\0\0\0\x1cftypavif", "avif"),
        (b"RIFF\0\0\0\0AVI LIST", "avi"),
        (b"RIFF\0\0\0\0WAVEfmt ", "wav"),
        (b"RIFF\0\0\0\0WEBPVP8 ", "webp"),
        (b"\xff\xf1\x50\x80\x02\x1f\xfc", "aac"),
        (b"\xff\xfb\x90\x64\x00", "mp3"),
        (b"\xff\xf3\x90\x64\x00", "mp3"),
        (b"\xff\xfd\x90\x64\x00", "mp2"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\0\0", "png"),
        (b"BM\x36\0\0\0", "bmp"),
        (b"GIF89a\x01\0", "gif"),
        (b"II*\0\x08\0\0\0", "tiff"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01webm", "webm"),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01matroska", "mkv"),
        (b"FLV\x01\x05", "flv"),
        (b"fLaC\0\0\0\x22", "flac"),
        (b"OggS\0\x02", "ogg"),
    ],
)
def test_sniff(head: bytes, name: str) -> None:
    found = sniff(head + b"\0" * 64)
    assert found is not None and found.name == name


@pytest.mark.parametrize("head", [b"", b"hello world", b"RIFF\0\0\0\0XXXX", b"\0" * 64])
def test_sniff_unknown(head: bytes) -> None:
    assert sniff(head) is None


def test_id3_size() -> None:
    assert id3_size(b"ID3\x04\x00\x00\x00\x00\x02\x01" + b"\0" * 10) == 10 + 257
    assert id3_size(b"ID3\x04\x00\x10\x00\x00\x00\x10" + b"\0" * 10) == 10 + 16 + 10
    assert id3_size(b"\xff\xfb\x90\x64") == 0


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _moov(chunk_offset: int, sample_sizes: list[int]) -> bytes:
    stco = _box(b"stco", struct.pack(">III", 0, 1, chunk_offset))
    stsc = _box(b"stsc", struct.pack(">IIIII", 0, 1, 1, len(sample_sizes), 1))
    stsz = _box(
        b"stsz",
        struct.pack(">III", 0, 0, len(sample_sizes))
        + struct.pack(f">{len(sample_sizes)}I", *sample_sizes),
    )
    stbl = _box(b"stbl", stco + stsc + stsz)
    return _box(b"moov", _box(b"trak", _box(b"mdia", _box(b"minf", stbl))))


def test_bmff_index_pointing_past_the_end() -> None:
    ftyp = _box(b"ftyp", b"isom\0\0\0\0")
    samples_at = len(ftyp) + len(_moov(0, [100, 200])) + 8
    moov = _moov(samples_at, [100, 200])
    data = ftyp + moov + _box(b"mdat", b"\0" * 300)
    assert bmff_missing_bytes(io.BytesIO(data), len(data)) == 0
    cut = data[: len(ftyp) + len(moov) + 8 + 250]  # the mdat box says 300 bytes; 250 are there
    assert bmff_missing_bytes(io.BytesIO(cut), len(cut)) == 50
    bare = data[: len(ftyp) + len(moov)]  # no mdat at all: only the index says what is missing
    assert bmff_missing_bytes(io.BytesIO(bare), len(bare)) == 8 + 300


def test_riff_declared_size() -> None:
    head = b"RIFF" + struct.pack("<I", 1000 - 8) + b"WAVE"
    assert riff_missing_bytes(head, 1000) == 0
    assert riff_missing_bytes(head, 600) == 400
    assert riff_missing_bytes(b"RIFF\xff\xff\xff\xffWAVE", 600) == 0  # a streaming writer's size


def _adts_frame(length: int, rate_index: int = 4) -> bytes:
    header = bytes(
        [
            0xFF,
            0xF1,
            (1 << 6) | (rate_index << 2),
            (length >> 11) & 0x3,
            (length >> 3) & 0xFF,
            (length & 0x7) << 5 | 0x1F,
            0xFC,
        ]
    )
    return header + b"\0" * (length - 7)


def test_adts_scan_counts_frames(tmp_path: Path) -> None:
    path = tmp_path / "x.aac"
    path.write_bytes(_adts_frame(100) * 431 + _adts_frame(100)[:60])
    with open(path, "rb") as f:
        scan = scan_adts(f)
    assert scan is not None
    assert (scan.frames, scan.sample_rate, scan.missing_bytes) == (431, 44100, 40)
    assert scan.duration == pytest.approx(431 * 1024 / 44100)
