"""YouTube (Data API v3): one video per post, uploaded with ``videos.insert``'s resumable protocol.

Channel: ``account_id`` is the YouTube channel id (``UC...``); ``credentials`` hold Google's
``access_token`` (1 hour) and ``refresh_token`` (offline access); ``metadata.uploads_playlist_id``
is the channel's uploads playlist, read when it is connected. The video's snippet and status come
from ``content.platforms.youtube`` (``title``, ``description``, ``tags``, ``privacy_status``,
``publish_at``, ``made_for_kids``, ``category_id``); the title defaults to the text's first line
and the description to the text. A Short is a vertical video of at most 3 minutes: YouTube decides
from the file, the API has nothing to set.

Upload (developers.google.com/youtube/v3/guides/using_resumable_upload_protocol): a POST opens an
upload session (its URI comes back in ``Location``), PUTs send the bytes in chunks (multiples of
256 KiB) with ``Content-Range``, each answered 308 with the ``Range`` YouTube holds, the last one
200/201 with the video. The bytes are streamed from the media URL one chunk at a time, never held
whole. The session is what makes the upload resumable and every call safe to repeat: its URI is
saved with the target as soon as it exists (``request.checkpoint``), kept in ``request.progress``
and in any PlatformError's ``details``; the next attempt asks the session what it holds
(``Content-Range: bytes */TOTAL``) and sends only the rest. A session that already finished
answers with its video, so a lost last answer is never a second video. A session YouTube no longer
knows (404: they last about a week) starts a new upload, after the channel's latest uploads were
searched for the video (``lookup``).

Quota: videos.insert (its own bucket: 100 calls a day by default, 1 unit each) is counted per Google Cloud project per day
and the counter resets at midnight Pacific Time (developers.google.com/youtube/v3/determine_quota_cost).
Herald counts its own inserts too: before opening a session (never when resuming one: that insert
was paid for) it spends ``insert_units`` through ``request.spend_quota`` (the run's count of the
project's Pacific day, YOUTUBE_DAILY_QUOTA_UNITS); a refused spend is the same platform-wide pause
until that midnight as ``quotaExceeded``, and Google is not called. Google keeps the only exact
count (a project may have a raised quota, other clients may share it, refused calls count too), so
its ``quotaExceeded`` stays the authoritative answer: it pauses every YouTube channel (the whole
app: one Google project) until that midnight, spending no retry, and no upload starts before it.
The session is opened before any byte is sent, so a refused insert costs no upload.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx

from services import clock
from services.domain.models import Content, Outcome
from services.platforms.base import (
    APP,
    AccountInfo,
    Feature,
    Metrics,
    MetricsRequest,
    PlatformError,
    Problem,
    Published,
    PublishRequest,
    TokenSet,
)
from services.platforms.figures import count
from services.platforms.httpcall import check_deadline, json_or_empty, send
from services.platforms.medialimits import MediaLimits
from services.platforms.urls import check_public_url

#: youtube.upload inserts videos; youtube.readonly reads the channel and its uploads (connect, lookup)
SCOPES = "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly"
MAX_TITLE = 100  #: characters
MAX_DESCRIPTION_BYTES = 5000  #: UTF-8 bytes
MAX_TAGS_CHARS = 500  #: counted YouTube's way (see ``tags_length``)
PRIVACY = ("public", "unlisted", "private")
#: the upload protocol takes chunks in multiples of 256 KiB (all but the last)
CHUNK_UNIT = 256 * 1024
#: bytes per PUT: 8 MiB bounds memory and still moves a few MB/s within one call
CHUNK_BYTES = 32 * CHUNK_UNIT
#: quotas reset at midnight Pacific Time (developers.google.com/youtube/v3/determine_quota_cost)
QUOTA_ZONE = ZoneInfo("America/Los_Angeles")
#: the quota units one videos.insert costs in its own bucket (same page); YOUTUBE_INSERT_UNITS
INSERT_UNITS = 1
#: uploadLimitExceeded: the channel's own daily upload cap; YouTube says to try again in 24 hours
UPLOAD_LIMIT_SECONDS = 24 * 3600.0
#: a session's answers that mean YouTube no longer knows it (expired): the upload starts over
_SESSION_GONE = (404, 410)
#: how many of the newest uploads ``lookup`` reads when a session is gone
LOOKUP_UPLOADS = 10
#: YouTube takes a file of up to 256 GB or 12 hours, whichever is less, in most video formats
#: (YouTube Help, "Upload videos longer than 15 minutes": unverified channels are held to 15 minutes,
#: which YouTube checks itself). Herald streams the file, so no memory guard is needed below that.
MEDIA_LIMITS = MediaLimits(label="YouTube", video_bytes=256 * 1024 ** 3, video_seconds=(0.0, 12 * 3600.0),
                           downloads=True)


def watch_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


def seconds_to_quota_reset(now: datetime) -> float:
    """Seconds from ``now`` (the answer's arrival) to the next midnight in America/Los_Angeles."""
    local = now.astimezone(QUOTA_ZONE)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=QUOTA_ZONE)
    return (midnight - now).total_seconds()


def tags_length(tags: list[str]) -> int:
    """YouTube's count against MAX_TAGS_CHARS: the commas between tags count, and a tag with a space
    counts as if it were wrapped in quotation marks (videos resource, ``snippet.tags[]``)."""
    return sum(len(tag) + (2 if " " in tag else 0) for tag in tags) + max(0, len(tags) - 1)


def options(content: Content) -> dict[str, Any]:
    """``content.platforms.youtube``: the video's options (Content.for_platform keeps them)."""
    return dict(content.platforms.get("youtube") or {})


def _title(content: Content) -> tuple[str, str]:
    """The title and where it came from: the option, else the text's first line."""
    given = options(content).get("title")
    if given is not None:
        return str(given).strip(), "content.platforms.youtube.title"
    return (content.text.strip().splitlines() or [""])[0].strip(), "content.text"


def _description(content: Content) -> tuple[str, str]:
    given = options(content).get("description")
    if given is not None:
        return str(given), "content.platforms.youtube.description"
    return content.text, "content.text"


def _parse_instant(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def video_resource(content: Content) -> dict[str, Any]:
    """The ``video`` resource videos.insert is sent: snippet and status, from the post."""
    opts = options(content)
    snippet: dict[str, Any] = {"title": _title(content)[0], "description": _description(content)[0]}
    if opts.get("tags"):
        snippet["tags"] = list(opts["tags"])
    if opts.get("category_id"):
        snippet["categoryId"] = str(opts["category_id"])
    status: dict[str, Any] = {"privacyStatus": opts.get("privacy_status") or "public",
                              "selfDeclaredMadeForKids": bool(opts.get("made_for_kids", False))}
    if opts.get("publish_at"):
        when = _parse_instant(str(opts["publish_at"]))
        status["publishAt"] = when.isoformat().replace("+00:00", "Z") if when else str(opts["publish_at"])
    return {"snippet": snippet, "status": status}


def quota_reached(used: int, limit: int, units: int) -> PlatformError:
    """Herald's own count of the project's day has no room for ``units``: the pause ``quotaExceeded``
    brings (every channel until midnight Pacific), without calling Google."""
    return PlatformError(Outcome.RATE_LIMITED, "quota_reached",
                         f"Herald's count reached YouTube's daily quota ({used}/{limit} units used today; a video"
                         f" upload costs {units}); the quota resets at midnight Pacific Time",
                         None, seconds_to_quota_reset(clock.utcnow()), limit_scope=APP)


def google_error(response: httpx.Response, *, during: str = "") -> PlatformError:
    """Classify a Google API error ``{"error": {"code", "message", "errors": [{"domain", "reason"}]}}``.

    Reasons per the YouTube Data API's error pages and the reference's table: ``quotaExceeded``
    (403) the project's daily quota, until midnight Pacific for every channel; ``rateLimitExceeded``,
    ``userRateLimitExceeded`` (403/429) a short throttle; ``uploadLimitExceeded`` (400) the channel's
    daily uploads, 24 hours; 401 the token (refresh, else reconnect); 5xx and ``backendError``
    transient; the rest (invalidTitle, invalidDescription, invalidTags, invalidCategoryId,
    invalidPublishAt, invalidVideoMetadata, forbidden, ...) permanent.
    """
    status = response.status_code
    error = json_or_empty(response).get("error")
    error = error if isinstance(error, dict) else {}
    errors = [e for e in error.get("errors") or [] if isinstance(e, dict)]
    reason = str(errors[0].get("reason") or "") if errors else ""
    said = error.get("message") or response.text[:300] or response.reason_phrase
    message = f"youtube answered {status}{' ' + during if during else ''}: {said}" + (f" ({reason})" if reason else "")
    code = reason or f"http_{status}"
    if reason == "quotaExceeded":
        wait = seconds_to_quota_reset(clock.utcnow())
        return PlatformError(Outcome.RATE_LIMITED, code, f"{message}; the quota resets at midnight Pacific Time",
                             status, wait, limit_scope=APP)
    if reason == "uploadLimitExceeded":
        return PlatformError(Outcome.RATE_LIMITED, code, f"{message}; the channel may upload again in 24 hours",
                             status, UPLOAD_LIMIT_SECONDS)
    if reason in ("rateLimitExceeded", "userRateLimitExceeded") or status == 429:
        return PlatformError(Outcome.RATE_LIMITED, code, message, status)
    if status == 401 and reason != "youtubeSignupRequired":
        return PlatformError(Outcome.AUTH, code, message, status)
    if status >= 500 or reason in ("backendError", "internalError"):
        return PlatformError(Outcome.TRANSIENT, code, message, status)
    if reason == "insufficientPermissions":
        return PlatformError(Outcome.AUTH, code, f"{message}; reconnect the account and grant YouTube upload access",
                             status)
    return PlatformError(Outcome.PERMANENT, code, message, status)


class YouTubePlatform:
    name = "youtube"
    features = frozenset({Feature.OAUTH, Feature.REFRESH, Feature.LOOKUP, Feature.VERIFY, Feature.METRICS})
    required_credentials: tuple[str, ...] = ("access_token",)
    uses_pkce = False
    #: the run counts the quota per day in this zone (``PublishRequest.spend_quota``)
    quota_zone = QUOTA_ZONE

    def __init__(self, base_url: str = "https://www.googleapis.com", *, client_id: str | None = None,
                 client_secret: str | None = None, oauth_url: str = "https://accounts.google.com",
                 token_url: str = "https://oauth2.googleapis.com", allow_private: bool = False,
                 chunk_bytes: int = CHUNK_BYTES, insert_units: int = INSERT_UNITS):
        if chunk_bytes <= 0 or chunk_bytes % CHUNK_UNIT:
            raise ValueError(f"chunk_bytes must be a positive multiple of {CHUNK_UNIT}")
        if insert_units <= 0:
            raise ValueError("insert_units must be positive")
        self._insert_units = insert_units
        self._api = f"{base_url.rstrip('/')}/youtube/v3"
        self._upload = f"{base_url.rstrip('/')}/upload/youtube/v3/videos"
        self._authorize = f"{oauth_url.rstrip('/')}/o/oauth2/v2/auth"
        self._token_url = f"{token_url.rstrip('/')}/token"
        self._client_id, self._client_secret = client_id, client_secret
        self._allow_private = allow_private  #: media URLs may be private hosts (local testing only)
        self._chunk = chunk_bytes

    # --- content -------------------------------------------------------------------------------

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return MEDIA_LIMITS

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        problems = []
        if len(content.media) != 1 or content.media[0].type != "video":
            problems.append(Problem("content.media", "youtube: a post is exactly one video"
                                    + (f"; {len(content.media)} media given" if len(content.media) != 1 else "")))
        title, title_field = _title(content)
        if not title:
            problems.append(Problem(title_field, "youtube: a video needs a title: set content.platforms.youtube.title"
                                    " (or a first line of text)"))
        elif len(title) > MAX_TITLE:
            problems.append(Problem(title_field, f"youtube: the title is {len(title)} characters; the limit is {MAX_TITLE}"
                                    " (set content.platforms.youtube.title)"))
        description, description_field = _description(content)
        size = len(description.encode("utf-8"))
        if size > MAX_DESCRIPTION_BYTES:
            problems.append(Problem(description_field,
                                    f"youtube: the description is {size} bytes; the limit is {MAX_DESCRIPTION_BYTES}"))
        for text, where in ((title, title_field), (description, description_field)):
            if "<" in text or ">" in text:
                problems.append(Problem(where, "youtube: titles and descriptions cannot contain < or >"))
        problems.extend(self._option_problems(options(content)))
        return problems

    def _option_problems(self, opts: dict[str, Any]) -> list[Problem]:
        problems, at = [], "content.platforms.youtube"
        tags = opts.get("tags")
        if tags is not None:
            if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
                problems.append(Problem(f"{at}.tags", "youtube: tags must be a list of non-empty strings"))
            elif tags_length(tags) > MAX_TAGS_CHARS:
                problems.append(Problem(f"{at}.tags", f"youtube: tags take {tags_length(tags)} characters (commas, and"
                                        f" quotes around tags with spaces, count); the limit is {MAX_TAGS_CHARS}"))
            elif any("<" in t or ">" in t for t in tags):
                problems.append(Problem(f"{at}.tags", "youtube: tags cannot contain < or >"))
        privacy = opts.get("privacy_status")
        if privacy is not None and privacy not in PRIVACY:
            problems.append(Problem(f"{at}.privacy_status", f"youtube: privacy_status must be one of {', '.join(PRIVACY)}"))
        publish_at = opts.get("publish_at")
        if publish_at is not None:
            if not isinstance(publish_at, str) or _parse_instant(publish_at) is None:
                problems.append(Problem(f"{at}.publish_at", "youtube: publish_at must be an ISO 8601 time with an offset"))
            elif privacy != "private":
                problems.append(Problem(f"{at}.publish_at", 'youtube: publish_at needs privacy_status "private" (YouTube'
                                        " makes the private video public at that time)"))
        if "made_for_kids" in opts and not isinstance(opts["made_for_kids"], bool):
            problems.append(Problem(f"{at}.made_for_kids", "youtube: made_for_kids must be true or false"))
        category = opts.get("category_id")
        if category is not None and not (isinstance(category, str) and category.isdigit()):
            problems.append(Problem(f"{at}.category_id", "youtube: category_id must be a video category id, e.g. 22"))
        return problems

    # --- publish -------------------------------------------------------------------------------

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        """Upload the video, resuming the session a previous attempt left (``resume`` or ``progress``).

        Raises PlatformError with the session in ``details`` once one exists: TRANSIENT
        ``upload_incomplete`` when the call's deadline comes before the last byte (a later run sends
        the rest), and as ``google_error`` classifies YouTube's refusals.
        """
        problems = self.validate(request.content)
        if problems:  # checked when the post was written; a row written otherwise fails here, never half-sent
            raise PlatformError(Outcome.PERMANENT, "content_rejected", problems[0].message,
                                details={"field": problems[0].field})
        state = {**(request.resume or {}), **request.progress}
        session = state.get("session_uri")
        try:
            if session:
                request.progress.update(_session_state(state))
                found = await self._session_status(http, request, str(session), state.get("size"))
                if isinstance(found, Published):
                    return found
                if found is not None:
                    return await self._resume(http, request, str(session), found)
                request.progress.clear()  # expired: a new session, a new upload (nothing was published)
            return await self._start(http, request)
        except PlatformError as exc:
            if request.progress.get("session_uri"):
                for key, value in _session_state(request.progress).items():
                    exc.details.setdefault(key, value)
            raise

    async def _start(self, http: httpx.AsyncClient, request: PublishRequest) -> Published:
        """Open an upload session (sized from the media's answer) and stream the bytes from 0."""
        async with self._media(http, request.content.media[0].url, 0) as (total, content_type, pieces):
            headers = {**_bearer(request), "X-Upload-Content-Type": content_type}
            if total is not None:
                headers["X-Upload-Content-Length"] = str(total)
            if request.spend_quota is not None:  # Herald's count first: a day without room calls no one
                spend = await request.spend_quota(self._insert_units)
                if not spend:
                    raise quota_reached(spend.used, spend.limit, self._insert_units)
            # A repeated POST only opens another unused session (no video without bytes): safe to repeat.
            response = await send(http, "POST", self._upload, idempotent=True, headers=headers,
                                  params={"uploadType": "resumable", "part": "snippet,status"},
                                  json=video_resource(request.content))
            if not response.is_success:
                raise google_error(response, during="opening the upload")
            session = response.headers.get("location")
            if not session:
                raise PlatformError(Outcome.TRANSIENT, "no_session", "youtube opened no upload session (no Location)",
                                    response.status_code)
            request.progress.update({"session_uri": session, "size": total, "content_type": content_type,
                                     "confirmed": 0})
            if request.checkpoint is not None:  # saved with the target before any byte: a killed run resumes it
                await request.checkpoint(dict(request.progress))
            return await self._send_bytes(http, request, session, 0, total, content_type, pieces)

    async def _resume(self, http: httpx.AsyncClient, request: PublishRequest, session: str, offset: int) -> Published:
        """Stream the rest of the media, from the byte the session confirmed."""
        async with self._media(http, request.content.media[0].url, offset) as (total, content_type, pieces):
            size, kind = request.progress.get("size"), request.progress.get("content_type")
            return await self._send_bytes(http, request, session, offset, size if isinstance(size, int) else total,
                                          str(kind or content_type), pieces)

    async def _session_status(self, http: httpx.AsyncClient, request: PublishRequest, session: str,
                              size: Any) -> Published | int | None:
        """What the session holds: Published when it finished, the bytes it confirmed, None when gone."""
        total = str(size) if isinstance(size, int) else "*"
        response = await send(http, "PUT", session, idempotent=True, content=b"",
                              headers={**_bearer(request), "Content-Range": f"bytes */{total}"})
        if response.status_code in (200, 201):
            return _published(response)
        if response.status_code == 308:
            confirmed = _confirmed(response)
            request.progress["confirmed"] = confirmed
            return confirmed
        if response.status_code in _SESSION_GONE:
            return None
        raise google_error(response, during="asked for the upload's status")

    async def _send_bytes(self, http: httpx.AsyncClient, request: PublishRequest, session: str, offset: int,
                          total: int | None, content_type: str, pieces: AsyncIterator[bytes]) -> Published:
        """PUT ``pieces`` (the media from ``offset``, the bytes YouTube confirmed) in chunks; the video when done."""
        last_put = 1.0  #: seconds the last PUT took: no chunk starts that could not end by the deadline
        position, buffer, done = offset, bytearray(), False
        while not done:
            try:
                piece = await anext(pieces)
            except StopAsyncIteration:
                done = True
            else:
                buffer += piece
            # at least one byte is held back until the stream ends: the last PUT names the total
            while len(buffer) > self._chunk or (done and buffer):
                if request.deadline is not None and time.monotonic() + 1.5 * last_put >= request.deadline:
                    raise PlatformError(Outcome.TRANSIENT, "upload_incomplete",
                                        f"youtube: {position:,} of {_size(total)} bytes uploaded when this run's"
                                        " time ran out; the next run sends the rest")
                size = len(buffer) if done else self._chunk
                chunk = bytes(buffer[:size])
                whole = str(position + size) if done else (str(total) if total is not None else "*")
                started = time.monotonic()
                response = await send(http, "PUT", session, idempotent=True, content=chunk, headers={
                    **_bearer(request), "Content-Type": content_type,
                    "Content-Range": f"bytes {position}-{position + size - 1}/{whole}"})
                last_put = time.monotonic() - started
                if response.status_code in (200, 201):
                    return _published(response)
                if response.status_code in _SESSION_GONE:
                    request.progress.clear()  # the next attempt starts a new session
                    raise PlatformError(Outcome.TRANSIENT, "session_expired",
                                        "youtube no longer knows the upload session; the next run starts the"
                                        " upload again", response.status_code)
                if response.status_code != 308:
                    raise google_error(response, during="receiving the video")
                confirmed = _confirmed(response)
                if confirmed <= position:  # nothing of the chunk was kept: do not spin in one call
                    raise PlatformError(Outcome.TRANSIENT, "upload_stalled",
                                        f"youtube kept none of the bytes from {position:,}; the next run resumes")
                del buffer[:confirmed - position]  # what YouTube did not keep is sent again
                position = request.progress["confirmed"] = confirmed
        raise PlatformError(Outcome.TRANSIENT, "upload_unfinished",
                            "youtube did not finish the video after its last byte; the next run asks the session")

    def _media(self, http: httpx.AsyncClient, url: str, offset: int) -> _MediaStream:
        return _MediaStream(http, url, offset, allow_private=self._allow_private)

    # --- lookup --------------------------------------------------------------------------------

    async def lookup(self, request: PublishRequest, http: httpx.AsyncClient) -> Published | None:
        """Whether an attempt that may have finished the upload made a video.

        With a recorded session, the session answers: finished (the video), or holding part of the
        bytes (None: no video yet, the next attempt resumes). With none, no byte was ever sent
        (the session is saved before the first one), so there is no video. A session YouTube no
        longer knows leaves the channel's newest uploads, matched by title and not older than the
        first attempt.
        """
        session = (request.resume or {}).get("session_uri")
        if not session:
            return None
        found = await self._session_status(http, request, str(session), (request.resume or {}).get("size"))
        if isinstance(found, Published):
            return found
        if found is not None:
            return None
        return await self._find_upload(http, request)

    async def _find_upload(self, http: httpx.AsyncClient, request: PublishRequest) -> Published | None:
        playlist = request.metadata.get("uploads_playlist_id") or (
            await self._channel(http, request.credentials["access_token"])).metadata["uploads_playlist_id"]
        response = await send(http, "GET", f"{self._api}/playlistItems", idempotent=True, headers=_bearer(request),
                              params={"part": "snippet", "playlistId": str(playlist), "maxResults": str(LOOKUP_UPLOADS)})
        if not response.is_success:
            raise google_error(response, during="listing the channel's uploads")
        title = _title(request.content)[0]
        since = request.first_attempt_at - timedelta(minutes=1) if request.first_attempt_at else None
        for item in json_or_empty(response).get("items") or []:
            snippet = item.get("snippet") or {}
            video = (snippet.get("resourceId") or {}).get("videoId")
            added = _parse_instant(str(snippet.get("publishedAt") or ""))
            if video and snippet.get("title") == title and (since is None or (added is not None and added >= since)):
                return Published(str(video), watch_url(str(video)))
        return None

    # --- metrics -------------------------------------------------------------------------------

    async def metrics(self, request: MetricsRequest, http: httpx.AsyncClient) -> Metrics:
        """The video's public statistics (``videos.list?part=statistics``: 1 unit of the project's
        10,000 a day, not the insert bucket). YouTube sends the counts as strings, and leaves out
        ``likeCount`` when the owner hides likes and ``commentCount`` when comments are off: those
        are None. A video that is gone (deleted, or private to another account) lists no item: PERMANENT.
        """
        check_deadline(request.deadline, self.name)
        response = await send(http, "GET", f"{self._api}/videos", idempotent=True,
                              headers={"Authorization": f"Bearer {request.credentials['access_token']}"},
                              params={"part": "statistics", "id": request.platform_post_id})
        if not response.is_success:
            raise google_error(response, during="reading the video's statistics")
        items = json_or_empty(response).get("items") or []
        if not items:
            raise PlatformError(Outcome.PERMANENT, "video_not_found",
                                f"youtube: video {request.platform_post_id} is gone or no longer readable")
        stats = items[0].get("statistics") or {}
        return Metrics(likes=_figure(stats.get("likeCount")), comments=_figure(stats.get("commentCount")),
                       impressions=_figure(stats.get("viewCount")), raw=dict(stats))

    # --- accounts ------------------------------------------------------------------------------

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        return await self._channel(http, credentials["access_token"])

    async def _channel(self, http: httpx.AsyncClient, token: str) -> AccountInfo:
        """The token's YouTube channel (``channels.list?mine=true``) and its uploads playlist."""
        response = await send(http, "GET", f"{self._api}/channels", idempotent=True,
                              headers={"Authorization": f"Bearer {token}"},
                              params={"part": "snippet,contentDetails", "mine": "true"})
        if not response.is_success:
            raise google_error(response, during="reading the channel")
        items = json_or_empty(response).get("items") or []
        if not items:
            raise PlatformError(Outcome.PERMANENT, "no_channel",
                                "youtube: this Google account has no YouTube channel; create one, then connect again")
        channel = items[0]
        uploads = ((channel.get("contentDetails") or {}).get("relatedPlaylists") or {}).get("uploads")
        title = (channel.get("snippet") or {}).get("title") or channel["id"]
        return AccountInfo(account_id=str(channel["id"]), name=str(title),
                           metadata={"uploads_playlist_id": uploads} if uploads else {})

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        """Google's consent screen, asking for offline access (a refresh token) every time
        (``prompt=consent``: Google sends a refresh token only on a consent)."""
        query = {"client_id": self._require_client()[0], "redirect_uri": redirect_uri, "response_type": "code",
                 "scope": SCOPES, "access_type": "offline", "prompt": "consent", "include_granted_scopes": "true",
                 "state": state}
        return f"{self._authorize}?{urlencode(query)}"

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None,
                            http: httpx.AsyncClient) -> tuple[TokenSet, AccountInfo]:
        body = await self._token(http, {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri})
        if not body.get("refresh_token"):
            raise PlatformError(Outcome.AUTH, "no_refresh_token",
                                "youtube: Google sent no refresh token; remove Herald's access in your Google account"
                                " settings and connect again")
        tokens = TokenSet.from_answer({}, body)
        return tokens, await self._channel(http, tokens.credentials["access_token"])

    async def refresh(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> TokenSet:
        """A new access token from the refresh token; ``invalid_grant`` (revoked, expired) is AUTH."""
        if not credentials.get("refresh_token"):
            raise PlatformError(Outcome.AUTH, "no_refresh_token", "youtube: no refresh token; reconnect the account")
        body = await self._token(http, {"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"]})
        return TokenSet.from_answer(credentials, body)

    def _require_client(self) -> tuple[str, str]:
        if not self._client_id or not self._client_secret:
            raise PlatformError(Outcome.PERMANENT, "oauth_not_configured",
                                "youtube: no Google OAuth client id and secret are configured")
        return self._client_id, self._client_secret

    async def _token(self, http: httpx.AsyncClient, form: dict[str, str]) -> dict[str, Any]:
        client_id, secret = self._require_client()
        response = await send(http, "POST", self._token_url, idempotent=True,
                              data={**form, "client_id": client_id, "client_secret": secret})
        body = json_or_empty(response)
        if response.status_code == 429:
            raise PlatformError(Outcome.RATE_LIMITED, "rate_limited", "youtube: Google's token endpoint is throttling",
                                429)
        if response.status_code >= 500:
            raise PlatformError(Outcome.TRANSIENT, f"http_{response.status_code}", "youtube: Google's token endpoint failed",
                                response.status_code)
        if not response.is_success or not body.get("access_token"):
            reason = body.get("error_description") or body.get("error") or response.reason_phrase
            raise PlatformError(Outcome.AUTH, str(body.get("error") or "token_refused"),
                                f"youtube: Google refused the token request: {reason}", response.status_code)
        return body


class _MediaStream:
    """``async with`` the media URL from byte ``offset``: (total size or None, content type, pieces).

    Asks for ``Range: bytes=offset-``; a host that ignores it (200) has the first ``offset`` bytes
    skipped as they arrive. The URL is the user's: checked public before the fetch, no redirects.
    """

    def __init__(self, http: httpx.AsyncClient, url: str, offset: int, *, allow_private: bool):
        self._http, self._url, self._offset, self._allow_private = http, url, offset, allow_private
        self._stream: Any = None

    async def __aenter__(self) -> tuple[int | None, str, AsyncIterator[bytes]]:
        url = await check_public_url(self._url, allow_private=self._allow_private, field="content.media[0].url")
        headers = {"Range": f"bytes={self._offset}-"} if self._offset else {}
        self._stream = self._http.stream("GET", url, headers=headers, follow_redirects=False)
        try:
            response = await self._stream.__aenter__()
        except httpx.HTTPError as exc:
            raise PlatformError(Outcome.TRANSIENT, "media_unavailable",
                                f"youtube: the video could not be fetched: {type(exc).__name__}") from exc
        status = response.status_code
        if status not in (200, 206):
            await self._stream.__aexit__(None, None, None)
            outcome = Outcome.TRANSIENT if status >= 500 or status in (408, 429) else Outcome.PERMANENT
            raise PlatformError(outcome, "media_unavailable", f"youtube: the video could not be fetched (HTTP {status})",
                                http_status=status, details={"field": "content.media[0].url"})
        if status == 206 and not response.headers.get("content-range", "").startswith(f"bytes {self._offset}-"):
            await self._stream.__aexit__(None, None, None)
            raise PlatformError(Outcome.TRANSIENT, "media_range_mismatch",
                                f"youtube: the media host sent another part of the video than byte {self._offset:,} on")
        total = _total(response, self._offset)
        content_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if not content_type.startswith("video/"):
            content_type = "application/octet-stream"  # the protocol takes video/* or this
        skip = self._offset if status == 200 else 0
        return total, content_type, _pieces(response, skip)

    async def __aexit__(self, *exc: object) -> None:
        await self._stream.__aexit__(*exc)


async def _pieces(response: httpx.Response, skip: int) -> AsyncIterator[bytes]:
    try:
        async for piece in response.aiter_bytes():
            if skip:
                dropped = min(skip, len(piece))
                piece, skip = piece[dropped:], skip - dropped
            if piece:
                yield piece
    except httpx.HTTPError as exc:
        raise PlatformError(Outcome.TRANSIENT, "media_unavailable",
                            f"youtube: reading the video failed: {type(exc).__name__}") from exc


def _total(response: httpx.Response, offset: int) -> int | None:
    """The whole file's size: ``Content-Range: bytes a-b/TOTAL`` of a 206, ``Content-Length`` of a 200."""
    if response.status_code == 206:
        whole = response.headers.get("content-range", "").rpartition("/")[2]
        return int(whole) if whole.isdigit() else None
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def _confirmed(response: httpx.Response) -> int:
    """Bytes the session holds, from a 308's ``Range: bytes=0-N`` (none sent: no header, 0)."""
    held = response.headers.get("range", "")
    end = held.rpartition("-")[2]
    return int(end) + 1 if held.startswith("bytes=") and end.isdigit() else 0


def _published(response: httpx.Response) -> Published:
    video = json_or_empty(response).get("id")
    if not video:
        raise PlatformError(Outcome.TRANSIENT, "no_video_id", "youtube finished the upload but sent no video id; the"
                            " next run asks the session again", response.status_code)
    return Published(str(video), watch_url(str(video)), response.status_code)


def _figure(value: Any) -> int | None:
    """A statistics count: YouTube sends ``"1234"`` (a uint64 as a string)."""
    return count(int(value)) if isinstance(value, str) and value.isdigit() else count(value)


def _bearer(request: PublishRequest) -> dict[str, str]:
    return {"Authorization": f"Bearer {request.credentials['access_token']}"}


def _session_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: state[k] for k in ("session_uri", "size", "content_type", "confirmed") if k in state}


def _size(total: int | None) -> str:
    return f"{total:,}" if total is not None else "?"

