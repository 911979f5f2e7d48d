"""The Mastodon platform: a status on the account's instance, its media uploaded and processed first.

Channel: ``metadata.instance_url`` (https, public) and ``credentials.access_token`` (scopes
write:statuses, write:media). Mastodon tokens live until revoked and have no refresh grant, so a
refused token means "reconnect". ``verify`` copies the instance's limits into the channel metadata,
where ``validate`` reads them. Every status carries ``Idempotency-Key`` (Mastodon returns the first
status for a repeated key for an hour), so a status call whose answer was lost is safe to repeat.
Metrics read the status as the public sees it, without the token (see ``metrics``).
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx

from services.domain.models import Content, Media, Outcome
from services.platforms.base import (
    AccountInfo,
    Feature,
    Metrics,
    MetricsRequest,
    PlatformError,
    Problem,
    Published,
    PublishRequest,
)
from services.platforms.figures import count
from services.platforms.httpcall import check_deadline, json_or_empty, seconds_until_iso, send
from services.platforms.mediafile import fetch_media
from services.platforms.medialimits import MediaLimits
from services.platforms.urls import check_public_url

# Mastodon's defaults, used until verify() has read the instance's own (GET /api/v2/instance).
MAX_CHARACTERS = 500
MAX_MEDIA = 4
URL_CHARACTERS = 23
IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
VIDEO_SIZE_LIMIT = 99 * 1024 * 1024
#: without a run deadline, give up on media processing after this many status checks
MAX_POLLS = 60

# Mastodon counts every http(s) URL as characters_reserved_per_url and @user@domain as @user.
_URL = re.compile(r"https?://[^\s]+")
_REMOTE_MENTION = re.compile(r"(?<![\w@])(@\w[\w.-]*)@[\w.-]+\w")


class MastodonPlatform:
    name = "mastodon"
    features = frozenset({Feature.VERIFY, Feature.IDEMPOTENCY_KEY, Feature.METRICS})
    required_credentials: tuple[str, ...] = ("access_token",)

    def __init__(self, *, allow_private: bool = False, poll_interval: float = 1.0):
        self._allow_private = allow_private
        self._poll_interval = poll_interval  #: seconds between media processing checks

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        """The instance's own sizes, read at connection (its defaults otherwise); Herald downloads the file."""
        return MediaLimits(f"Mastodon ({metadata['instance_url']})" if metadata.get("instance_url") else "Mastodon",
                           image_bytes=_positive(metadata.get("image_size_limit"), IMAGE_SIZE_LIMIT),
                           video_bytes=_positive(metadata.get("video_size_limit"), VIDEO_SIZE_LIMIT), downloads=True)

    def validate(self, content: Content, metadata: dict[str, Any] | None = None) -> list[Problem]:
        metadata = metadata or {}
        limit = _positive(metadata.get("max_characters"), MAX_CHARACTERS)
        max_media = _positive(metadata.get("max_media_attachments"), MAX_MEDIA)
        length = countable_length(content.text, _positive(metadata.get("characters_reserved_per_url"), URL_CHARACTERS))
        problems = []
        if length > limit:
            problems.append(Problem("content.text", f"mastodon: text counts {length} characters; this instance allows {limit}"))
        if len(content.media) > max_media:
            problems.append(Problem("content.media",
                                    f"mastodon: {len(content.media)} attachments; this instance allows {max_media}"))
        if any(m.type not in ("image", "video") for m in content.media):
            problems.append(Problem("content.media", "mastodon: media must be images or a video"))
        elif len(content.media) > 1 and any(m.type == "video" for m in content.media):
            # PostStatusService refuses it: media_attachments.validations.images_and_video
            problems.append(Problem("content.media", "mastodon: a video must be the only attachment"))
        return problems

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        instance = await self._instance(metadata)
        account = await self._call(http, "GET", f"{instance}/api/v1/accounts/verify_credentials", credentials, idempotent=True)
        server = await self._call(http, "GET", f"{instance}/api/v2/instance", credentials, idempotent=True)
        config = server.get("configuration") or {}
        statuses, media = config.get("statuses") or {}, config.get("media_attachments") or {}
        limits = {
            "max_characters": statuses.get("max_characters", MAX_CHARACTERS),
            "max_media_attachments": statuses.get("max_media_attachments", MAX_MEDIA),
            "characters_reserved_per_url": statuses.get("characters_reserved_per_url", URL_CHARACTERS),
            "image_size_limit": media.get("image_size_limit", IMAGE_SIZE_LIMIT),
            "video_size_limit": media.get("video_size_limit", VIDEO_SIZE_LIMIT),
        }
        host = httpx.URL(instance).host
        return AccountInfo(account_id=str(account["id"]), name=f"@{account.get('username') or account['id']}@{host}",
                           metadata={"instance_url": instance, **limits})

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        instance = await self._instance(request.metadata)
        media_ids = [await self._upload(request, media, i, instance, http) for i, media in enumerate(request.content.media)]
        body: dict[str, Any] = {"status": request.content.text, "visibility": request.metadata.get("visibility") or "public"}
        if media_ids:
            body["media_ids"] = media_ids
        status = await self._call(http, "POST", f"{instance}/api/v1/statuses", request.credentials, idempotent=True,
                                  json=body, headers={"Idempotency-Key": request.idempotency_key})
        return Published(platform_post_id=str(status["id"]), url=status.get("url") or status.get("uri"), http_status=200)

    async def metrics(self, request: MetricsRequest, http: httpx.AsyncClient) -> Metrics:
        """``GET /api/v1/statuses/{id}``: favourites_count, replies_count, reblogs_count (the Status entity).

        Sent without the channel's token: the endpoint is "Public for public statuses, user token +
        read:statuses for private statuses" (docs.joinmastodon.org/methods/statuses/#get), and Mastodon
        refuses a token that lacks a read scope even there (its StatusesController runs
        ``authorize_if_got_token! :read, :'read:statuses'``), while Herald asks users only for write
        scopes. So public and unlisted statuses are measured; a private or direct one, like a deleted
        one, answers 404, and an instance that serves its API to signed-in clients only answers 401:
        both PERMANENT. 429 is RATE_LIMITED until ``X-RateLimit-Reset``.
        """
        instance = await self._instance(request.metadata)
        check_deadline(request.deadline, self.name)
        response = await send(http, "GET", f"{instance}/api/v1/statuses/{request.platform_post_id}", idempotent=True)
        if not response.is_success:
            raise _read_error(response)
        status = json_or_empty(response)
        return Metrics(likes=count(status.get("favourites_count")), comments=count(status.get("replies_count")),
                       shares=count(status.get("reblogs_count")),
                       raw={k: status[k] for k in ("favourites_count", "replies_count", "reblogs_count") if k in status})

    async def _upload(self, request: PublishRequest, media: Media, index: int, instance: str, http: httpx.AsyncClient) -> str:
        """Upload one attachment and wait until Mastodon has processed it; its id."""
        if media.type == "video":
            limit = _positive(request.metadata.get("video_size_limit"), VIDEO_SIZE_LIMIT)
        else:
            limit = _positive(request.metadata.get("image_size_limit"), IMAGE_SIZE_LIMIT)
        file = await fetch_media(http, media, platform="mastodon", max_bytes=limit, allow_private=self._allow_private,
                                 index=index)
        data, mime_type = file.data, file.content_type
        filename = httpx.URL(media.url).path.rsplit("/", 1)[-1] or f"media-{index + 1}"
        # An upload that is repeated only leaves an unattached file behind: safe to retry.
        response = await self._send(http, "POST", f"{instance}/api/v2/media", request.credentials, idempotent=True,
                                    files={"file": (filename, data, mime_type)}, data={"description": media.alt or ""})
        attachment = json_or_empty(response)
        media_id = attachment.get("id")
        if not media_id:
            raise PlatformError(Outcome.TRANSIENT, "media_upload_unreadable",
                                f"mastodon: the upload of attachment {index + 1} answered without a media id")
        polls = 0
        # 202 (url null) means processing in the background; GET answers 206 until it is done, and
        # its 206 body may be empty (docs.joinmastodon.org, methods/media: "206: Partial content"),
        # so the id kept from the upload is what is polled, never one read from a 206.
        while response.status_code in (202, 206) or attachment.get("url") is None:
            if polls >= MAX_POLLS or _past(request.deadline, time.monotonic() + self._poll_interval):
                raise PlatformError(Outcome.TRANSIENT, "media_processing",
                                    f"mastodon: attachment {index + 1} is still processing; the post will be retried")
            await asyncio.sleep(self._poll_interval)
            polls += 1
            response = await self._send(http, "GET", f"{instance}/api/v1/media/{media_id}", request.credentials,
                                        idempotent=True)
            attachment = {} if response.status_code == 206 else json_or_empty(response)
        return str(media_id)

    async def _instance(self, metadata: dict[str, Any]) -> str:
        url = metadata.get("instance_url")
        if not isinstance(url, str) or not url:
            raise PlatformError(Outcome.PERMANENT, "missing_instance_url", "mastodon channels need metadata.instance_url",
                                details={"field": "metadata.instance_url"})
        return (await check_public_url(url, allow_private=self._allow_private, field="metadata.instance_url")).rstrip("/")

    async def _call(self, http: httpx.AsyncClient, method: str, url: str, credentials: dict[str, Any], *,
                    idempotent: bool, **kwargs: Any) -> dict[str, Any]:
        return json_or_empty(await self._send(http, method, url, credentials, idempotent=idempotent, **kwargs))

    async def _send(self, http: httpx.AsyncClient, method: str, url: str, credentials: dict[str, Any], *,
                    idempotent: bool, headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**(headers or {}), "Authorization": f"Bearer {credentials.get('access_token')}"}
        response = await send(http, method, url, idempotent=idempotent, headers=headers, **kwargs)
        if response.is_success:
            return response
        raise _error(response)


def _error(response: httpx.Response) -> PlatformError:
    """Classify a Mastodon error ``{"error", "error_description"?}`` (Error classes table, Mastodon row)."""
    status = response.status_code
    body = json_or_empty(response)
    detail = body.get("error") or response.reason_phrase
    retry_after = None
    if status == 429:
        # X-RateLimit-Reset is an ISO 8601 time; limits are per account and per IP, none the app's
        # (reference §9; docs.joinmastodon.org/api/rate-limits): account scope.
        outcome = Outcome.RATE_LIMITED
        retry_after = seconds_until_iso(response.headers.get("x-ratelimit-reset"))
    elif status in (401, 403):
        outcome, detail = Outcome.AUTH, f"{detail}; reconnect the account (Mastodon tokens cannot be refreshed)"
    elif status >= 500:
        outcome = Outcome.TRANSIENT
    else:  # 422 validation or a bad file, 404, ...
        outcome = Outcome.PERMANENT
    return PlatformError(outcome, f"http_{status}", f"mastodon answered {status}: {detail}", http_status=status,
                         retry_after_seconds=retry_after)


def _read_error(response: httpx.Response) -> PlatformError:
    """Classify a failed token-less read: nothing a token refresh or reconnect could change is AUTH."""
    status = response.status_code
    if status not in (401, 403, 404, 410):
        return _error(response)
    detail = json_or_empty(response).get("error") or response.reason_phrase
    if status in (404, 410):
        return PlatformError(Outcome.PERMANENT, "status_not_found",
                             f"mastodon answered {status}: {detail}; the status was deleted or is not public", status)
    return PlatformError(Outcome.PERMANENT, "status_not_public",
                         f"mastodon answered {status}: {detail}; this instance shows statuses to signed-in clients only, "
                         "and Herald reads figures without a token", status)


def countable_length(text: str, url_characters: int = URL_CHARACTERS) -> int:
    """The length Mastodon's StatusLengthValidator sees, counted in code points.

    Mastodon counts grapheme clusters; code points are never fewer, so this may refuse a text full of
    composed emoji that Mastodon would take, but never passes one it refuses.
    """
    text = _URL.sub("x" * url_characters, text)
    return len(_REMOTE_MENTION.sub(r"\1", text))


def _positive(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _past(deadline: float | None, moment: float) -> bool:
    return deadline is not None and moment >= deadline
