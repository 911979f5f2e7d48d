"""LinkedIn: text, image, video and document posts through the versioned Posts API, as a member or an organization.

Channel: ``account_id`` is the member id (OpenID ``sub``); the author is ``metadata.author_urn``
when set (e.g. ``urn:li:organization:123``), else built from ``account_id`` and
``metadata.author_type`` (``person`` by default). Credentials: ``access_token`` (60 days) and,
for partner apps only, ``refresh_token``.

Media go up before the post: images through the Images API, a video through the Videos API
(initializeUpload, a PUT per part, finalizeUpload with the parts' ETags, then processing polled
within the run), a document (PDF, PPT(X), DOC(X)) through the Documents API. A finalized video's
URN is kept in ``PublishRequest.progress`` (and the error's details), so a run that ends while
LinkedIn still processes it leaves the next run to post it, never to upload it again.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from services import clock
from services.domain.models import Content, Media, Outcome
from services.platforms.base import AccountInfo, Feature, PlatformError, Problem, Published, PublishRequest, TokenSet
from services.platforms.httpcall import json_or_empty, send
from services.platforms.mediafile import fetch_media
from services.platforms.medialimits import MediaLimits

#: Marketing API version, pinned. 202607 is the newest version in our reference (compiled
#: 2026-11 from Microsoft Learn); LinkedIn serves each version at least 12 months, so it holds
#: until 2027-07 at the earliest. A sunset version answers 426; bump it here, then re-run the tests.
LINKEDIN_VERSION = "202607"
SCOPES = "openid profile w_member_social"
MAX_TEXT = 3000
MAX_IMAGES = 20
#: a memory guard for the fetch, not a LinkedIn rule (its image limit is in pixels)
IMAGE_MAX_BYTES = 50 * 1024 * 1024
#: Videos API: MP4, 75 KB to 500 MB, 3 seconds to 30 minutes (learn.microsoft.com/linkedin/marketing/
#: community-management/shares/videos-api); one video per post
VIDEO_MIN_BYTES = 75 * 1024
VIDEO_MAX_BYTES = 500 * 1024 * 1024
VIDEO_TYPES = {"video/mp4"}
#: Documents API: PPT, PPTX, DOC, DOCX and PDF, up to 100 MB and 300 pages; one document per post
DOCUMENT_MAX_BYTES = 100 * 1024 * 1024
DOCUMENT_TYPES = {
    "application/pdf": "pdf", "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/msword": "doc", "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}
#: seconds between two reads of a video's processing status, and the most a call without a run
#: deadline waits for it
POLL_SECONDS = 2.0
MAX_POLL_SECONDS = 60.0
# "little" text: these are markup unless backslash-escaped, and LinkedIn silently cuts the post at
# the first unescaped one it cannot parse. A "#" that starts a word is kept: it is a hashtag.
_RESERVED = re.compile(r"[\\|{}@\[\]()<>*_~]|#(?!\w)")
_DUPLICATE = re.compile(r"duplicate of (urn:li:(?:share|ugcPost):\d+)")


def escape_commentary(text: str) -> str:
    """``text`` as literal "little" text: every reserved character backslash-escaped, hashtags kept."""
    return _RESERVED.sub(lambda m: "\\" + m.group(), text)


def post_url(urn: str) -> str:
    return f"https://www.linkedin.com/feed/update/{urn}/"


def _author(request: PublishRequest) -> str:
    urn = request.metadata.get("author_urn")
    if urn:
        return str(urn)
    kind = request.metadata.get("author_type") or "person"
    if kind not in ("person", "organization"):
        raise PlatformError(Outcome.PERMANENT, "bad_author_type", "linkedin: metadata.author_type must be person or organization",
                            details={"field": "metadata.author_type"})
    return f"urn:li:{kind}:{request.account_id}"


def _next_utc_midnight(now: datetime) -> float:
    """Seconds from ``now`` (the answer's arrival) to the next 00:00 UTC, when LinkedIn's daily limits reset."""
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (midnight - now).total_seconds()


def _failure(response: httpx.Response) -> PlatformError:
    """Classify a LinkedIn error: ``{"status", "serviceErrorCode", "code", "message"}`` (422s: ``message`` only)."""
    body = json_or_empty(response)
    status = response.status_code
    code = str(body.get("code") or f"http_{status}")
    message = f"linkedin answered {status}: {body.get('message') or response.text[:300] or response.reason_phrase}"
    if status == 401:
        return PlatformError(Outcome.AUTH, code.lower(), message, status)
    if status == 403:
        # ACCESS_DENIED: the member may not post as this author (not an admin of the page) or the app
        # lacks the product. A refresh cannot change either, and AUTH would flag the channel for a
        # reconnect that does not help the first case, so the target fails and says why.
        return PlatformError(Outcome.PERMANENT, code.lower(), message, status)
    if status == 426:
        return PlatformError(Outcome.PERMANENT, "version_sunset",
                             f"linkedin no longer serves LinkedIn-Version {LINKEDIN_VERSION}; update LINKEDIN_VERSION "
                             "in services/platforms/linkedin.py", status)
    if status == 429:
        # Daily quotas reset at 00:00 UTC and LinkedIn sends no Retry-After. There are two, the
        # application's and the member's (learn.microsoft.com/linkedin/shared/api-guide/concepts/rate-limits),
        # and the 429 does not document which one ran out, so only this account pauses.
        return PlatformError(Outcome.RATE_LIMITED, "rate_limited", message, status,
                             _next_utc_midnight(clock.utcnow()))
    if status >= 500:
        return PlatformError(Outcome.TRANSIENT, code.lower(), message, status)
    return PlatformError(Outcome.PERMANENT, code.lower(), message, status)


def named_type(url: str) -> str | None:
    """The media type the URL's file name says (``.mov``: video/quicktime), or None when it names
    none Herald can judge (no extension, as signed URLs often have, or a script's: ``.php``)."""
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    return None if guessed is None or guessed.startswith("application/x-") else guessed


def document_title(media: Media) -> str:
    """A document post's title: the item's ``alt``, else the file's name from its URL."""
    if media.alt and media.alt.strip():
        return media.alt.strip()
    name = urlsplit(media.url).path.rsplit("/", 1)[-1]
    return name or "Document"


#: images as JPEG, PNG or GIF, video as MP4; Herald downloads the file
_MEDIA_LIMITS = MediaLimits("LinkedIn", image_bytes=IMAGE_MAX_BYTES, image_types=("image/jpeg", "image/png", "image/gif"),
                            video_bytes=VIDEO_MAX_BYTES, video_types=tuple(sorted(VIDEO_TYPES)),
                            document_bytes=DOCUMENT_MAX_BYTES, document_types=tuple(sorted(DOCUMENT_TYPES)),
                            downloads=True)


class LinkedInPlatform:
    name = "linkedin"
    features = frozenset({Feature.OAUTH, Feature.REFRESH, Feature.VERIFY, Feature.FIRST_COMMENT})
    required_credentials: tuple[str, ...] = ("access_token",)
    uses_pkce = False

    def __init__(self, base_url: str = "https://api.linkedin.com", *, client_id: str | None = None,
                 client_secret: str | None = None, oauth_url: str = "https://www.linkedin.com",
                 allow_private: bool = False, poll_seconds: float = POLL_SECONDS):
        self._poll_seconds = poll_seconds
        self._base = base_url.rstrip("/")
        self._oauth = oauth_url.rstrip("/")
        self._client_id, self._client_secret = client_id, client_secret
        self._allow_private = allow_private  #: media URLs may be private hosts (local testing only)

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return _MEDIA_LIMITS

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        problems = []
        if not content.text.strip() and not content.media:
            problems.append(Problem("content.text", "linkedin: a post needs text or media"))
        if len(content.text) > MAX_TEXT:
            problems.append(Problem("content.text", f"linkedin: text is {len(content.text)} characters; the limit is {MAX_TEXT}"))
        kinds = {m.type for m in content.media}
        if kinds - {"image", "video", "document"}:
            problems.append(Problem("content.media", "linkedin: media must be images, one video or one document"))
        elif kinds & {"video", "document"} and len(content.media) > 1:
            problems.append(Problem("content.media", f"linkedin: a video or a document is posted alone; this post has "
                                                     f"{len(content.media)} media items"))
        elif len(content.media) > MAX_IMAGES:
            problems.append(Problem("content.media", f"linkedin: {len(content.media)} images; the limit is {MAX_IMAGES}"))
        for i, media in enumerate(content.media):
            named = named_type(media.url)
            if media.type == "video" and named not in (None, *VIDEO_TYPES):
                problems.append(Problem(f"content.media[{i}].url", f"linkedin: a video must be MP4, not {named}"))
            if media.type == "document" and named not in (None, *DOCUMENT_TYPES):
                problems.append(Problem(f"content.media[{i}].url",
                                        f"linkedin: a document must be PDF, PPT, PPTX, DOC or DOCX, not {named}"))
        return problems

    def _headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}", "LinkedIn-Version": LINKEDIN_VERSION,
                "X-Restli-Protocol-Version": "2.0.0"}

    async def comment(self, request: PublishRequest, http: httpx.AsyncClient, *, text: str, post: dict[str, Any],
                      key: str) -> dict[str, Any]:
        """The first comment, by the post's author: ``POST /rest/socialActions/{post urn}/comments``
        with ``{actor, object, message: {text}}`` (Comments API); its id is the ``x-restli-id`` header
        (or the created comment's ``$URN``/``id`` in the body)."""
        urn = str(post["id"])
        response = await send(http, "POST", f"{self._base}/rest/socialActions/{quote(urn, safe='')}/comments",
                              idempotent=False, headers=self._headers(request.credentials["access_token"]),
                              json={"actor": _author(request), "object": urn, "message": {"text": text}})
        if not response.is_success:
            raise _failure(response)
        body = json_or_empty(response)
        comment = response.headers.get("x-restli-id") or body.get("$URN") or body.get("id")
        if not comment:
            raise PlatformError(Outcome.UNKNOWN, "no_comment_id", "linkedin accepted the comment but sent no id",
                                response.status_code)
        return {"id": str(comment), "url": None}

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        token, author, media = request.credentials["access_token"], _author(request), request.content.media
        content: dict[str, Any] | None = None
        if media and media[0].type == "video":
            content = {"media": {"id": await self._video(http, request, token, author, media[0]),
                                 **({"title": media[0].alt} if media[0].alt else {})}}
        elif media and media[0].type == "document":
            content = {"media": {"id": await self._upload_document(http, token, author, media[0]),
                                 "title": document_title(media[0])}}
        elif media:
            images = [{"id": await self._upload_image(http, token, author, m), "altText": m.alt or ""} for m in media]
            content = {"media": images[0]} if len(images) == 1 else {"multiImage": {"images": images}}
        body: dict[str, Any] = {
            "author": author, "commentary": escape_commentary(request.content.text), "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": False,
        }
        if content:
            body["content"] = content
        response = await send(http, "POST", f"{self._base}/rest/posts", idempotent=False, json=body,
                              headers=self._headers(token))
        if response.status_code == 422:
            duplicate = _DUPLICATE.search(str(json_or_empty(response).get("message") or response.text))
            if duplicate:  # LinkedIn names the identical post that is already live: it is published
                return Published(duplicate.group(1), post_url(duplicate.group(1)), response.status_code)
        if not response.is_success:
            raise _failure(response)
        urn = response.headers.get("x-restli-id")
        if not urn:
            raise PlatformError(Outcome.UNKNOWN, "no_post_id", "linkedin accepted the post but sent no x-restli-id",
                                response.status_code)
        return Published(urn, post_url(urn), response.status_code)

    async def _upload_image(self, http: httpx.AsyncClient, token: str, author: str, media: Media) -> str:
        """Register an image for ``author``, PUT its bytes, and return its ``urn:li:image:...``.

        Both calls only create an unused image if repeated, so lost answers are TRANSIENT.
        """
        file = await fetch_media(http, media, platform="linkedin", max_bytes=IMAGE_MAX_BYTES,
                                 allow_private=self._allow_private)
        response = await send(http, "POST", f"{self._base}/rest/images", idempotent=True,
                              params={"action": "initializeUpload"}, headers=self._headers(token),
                              json={"initializeUploadRequest": {"owner": author}})
        if not response.is_success:
            raise _failure(response)
        value = json_or_empty(response).get("value") or {}
        uploaded = await send(http, "PUT", str(value["uploadUrl"]), idempotent=True, content=file.data,
                              headers={"Authorization": f"Bearer {token}", "Content-Type": file.content_type})
        if not uploaded.is_success:
            raise _failure(uploaded)
        return str(value["image"])

    async def _video(self, http: httpx.AsyncClient, request: PublishRequest, token: str, author: str, media: Media) -> str:
        """The ``urn:li:video:...`` of this post's video, uploaded once and AVAILABLE.

        A video an earlier attempt finalized (``request.resume["video"]``) is only waited for.
        Otherwise: initializeUpload with the file's size, a PUT of each part to its ``uploadUrl``
        (each answers an ETag), finalizeUpload with the ETags in order. Until finalized, repeating
        only leaves an unused upload behind (TRANSIENT); from then on the URN travels with the target.
        """
        video = str((request.resume or {}).get("video") or "")
        try:
            if not video:
                video = await self._upload_video(http, token, author, media)
            request.progress["video"] = video
            await self._await_video(http, token, video, request.deadline)
        except PlatformError as exc:
            if video:
                exc.details.setdefault("video", video)
            raise
        return video

    async def _upload_video(self, http: httpx.AsyncClient, token: str, author: str, media: Media) -> str:
        file = await fetch_media(http, media, platform="linkedin", max_bytes=VIDEO_MAX_BYTES,
                                 allow_private=self._allow_private, index=0)
        if file.content_type not in VIDEO_TYPES:
            raise PlatformError(Outcome.PERMANENT, "unsupported_media_type",
                                f"linkedin: a video must be MP4 (video/mp4), not {file.content_type}",
                                details={"field": "content.media[0].url"})
        if len(file.data) < VIDEO_MIN_BYTES:
            raise PlatformError(Outcome.PERMANENT, "media_too_small",
                                f"linkedin: the video is {len(file.data):,} bytes; LinkedIn takes {VIDEO_MIN_BYTES:,} "
                                "bytes at least", details={"field": "content.media[0].url"})
        response = await send(http, "POST", f"{self._base}/rest/videos", idempotent=True,
                              params={"action": "initializeUpload"}, headers=self._headers(token),
                              json={"initializeUploadRequest": {"owner": author, "fileSizeBytes": len(file.data),
                                                                "uploadCaptions": False, "uploadThumbnail": False}})
        if not response.is_success:
            raise _failure(response)
        value = json_or_empty(response).get("value") or {}
        video, instructions = value.get("video"), value.get("uploadInstructions")
        if not video or not isinstance(instructions, list) or not instructions:
            raise PlatformError(Outcome.TRANSIENT, "bad_upload_answer",
                                "linkedin: initializeUpload answered without a video URN or upload instructions")
        etags = []
        for part in instructions:
            first, last = int(part["firstByte"]), int(part["lastByte"])
            uploaded = await send(http, "PUT", str(part["uploadUrl"]), idempotent=True, content=file.data[first:last + 1],
                                  headers={"Content-Type": "application/octet-stream"})
            if not uploaded.is_success:
                raise _failure(uploaded)
            etag = uploaded.headers.get("etag")
            if not etag:
                raise PlatformError(Outcome.TRANSIENT, "no_etag", "linkedin: a video part was uploaded without an ETag")
            etags.append(etag)
        finalized = await send(http, "POST", f"{self._base}/rest/videos", idempotent=True,
                               params={"action": "finalizeUpload"}, headers=self._headers(token),
                               json={"finalizeUploadRequest": {"video": video, "uploadToken": value.get("uploadToken") or "",
                                                               "uploadedPartIds": etags}})
        if not finalized.is_success:
            raise _failure(finalized)
        return str(video)

    async def _await_video(self, http: httpx.AsyncClient, token: str, video: str, deadline: float | None) -> None:
        """Poll ``GET /rest/videos/{urn}`` until AVAILABLE, never past ``deadline``.

        PROCESSING_FAILED is PERMANENT (LinkedIn's ``processingFailureReason`` in the message); a video
        still processing at the deadline is TRANSIENT ``video_processing``: a later run waits again.
        """
        stop = deadline if deadline is not None else time.monotonic() + MAX_POLL_SECONDS
        while time.monotonic() < stop:
            response = await send(http, "GET", f"{self._base}/rest/videos/{quote(video, safe='')}", idempotent=True,
                                  headers=self._headers(token))
            if not response.is_success:
                raise _failure(response)
            body = json_or_empty(response)
            status = body.get("status")
            if status == "AVAILABLE":
                return
            if status == "PROCESSING_FAILED":
                reason = body.get("processingFailureReason") or "no reason given"
                raise PlatformError(Outcome.PERMANENT, "video_processing_failed",
                                    f"linkedin could not process the video: {reason}", response.status_code)
            if time.monotonic() + self._poll_seconds >= stop:
                break
            await asyncio.sleep(self._poll_seconds)
        raise PlatformError(Outcome.TRANSIENT, "video_processing",
                            "linkedin is still processing the video; a later run posts it")

    async def _upload_document(self, http: httpx.AsyncClient, token: str, author: str, media: Media) -> str:
        """Register a document for ``author``, PUT its bytes, and return its ``urn:li:document:...``.

        As for images, repeating either call only leaves an unused document: lost answers are TRANSIENT.
        """
        file = await fetch_media(http, media, platform="linkedin", max_bytes=DOCUMENT_MAX_BYTES,
                                 allow_private=self._allow_private, index=0)
        if file.content_type not in DOCUMENT_TYPES:
            raise PlatformError(Outcome.PERMANENT, "unsupported_media_type",
                                f"linkedin: a document must be PDF, PPT, PPTX, DOC or DOCX, not {file.content_type}",
                                details={"field": "content.media[0].url"})
        response = await send(http, "POST", f"{self._base}/rest/documents", idempotent=True,
                              params={"action": "initializeUpload"}, headers=self._headers(token),
                              json={"initializeUploadRequest": {"owner": author}})
        if not response.is_success:
            raise _failure(response)
        value = json_or_empty(response).get("value") or {}
        if not value.get("uploadUrl") or not value.get("document"):
            raise PlatformError(Outcome.TRANSIENT, "bad_upload_answer",
                                "linkedin: initializeUpload answered without a document URN or upload URL")
        uploaded = await send(http, "PUT", str(value["uploadUrl"]), idempotent=True, content=file.data,
                              headers={"Authorization": f"Bearer {token}", "Content-Type": file.content_type})
        if not uploaded.is_success:
            raise _failure(uploaded)
        return str(value["document"])

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        account = await self._userinfo(http, credentials["access_token"])
        if metadata.get("author_urn"):  # an organization channel keeps the author it was given
            account.metadata["author_urn"] = metadata["author_urn"]
        return account

    async def _userinfo(self, http: httpx.AsyncClient, token: str) -> AccountInfo:
        response = await send(http, "GET", f"{self._base}/v2/userinfo", idempotent=True,
                              headers={"Authorization": f"Bearer {token}"})
        if not response.is_success:
            raise _failure(response)
        info = json_or_empty(response)
        return AccountInfo(account_id=str(info["sub"]), name=str(info.get("name") or info["sub"]),
                           metadata={"author_urn": f"urn:li:person:{info['sub']}"})

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        query = {"response_type": "code", "client_id": self._require_client(), "redirect_uri": redirect_uri,
                 "state": state, "scope": SCOPES}
        return f"{self._oauth}/oauth/v2/authorization?{urlencode(query)}"

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None,
                            http: httpx.AsyncClient) -> tuple[TokenSet, AccountInfo]:
        body = await self._token(http, {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})
        tokens = TokenSet.from_answer({}, body)
        return tokens, await self._userinfo(http, tokens.credentials["access_token"])

    async def refresh(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> TokenSet:
        """Only LinkedIn-approved partner apps get refresh tokens; everyone else reconnects every 60 days."""
        if not credentials.get("refresh_token"):
            raise PlatformError(Outcome.AUTH, "no_refresh_token",
                                "linkedin: the token expired and LinkedIn gives this app no refresh token; reconnect the account")
        body = await self._token(http, {"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"]})
        return TokenSet.from_answer(credentials, body)

    def _require_client(self) -> str:
        if not self._client_id or not self._client_secret:
            raise PlatformError(Outcome.PERMANENT, "oauth_not_configured",
                                "linkedin: no OAuth client id and secret are configured")
        return self._client_id

    async def _token(self, http: httpx.AsyncClient, form: dict[str, str]) -> dict[str, Any]:
        client_id = self._require_client()
        response = await send(http, "POST", f"{self._oauth}/oauth/v2/accessToken", idempotent=True,
                              data={**form, "client_id": client_id, "client_secret": self._client_secret or ""})
        body = json_or_empty(response)
        if response.status_code == 429:  # a throttle, not a refusal: reconnecting would not help
            raise _failure(response)
        if response.status_code >= 500:
            raise PlatformError(Outcome.TRANSIENT, f"http_{response.status_code}", "linkedin: the token endpoint failed",
                                response.status_code)
        if not response.is_success or not body.get("access_token"):
            reason = body.get("error_description") or body.get("error") or response.reason_phrase
            raise PlatformError(Outcome.AUTH, "token_refused", f"linkedin refused the token request: {reason}",
                                response.status_code)
        return body

