"""Threads: text, image, video and carousel posts through media containers on graph.threads.net.

Channel: ``account_id`` is the Threads user id; ``credentials.access_token`` is a long-lived
Threads token (60 days, refreshed with ``th_refresh_token``). Resume works as on Instagram
(``meta.Containers``): once the container exists its id is kept (``details["container_id"]``,
``request.progress``) and handed back in ``request.resume``. Metrics are the post's insights
(``threads_manage_insights``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import httpx

from services.domain.models import Content, Media
from services.platforms import meta
from services.platforms.base import AccountInfo, Feature, Metrics, MetricsRequest, Problem, PublishRequest, TokenSet
from services.platforms.figures import count, total
from services.platforms.httpcall import check_deadline
from services.platforms.medialimits import MB, MediaLimits

#: Threads' own API version, separate from the Graph API's
THREADS_VERSION = "v1.0"
MAX_TEXT = 500
MAX_LINKS = 5
#: 2 or more media make a carousel. 20 comes from third-party sources (unconfirmed): the part of
#: Meta's posts page we could read does not give the number.
MAX_CAROUSEL = 20
#: threads_manage_insights reads a post's insights (metrics); the others publish
SCOPES = "threads_basic,threads_content_publish,threads_manage_insights"
#: Threads Insights API, Media Insights (developers.facebook.com/documentation/threads/insights, updated
#: 2026-01-30): views, likes, replies, reposts, quotes and shares ("in development", as is views), lifetime
#: totals, nested replies not included
INSIGHTS = ("views", "likes", "replies", "reposts", "quotes", "shares")
_LINK = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)


def _is_emoji_part(char: str) -> bool:
    """Code points of emoji and their sequences (ZWJ, variation selector, keycap, tags)."""
    point = ord(char)
    return (0x1F000 <= point <= 0x1FAFF or 0x2600 <= point <= 0x27BF or 0x2B00 <= point <= 0x2BFF
            or point in (0x200D, 0xFE0F, 0x20E3) or 0xE0020 <= point <= 0xE007F)


def text_length(text: str) -> int:
    """Length as Threads counts it: Meta's posts page (updated 2026-04-14) says "Emojis are counted
    as the number of UTF-8 bytes", so an emoji's code points count their bytes, others count 1."""
    return sum(len(c.encode()) if _is_emoji_part(c) else 1 for c in text)


#: Threads' media specifications: JPEG/PNG images up to 8 MB, at most 10:1; MP4/MOV video up to 1 GB and 5 min
_MEDIA_LIMITS = MediaLimits(
    "Threads", image_bytes=8 * MB, image_types=("image/jpeg", "image/png"), video_bytes=1024 * MB,
    video_types=("video/mp4", "video/quicktime"), video_seconds=(0, 5 * 60), image_aspect=(0.1, 10.0))


class ThreadsPlatform(meta.ContainerPlatform):
    name = "threads"
    features = frozenset({Feature.OAUTH, Feature.REFRESH, Feature.LOOKUP, Feature.VERIFY, Feature.METRICS})
    required_credentials: tuple[str, ...] = ("access_token",)
    uses_pkce = False

    def __init__(self, base_url: str = "https://graph.threads.net", *, client_id: str | None = None,
                 client_secret: str | None = None, dialog_url: str = "https://threads.net",
                 poll_seconds: float = meta.POLL_SECONDS):
        self._base = base_url.rstrip("/")
        self._graph = f"{self._base}/{THREADS_VERSION}"
        self._dialog = f"{dialog_url.rstrip('/')}/oauth/authorize"
        self._client_id, self._client_secret = client_id, client_secret
        self._containers = meta.Containers(
            platform=self.name, graph=self._graph, media_edge="threads", publish_edge="threads_publish",
            quota_edge="threads_publishing_limit", status_fields="status,error_message", state_field="status",
            text_field="text", poll_seconds=poll_seconds)

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return _MEDIA_LIMITS

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        problems = []
        if not content.text.strip() and not content.media:
            problems.append(Problem("content.text", "threads: a post needs text or media"))
        length = text_length(content.text)
        if length > MAX_TEXT:
            problems.append(Problem("content.text", f"threads: text is {length} characters (emoji count as their "
                                                    f"UTF-8 bytes); the limit is {MAX_TEXT}"))
        links = len(set(_LINK.findall(content.text)))
        if links > MAX_LINKS:
            problems.append(Problem("content.text", f"threads: {links} links; the limit is {MAX_LINKS}"))
        if any(m.type not in ("image", "video") for m in content.media):
            problems.append(Problem("content.media", "threads: media must be images or videos"))
        if len(content.media) > MAX_CAROUSEL:
            problems.append(Problem("content.media",
                                    f"threads: {len(content.media)} media; a carousel takes at most {MAX_CAROUSEL}"))
        return problems

    async def _create(self, http: httpx.AsyncClient, request: PublishRequest) -> str:
        token, user, media = request.credentials["access_token"], request.account_id, request.content.media
        text = {"text": request.content.text} if request.content.text else {}
        if len(media) <= 1:
            form = {**_item(media[0]), **text} if media else {"media_type": "TEXT", **text}
            return await self._containers.create(http, token, user, form)
        children = []
        for item in media:
            child = await self._containers.create(http, token, user, {"is_carousel_item": "true", **_item(item)})
            await self._containers.settle(http, token, child, request.deadline)
            children.append(child)
        return await self._containers.create(http, token, user,
                                             {"media_type": "CAROUSEL", "children": ",".join(children), **text})

    async def metrics(self, request: MetricsRequest, http: httpx.AsyncClient) -> Metrics:
        """``GET /{threads-media-id}/insights?metric=views,likes,replies,reposts,quotes,shares``.

        Without threads_manage_insights (channels connected before Herald asked for it) Meta refuses
        with a permission code: PERMANENT ``insights_not_permitted``, saying to reconnect. A deleted
        post answers code 100 (PERMANENT), a dead token 190 (AUTH). Shares counts every way the post
        was passed on: reposts, quotes and shares (sent elsewhere); each stays in ``raw``.
        """
        check_deadline(request.deadline, self.name)
        insights = await meta.read_insights(http, f"{self._graph}/{request.platform_post_id}/insights", platform=self.name,
                                            token=request.credentials["access_token"], metrics=INSIGHTS,
                                            permission="threads_manage_insights")
        return Metrics(likes=count(insights.get("likes")), comments=count(insights.get("replies")),
                       shares=total(insights.get("reposts"), insights.get("quotes"), insights.get("shares")),
                       impressions=count(insights.get("views")), raw=insights)

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        return await self._me(http, credentials["access_token"])

    async def _me(self, http: httpx.AsyncClient, token: str) -> AccountInfo:
        body, _ = await meta.call_graph(http, "GET", f"{self._graph}/me", platform=self.name, idempotent=True,
                                        params={"fields": "id,username"}, headers=meta.bearer(token))
        return AccountInfo(account_id=str(body["id"]), name=str(body.get("username") or body["id"]))

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        client_id, _ = meta.require_client(self.name, self._client_id, self._client_secret)
        query = {"client_id": client_id, "redirect_uri": redirect_uri, "scope": SCOPES, "response_type": "code",
                 "state": state}
        return f"{self._dialog}?{urlencode(query)}"

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None,
                            http: httpx.AsyncClient) -> tuple[TokenSet, AccountInfo]:
        client_id, secret = meta.require_client(self.name, self._client_id, self._client_secret)
        short = await meta.fetch_token(http, "POST", f"{self._base}/oauth/access_token", platform=self.name, data={
            "client_id": client_id, "client_secret": secret, "grant_type": "authorization_code",
            "redirect_uri": redirect_uri, "code": code})
        long = await meta.fetch_token(http, "GET", f"{self._base}/access_token", platform=self.name, params={
            "grant_type": "th_exchange_token", "client_secret": secret, "access_token": short["access_token"]})
        tokens = meta.token_set({}, long)
        return tokens, await self._me(http, tokens.credentials["access_token"])

    async def refresh(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> TokenSet:
        """A long-lived token at least 24 hours old and unexpired, traded for one of 60 days."""
        body = await meta.fetch_token(http, "GET", f"{self._base}/refresh_access_token", platform=self.name, params={
            "grant_type": "th_refresh_token", "access_token": credentials["access_token"]})
        return meta.token_set(credentials, body)


def _item(media: Media) -> dict[str, str]:
    form = ({"media_type": "VIDEO", "video_url": media.url} if media.type == "video"
            else {"media_type": "IMAGE", "image_url": media.url})
    return {**form, **({"alt_text": media.alt} if media.alt else {})}
