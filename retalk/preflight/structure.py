"""What a file's own structure says, read cheaply from its headers: where its data should end,
and how long a raw AAC stream really is. Each reader seeks from header to header; none reads
the media data itself."""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from typing import BinaryIO

_MAX_TOP_LEVEL_BOXES = 10_000
_MAX_INDEX_BYTES = 64 * 1024 * 1024
_CONTAINER_BOXES = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}


def bmff_missing_bytes(stream: BinaryIO, size: int) -> int:
    """How many bytes an MP4/MOV file lacks: its boxes, or the samples its index (`moov`)
    points at, end past the end of the file. 0 for a whole file."""
    missing = 0
    offset = 0
    for _ in range(_MAX_TOP_LEVEL_BOXES):
        if offset + 8 > size:
            break
        stream.seek(offset)
        header = stream.read(16)
        box_size, box_type = struct.unpack(">I4s", header[:8])
        header_len = 8
        if box_size == 1 and len(header) >= 16:
            box_size = struct.unpack(">Q", header[8:16])[0]
            header_len = 16
        elif box_size == 0:  # "to the end of the file"
            box_size = size - offset
        if box_size < header_len:
            break  # not a box: whatever this is, ffprobe judges it
        if box_type == b"moov" and box_size - header_len <= _MAX_INDEX_BYTES:
            stream.seek(offset + header_len)
            body = stream.read(min(box_size, size - offset) - header_len)
            missing = max(missing, _index_end(body) - size)
        missing = max(missing, offset + box_size - size)
        offset += box_size
    return max(missing, 0)


def _index_end(moov: bytes) -> int:
    """The byte just past the last sample that any track's sample table points at."""
    end = 0
    for stbl in _find_all(moov, b"stbl"):
        offsets = _chunk_offsets(stbl)
        if not offsets:
            continue
        sizes = _sample_sizes(stbl)
        per_chunk = _samples_in_last_chunk(stbl, len(offsets))
        last = offsets[-1]
        if sizes is not None and per_chunk:
            last += sum(sizes[-per_chunk:])
        end = max(end, last, max(offsets))
    return end


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    found = []
    offset = 0
    while offset + 8 <= len(data):
        box_size, box_type = struct.unpack_from(">I4s", data, offset)
        header_len = 8
        if box_size == 1 and offset + 16 <= len(data):
            box_size = struct.unpack_from(">Q", data, offset + 8)[0]
            header_len = 16
        elif box_size == 0:
            box_size = len(data) - offset
        if box_size < header_len:
            break
        found.append((box_type, data[offset + header_len : offset + box_size]))
        offset += box_size
    return found


def _find_all(data: bytes, wanted: bytes) -> list[bytes]:
    found = []
    for box_type, body in _boxes(data):
        if box_type == wanted:
            found.append(body)
        elif box_type in _CONTAINER_BOXES:
            found.extend(_find_all(body, wanted))
    return found


def _child(stbl: bytes, wanted: bytes) -> bytes | None:
    return next((body for box_type, body in _boxes(stbl) if box_type == wanted), None)


def _chunk_offsets(stbl: bytes) -> list[int]:
    for box_type, fmt, width in ((b"stco", ">I", 4), (b"co64", ">Q", 8)):
        body = _child(stbl, box_type)
        if body is not None and len(body) >= 8:
            count = struct.unpack_from(">I", body, 4)[0]
            count = min(count, (len(body) - 8) // width)
            return [struct.unpack_from(fmt, body, 8 + i * width)[0] for i in range(count)]
    return []


def _sample_sizes(stbl: bytes) -> list[int] | None:
    body = _child(stbl, b"stsz")
    if body is None or len(body) < 12:
        return None
    uniform, count = struct.unpack_from(">II", body, 4)
    if uniform:
        return [uniform] * min(count, 1_000_000)
    count = min(count, (len(body) - 12) // 4)
    return list(struct.unpack_from(f">{count}I", body, 12))


def _samples_in_last_chunk(stbl: bytes, chunks: int) -> int:
    body = _child(stbl, b"stsc")
    if body is None or len(body) < 8:
        return 0
    count = min(struct.unpack_from(">I", body, 4)[0], (len(body) - 8) // 12)
    per_chunk = 0
    for i in range(count):
        first_chunk, samples, _ = struct.unpack_from(">III", body, 8 + i * 12)
        if first_chunk <= chunks:
            per_chunk = samples
    return per_chunk


def riff_missing_bytes(head: bytes, size: int) -> int:
    """How many bytes a RIFF file (WAV, AVI) lacks by its own header's count."""
    if len(head) < 8 or head[:4] != b"RIFF":
        return 0
    declared: int = struct.unpack_from("<I", head, 4)[0]
    if declared in (0, 0xFFFFFFFF):  # written by streaming encoders that never came back
        return 0
    return max(declared + 8 - size, 0)


_ADTS_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
    7350,
)


@dataclass(frozen=True)
class AdtsScan:
    """A raw AAC (ADTS) stream counted frame by frame."""

    frames: int
    samples: int
    sample_rate: int
    missing_bytes: int
    """Bytes the last frame lacks when the file was cut inside it."""

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate if self.sample_rate else 0.0


def scan_adts(stream: BinaryIO, start: int = 0) -> AdtsScan | None:
    """Counts ADTS frames from `start` (past any ID3 tag). ffprobe estimates a raw AAC file's
    duration from its bit rate and misses by a few per cent; the frame count is exact."""
    try:
        view = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
    except (ValueError, OSError):
        return None
    with view:
        size = len(view)
        offset, frames, samples, rate, missing = start, 0, 0, 0, 0
        while offset + 7 <= size:
            if view[offset] != 0xFF or view[offset + 1] & 0xF6 != 0xF0:
                break  # lost sync: trailing junk or a tag; what was counted stands
            b2, b3, b4, b5, b6 = view[offset + 2 : offset + 7]
            rate_index = (b2 >> 2) & 0xF
            length = ((b3 & 0x3) << 11) | (b4 << 3) | (b5 >> 5)
            if rate_index >= len(_ADTS_RATES) or length < 7:
                break
            if offset + length > size:
                missing = offset + length - size
                break
            rate = rate or _ADTS_RATES[rate_index]
            frames += 1
            samples += 1024 * ((b6 & 0x3) + 1)
            offset += length
    if not frames:
        return None
    return AdtsScan(frames, samples, rate, missing)
