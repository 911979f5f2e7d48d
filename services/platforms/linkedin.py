"""LinkedIn: text and image posts through the versioned Posts API, as a member or an organization.

Channel: ``account_id`` is the member id (OpenID ``sub``); the author is ``metadata.author_urn``
when set (e.g. ``urn:li:organization:123``), else built from ``account_id`` and
``metadata.author_type`` (``person`` by default). Credentials: ``access_token`` (60 days) and,
for partner apps only, ``refresh_token``. Video is not supported yet: validate() rejects it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from services import clock
from services.domain.models import Content, Media, Outcome
from services.platforms.base import AccountInfo, Feature, PlatformError, Problem, Published, PublishRequest, TokenSet
from services.platforms.httpcall import json_or_empty, send
from services.platforms.mediafile import fetch_media

#: Marketing API version, pinned. 202607 is the newest version in our reference (compiled
#: 2026-11 from Microsoft Learn); LinkedIn serves each version at least 12 months, so it holds
#: until 2027-07 at the earliest. A sunset version answers 426; bump it here, then re-run the tests.
LINKEDIN_VERSION = "202607"
SCOPES = "openid profile w_member_social"
MAX_TEXT = 3000
MAX_IMAGES = 20
#: a memory guard for the fetch, not a LinkedIn rule (its image limit is in pixels)
IMAGE_MAX_BYTES = 50 * 1024 * 1024
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


class LinkedInPlatform:
    name = "linkedin"
    features = frozenset({Feature.OAUTH, Feature.REFRESH, Feature.VERIFY, Feature.FIRST_COMMENT})
    required_credentials: tuple[str, ...] = ("access_token",)
    uses_pkce = False

    def __init__(self, base_url: str = "https://api.linkedin.com", *, client_id: str | None = None,
                 client_secret: str | None = None, oauth_url: str = "https://www.linkedin.com",
                 allow_private: bool = False):
        self._base = base_url.rstrip("/")
        self._oauth = oauth_url.rstrip("/")
        self._client_id, self._client_secret = client_id, client_secret
        self._allow_private = allow_private  #: media URLs may be private hosts (local testing only)

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        problems = []
        if not content.text.strip() and not content.media:
            problems.append(Problem("content.text", "linkedin: a post needs text or media"))
        if len(content.text) > MAX_TEXT:
            problems.append(Problem("content.text", f"linkedin: text is {len(content.text)} characters; the limit is {MAX_TEXT}"))
        if any(m.type != "image" for m in content.media):
            problems.append(Problem("content.media", "linkedin: only images can be posted for now; video is not supported yet"))
        elif len(content.media) > MAX_IMAGES:
            problems.append(Problem("content.media", f"linkedin: {len(content.media)} images; the limit is {MAX_IMAGES}"))
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
        token, author = request.credentials["access_token"], _author(request)
        images = [{"id": await self._upload_image(http, token, author, m), "altText": m.alt or ""}
                  for m in request.content.media]
        body: dict[str, Any] = {
            "author": author, "commentary": escape_commentary(request.content.text), "visibility": "PUBLIC",
            "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
            "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": False,
        }
        if len(images) == 1:
            body["content"] = {"media": images[0]}
        elif images:
            body["content"] = {"multiImage": {"images": images}}
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
        tokens = _token_set({}, body)
        return tokens, await self._userinfo(http, tokens.credentials["access_token"])

    async def refresh(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> TokenSet:
        """Only LinkedIn-approved partner apps get refresh tokens; everyone else reconnects every 60 days."""
        if not credentials.get("refresh_token"):
            raise PlatformError(Outcome.AUTH, "no_refresh_token",
                                "linkedin: the token expired and LinkedIn gives this app no refresh token; reconnect the account")
        body = await self._token(http, {"grant_type": "refresh_token", "refresh_token": credentials["refresh_token"]})
        return _token_set(credentials, body)

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


def _token_set(previous: dict[str, Any], body: dict[str, Any]) -> TokenSet:
    credentials = {**previous, "access_token": body["access_token"]}
    if body.get("refresh_token"):
        credentials["refresh_token"] = body["refresh_token"]
    expires_in = body.get("expires_in")
    expires_at = clock.utcnow() + timedelta(seconds=int(expires_in)) if isinstance(expires_in, int) else None
    return TokenSet(credentials=credentials, expires_at=expires_at)
