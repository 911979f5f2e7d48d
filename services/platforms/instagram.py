"""Instagram (API with Facebook Login): images, reels, carousels and stories through media containers.

Channel: ``account_id`` is the Instagram professional account id; ``credentials.access_token`` is
the long-lived Facebook user token (~60 days). ``metadata.ig_type`` is ``"feed"`` (default: one
image, one reel, or a carousel of 2-10) or ``"story"`` (one image or video, no caption). The
choice lives on the channel because ``Content.for_platform`` drops override keys other than
text and media before an adapter sees the post.

Resume (see ``meta.Containers.publish``): a failure after the container exists carries
``details["container_id"]`` (and ``request.progress`` has it as soon as it exists); the next
attempt gets it back in ``request.resume`` so the same container is polled, reconciled or
published, never a second.

Metrics: ``like_count`` and ``comments_count`` of the media object (scopes publishing holds), and
its insights (``instagram_manage_insights``): views, reach, shares, saved, total_interactions.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import httpx

from services.domain.models import Content, Media, Outcome
from services.platforms import meta
from services.platforms.base import (
    AccountInfo,
    Feature,
    Metrics,
    MetricsRequest,
    PlatformError,
    Problem,
    PublishRequest,
    TokenSet,
)
from services.platforms.figures import count
from services.platforms.httpcall import check_deadline
from services.platforms.medialimits import MB, MediaLimits

MAX_CAPTION = 2200
MAX_HASHTAGS = 30
MAX_MENTIONS = 20
MAX_CAROUSEL = 10  #: 2 or more media make a carousel
#: instagram_manage_insights reads media insights (metrics); the others publish
SCOPES = "instagram_basic,instagram_content_publish,pages_show_list,pages_read_engagement,instagram_manage_insights"
#: Instagram Media Insights (developers.facebook.com/documentation/instagram-platform/reference/instagram-media/insights,
#: updated 2026-06-18): ``views`` replaced ``impressions`` (retired for all versions 2025-04-21). A metric the media's
#: product type does not support fails the whole request (#100 "does not support the ... metric for this media
#: product type"), so each type asks only for its own: FEED (posts, carousels) and REELS take views, reach, shares,
#: saved and total_interactions; a STORY takes views, reach, shares, replies and total_interactions.
FEED_METRICS = ("views", "reach", "shares", "saved", "total_interactions")
STORY_METRICS = ("views", "reach", "shares", "replies", "total_interactions")
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_MENTION = re.compile(r"(?<!\w)@[\w.]+")


#: Meta's content publishing reference: JPEG images up to 8 MB, 4:5 to 1.91:1; reels MP4/MOV, 3 s to 15 min, up to 300 MB
_MEDIA_LIMITS = MediaLimits(
    "Instagram", image_bytes=8 * MB, image_types=("image/jpeg",), video_bytes=300 * MB,
    video_types=("video/mp4", "video/quicktime"), video_seconds=(3, 15 * 60), image_aspect=(0.8, 1.91))
#: a story is full-screen (9:16): the feed's aspect range and the reel's length do not apply
_STORY_LIMITS = replace(_MEDIA_LIMITS, image_aspect=None, video_seconds=None)


class InstagramPlatform(meta.ContainerPlatform):
    name = "instagram"
    features = frozenset({Feature.OAUTH, Feature.REFRESH, Feature.LOOKUP, Feature.VERIFY, Feature.METRICS})
    required_credentials: tuple[str, ...] = ("access_token",)
    uses_pkce = False

    def __init__(self, base_url: str = "https://graph.facebook.com", *, client_id: str | None = None,
                 client_secret: str | None = None, dialog_url: str = "https://www.facebook.com",
                 poll_seconds: float = meta.POLL_SECONDS):
        self._graph = f"{base_url.rstrip('/')}/{meta.GRAPH_VERSION}"
        self._dialog = f"{dialog_url.rstrip('/')}/{meta.GRAPH_VERSION}/dialog/oauth"
        self._client_id, self._client_secret = client_id, client_secret
        self._containers = meta.Containers(
            platform=self.name, graph=self._graph, media_edge="media", publish_edge="media_publish",
            quota_edge="content_publishing_limit", status_fields="status_code,status", state_field="status_code",
            text_field="caption", poll_seconds=poll_seconds)

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return _STORY_LIMITS if metadata.get("ig_type") == "story" else _MEDIA_LIMITS

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        kind = (metadata or {}).get("ig_type", "feed")
        if kind not in ("feed", "story"):
            return [Problem("metadata.ig_type", f'instagram: ig_type must be "feed" or "story", not {kind!r}')]
        problems = []
        media = content.media
        if any(m.type not in ("image", "video") for m in media):
            problems.append(Problem("content.media", "instagram: media must be images or videos"))
        if kind == "story":
            if len(media) != 1:
                problems.append(Problem("content.media", f"instagram: a story is exactly 1 image or video, not {len(media)}"))
            if content.text:
                problems.append(Problem("content.text", "instagram: stories have no caption; set the Instagram text to empty"))
            return problems
        if not media:
            problems.append(Problem("content.media",
                                    "instagram: posts need at least 1 image or video; text-only posts are not possible"))
        elif len(media) > MAX_CAROUSEL:
            problems.append(Problem("content.media", f"instagram: {len(media)} media; a carousel takes at most {MAX_CAROUSEL}"))
        if len(content.text) > MAX_CAPTION:
            problems.append(Problem("content.text",
                                    f"instagram: caption is {len(content.text)} characters; the limit is {MAX_CAPTION}"))
        if len(_HASHTAG.findall(content.text)) > MAX_HASHTAGS:
            problems.append(Problem("content.text", f"instagram: more than {MAX_HASHTAGS} hashtags"))
        if len(_MENTION.findall(content.text)) > MAX_MENTIONS:
            problems.append(Problem("content.text", f"instagram: more than {MAX_MENTIONS} @mentions"))
        return problems

    async def _create(self, http: httpx.AsyncClient, request: PublishRequest) -> str:
        token, user, media = request.credentials["access_token"], request.account_id, request.content.media
        caption = {"caption": request.content.text} if request.content.text else {}
        if request.metadata.get("ig_type") == "story":
            return await self._containers.create(http, token, user, {"media_type": "STORIES", **_source(media[0])})
        if len(media) == 1:
            form = {**_single(media[0]), **caption}
            return await self._containers.create(http, token, user, form)
        children = []
        for item in media:
            child = await self._containers.create(http, token, user, {"is_carousel_item": "true", **_child(item)})
            # Meta rejects a carousel whose items are still processing (videos take a while).
            await self._containers.settle(http, token, child, request.deadline)
            children.append(child)
        return await self._containers.create(http, token, user, {
            "media_type": "CAROUSEL", "children": ",".join(children), **caption})

    async def metrics(self, request: MetricsRequest, http: httpx.AsyncClient) -> Metrics:
        """The media's figures: likes and comments from the media object, the rest from its insights.

        ``GET /{media-id}?fields=like_count,comments_count,media_product_type`` needs only the scopes
        publishing holds (IG Media reference, updated 2026-06-22); a deleted media answers code 100
        (PERMANENT), a dead token 190 (AUTH), a throttle its BUC wait (RATE_LIMITED). Insights may be
        refused while the media is readable: for want of instagram_manage_insights (channels connected
        before Herald asked for it), a story past its 24 hours, "(#10) Not enough viewers". The media's
        own counts are returned then, with Meta's reason in ``raw["insights_error"]``.
        """
        token, media = request.credentials["access_token"], request.platform_post_id
        check_deadline(request.deadline, self.name)
        body, _ = await meta.call_graph(http, "GET", f"{self._graph}/{media}", platform=self.name, idempotent=True,
                                        params={"fields": "like_count,comments_count,media_product_type"},
                                        headers=meta.bearer(token))
        story = body.get("media_product_type") == "STORY"
        raw: dict[str, Any] = {k: body[k] for k in ("like_count", "comments_count", "media_product_type") if k in body}
        insights: dict[str, Any] = {}
        check_deadline(request.deadline, self.name)
        try:
            insights = await meta.read_insights(http, f"{self._graph}/{media}/insights", platform=self.name, token=token,
                                                metrics=STORY_METRICS if story else FEED_METRICS,
                                                permission="instagram_manage_insights")
        except PlatformError as exc:
            if exc.outcome is not Outcome.PERMANENT:
                raise
            raw["insights_error"] = exc.message
        raw.update(insights)
        # A story has no like count; its replies (private messages) are the nearest thing to comments.
        return Metrics(likes=None if story else count(body.get("like_count")),
                       comments=count(insights.get("replies")) if story else count(body.get("comments_count")),
                       shares=count(insights.get("shares")), impressions=count(insights.get("views")),
                       saves=None if story else count(insights.get("saved")), raw=raw)

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        return await self._account(http, credentials["access_token"])

    async def _account(self, http: httpx.AsyncClient, token: str) -> AccountInfo:
        """The one Instagram professional account linked to the Pages this token may manage."""
        body, _ = await meta.call_graph(http, "GET", f"{self._graph}/me/accounts", platform=self.name, idempotent=True,
                                        params={"fields": "instagram_business_account{id,username}"},
                                        headers=meta.bearer(token))
        accounts = [page["instagram_business_account"] for page in body.get("data") or []
                    if isinstance(page.get("instagram_business_account"), dict)]
        if len(accounts) != 1:
            raise PlatformError(Outcome.PERMANENT, "not_one_account",
                                f"instagram: this login reaches {len(accounts)} Instagram professional accounts; "
                                "grant access to exactly one (through its Facebook Page)")
        account = accounts[0]
        return AccountInfo(account_id=str(account["id"]), name=str(account.get("username") or account["id"]))

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        client_id, _ = meta.require_client(self.name, self._client_id, self._client_secret)
        return meta.login_dialog_url(self._dialog, client_id, state=state, redirect_uri=redirect_uri, scopes=SCOPES)

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None,
                            http: httpx.AsyncClient) -> tuple[TokenSet, AccountInfo]:
        client_id, secret = meta.require_client(self.name, self._client_id, self._client_secret)
        long = await meta.user_token_from_code(http, self._graph, platform=self.name, client_id=client_id,
                                               client_secret=secret, redirect_uri=redirect_uri, code=code)
        tokens = meta.token_set({}, long)
        return tokens, await self._account(http, tokens.credentials["access_token"])

    async def refresh(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> TokenSet:
        """Trade the still-valid user token for a fresh long-lived one; an expired one needs a reconnect."""
        client_id, secret = meta.require_client(self.name, self._client_id, self._client_secret)
        body = await meta.long_lived_user_token(http, self._graph, platform=self.name, client_id=client_id,
                                                client_secret=secret, token=credentials["access_token"])
        return meta.token_set(credentials, body)


def _source(media: Media) -> dict[str, str]:
    return {"video_url": media.url} if media.type == "video" else {"image_url": media.url}


def _single(media: Media) -> dict[str, str]:
    """A feed post of one item: videos are reels (Meta retired feed VIDEO), shown in the feed too."""
    if media.type == "video":
        return {"media_type": "REELS", "video_url": media.url, "share_to_feed": "true"}
    return {"image_url": media.url, **({"alt_text": media.alt} if media.alt else {})}


def _child(media: Media) -> dict[str, str]:
    return {"media_type": "VIDEO", "video_url": media.url} if media.type == "video" else {"image_url": media.url}
