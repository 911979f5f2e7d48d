"""TikTok (Content Posting API, Direct Post): one video or a photo post of 1-35 images, Login Kit
OAuth v2 with PKCE and rotating refresh tokens.

Pinned to developers.tiktok.com as read in 2026-11 (reference §11). Channel: ``account_id`` is the
user's ``open_id``; credentials ``access_token`` (2 hours) and ``refresh_token`` (180 days, rotated
on every refresh: the run saves the new one before using it); ``metadata.username`` for post URLs;
``metadata.verified_domains``: the hosts (or parent domains) verified for the TikTok app in the
developer portal, which TikTok may pull media from (``PULL_FROM_URL``).

Every post starts with the creator info query (allowed privacy levels, whether comments, duets and
stitches may be on) and the post's options (``content.platforms.tiktok``: ``privacy_level``,
``disable_comment``, ``disable_duet``, ``disable_stitch``, ``title``, ``video_cover_timestamp_ms``,
``brand_content_toggle``, ``brand_organic_toggle``, ``is_aigc``, ``auto_add_music``) are checked
against it: a mismatch is PERMANENT and names the option. Without a ``privacy_level`` the channel's
``metadata.privacy_level`` is used, else ``SELF_ONLY`` (the only level an unaudited app may use).

A video whose URL is on a verified domain is pulled by TikTok (``PULL_FROM_URL``); any other is
downloaded (at most FILE_UPLOAD_MAX_BYTES) and uploaded in chunks (``FILE_UPLOAD``). Photos can
only be pulled, so every photo must be on a verified domain. Once ``init`` answers, its
``publish_id`` is saved with the target the moment it exists (``request.checkpoint``: even a run
killed outright leaves it), kept in ``request.progress`` and in the
``details`` of any PlatformError, and the status is polled until the post is live, never past the
call's deadline: a post still processing then is TRANSIENT ``still_processing`` and the next
attempt polls the same ``publish_id`` (finishing an interrupted upload first), never a second init.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from services.domain.models import Content, Outcome
from services.platforms.base import (
    AccountInfo,
    Feature,
    PlatformError,
    Problem,
    Published,
    PublishRequest,
    TokenSet,
)
from services.platforms.httpcall import check_deadline, json_or_empty, send
from services.platforms.mediafile import fetch_media

AUTHORIZE_URL = "https://www.tiktok.com/v2/auth/authorize/"
#: comma separated, as Login Kit takes them; video.publish is Direct Post's scope
SCOPES = "user.info.basic,video.publish"
PRIVACY_LEVELS = ("PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY")
#: a video's caption (``post_info.title``) and a photo post's description, in UTF-16 code units
MAX_VIDEO_CAPTION = 2200
MAX_PHOTO_TITLE = 90
MAX_PHOTO_DESCRIPTION = 4000
MAX_PHOTOS = 35
#: TikTok takes JPEG and WebP photos, not PNG (or GIF)
_PHOTO_EXTENSIONS_REFUSED = (".png", ".gif")
#: FILE_UPLOAD holds the whole file in memory, so it is bounded well below TikTok's 4 GB; larger
#: videos must be pulled from a verified domain
FILE_UPLOAD_MAX_BYTES = 256 * 1024 * 1024
#: chunks must be 5-64 MB (the last up to 128 MB) and sent in order; a video up to one chunk is sent whole
CHUNK_BYTES = 10 * 1024 * 1024
#: status/fetch allows 30 requests a minute per token: one every 2 s at most
POLL_SECONDS = 3.0
MAX_POLL_SECONDS = 300.0
#: TikTok's per-minute limits (init 6/min, status 30/min) reset within a minute
MINUTE_RETRY_SECONDS = 60.0
#: the daily caps (posts per creator, active users of an unaudited app) say no reset time
DAILY_CAP_RETRY_SECONDS = 3600.0
_PROCESSING = ("PROCESSING_UPLOAD", "PROCESSING_DOWNLOAD")
_OPTION_KEYS = ("privacy_level", "disable_comment", "disable_duet", "disable_stitch", "title",
                "video_cover_timestamp_ms", "brand_content_toggle", "brand_organic_toggle", "is_aigc", "auto_add_music")
_BOOLEAN_OPTIONS = ("disable_comment", "disable_duet", "disable_stitch", "brand_content_toggle", "brand_organic_toggle",
                    "is_aigc", "auto_add_music")

_AUTH_CODES = {"access_token_invalid", "scope_not_authorized", "scope_permission_missed"}
_RATE_CODES = {"rate_limit_exceeded": MINUTE_RETRY_SECONDS, "spam_risk_too_many_posts": DAILY_CAP_RETRY_SECONDS,
               "spam_risk_too_many_pending_share": DAILY_CAP_RETRY_SECONDS,
               "reached_active_user_cap": DAILY_CAP_RETRY_SECONDS}

_sleep = asyncio.sleep  # tests replace it


def _units(text: str) -> int:
    """Length as TikTok counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def _options(content: Content) -> dict[str, Any]:
    return {k: v for k, v in (content.platforms.get("tiktok") or {}).items() if k in _OPTION_KEYS}


def _option_field(name: str) -> str:
    return f"content.platforms.tiktok.{name}"


def _host_verified(url: str, domains: list[str]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith(f".{d}") for d in (str(d).lower().strip(".") for d in domains) if d)


def _verified_domains(metadata: dict[str, Any]) -> list[str]:
    domains = metadata.get("verified_domains")
    return [d for d in domains if isinstance(d, str)] if isinstance(domains, list) else []


def _failure(response: httpx.Response, what: str) -> PlatformError:
    """Classify a TikTok answer ``{"data": {}, "error": {"code", "message", "log_id"}}`` (reference's error table)."""
    body = json_or_empty(response)
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    code = str(error.get("code") or f"http_{response.status_code}")
    message = f"tiktok: {what}: {error.get('message') or response.reason_phrase} ({code})"
    status = response.status_code
    details = {"log_id": error["log_id"]} if error.get("log_id") else {}
    if code in _RATE_CODES or status == 429:
        return PlatformError(Outcome.RATE_LIMITED, code, message, status, _RATE_CODES.get(code, MINUTE_RETRY_SECONDS),
                             details=details)
    if code in _AUTH_CODES or status == 401:
        return PlatformError(Outcome.AUTH, code, message, status, details=details)
    if status >= 500 or code == "internal_error":
        return PlatformError(Outcome.TRANSIENT, code, message, status, details=details)
    if code == "privacy_level_option_mismatch":
        details["field"] = _option_field("privacy_level")
    elif code == "url_ownership_unverified":
        details["field"] = "metadata.verified_domains"
    return PlatformError(Outcome.PERMANENT, code, message, status, details=details)


def _post_url(metadata: dict[str, Any], post_id: str, *, photo: bool) -> str | None:
    username = metadata.get("username")
    return f"https://www.tiktok.com/@{username}/{'photo' if photo else 'video'}/{post_id}" if username else None


class TikTokPlatform:
    name = "tiktok"
    features = frozenset({Feature.OAUTH, Feature.REFRESH, Feature.LOOKUP, Feature.VERIFY})
    required_credentials: tuple[str, ...] = ("access_token",)
    uses_pkce = True

    def __init__(self, base_url: str = "https://open.tiktokapis.com", *, client_id: str | None = None,
                 client_secret: str | None = None, authorize_url: str = AUTHORIZE_URL, allow_private: bool = False,
                 poll_seconds: float = POLL_SECONDS):
        self._base = base_url.rstrip("/")
        self._authorize = authorize_url
        self._client_id, self._client_secret = client_id, client_secret
        self._allow_private = allow_private  #: media URLs may be private hosts (local testing only)
        self._poll_seconds = poll_seconds

    # --- validate -----------------------------------------------------------------------------

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        problems: list[Problem] = []
        media = content.media
        videos = [m for m in media if m.type == "video"]
        if not media:
            problems.append(Problem("content.media", "tiktok: a post needs one video or 1-35 photos, not text alone"))
        elif videos and len(media) > 1:
            problems.append(Problem("content.media", "tiktok: a video must be the post's only media (no mixing with photos)"))
        elif len(media) > MAX_PHOTOS:
            problems.append(Problem("content.media", f"tiktok: {len(media)} photos; a photo post takes at most {MAX_PHOTOS}"))
        is_photo = bool(media) and not videos
        limit = MAX_PHOTO_DESCRIPTION if is_photo else MAX_VIDEO_CAPTION
        if _units(content.text) > limit:
            what = "a photo post's description" if is_photo else "a video's caption"
            problems.append(Problem("content.text", f"tiktok: text is {_units(content.text)} characters (UTF-16); "
                                                    f"{what} takes at most {limit}"))
        if is_photo:
            domains = _verified_domains(metadata or {})
            for i, item in enumerate(media):
                if urlsplit(item.url).path.lower().endswith(_PHOTO_EXTENSIONS_REFUSED):
                    problems.append(Problem(f"content.media[{i}].url", "tiktok: photos must be JPEG or WebP, not PNG or GIF"))
                elif not _host_verified(item.url, domains):
                    problems.append(Problem(f"content.media[{i}].url",
                                            "tiktok: photos are pulled by TikTok from a domain verified for the app; "
                                            "this host is not in the channel's metadata.verified_domains"))
        problems += _option_problems(content, is_photo=is_photo)
        return problems

    # --- publish ------------------------------------------------------------------------------

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        """Publish, resuming from ``request.resume["publish_id"]`` when a previous attempt left one."""
        recorded = (request.resume or {}).get("publish_id")
        publish_id: str | None = str(recorded) if recorded else None
        try:
            if publish_id:
                request.progress.update(request.resume or {})
                state = await self._status(http, request, publish_id)
                if state.get("status") != "FAILED":  # FAILED can never go live: a new init cannot double-post
                    if state.get("status") == "PROCESSING_UPLOAD" and request.progress.get("upload_url") \
                            and not request.progress.get("uploaded"):
                        await self._upload(http, request, request.progress)  # the cut-off upload, finished
                    return await self._settle(http, request, publish_id, state)
                request.progress.clear()
                publish_id = None
            creator = await self._creator_info(http, request.credentials["access_token"])
            publish_id = await self._init(http, request, creator)
            return await self._settle(http, request, publish_id, None)
        except PlatformError as exc:
            if publish_id:
                exc.details.setdefault("publish_id", publish_id)
                for key in ("upload_url", "video_size", "chunks_done", "uploaded", "photo"):
                    if key in request.progress:
                        exc.details.setdefault(key, request.progress[key])
            raise

    async def lookup(self, request: PublishRequest, http: httpx.AsyncClient) -> Published | None:
        """Published if the recorded ``publish_id`` went live; None if it has not (yet): publishing
        again resumes that same id. UNKNOWN when no id was recorded (the init's answer was lost)."""
        publish_id = (request.resume or {}).get("publish_id")
        if not publish_id:
            raise PlatformError(Outcome.UNKNOWN, "no_publish_recorded", "tiktok: no publish_id was recorded for this "
                                "post, so whether it went live cannot be told")
        check_deadline(request.deadline, self.name)
        state = await self._status(http, request, str(publish_id))
        if state.get("status") != "PUBLISH_COMPLETE":
            return None
        return self._published(request, str(publish_id), state)

    async def _creator_info(self, http: httpx.AsyncClient, token: str) -> dict[str, Any]:
        response = await send(http, "POST", f"{self._base}/v2/post/publish/creator_info/query/", idempotent=True,
                              headers=_json_auth(token))
        return _data(response, "creator info")

    async def _init(self, http: httpx.AsyncClient, request: PublishRequest, creator: dict[str, Any]) -> str:
        """Check the options against ``creator``, then init the post; its ``publish_id`` goes to progress."""
        content, token = request.content, request.credentials["access_token"]
        media = content.media
        is_photo = media[0].type != "video"
        post_info = _post_info(content, creator, request.metadata, is_photo=is_photo)
        check_deadline(request.deadline, self.name)
        if is_photo:
            body: dict[str, Any] = {"media_type": "PHOTO", "post_mode": "DIRECT_POST", "post_info": post_info,
                                    "source_info": {"source": "PULL_FROM_URL", "photo_cover_index": 0,
                                                    "photo_images": [m.url for m in media]}}
            response = await send(http, "POST", f"{self._base}/v2/post/publish/content/init/", idempotent=False,
                                  headers=_json_auth(token), json=body)
            publish_id = str(_data(response, "photo init")["publish_id"])
            request.progress.update(publish_id=publish_id, photo=True)
            await _keep(request)
            return publish_id
        video = media[0]
        if _host_verified(video.url, _verified_domains(request.metadata)):
            body = {"post_info": post_info, "source_info": {"source": "PULL_FROM_URL", "video_url": video.url}}
            # TikTok starts pulling at once: a lost answer may be a post on its way, with no id to follow
            response = await send(http, "POST", f"{self._base}/v2/post/publish/video/init/", idempotent=False,
                                  headers=_json_auth(token), json=body)
            publish_id = str(_data(response, "video init")["publish_id"])
            request.progress.update(publish_id=publish_id)
            await _keep(request)
            return publish_id
        file = await fetch_media(http, video, platform=self.name, max_bytes=FILE_UPLOAD_MAX_BYTES,
                                 allow_private=self._allow_private, index=0)
        size = len(file.data)
        chunk, count = _chunks(size)
        body = {"post_info": post_info, "source_info": {"source": "FILE_UPLOAD", "video_size": size,
                                                        "chunk_size": chunk, "total_chunk_count": count}}
        check_deadline(request.deadline, self.name)
        # without its bytes an upload never goes live, so repeating a lost init cannot double-post
        response = await send(http, "POST", f"{self._base}/v2/post/publish/video/init/", idempotent=True,
                              headers=_json_auth(token), json=body)
        data = _data(response, "video init")
        publish_id = str(data["publish_id"])
        request.progress.update(publish_id=publish_id, upload_url=str(data["upload_url"]), video_size=size,
                                chunks_done=0, uploaded=False)
        await _keep(request)
        await self._upload(http, request, request.progress, file.data, file.content_type)
        return publish_id

    async def _upload(self, http: httpx.AsyncClient, request: PublishRequest, progress: dict[str, Any],
                      data: bytes | None = None, content_type: str | None = None) -> None:
        """PUT the chunks not yet acknowledged, in order, each with its ``Content-Range``; a resumed
        upload downloads the video again and checks it is the same size."""
        size = int(progress["video_size"])
        if data is None:
            file = await fetch_media(http, request.content.media[0], platform=self.name, max_bytes=FILE_UPLOAD_MAX_BYTES,
                                     allow_private=self._allow_private, index=0)
            if len(file.data) != size:
                raise PlatformError(Outcome.PERMANENT, "media_changed",
                                    f"tiktok: the video changed size ({size} -> {len(file.data)} bytes) mid-upload")
            data, content_type = file.data, file.content_type
        chunk, count = _chunks(size)
        for index in range(int(progress.get("chunks_done") or 0), count):
            check_deadline(request.deadline, self.name)
            first = index * chunk
            last = size - 1 if index == count - 1 else first + chunk - 1  # the last chunk takes the remainder
            response = await send(http, "PUT", str(progress["upload_url"]), idempotent=True, content=data[first:last + 1],
                                  headers={"Content-Type": _video_type(content_type),
                                           "Content-Range": f"bytes {first}-{last}/{size}"})
            if not response.is_success:
                raise _failure(response, f"uploading chunk {index + 1} of {count}")
            progress["chunks_done"] = index + 1
        progress["uploaded"] = True

    async def _status(self, http: httpx.AsyncClient, request: PublishRequest, publish_id: str) -> dict[str, Any]:
        response = await send(http, "POST", f"{self._base}/v2/post/publish/status/fetch/", idempotent=True,
                              headers=_json_auth(request.credentials["access_token"]), json={"publish_id": publish_id})
        return _data(response, "publish status")

    async def _settle(self, http: httpx.AsyncClient, request: PublishRequest, publish_id: str,
                      state: dict[str, Any] | None) -> Published:
        """Poll status/fetch until PUBLISH_COMPLETE; never a poll after the deadline (None: MAX_POLL_SECONDS)."""
        stop = request.deadline if request.deadline is not None else time.monotonic() + MAX_POLL_SECONDS
        while True:
            if state is None:
                if time.monotonic() >= stop:
                    break
                state = await self._status(http, request, publish_id)
            status = state.get("status")
            if status == "PUBLISH_COMPLETE":
                return self._published(request, publish_id, state)
            if status == "FAILED":
                raise PlatformError(Outcome.PERMANENT, "publish_failed",
                                    f"tiktok could not publish the post: {state.get('fail_reason') or 'no reason given'}")
            if status == "SEND_TO_USER_INBOX":  # only an inbox upload ends there, which Herald never asks for
                raise PlatformError(Outcome.PERMANENT, "sent_to_inbox",
                                    "tiktok sent the post to the creator's inbox instead of publishing it")
            state = None
            if time.monotonic() + self._poll_seconds >= stop:
                break  # sleeping would only end past the deadline
            await _sleep(self._poll_seconds)
        raise PlatformError(Outcome.TRANSIENT, "still_processing",
                            "tiktok is still processing the post; a later run follows the same publish_id")

    def _published(self, request: PublishRequest, publish_id: str, state: dict[str, Any]) -> Published:
        """A live post: its public id when TikTok gives one (after moderation; never for private
        posts), else the publish_id stands in and there is no URL."""
        ids = state.get("publicaly_available_post_id") or state.get("publicly_available_post_id") or []
        if isinstance(ids, list) and ids:
            post_id = str(ids[0])
            photo = bool(request.content.media) and request.content.media[0].type != "video"
            return Published(post_id, _post_url(request.metadata, post_id, photo=photo))
        return Published(publish_id, None)

    # --- connect ------------------------------------------------------------------------------

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        """Who the token posts as, from the creator info query (Direct Post's own scope).

        The creator info has no open_id, so ``account_id`` is the channel's (or the credentials')
        ``open_id`` when given, else the username."""
        creator = await self._creator_info(http, credentials["access_token"])
        return _account(creator, str(credentials.get("open_id") or metadata.get("open_id") or ""))

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        client_key, _ = self._require_client()
        query = {"client_key": client_key, "scope": SCOPES, "response_type": "code", "redirect_uri": redirect_uri,
                 "state": state}
        if code_challenge:
            query |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        return f"{self._authorize}?{urlencode(query)}"

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None,
                            http: httpx.AsyncClient) -> tuple[TokenSet, AccountInfo]:
        form = {"code": code, "grant_type": "authorization_code", "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        body = await self._token(http, form)
        tokens = TokenSet.from_answer({}, body, keep=("refresh_token", "open_id", "scope"))
        creator = await self._creator_info(http, tokens.credentials["access_token"])
        return tokens, _account(creator, str(body.get("open_id") or ""))

    async def refresh(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> TokenSet:
        """New access and refresh tokens: TikTok rotates the refresh token, and the one sent stops working."""
        if not credentials.get("refresh_token"):
            raise PlatformError(Outcome.AUTH, "no_refresh_token", "tiktok: no refresh token; reconnect the account")
        body = await self._token(http, {"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"]})
        return TokenSet.from_answer(credentials, body, keep=("refresh_token", "open_id", "scope"))

    def _require_client(self) -> tuple[str, str]:
        if not self._client_id or not self._client_secret:
            raise PlatformError(Outcome.PERMANENT, "oauth_not_configured",
                                "tiktok: no OAuth client key and secret are configured (TIKTOK_CLIENT_KEY, TIKTOK_CLIENT_SECRET)")
        return self._client_id, self._client_secret

    async def _token(self, http: httpx.AsyncClient, form: dict[str, str]) -> dict[str, Any]:
        """POST /v2/oauth/token/; a refusal answers ``{"error", "error_description", "log_id"}``."""
        client_key, secret = self._require_client()
        response = await send(http, "POST", f"{self._base}/v2/oauth/token/", idempotent=True,
                              data={"client_key": client_key, "client_secret": secret, **form})
        body = json_or_empty(response)
        if response.status_code == 429:
            raise PlatformError(Outcome.RATE_LIMITED, "rate_limit_exceeded", "tiktok: the token endpoint is rate limited",
                                429, MINUTE_RETRY_SECONDS)
        if response.status_code >= 500:
            raise PlatformError(Outcome.TRANSIENT, f"http_{response.status_code}", "tiktok: the token endpoint failed",
                                response.status_code)
        if not response.is_success or not body.get("access_token"):
            reason = body.get("error_description") or body.get("error") or response.reason_phrase
            raise PlatformError(Outcome.AUTH, "token_refused", f"tiktok refused the token request: {reason}",
                                response.status_code)
        return body


def _json_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=UTF-8"}


def _data(response: httpx.Response, what: str) -> dict[str, Any]:
    """The ``data`` of a successful answer (``error.code == "ok"``), else the classified failure."""
    body = json_or_empty(response)
    error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    if not response.is_success or (error.get("code") not in (None, "ok")):
        raise _failure(response, what)
    data = body.get("data")
    return data if isinstance(data, dict) else {}


def _video_type(content_type: str | None) -> str:
    """The chunk's MIME type: the server's when it names a video (mp4, quicktime, webm), else mp4."""
    return content_type if content_type and content_type.startswith("video/") else "video/mp4"


def _chunks(size: int) -> tuple[int, int]:
    """(chunk_size, total_chunk_count) per TikTok's rules: a video up to CHUNK_BYTES goes whole;
    else count = size // chunk (rounded down) and the last chunk takes the trailing bytes."""
    if size <= CHUNK_BYTES:
        return size, 1
    return CHUNK_BYTES, size // CHUNK_BYTES


async def _keep(request: PublishRequest) -> None:
    """Save the ``publish_id`` with the target the moment it exists (``request.checkpoint``), so that
    even a run killed outright leaves it for the next attempt to poll: never a second init."""
    if request.checkpoint is not None:
        await request.checkpoint(dict(request.progress))


def _account(creator: dict[str, Any], open_id: str) -> AccountInfo:
    username = str(creator.get("creator_username") or "")
    return AccountInfo(account_id=open_id or username, name=str(creator.get("creator_nickname") or username),
                       metadata={"username": username} if username else {})


def _option_problems(content: Content, *, is_photo: bool) -> list[Problem]:
    """The options' own shapes (the creator info checks the rest when the post is due)."""
    options, problems = _options(content), []
    level = options.get("privacy_level")
    if level is not None and level not in PRIVACY_LEVELS:
        problems.append(Problem(_option_field("privacy_level"),
                                f"tiktok: privacy_level must be one of {', '.join(PRIVACY_LEVELS)}, not {level!r}"))
    for name in _BOOLEAN_OPTIONS:
        if name in options and not isinstance(options[name], bool):
            problems.append(Problem(_option_field(name), f"tiktok: {name} must be true or false"))
    title = options.get("title")
    if title is not None and (not isinstance(title, str) or _units(title) > MAX_PHOTO_TITLE or not is_photo):
        problems.append(Problem(_option_field("title"), f"tiktok: title is a photo post's title of at most "
                                                        f"{MAX_PHOTO_TITLE} characters (a video's caption is the text)"))
    cover = options.get("video_cover_timestamp_ms")
    if cover is not None and (isinstance(cover, bool) or not isinstance(cover, int) or cover < 0 or is_photo):
        problems.append(Problem(_option_field("video_cover_timestamp_ms"),
                                "tiktok: video_cover_timestamp_ms is a video's cover frame, in milliseconds (0 or more)"))
    if is_photo:
        for name in ("disable_duet", "disable_stitch"):
            if name in options:
                problems.append(Problem(_option_field(name), f"tiktok: {name} applies to videos only"))
    return problems


def _post_info(content: Content, creator: dict[str, Any], metadata: dict[str, Any], *, is_photo: bool) -> dict[str, Any]:
    """``post_info`` for the init, the post's options checked against the creator info.

    PERMANENT ``option_not_allowed`` naming the option when the creator cannot use it: a privacy
    level outside ``privacy_level_options``, or comments/duets/stitches asked on where the creator
    has them off. An option not given follows the creator's setting.
    """
    options = _options(content)
    allowed = [str(level) for level in creator.get("privacy_level_options") or []]
    level = options.get("privacy_level") or metadata.get("privacy_level") or "SELF_ONLY"
    if level not in allowed:
        raise PlatformError(Outcome.PERMANENT, "option_not_allowed",
                            f"tiktok: privacy_level {level} is not allowed for this account now; it allows "
                            f"{', '.join(allowed) or 'none'} (an unaudited app posts SELF_ONLY only)",
                            details={"field": _option_field("privacy_level")})
    info: dict[str, Any] = {"privacy_level": level}
    switches = ("comment",) if is_photo else ("comment", "duet", "stitch")
    for what in switches:
        name, off = f"disable_{what}", bool(creator.get(f"{what}_disabled"))
        if off and options.get(name) is False:
            raise PlatformError(Outcome.PERMANENT, "option_not_allowed",
                                f"tiktok: {name} is false but this account has {what}s turned off in TikTok",
                                details={"field": _option_field(name)})
        info[name] = options.get(name, off)
    if is_photo:
        info["title"] = options.get("title") or ""
        info["description"] = content.text
        info["auto_add_music"] = options.get("auto_add_music", True)
    else:
        info["title"] = content.text
        if "video_cover_timestamp_ms" in options:
            info["video_cover_timestamp_ms"] = options["video_cover_timestamp_ms"]
        if "is_aigc" in options:
            info["is_aigc"] = options["is_aigc"]
    for name in ("brand_content_toggle", "brand_organic_toggle"):
        if name in options:
            info[name] = options[name]
    return info


