"""The Facebook Pages adapter against graph.facebook.com mocked with respx: each post kind, permalinks, errors, OAuth,
metrics.

Metrics answers are shaped as Page Insights shows (developers.facebook.com/docs/graph-api/reference/insights: lifetime
``values``, breakdown metrics as objects listing non-zero types only) and the Video API insights guide
(developers.facebook.com/docs/video-api/guides/insights: ``total_video_views``).
"""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome
from services.platforms import steps
from services.platforms.base import ACCOUNT, APP, MetricsRequest, PlatformError, PublishRequest
from services.platforms.facebook import FacebookPlatform
from tests.platforms.conftest import assert_metrics_call_nothing_past_the_deadline

GRAPH = "https://graph.facebook.com/v25.0"
VIDEO_HOST = "https://graph-video.facebook.com/v25.0"
IMAGE = Media("image", "https://cdn.example.com/a.jpg")
IMAGE2 = Media("image", "https://cdn.example.com/b.jpg")
VIDEO = Media("video", "https://cdn.example.com/c.mp4")


def request(content: Content, *, metadata=None) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(), content=content, scheduled_at=None, timezone="UTC",
        channel_id=uuid.uuid4(), account_id="pg1", metadata=metadata or {}, credentials={"access_token": "ptok"},
        idempotency_key="herald-k",
    )


def form(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.content.decode()).items()}


@pytest.fixture
def platform():
    return FacebookPlatform("https://graph.facebook.com", client_id="app", client_secret="shh")


def mock_permalink(post_id: str, url: str | None = None):
    return respx.get(f"{GRAPH}/{post_id}").respond(200, json={"permalink_url": url or f"https://www.facebook.com/{post_id}/p"})


@respx.mock
async def test_text_with_a_url_posts_to_the_feed_with_that_link(platform):
    feed = respx.post(f"{GRAPH}/pg1/feed").respond(200, json={"id": "pg1_11"})
    permalink = mock_permalink("pg1_11", "https://www.facebook.com/page/posts/11")
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Read https://example.com/a-post.")), http)
    assert (published.platform_post_id, published.url, published.http_status) == (
        "pg1_11", "https://www.facebook.com/page/posts/11", 200)
    assert form(feed.calls.last) == {"message": "Read https://example.com/a-post.", "link": "https://example.com/a-post"}
    assert feed.calls.last.request.headers["authorization"] == "Bearer ptok"
    assert dict(permalink.calls.last.request.url.params) == {"fields": "permalink_url"}


@respx.mock
async def test_link_preview_can_be_turned_off_by_the_channel(platform):
    feed = respx.post(f"{GRAPH}/pg1/feed").respond(200, json={"id": "pg1_12"})
    mock_permalink("pg1_12")
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="See https://example.com"), metadata={"link_preview": False}), http)
    assert form(feed.calls.last) == {"message": "See https://example.com"}


@respx.mock
async def test_single_photo_posts_url_and_message_and_uses_the_post_id(platform):
    photos = respx.post(f"{GRAPH}/pg1/photos").respond(200, json={"id": "ph1", "post_id": "pg1_13"})
    mock_permalink("pg1_13")
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="A photo", media=(IMAGE,))), http)
    assert published.platform_post_id == "pg1_13"
    assert form(photos.calls.last) == {"url": IMAGE.url, "message": "A photo"}


@respx.mock
async def test_several_photos_are_uploaded_unpublished_then_attached_to_one_post(platform):
    photos = respx.post(f"{GRAPH}/pg1/photos").mock(side_effect=[
        httpx.Response(200, json={"id": "ph1"}), httpx.Response(200, json={"id": "ph2"})])
    feed = respx.post(f"{GRAPH}/pg1/feed").respond(200, json={"id": "pg1_14"})
    mock_permalink("pg1_14")
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Album", media=(IMAGE, IMAGE2))), http)
    assert published.platform_post_id == "pg1_14"
    assert [form(c) for c in photos.calls] == [{"url": IMAGE.url, "published": "false"},
                                              {"url": IMAGE2.url, "published": "false"}]
    sent = form(feed.calls.last)
    assert sent["message"] == "Album" and json.loads(sent["attached_media"]) == [{"media_fbid": "ph1"}, {"media_fbid": "ph2"}]


@respx.mock
async def test_video_goes_to_the_graph_video_host_and_its_path_permalink_is_made_absolute(platform):
    videos = respx.post(f"{VIDEO_HOST}/pg1/videos").respond(200, json={"id": "v1"})
    respx.get(f"{GRAPH}/v1").respond(200, json={"permalink_url": "/pg1/videos/v1/"})
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Watch", media=(VIDEO,))), http)
    assert (published.platform_post_id, published.url) == ("v1", "https://www.facebook.com/pg1/videos/v1/")
    assert form(videos.calls.last) == {"file_url": VIDEO.url, "description": "Watch"}
    assert videos.calls.last.request.headers["authorization"] == "Bearer ptok"


@respx.mock
async def test_unreadable_permalink_falls_back_without_failing_a_live_post(platform):
    respx.post(f"{GRAPH}/pg1/feed").respond(200, json={"id": "pg1_15"})
    respx.get(f"{GRAPH}/pg1_15").respond(500, json={"error": {"message": "oops", "code": 1}})
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="hi")), http)
    assert published.url == "https://www.facebook.com/pg1_15"


@respx.mock
async def test_lost_feed_answer_is_unknown(platform):
    respx.post(f"{GRAPH}/pg1/feed").mock(side_effect=httpx.ReadTimeout("lost"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi")), http)
    assert err.value.outcome is Outcome.UNKNOWN


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (400, {"code": 368, "error_subcode": 1390008}, Outcome.RATE_LIMITED),  # posting too fast
        (400, {"code": 32}, Outcome.RATE_LIMITED),  # page request limit
        (400, {"code": 80001}, Outcome.RATE_LIMITED),  # Pages BUC
        (400, {"code": 190, "error_subcode": 460}, Outcome.AUTH),
        (400, {"code": 200}, Outcome.AUTH),
        (400, {"code": 200, "error_subcode": 1404078}, Outcome.AUTH),  # Page Publishing Authorization
        (400, {"code": 506}, Outcome.PERMANENT),  # duplicate
        (400, {"code": 100, "error_subcode": 1609008}, Outcome.PERMANENT),  # facebook.com link refused
        (400, {"code": 368, "error_subcode": 1346003}, Outcome.PERMANENT),  # policy, though code 368
        (500, {"code": 1}, Outcome.TRANSIENT),
        (503, {"code": 2}, Outcome.TRANSIENT),
    ],
)
@respx.mock
async def test_graph_errors_are_classified(platform, status, error, outcome):
    respx.post(f"{GRAPH}/pg1/feed").respond(status, json={"error": {"message": "says meta", "type": "OAuthException", **error}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi")), http)
    assert err.value.outcome is outcome and "says meta" in err.value.message


@respx.mock
async def test_page_throttle_waits_as_the_buc_header_says(platform):
    usage = {"pg1": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 7},
                     {"type": "pages", "call_count": 90, "estimated_time_to_regain_access": 3}]}
    respx.post(f"{GRAPH}/pg1/feed").respond(400, json={"error": {"message": "limit", "code": 80001}},
                                            headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi")), http)
    assert err.value.retry_after_seconds == 420


@pytest.mark.parametrize(
    ("error", "headers", "scope", "wait"),
    [
        # Herald's app used its hourly Platform limit (all its users' calls): every Facebook channel waits.
        # X-App-Usage gives percentages, no time, so the wait is unknown
        ({"message": "(#4) Application request limit reached", "code": 4, "is_transient": True},
         {"X-App-Usage": json.dumps({"call_count": 100, "total_cputime": 12, "total_time": 15})}, APP, None),
        # one user's calls, one Page's calls: this channel only
        ({"message": "(#17) User request limit reached", "code": 17, "is_transient": True}, {}, ACCOUNT, None),
        ({"message": "(#32) Page request limit reached", "code": 32}, {}, ACCOUNT, None),
        # the Page's Business Use Case limit, with the minutes Meta estimates until it lifts
        ({"message": "(#80001) There have been too many calls to this Page account.", "code": 80001},
         {"X-Business-Use-Case-Usage": json.dumps({"pg1": [{"type": "pages", "call_count": 100, "total_cputime": 20,
                                                           "total_time": 30, "estimated_time_to_regain_access": 12}]})},
         ACCOUNT, 720),
    ],
)
@respx.mock
async def test_throttles_pause_the_scope_meta_documents(platform, error, headers, scope, wait):
    respx.post(f"{GRAPH}/pg1/feed").respond(400, json={"error": {"type": "OAuthException", "fbtrace_id": "A1b", **error}},
                                            headers=headers)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi")), http)
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, scope, wait)


@pytest.mark.parametrize(
    ("content", "field", "says"),
    [
        (Content(text="x" * 63_207), "content.text", "limit is 63206"),
        (Content(), "content.text", "text or media"),
        (Content(media=(VIDEO, IMAGE)), "content.media", "1 video"),
        (Content(media=(Media("audio", "https://a/b.mp3"),)), "content.media", "images or videos"),
    ],
)
def test_validate_rejects_what_facebook_would(platform, content, field, says):
    problems = platform.validate(content)
    assert [p.field for p in problems] == [field]
    assert problems[0].message.startswith("facebook: ") and says in problems[0].message


def test_validate_accepts_long_text_and_many_photos(platform):
    assert platform.validate(Content(text="x" * 63_206, media=(IMAGE,) * 12)) == []


def test_authorize_url_is_the_facebook_login_dialog(platform):
    url = urlsplit(platform.authorize_url(state="st", redirect_uri="https://herald.example/cb", code_challenge=None))
    assert (url.netloc, url.path) == ("www.facebook.com", "/v25.0/dialog/oauth")
    assert parse_qs(url.query)["scope"] == ["pages_show_list,pages_read_engagement,pages_manage_posts,read_insights,pages_manage_engagement"]
    assert parse_qs(url.query)["state"] == ["st"]


def test_authorize_url_without_an_app_is_refused():
    with pytest.raises(PlatformError) as err:
        FacebookPlatform("https://graph.facebook.com").authorize_url(state="s", redirect_uri="https://x/cb", code_challenge=None)
    assert err.value.code == "oauth_not_configured"


@respx.mock
async def test_exchange_code_stores_the_granted_pages_token(platform):
    token = respx.get(f"{GRAPH}/oauth/access_token").mock(side_effect=[
        httpx.Response(200, json={"access_token": "short", "expires_in": 3600}),
        httpx.Response(200, json={"access_token": "long", "expires_in": 5183944})])
    accounts = respx.get(f"{GRAPH}/me/accounts").respond(200, json={"data": [
        {"id": "pg1", "name": "Bakery", "access_token": "ptok"}]})
    async with httpx.AsyncClient() as http:
        tokens, account = await platform.exchange_code(code="abc", redirect_uri="https://herald.example/cb",
                                                       code_verifier=None, http=http)
    assert dict(token.calls[1].request.url.params)["grant_type"] == "fb_exchange_token"
    assert dict(accounts.calls.last.request.url.params) == {"fields": "id,name,access_token"}
    assert accounts.calls.last.request.headers["authorization"] == "Bearer long"
    assert (tokens.credentials, tokens.expires_at) == ({"access_token": "ptok"}, None)
    assert (account.account_id, account.name) == ("pg1", "Bakery")


@respx.mock
async def test_exchange_code_with_several_pages_asks_for_one(platform):
    respx.get(f"{GRAPH}/oauth/access_token").respond(200, json={"access_token": "t", "expires_in": 3600})
    respx.get(f"{GRAPH}/me/accounts").respond(200, json={"data": [
        {"id": "a", "access_token": "1"}, {"id": "b", "access_token": "2"}]})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.exchange_code(code="abc", redirect_uri="https://x/cb", code_verifier=None, http=http)
    assert err.value.code == "not_one_page" and "exactly one Page" in err.value.message


@respx.mock
async def test_refused_code_is_auth(platform):
    respx.get(f"{GRAPH}/oauth/access_token").respond(400, json={"error": {
        "message": "This authorization code has been used.", "code": 100, "type": "OAuthException"}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.exchange_code(code="used", redirect_uri="https://x/cb", code_verifier=None, http=http)
    assert err.value.outcome is Outcome.AUTH and "has been used" in err.value.message


@respx.mock
async def test_verify_reads_the_page_behind_the_token(platform):
    me = respx.get(f"{GRAPH}/me").respond(200, json={"id": "pg1", "name": "Bakery"})
    async with httpx.AsyncClient() as http:
        account = await platform.verify({"access_token": "ptok"}, {}, http)
    assert (account.account_id, account.name) == ("pg1", "Bakery")
    assert dict(me.calls.last.request.url.params) == {"fields": "id,name"}


@respx.mock
async def test_verify_with_a_wrong_token_is_auth(platform):
    respx.get(f"{GRAPH}/me").respond(400, json={"error": {"message": "Invalid OAuth access token.", "code": 190}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.verify({"access_token": "bad"}, {}, http)
    assert err.value.outcome is Outcome.AUTH


def metrics_request(post_id="pg1_77", *, deadline=None) -> MetricsRequest:
    return MetricsRequest(platform_post_id=post_id, platform_post_url=f"https://www.facebook.com/{post_id}",
                          published_at=None, channel_id=uuid.uuid4(), account_id="pg1", metadata={},
                          credentials={"access_token": "ptok"}, deadline=deadline)


def insights(object_id="pg1_77", edge="insights", **values) -> dict:
    return {"data": [{"name": name, "period": "lifetime", "values": [{"value": value}], "title": name,
                      "description": "", "id": f"{object_id}/{edge}/{name}/lifetime"} for name, value in values.items()]}


@respx.mock
async def test_metrics_read_the_posts_insights(platform):
    edge = respx.get(f"{GRAPH}/pg1_77/insights").respond(200, json=insights(
        post_media_view=1500, post_clicks=42, post_reactions_by_type_total={"like": 30, "love": 5, "haha": 1},
        post_activity_by_action_type={"like": 30, "comment": 7, "share": 4}))
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.clicks, figures.saves) == (
        36, 7, 4, 1500, 42, None)
    assert figures.raw["post_reactions_by_type_total"] == {"like": 30, "love": 5, "haha": 1}
    assert dict(edge.calls.last.request.url.params) == {
        "metric": "post_media_view,post_clicks,post_reactions_by_type_total,post_activity_by_action_type"}
    sent = edge.calls.last.request
    assert sent.headers["authorization"] == "Bearer ptok" and "access_token" not in sent.url.params


@respx.mock
async def test_an_empty_breakdown_is_zero_and_a_metric_not_returned_is_none(platform):
    # breakdowns list only non-zero types: {} is no reaction at all; post_clicks absent is unknown
    respx.get(f"{GRAPH}/pg1_77/insights").respond(200, json=insights(
        post_media_view=10, post_reactions_by_type_total={}, post_activity_by_action_type={"share": 1}))
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.clicks) == (0, 0, 1, 10, None)


@respx.mock
async def test_a_video_is_measured_through_its_video_insights(platform):
    edge = respx.get(f"{GRAPH}/v9/video_insights").respond(200, json=insights("v9", "video_insights", total_video_views=89))
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request("v9"), http)
    assert (figures.likes, figures.impressions, figures.raw) == (None, 89, {"total_video_views": 89})
    assert dict(edge.calls.last.request.url.params) == {"metric": "total_video_views"}


@pytest.mark.parametrize(
    ("error", "headers", "outcome", "code", "wait"),
    [
        # a Page token without read_insights (connected before Herald asked for it): reconnect to grant it
        ({"message": "(#200) Requires read_insights permission", "type": "OAuthException", "code": 200}, {},
         Outcome.PERMANENT, "insights_not_permitted", None),
        # a deleted post
        ({"message": "Unsupported get request. Object with ID 'pg1_77' does not exist", "type": "GraphMethodException",
          "code": 100, "error_subcode": 33}, {}, Outcome.PERMANENT, "graph_100_33", None),
        ({"message": "Error validating access token: The user has not authorized application", "type": "OAuthException",
          "code": 190, "error_subcode": 458}, {}, Outcome.AUTH, "graph_190_458", None),
        ({"message": "(#80001) There have been too many calls to this Page account.", "code": 80001},
         {"X-Business-Use-Case-Usage": json.dumps({"pg1": [{"type": "pages", "call_count": 100, "total_cputime": 20,
                                                           "total_time": 30, "estimated_time_to_regain_access": 12}]})},
         Outcome.RATE_LIMITED, "graph_80001", 720),
    ],
)
@respx.mock
async def test_metrics_failures_are_classified(platform, error, headers, outcome, code, wait):
    respx.get(f"{GRAPH}/pg1_77/insights").respond(400, json={"error": error}, headers=headers)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(), http)
    assert (err.value.outcome, err.value.code, err.value.retry_after_seconds) == (outcome, code, wait)
    if code == "insights_not_permitted":
        assert "read_insights" in err.value.message and "reconnect" in err.value.message


@respx.mock
async def test_metrics_past_the_deadline_call_nothing(platform):
    await assert_metrics_call_nothing_past_the_deadline(platform, metrics_request(deadline=time.monotonic() - 1))


@respx.mock
async def test_the_first_comment_is_posted_on_the_page_post_as_the_page(platform):
    respx.post(f"{GRAPH}/pg1/feed").respond(200, json={"id": "pg1_11"})
    mock_permalink("pg1_11")
    comments = respx.post(f"{GRAPH}/pg1_11/comments").respond(200, json={"id": "pg1_11_901"})
    content = Content(text="Open today", first_comment="Hours: 9 to 5")
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, request(content), http)
    assert {k: v[0] for k, v in parse_qs(comments.calls.last.request.content.decode()).items()} == {
        "message": "Hours: 9 to 5"}
    assert comments.calls.last.request.headers["authorization"] == "Bearer ptok"
    assert published.platform_post_id == "pg1_11"
    assert published.steps[-1] == {"kind": "first_comment", "id": "pg1_11_901", "url": None}
