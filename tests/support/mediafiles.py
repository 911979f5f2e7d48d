"""Small real media files, built byte by byte as their specifications lay them out, for the media
check's tests (no image library needed, nothing read from disk)."""

from __future__ import annotations

import struct
import zlib


def png(width: int, height: int) -> bytes:
    """A complete greyscale PNG (PNG spec: signature, IHDR, IDAT, IEND, each chunk CRC'd)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))  # filter 0, mid-grey pixels
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def gif(width: int, height: int) -> bytes:
    """A one-colour GIF89a: header, logical screen, 2-entry palette, one image, trailer."""
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00" + b"\x3b")


def jpeg(width: int, height: int) -> bytes:
    """A baseline JPEG's marker segments in their usual order: SOI, APP0 (JFIF), DQT, SOF0, DHT, SOS,
    a little scan data, EOI. Readers take the size from SOF0."""

    def segment(marker: int, data: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(data) + 2) + data

    return (b"\xff\xd8" + segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
            + segment(0xDB, b"\x00" + bytes(range(1, 65)))
            + segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
            + segment(0xC4, b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00")
            + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x7f\xa0" + b"\xff\xd9")


def webp_lossless(width: int, height: int) -> bytes:
    """A RIFF WEBP with a VP8L chunk: signature 0x2f, then 14-bit width-1 and height-1."""
    bits = (width - 1) | ((height - 1) << 14)
    data = b"\x2f" + bits.to_bytes(4, "little") + b"\x00" * 5
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(data)) + b"WEBP" + b"VP8L" + struct.pack("<I", len(data)) + data


def webp_lossy(width: int, height: int) -> bytes:
    """A RIFF WEBP with a VP8 key frame: frame tag, start code 9d 01 2a, 14-bit width and height."""
    data = b"\x10\x02\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 8
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(data)) + b"WEBP" + b"VP8 " + struct.pack("<I", len(data)) + data


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + kind + body


def mp4(seconds: float, *, timescale: int = 1000, version: int = 0, moov_first: bool = True,
        brand: bytes = b"isom", mdat_bytes: int = 2048) -> bytes:
    """An ISO BMFF file (ISO/IEC 14496-12): ftyp, moov holding mvhd (version 0 or 1), and an mdat,
    with the moov box first ("fast start") or after the media data."""
    duration = round(seconds * timescale)
    if version == 1:
        times = struct.pack(">QQIQ", 0, 0, timescale, duration)
    else:
        times = struct.pack(">IIII", 0, 0, timescale, duration)
    mvhd = _box(b"mvhd", bytes([version, 0, 0, 0]) + times + b"\x00\x01\x00\x00" + b"\x01\x00" + b"\x00" * 70)
    moov = _box(b"moov", mvhd + _box(b"trak", b"\x00" * 16))
    ftyp = _box(b"ftyp", brand + b"\x00\x00\x02\x00" + brand + b"mp41")
    mdat = _box(b"mdat", b"\x00" * mdat_bytes)
    return ftyp + (moov + mdat if moov_first else mdat + moov)
