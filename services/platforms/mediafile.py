"""Fetching a post's media bytes from its URL, for platforms that take uploads instead of URLs.

The URL is the user's, so it is checked like a webhook URL (https, public) before every fetch; the
fetch is a GET, safe to repeat, so a lost answer is TRANSIENT.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.domain.models import Media, Outcome
from services.platforms.base import PlatformError
from services.platforms.httpcall import send
from services.platforms.urls import check_public_url


@dataclass(frozen=True)
class MediaFile:
    data: bytes
    content_type: str  #: lower case, without parameters; from the server, else guessed from the kind


async def fetch_media(http: httpx.AsyncClient, media: Media, *, platform: str, max_bytes: int,
                      allow_private: bool = False) -> MediaFile:
    """The bytes behind ``media.url``; PlatformError PERMANENT if unreachable for good or over ``max_bytes``."""
    url = await check_public_url(media.url, allow_private=allow_private, field="content.media.url")
    response = await send(http, "GET", url, idempotent=True, follow_redirects=False)
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise PlatformError(Outcome.TRANSIENT, "media_fetch_failed",
                            f"{platform}: fetching {media.url} answered {response.status_code}", http_status=response.status_code)
    if not response.is_success:
        # Redirects are refused too: following one would skip the public-address check.
        raise PlatformError(Outcome.PERMANENT, "media_unavailable",
                            f"{platform}: fetching {media.url} answered {response.status_code}", http_status=response.status_code)
    if len(response.content) > max_bytes:
        raise PlatformError(Outcome.PERMANENT, "media_too_large",
                            f"{platform}: {media.url} is {len(response.content)} bytes; the limit is {max_bytes}")
    content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not content_type or content_type == "application/octet-stream":
        content_type = "video/mp4" if media.type == "video" else "image/jpeg"
    return MediaFile(response.content, content_type)
