"""Looking at a media file without downloading it: one bounded range request, and what its first
bytes say (format, image dimensions, MP4/MOV duration).

The URL is the user's, so every hop is checked like any URL Herald calls (https, public addresses
only, ``check_public_url``), a redirect included, up to MAX_REDIRECTS. The request asks for the first
HEAD_BYTES (``Range``); a server that ignores the range answers the whole file, of which Herald reads
no more than HEAD_BYTES before it closes the connection. Each hop is bounded by PROBE_TIMEOUT_SECONDS.
A failure is a PlatformError: PERMANENT when the answer will not change (a 404, a private redirect),
TRANSIENT when the file could not be reached now (no answer, a 5xx, a lookup that failed).
"""

from __future__ import annotations

import asyncio
import struct

import httpx

from services.domain.models import Outcome
from services.platforms.base import PlatformError
from services.platforms.medialimits import MediaFacts
from services.platforms.urls import Resolver, check_public_url, resolve_host

#: bytes read from the start of a file: enough for every image header and for an MP4's ``mvhd``
#: when its ``moov`` box comes first ("fast start", as files made for the web are)
HEAD_BYTES = 64 * 1024
PROBE_TIMEOUT_SECONDS = 5.0
MAX_REDIRECTS = 5


async def probe_media(http: httpx.AsyncClient, url: str, *, allow_private: bool,
                      resolver: Resolver = resolve_host) -> MediaFacts:
    """What ``url`` serves, read from its first HEAD_BYTES; PlatformError when it cannot be read."""
    current, redirected = url, False
    for hop in range(MAX_REDIRECTS + 1):
        where = "the URL" if hop == 0 else f"its redirect to {current}"
        await check_public_url(current, allow_private=allow_private, field=where, resolver=resolver)
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                async with http.stream("GET", current, headers={"Range": f"bytes=0-{HEAD_BYTES - 1}"},
                                       follow_redirects=False, timeout=PROBE_TIMEOUT_SECONDS) as response:
                    if response.is_redirect:
                        if not response.headers.get("location"):
                            raise PlatformError(Outcome.PERMANENT, "media_unavailable",
                                                f"the media host answered HTTP {response.status_code} without a Location")
                        current, redirected = str(response.url.join(response.headers["location"])), True
                        continue
                    status = response.status_code
                    if status == 416:  # no byte 0: an empty file
                        raise PlatformError(Outcome.PERMANENT, "media_unavailable", "the file is empty", http_status=status)
                    if not response.is_success:
                        outcome = Outcome.TRANSIENT if status >= 500 or status in (408, 429) else Outcome.PERMANENT
                        raise PlatformError(outcome, "media_unavailable", f"the media host answered HTTP {status}",
                                            http_status=status)
                    head = bytearray()
                    async for chunk in response.aiter_bytes():
                        head += chunk
                        if len(head) >= HEAD_BYTES:
                            break
        except (httpx.HTTPError, TimeoutError) as exc:
            reason = "no answer in time" if isinstance(exc, TimeoutError | httpx.TimeoutException) else type(exc).__name__
            raise PlatformError(Outcome.TRANSIENT, "media_unavailable",
                                f"the media host could not be reached ({reason})") from exc
        return _facts(url, response, bytes(head[:HEAD_BYTES]), redirected)
    raise PlatformError(Outcome.PERMANENT, "too_many_redirects", f"the URL redirects more than {MAX_REDIRECTS} times")


def _facts(url: str, response: httpx.Response, head: bytes, redirected: bool) -> MediaFacts:
    declared = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    sniffed = sniff_type(head)
    content_type = sniffed or (declared if declared not in _UNKNOWN_TYPES else None)
    size: int | None = None
    if response.status_code == 206:
        total = response.headers.get("content-range", "").rsplit("/", 1)[-1].strip()
        size = int(total) if total.isdigit() else None
    else:
        length = response.headers.get("content-length", "")
        size = int(length) if length.isdigit() and "content-encoding" not in response.headers else None
    width_height = image_dimensions(head)
    return MediaFacts(
        url=url, content_type=content_type, size=size,
        width=width_height[0] if width_height else None, height=width_height[1] if width_height else None,
        duration_seconds=mp4_duration(head) if content_type and content_type.startswith("video/") else None,
        redirected=redirected,
    )


#: ``ftyp`` major brands of still images (ISO/IEC 23008-12 HEIF, AV1 Image File Format)
_IMAGE_BRANDS = {b"avif": "image/avif", b"avis": "image/avif", b"heic": "image/heic", b"heix": "image/heic",
                 b"mif1": "image/heif", b"msf1": "image/heif"}
#: what servers say when they do not know what a file is
_UNKNOWN_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/binary"}


def sniff_type(head: bytes) -> str | None:
    """The format a file's first bytes announce (the images and videos platforms take), else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:  # HEIF and AVIF images are ISO BMFF files too
            return _IMAGE_BRANDS[brand]
        if brand == b"qt  ":
            return "video/quicktime"
        return "video/3gpp" if brand.startswith(b"3g") else "video/mp4"
    return None


def image_dimensions(head: bytes) -> tuple[int, int] | None:
    """(width, height) in pixels from a PNG, GIF, WebP or JPEG file's first bytes; None if not there."""
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            return struct.unpack(">II", head[16:24])
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", head[6:10])
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return _webp_dimensions(head)
        if head.startswith(b"\xff\xd8"):
            return _jpeg_dimensions(head)
    except struct.error:  # cut off inside the header
        return None
    return None


def _webp_dimensions(head: bytes) -> tuple[int, int] | None:
    chunk, data = head[12:16], head[20:]
    if chunk == b"VP8 " and data[3:6] == b"\x9d\x01\x2a":  # lossy: a key frame's start code
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[:1] == b"\x2f":  # lossless: 14-bit width-1 and height-1
        bits = int.from_bytes(data[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit canvas width-1 and height-1
        return int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1
    return None


#: JPEG start-of-frame markers (baseline, progressive, ...): all of C0-CF but DHT, JPG and DAC
_SOF = {m for m in range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}


def _jpeg_dimensions(head: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            return None
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length
            at += 2
            continue
        (length,) = struct.unpack(">H", head[at + 2:at + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", head[at + 5:at + 9])
            return width, height
        if marker == 0xDA:  # scan data: no frame header before it
            return None
        at += 2 + length
    return None


def mp4_duration(head: bytes) -> float | None:
    """An MP4/MOV's duration in seconds from its ``moov/mvhd`` box, when it lies within ``head``."""
    box = _find_box(head, 0, len(head), b"moov")
    if box is None:
        return None
    mvhd = _find_box(head, box[0], box[1], b"mvhd")
    if mvhd is None:
        return None
    body = head[mvhd[0]:mvhd[1]]
    try:
        if body[0] == 1:
            timescale, duration = struct.unpack(">IQ", body[20:32])
        else:
            timescale, duration = struct.unpack(">II", body[12:20])
    except (struct.error, IndexError):
        return None
    if not timescale or duration in (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
        return None
    return duration / timescale


def _find_box(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(start, end) of the body of the first ``kind`` box among the boxes in data[start:end]; a box
    that runs past what was read still counts if its body's start is inside."""
    at = start
    while at + 8 <= end:
        size, found = struct.unpack(">I4s", data[at:at + 8])
        header = 8
        if size == 1 and at + 16 <= end:
            (size,) = struct.unpack(">Q", data[at + 8:at + 16])
            header = 16
        elif size == 0:
            size = end - at
        if size < header:
            return None
        if found == kind:
            return at + header, min(at + size, end)
        at += size
    return None
