"""Facebook Pages: text and link posts, one photo, several photos, or one video, as the Page.

Channel: ``account_id`` is the Page id; ``credentials.access_token`` is a Page token read with a
long-lived user token, which does not expire until the user's password or Page role changes
(community sources; unconfirmed). So there is no ``refresh``: a refused token needs a reconnect.
The first URL in the text becomes the post's ``link`` (its preview card) unless
``metadata.link_preview`` is false. Metrics are the post's (or video's) insights (``read_insights``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from services.domain.models import Content, Outcome
from services.platforms import meta
from services.platforms.base import (
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
from services.platforms.httpcall import check_deadline
from services.platforms.medialimits import MediaLimits

MAX_TEXT = 63_206
#: read_insights reads Page post insights (metrics); the others publish
SCOPES = "pages_show_list,pages_read_engagement,pages_manage_posts,read_insights"
#: Page post insights, lifetime (developers.facebook.com/docs/graph-api/reference/insights). post_media_view
#: replaced post_impressions, retired for all versions 2025-11-15 (developers.facebook.com/documentation/pages-api/
#: changelog); post_reactions_by_type_total is {"like": n, "love": n, ...}; post_activity_by_action_type is
#: {"like": n, "comment": n, "share": n}. Reactions and comments as fields (reactions.summary, comments.summary)
#: would need pages_read_user_content, which Herald does not ask for.
POST_INSIGHTS = ("post_media_view", "post_clicks", "post_reactions_by_type_total", "post_activity_by_action_type")
#: a video is measured on its own node: GET /{video-id}/video_insights (developers.facebook.com/docs/video-api/
#: guides/insights: pages_read_engagement and the ANALYZE task on the Page)
VIDEO_INSIGHTS = ("total_video_views",)
_URL = re.compile(r"https?://\S+")


#: no size Herald has confirmed (4 MB photos is a third-party figure): reachability and type only
_MEDIA_LIMITS = MediaLimits("Facebook")


class FacebookPlatform:
    name = "facebook"
    features = frozenset({Feature.OAUTH, Feature.VERIFY, Feature.METRICS})
    required_credentials: tuple[str, ...] = ("access_token",)
    uses_pkce = False

    def __init__(self, base_url: str = "https://graph.facebook.com", *, client_id: str | None = None,
                 client_secret: str | None = None, video_url: str = "https://graph-video.facebook.com",
                 dialog_url: str = "https://www.facebook.com"):
        self._graph = f"{base_url.rstrip('/')}/{meta.GRAPH_VERSION}"
        self._video = f"{video_url.rstrip('/')}/{meta.GRAPH_VERSION}"
        self._dialog = f"{dialog_url.rstrip('/')}/{meta.GRAPH_VERSION}/dialog/oauth"
        self._client_id, self._client_secret = client_id, client_secret

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return _MEDIA_LIMITS

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        problems = []
        if not content.text.strip() and not content.media:
            problems.append(Problem("content.text", "facebook: a post needs text or media"))
        if len(content.text) > MAX_TEXT:
            problems.append(Problem("content.text", f"facebook: text is {len(content.text)} characters; the limit is {MAX_TEXT}"))
        kinds = {m.type for m in content.media}
        if kinds - {"image", "video"}:
            problems.append(Problem("content.media", "facebook: media must be images or videos"))
        elif "video" in kinds and len(content.media) > 1:
            problems.append(Problem("content.media", "facebook: a video is posted alone: 1 video, or photos only"))
        return problems

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        token, page, media = request.credentials["access_token"], request.account_id, request.content.media
        message = {"message": request.content.text} if request.content.text else {}
        if not media:
            form = {**message, **self._link(request)}
            body, status = await self._post(http, f"{self._graph}/{page}/feed", token, form, idempotent=False)
            post_id = str(body["id"])
        elif media[0].type == "video":
            form = {"file_url": media[0].url, **({"description": request.content.text} if request.content.text else {})}
            body, status = await self._post(http, f"{self._video}/{page}/videos", token, form, idempotent=False)
            post_id = str(body["id"])  # the video id; its permalink_url is the video's page
        elif len(media) == 1:
            body, status = await self._post(http, f"{self._graph}/{page}/photos", token,
                                            {"url": media[0].url, **message}, idempotent=False)
            post_id = str(body.get("post_id") or body["id"])
        else:
            photo_ids = []
            for item in media:
                # Unpublished photos are invisible until attached, so repeating one is harmless.
                photo, _ = await self._post(http, f"{self._graph}/{page}/photos", token,
                                            {"url": item.url, "published": "false"}, idempotent=True)
                photo_ids.append({"media_fbid": str(photo["id"])})
            body, status = await self._post(http, f"{self._graph}/{page}/feed", token,
                                            {**message, "attached_media": json.dumps(photo_ids)}, idempotent=False)
            post_id = str(body["id"])
        return Published(post_id, await self._permalink(http, token, post_id), status)

    def _link(self, request: PublishRequest) -> dict[str, str]:
        if request.metadata.get("link_preview") is False:
            return {}
        found = _URL.search(request.content.text)
        return {"link": found.group().rstrip(".,;:!?)")} if found else {}

    async def _post(self, http: httpx.AsyncClient, url: str, token: str, form: dict[str, str], *,
                    idempotent: bool) -> tuple[dict[str, Any], int]:
        return await meta.call_graph(http, "POST", url, platform=self.name, idempotent=idempotent, data=form,
                                     headers=meta.bearer(token))

    async def _permalink(self, http: httpx.AsyncClient, token: str, post_id: str) -> str:
        """The post's ``permalink_url``, or the www.facebook.com/{id} form when it cannot be read (it is live)."""
        try:
            body, _ = await meta.call_graph(http, "GET", f"{self._graph}/{post_id}", platform=self.name, idempotent=True,
                                            params={"fields": "permalink_url"}, headers=meta.bearer(token))
        except PlatformError:
            body = {}
        url = body.get("permalink_url")
        if isinstance(url, str) and url:
            return url if url.startswith("http") else f"https://www.facebook.com{url}"  # videos answer a path
        return f"https://www.facebook.com/{post_id}"

    async def metrics(self, request: MetricsRequest, http: httpx.AsyncClient) -> Metrics:
        """The post's insights; a video's (publish keeps a video's id, not its post's) from ``video_insights``.

        A Page post id is ``{page-id}_{post-id}``; a bare id is the video ``publish`` uploaded, whose
        insights give its views only. A refusal for want of read_insights (channels connected before
        Herald asked for it) is PERMANENT ``insights_not_permitted``, saying to reconnect; a deleted post
        answers code 100 (PERMANENT), a dead token 190 (AUTH), a throttle its BUC wait (RATE_LIMITED).
        """
        token, post = request.credentials["access_token"], request.platform_post_id
        check_deadline(request.deadline, self.name)
        if "_" not in post:
            video = await meta.read_insights(http, f"{self._graph}/{post}/video_insights", platform=self.name, token=token,
                                             metrics=VIDEO_INSIGHTS, permission="read_insights")
            return Metrics(impressions=count(video.get("total_video_views")), raw=video)
        insights = await meta.read_insights(http, f"{self._graph}/{post}/insights", platform=self.name, token=token,
                                            metrics=POST_INSIGHTS, permission="read_insights")
        reactions, activity = insights.get("post_reactions_by_type_total"), insights.get("post_activity_by_action_type")
        # "Breakdown metrics for Page post ... insights will only return non-zero values" (Page Insights
        # limitations): a type missing from a breakdown Meta did return is 0; a breakdown not returned is unknown.
        return Metrics(likes=(total(0, *reactions.values()) if isinstance(reactions, dict) else None),
                       comments=count(activity.get("comment", 0)) if isinstance(activity, dict) else None,
                       shares=count(activity.get("share", 0)) if isinstance(activity, dict) else None,
                       impressions=count(insights.get("post_media_view")), clicks=count(insights.get("post_clicks")),
                       raw=insights)

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        """With a Page token, ``/me`` is the Page itself."""
        body, _ = await meta.call_graph(http, "GET", f"{self._graph}/me", platform=self.name, idempotent=True,
                                        params={"fields": "id,name"}, headers=meta.bearer(credentials["access_token"]))
        return AccountInfo(account_id=str(body["id"]), name=str(body.get("name") or body["id"]))

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        client_id, _ = meta.require_client(self.name, self._client_id, self._client_secret)
        return meta.login_dialog_url(self._dialog, client_id, state=state, redirect_uri=redirect_uri, scopes=SCOPES)

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str | None,
                            http: httpx.AsyncClient) -> tuple[TokenSet, AccountInfo]:
        """Code -> user token -> long-lived user token -> the token of the one Page the user granted."""
        client_id, secret = meta.require_client(self.name, self._client_id, self._client_secret)
        long = await meta.user_token_from_code(http, self._graph, platform=self.name, client_id=client_id,
                                               client_secret=secret, redirect_uri=redirect_uri, code=code)
        body, _ = await meta.call_graph(http, "GET", f"{self._graph}/me/accounts", platform=self.name, idempotent=True,
                                        params={"fields": "id,name,access_token"},
                                        headers=meta.bearer(long["access_token"]))
        pages = [p for p in body.get("data") or [] if p.get("access_token")]
        if len(pages) != 1:
            raise PlatformError(Outcome.PERMANENT, "not_one_page",
                                f"facebook: this login manages {len(pages)} Pages; select exactly one Page in Facebook's dialog")
        page = pages[0]
        return (TokenSet(credentials={"access_token": page["access_token"]}),
                AccountInfo(account_id=str(page["id"]), name=str(page.get("name") or page["id"])))
