"""Fetching a post's media bytes from its URL, for platforms that take uploads instead of URLs.

The URL is the user's, so it is checked like a webhook URL (https, public) before every fetch and
redirects are not followed (that would skip the check). The body is streamed and read no further
than the platform's limit, so a huge file never sits in memory. The fetch is a GET, safe to
repeat: a failure to reach the media is TRANSIENT, an answer that will not change is PERMANENT.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

import httpx

from services.domain.models import Media, Outcome
from services.platforms.base import PlatformError
from services.platforms.urls import check_public_url


@dataclass(frozen=True)
class MediaFile:
    data: bytes
    content_type: str  #: lower case, without parameters; from the server, else guessed


async def fetch_media(http: httpx.AsyncClient, media: Media, *, platform: str, max_bytes: int,
                      allow_private: bool = False, index: int | None = None) -> MediaFile:
    """The bytes behind ``media.url`` (``content.media[index]``), at most ``max_bytes`` of them."""
    field = "content.media" if index is None else f"content.media[{index}].url"
    what = f"{platform}: media {index + 1}" if index is not None else f"{platform}: {media.url}"
    url = await check_public_url(media.url, allow_private=allow_private, field=field)
    try:
        async with http.stream("GET", url, follow_redirects=False) as response:
            status = response.status_code
            if not response.is_success:
                outcome = Outcome.TRANSIENT if status >= 500 or status in (408, 429) else Outcome.PERMANENT
                raise PlatformError(outcome, "media_unavailable", f"{what} could not be fetched (HTTP {status})",
                                    http_status=status, details={"field": field})
            length = response.headers.get("content-length", "")
            declared, data = int(length) if length.isdigit() else 0, bytearray()
            if declared <= max_bytes:
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        break
            if max(declared, len(data)) > max_bytes:
                raise PlatformError(Outcome.PERMANENT, "media_too_large",
                                    f"{what} is larger than {max_bytes:,} bytes, the limit for {platform}",
                                    details={"field": field})
    except httpx.HTTPError as exc:
        raise PlatformError(Outcome.TRANSIENT, "media_unavailable", f"{what} could not be fetched: {type(exc).__name__}",
                            details={"field": field}) from exc
    return MediaFile(bytes(data), _content_type(response.headers.get("content-type", ""), url, media.type))


def _content_type(header: str, url: str, kind: str) -> str:
    declared = header.split(";", 1)[0].strip().lower()
    if declared and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(url)[0] or ("video/mp4" if kind == "video" else "image/jpeg")
