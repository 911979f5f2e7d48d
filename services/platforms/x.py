"""X (Twitter): posts with up to four images or one video/GIF, OAuth 2.0 with PKCE, rotating refresh tokens.

Pinned to X API v2 as docs.x.com describes it in 2025-2026, media included (``/2/media/upload`` and
its ``initialize``/``append``/``finalize`` steps, ``/2/media/metadata``); the v1.1 upload host is
not used. Channel: ``account_id`` is the X user id, credentials ``access_token`` (+ ``refresh_token``),
``metadata.username`` for post URLs. X has no idempotency key, so a lost ``POST /2/tweets`` answer
is UNKNOWN and ``lookup`` settles it from the account's recent posts. A thread is a chain of posts,
each replying to the one before (``reply.in_reply_to_tweet_id``); the first comment is the author's
reply to the post. Metrics read the post's
``public_metrics`` (and, for 30 days, its ``non_public_metrics``) with the scopes publishing holds.
"""

from __future__ import annotations

import asyncio
import html
import time
import unicodedata
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from services import clock
from services.domain.models import Content, Media, Outcome
from services.platforms.base import (
    ACCOUNT,
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
from services.platforms.figures import count, total
from services.platforms.httpcall import check_deadline, json_or_empty, seconds_until_epoch, send
from services.platforms.mediafile import fetch_media
from services.platforms.medialimits import MB, MediaLimits
from services.platforms.xtext import MAX_WEIGHTED_LENGTH, weighted_length

AUTHORIZE_PATH = "/i/oauth2/authorize"  #: on x.com (the ``x.oauth`` host)
SCOPES = "tweet.read tweet.write users.read offline.access media.write"
MAX_IMAGES = 4
MAX_ALT = 1000
IMAGE_OR_GIF_MAX_BYTES = 15 * 1024 * 1024  # GIFs may be 15 MB; X itself refuses images over 5 MB
VIDEO_MAX_BYTES = 512 * 1024 * 1024
CHUNK_BYTES = 4 * 1024 * 1024  # under X's 5 MB per APPEND
#: how far back lookup searches; the run that lost an answer is recovered by the next cron run
LOOKUP_WINDOW = timedelta(hours=24)
#: "Non-public, organic, and promoted metrics are only available for posts created within the last 30
#: days" (docs.x.com/x-api/fundamentals/metrics); asked for an hour inside that, so clock skew cannot ask too late
NON_PUBLIC_WINDOW = timedelta(days=30) - timedelta(hours=1)
#: the windows of the user whose token made the call: 15 minutes and 24 hours
_USER_WINDOWS = ("x-rate-limit", "x-user-limit-24hour")

_sleep = asyncio.sleep  # tests replace it


def _is_gif(media: Media) -> bool:
    return media.type == "image" and urlsplit(media.url).path.lower().endswith(".gif")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _post_url(metadata: dict[str, Any], post_id: str) -> str:
    username = metadata.get("username")
    return f"https://x.com/{username}/status/{post_id}" if username else f"https://x.com/i/web/status/{post_id}"


def _rate_limit(headers: httpx.Headers) -> tuple[float | None, str]:
    """Seconds until the exhausted window resets (its ``*-reset`` epoch, from now), and whose window it is.

    Herald calls with user tokens, so ``x-rate-limit-*`` (15 minutes) and ``x-user-limit-24hour-*``
    count this user's calls; ``x-app-limit-24hour-*`` counts every call of Herald's X app, e.g.
    POST /2/tweets: 100 per 15 min per user, 10,000 per 24 h per app (reference §4;
    docs.x.com/x-api/fundamentals/rate-limits: per-user limits apply to user tokens). An exhausted
    app window pauses every X channel until it resets; any other 429 pauses this account only.
    """
    if headers.get("x-app-limit-24hour-remaining") == "0":
        return seconds_until_epoch(headers.get("x-app-limit-24hour-reset")), APP
    exhausted = [seconds_until_epoch(headers.get(f"{p}-reset")) for p in _USER_WINDOWS if headers.get(f"{p}-remaining") == "0"]
    waits = [w for w in exhausted if w is not None]
    return (max(waits) if waits else seconds_until_epoch(headers.get("x-rate-limit-reset"))), ACCOUNT


def _failure(response: httpx.Response) -> PlatformError:
    """Classify an X error answer (problem JSON ``{title, detail, type, status}``, sometimes ``errors[]``)."""
    body = json_or_empty(response)
    status = response.status_code
    problem_type = str(body.get("type") or "")
    messages = [str(e.get("message")) for e in body.get("errors") or [] if isinstance(e, dict) and e.get("message")]
    detail = "; ".join([str(body.get("detail") or body.get("title") or response.reason_phrase), *messages])
    if status == 429:
        # "usage-capped" is the project's monthly cap on Posts *read* (docs.x.com/x-api/x-api-v2/fundamentals/tweet-cap),
        # which lookup's timeline counts against and publishing does not: no reason to pause the other X channels.
        code = "usage_capped" if problem_type.endswith("usage-capped") else "rate_limited"
        wait, scope = _rate_limit(response.headers)
        return PlatformError(Outcome.RATE_LIMITED, code, f"x: {detail}", status, wait, limit_scope=scope)
    if status == 401:
        return PlatformError(Outcome.AUTH, "unauthorized", f"x: the token was refused: {detail}", status)
    if status == 403 and "duplicate" in detail.lower():
        return PlatformError(Outcome.PERMANENT, "duplicate", f"x: refused as a duplicate of a recent post: {detail}", status)
    if status == 403 and problem_type.endswith("client-forbidden"):
        # The X app (not the user's token) lacks the access this needs: refreshing or reconnecting
        # the account cannot fix it, so it is not AUTH, which would mark the channel for reconnection.
        return PlatformError(Outcome.PERMANENT, "client_forbidden",
                             f"x: the Herald X app is not allowed this call: {detail}", status)
    if status == 402:
        return PlatformError(Outcome.PERMANENT, "payment_required", f"x: the X app has no API credits left: {detail}", status)
    if status >= 500:
        return PlatformError(Outcome.TRANSIENT, f"http_{status}", f"x answered {status}: {detail}", status)
    return PlatformError(Outcome.PERMANENT, f"http_{status}", f"x answered {status}: {detail}", status)


def _unreadable(answer: dict[str, Any], status: int) -> PlatformError:
    """A lookup answered without ``data``: X puts why in ``errors`` (``.../problems/resource-not-found`` when
    the post was deleted, ``not-authorized-for-resource`` when it became unreadable, e.g. a suspended account)."""
    errors = [e for e in answer.get("errors") or [] if isinstance(e, dict)]
    first = errors[0] if errors else {}
    code = "post_not_found" if str(first.get("type") or "").endswith("resource-not-found") else "post_unreadable"
    detail = first.get("detail") or first.get("title") or "no post in the answer"
    return PlatformError(Outcome.PERMANENT, code, f"x: the post cannot be read: {detail}", status)


def _comparable(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def _original_text(post: dict[str, Any]) -> str:
    """A returned post's text as its author typed it: X escapes &<>, swaps URLs for t.co, appends media links."""
    text = str(post.get("text") or "")
    for entity in (post.get("entities") or {}).get("urls") or []:
        short = entity.get("url") or ""
        text = text.replace(short, "" if entity.get("media_key") else str(entity.get("expanded_url") or short))
    return html.unescape(text)


#: images up to 5 MB, GIFs 15 MB, video 512 MB; Herald downloads the file
_MEDIA_LIMITS = MediaLimits(
    "X", image_bytes=5 * MB, gif_bytes=IMAGE_OR_GIF_MAX_BYTES, video_bytes=VIDEO_MAX_BYTES,
    image_types=("image/jpeg", "image/png", "image/gif", "image/webp"), video_types=("video/mp4", "video/quicktime"),
    downloads=True)


class XPlatform:
    name = "x"
    features = frozenset({Feature.OAUTH, Feature.REFRESH, Feature.LOOKUP, Feature.VERIFY, Feature.METRICS,
                          Feature.THREAD, Feature.FIRST_COMMENT})
    required_credentials: tuple[str, ...] = ("access_token",)
    uses_pkce = True

    def __init__(self, base_url: str = "https://api.x.com", *, client_id: str | None = None,
                 client_secret: str | None = None, oauth_url: str = "https://x.com", allow_private: bool = False):
        self._base = base_url.rstrip("/")
        self._oauth = oauth_url.rstrip("/")
        self._client_id, self._client_secret = client_id, client_secret
        self._allow_private = allow_private  #: media URLs may be private hosts (local testing only)

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return _MEDIA_LIMITS

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        problems = []
        if not content.text.strip() and not content.media:
            problems.append(Problem("content.text", "x: a post needs text or media"))
        length = weighted_length(content.text)
        if length > MAX_WEIGHTED_LENGTH:
            problems.append(Problem("content.text", f"x: text counts {length} characters as X counts them (URLs 23, "
                                                    f"CJK and emoji 2); the limit is {MAX_WEIGHTED_LENGTH}"))
        moving = [m for m in content.media if m.type == "video" or _is_gif(m)]
        if any(m.type not in ("image", "video") for m in content.media):
            problems.append(Problem("content.media", "x: media must be images, a GIF or a video"))
        elif moving and len(content.media) > 1:
            problems.append(Problem("content.media", "x: a video or GIF must be the post's only media"))
        elif len(content.media) > MAX_IMAGES:
            problems.append(Problem("content.media", f"x: {len(content.media)} images; the limit is {MAX_IMAGES}"))
        for i, media in enumerate(content.media):
            if media.alt and len(media.alt) > MAX_ALT:
                problems.append(Problem(f"content.media[{i}].alt",
                                        f"x: alt text is {len(media.alt)} characters; the limit is {MAX_ALT}"))
        return problems

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        return await self._tweet(request, http, reply_to=None)

    async def reply(self, request: PublishRequest, http: httpx.AsyncClient, *, parent: dict[str, Any],
                    root: dict[str, Any], key: str) -> dict[str, Any]:
        """A thread part: a post replying to the part before (``reply.in_reply_to_tweet_id``)."""
        published = await self._tweet(request, http, reply_to=str(parent["id"]))
        return {"id": published.platform_post_id, "url": published.url}

    async def comment(self, request: PublishRequest, http: httpx.AsyncClient, *, text: str, post: dict[str, Any],
                      key: str) -> dict[str, Any]:
        """The first comment: the author's reply to the post."""
        published = await self._tweet(request, http, reply_to=str(post["id"]))
        return {"id": published.platform_post_id, "url": published.url}

    async def _tweet(self, request: PublishRequest, http: httpx.AsyncClient, *, reply_to: str | None) -> Published:
        """``POST /2/tweets`` with ``request.content`` (its media uploaded first), replying to ``reply_to``."""
        token = request.credentials["access_token"]
        media_ids = [await self._upload(http, token, m, request.deadline) for m in request.content.media]
        body: dict[str, Any] = {}
        if request.content.text:
            body["text"] = request.content.text
        if media_ids:
            body["media"] = {"media_ids": media_ids}
        if reply_to is not None:
            body["reply"] = {"in_reply_to_tweet_id": reply_to}
        _check_deadline(request.deadline)
        response = await send(http, "POST", f"{self._base}/2/tweets", idempotent=False, json=body, headers=_auth(token))
        if not response.is_success:
            raise _failure(response)
        post_id = (json_or_empty(response).get("data") or {}).get("id")
        if not post_id:
            raise PlatformError(Outcome.UNKNOWN, "no_post_id", "x accepted the post but did not say its id", response.status_code)
        return Published(str(post_id), _post_url(request.metadata, str(post_id)), response.status_code)

    async def lookup(self, request: PublishRequest, http: httpx.AsyncClient) -> Published | None:
        """The account's post from the last 24 h with exactly this text and media count, if any.

        Sound because X refuses a post duplicating a recent one: if an identical post is live, this
        content is live and sending it again could not add another. A post whose URLs X rewrote
        differently fails to match; resending it then ends as a PERMANENT "duplicate", never twice.
        Raises UNKNOWN when the window holds more than one page (100) of posts.
        """
        since = (clock.utcnow() - LOOKUP_WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = {"max_results": "100", "start_time": since, "exclude": "retweets,replies",
                  "tweet.fields": "entities,attachments,created_at"}
        response = await send(http, "GET", f"{self._base}/2/users/{request.account_id}/tweets", idempotent=True,
                              params=params, headers=_auth(request.credentials["access_token"]))
        if not response.is_success:
            raise _failure(response)
        answer = json_or_empty(response)
        wanted = _comparable(request.content.text)
        for post in answer.get("data") or []:
            media_keys = (post.get("attachments") or {}).get("media_keys") or []
            if _comparable(_original_text(post)) == wanted and len(media_keys) == len(request.content.media):
                return Published(str(post["id"]), _post_url(request.metadata, str(post["id"])))
        if (answer.get("meta") or {}).get("next_token"):
            raise PlatformError(Outcome.UNKNOWN, "lookup_incomplete",
                                "x: too many recent posts to be sure this one is not among them")
        return None

    async def metrics(self, request: MetricsRequest, http: httpx.AsyncClient) -> Metrics:
        """``GET /2/tweets/{id}?tweet.fields=public_metrics[,non_public_metrics]`` (docs.x.com/x-api/fundamentals/metrics).

        ``public_metrics`` gives like, reply, retweet, quote, bookmark and impression counts;
        ``non_public_metrics`` (the author's own posts, user context, 30 days) adds ``url_link_clicks``
        and is asked only while ``published_at`` is that recent. A deleted post answers 200 with
        ``errors`` and no ``data`` (PERMANENT); 401 is AUTH, 429 RATE_LIMITED until its window resets.
        The read counts against the X app's monthly Post reads, never against posting limits.
        """
        fields = "public_metrics"
        if request.published_at is not None and clock.utcnow() - request.published_at < NON_PUBLIC_WINDOW:
            fields += ",non_public_metrics"
        check_deadline(request.deadline, self.name)
        response = await send(http, "GET", f"{self._base}/2/tweets/{request.platform_post_id}", idempotent=True,
                              params={"tweet.fields": fields}, headers=_auth(request.credentials["access_token"]))
        if not response.is_success:
            raise _failure(response)
        answer = json_or_empty(response)
        post = answer.get("data")
        if not isinstance(post, dict):
            raise _unreadable(answer, response.status_code)
        public, private = post.get("public_metrics") or {}, post.get("non_public_metrics") or {}
        impressions = count(public.get("impression_count"))
        return Metrics(likes=count(public.get("like_count")), comments=count(public.get("reply_count")),
                       shares=total(public.get("retweet_count"), public.get("quote_count")),
                       impressions=impressions if impressions is not None else count(private.get("impression_count")),
                       clicks=count(private.get("url_link_clicks")), saves=count(public.get("bookmark_count")),
                       raw={key: value for key, value in (("public_metrics", public), ("non_public_metrics", private))
                            if value})

    async def _call(self, http: httpx.AsyncClient, method: str, path: str, token: str, deadline: float | None,
                    **kwargs: Any) -> dict[str, Any]:
        """One media request: repeating it only leaves an unused upload behind, so it is idempotent."""
        _check_deadline(deadline)
        response = await send(http, method, f"{self._base}{path}", idempotent=True, headers=_auth(token), **kwargs)
        if not response.is_success:
            raise _failure(response)
        return json_or_empty(response).get("data") or {}

    async def _upload(self, http: httpx.AsyncClient, token: str, media: Media, deadline: float | None) -> str:
        """Upload one media item and return its media id (after processing, for video and GIF)."""
        _check_deadline(deadline)
        limit = VIDEO_MAX_BYTES if media.type == "video" else IMAGE_OR_GIF_MAX_BYTES
        file = await fetch_media(http, media, platform="x", max_bytes=limit, allow_private=self._allow_private)
        if media.type == "image" and file.content_type != "image/gif":
            data = await self._call(http, "POST", "/2/media/upload", token, deadline,
                                    data={"media_category": "tweet_image"},
                                    files={"media": ("media", file.data, file.content_type)})
            media_id = str(data["id"])
        else:
            category = "tweet_gif" if file.content_type == "image/gif" else "tweet_video"
            started = await self._call(http, "POST", "/2/media/upload/initialize", token, deadline, json={
                "media_type": file.content_type, "total_bytes": len(file.data), "media_category": category})
            media_id = str(started["id"])
            for index, offset in enumerate(range(0, len(file.data), CHUNK_BYTES)):
                await self._call(http, "POST", f"/2/media/upload/{media_id}/append", token, deadline,
                                 data={"segment_index": str(index)},
                                 files={"media": ("chunk", file.data[offset:offset + CHUNK_BYTES], "application/octet-stream")})
            finished = await self._call(http, "POST", f"/2/media/upload/{media_id}/finalize", token, deadline)
            await self._await_processing(http, token, media_id, finished.get("processing_info"), deadline)
        if media.alt and media.type == "image":  # X takes alt text for images and GIFs only
            await self._call(http, "POST", "/2/media/metadata", token, deadline,
                             json={"id": media_id, "metadata": {"alt_text": {"text": media.alt}}})
        return media_id

    async def _await_processing(self, http: httpx.AsyncClient, token: str, media_id: str,
                                info: dict[str, Any] | None, deadline: float | None) -> None:
        """Poll STATUS as X asks (``check_after_secs``) until the media succeeded; never past ``deadline``."""
        while info and info.get("state") != "succeeded":
            if info.get("state") == "failed":
                reason = (info.get("error") or {}).get("message") or "no reason given"
                raise PlatformError(Outcome.PERMANENT, "media_failed", f"x could not process the media: {reason}")
            wait = float(info.get("check_after_secs") or 1)
            if deadline is not None and time.monotonic() + wait >= deadline:
                raise PlatformError(Outcome.TRANSIENT, "media_processing",
                                    "x: the media was still processing when this run's time ran out")
            await _sleep(wait)
            status = await self._call(http, "GET", "/2/media/upload", token, deadline,
                                      params={"command": "STATUS", "media_id": media_id})
            info = status.get("processing_info")

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        return await self._me(http, credentials["access_token"])

    async def _me(self, http: httpx.AsyncClient, token: str) -> AccountInfo:
        response = await send(http, "GET", f"{self._base}/2/users/me", idempotent=True, headers=_auth(token))
        if not response.is_success:
            raise _failure(response)
        user = json_or_empty(response).get("data") or {}
        return AccountInfo(account_id=str(user["id"]), name=str(user.get("name") or user.get("username")),
                           metadata={"username": user.get("username")})

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        query = {"response_type": "code", "client_id": self._require_client_id(), "redirect_uri": redirect_uri,
                 "scope": SCOPES, "state": state, "code_challenge": code_challenge, "code_challenge_method": "S256"}
        return f"{self._oauth}{AUTHORIZE_PATH}?{urlencode(query)}"

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None,
                            http: httpx.AsyncClient) -> tuple[TokenSet, AccountInfo]:
        body = await self._token(http, {"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": redirect_uri, "code_verifier": code_verifier or ""})
        tokens = TokenSet.from_answer({}, body, keep=("refresh_token", "scope"))
        return tokens, await self._me(http, tokens.credentials["access_token"])

    async def refresh(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> TokenSet:
        """A new access token and, X rotating them, a new refresh token: the old one is now spent."""
        if not credentials.get("refresh_token"):
            raise PlatformError(Outcome.AUTH, "no_refresh_token", "x: no refresh token; reconnect the account")
        body = await self._token(http, {"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"]})
        return TokenSet.from_answer(credentials, body, keep=("refresh_token", "scope"))

    def _require_client_id(self) -> str:
        if not self._client_id:
            raise PlatformError(Outcome.PERMANENT, "oauth_not_configured", "x: no OAuth client id is configured")
        return self._client_id

    async def _token(self, http: httpx.AsyncClient, form: dict[str, str]) -> dict[str, Any]:
        # Confidential clients authenticate with HTTP Basic; public (PKCE-only) clients send client_id alone.
        auth = (self._require_client_id(), self._client_secret) if self._client_secret else None
        response = await send(http, "POST", f"{self._base}/2/oauth2/token", idempotent=True,
                              data={**form, "client_id": self._require_client_id()}, auth=auth)
        body = json_or_empty(response)
        if response.status_code == 429:  # a throttle, not a refusal: reconnecting would not help
            raise _failure(response)
        if response.status_code >= 500:
            raise PlatformError(Outcome.TRANSIENT, f"http_{response.status_code}", "x: the token endpoint failed",
                                response.status_code)
        if not response.is_success or not body.get("access_token"):
            reason = body.get("error_description") or body.get("error") or response.reason_phrase
            raise PlatformError(Outcome.AUTH, "token_refused", f"x refused the token request: {reason}", response.status_code)
        return body


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise PlatformError(Outcome.TRANSIENT, "deadline_reached", "x: this run's time ran out before the post was sent")

