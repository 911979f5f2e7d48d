"""The Threads adapter against graph.threads.net mocked with respx: containers per kind, quota, resume, errors, OAuth,
metrics.

Metrics answers are shaped as the Threads Insights API's Media Insights section shows
(developers.facebook.com/documentation/threads/insights, updated 2026-01-30):
``{"data": [{"name", "period": "lifetime", "values": [{"value"}], "title", "description", "id"}]}``.
"""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome, ThreadPart
from services.platforms import steps
from services.platforms.base import ACCOUNT, APP, MetricsRequest, PlatformError, PublishRequest
from services.platforms.threads import ThreadsPlatform, text_length
from tests.platforms.conftest import assert_metrics_call_nothing_past_the_deadline

BASE = "https://graph.threads.net"
GRAPH = f"{BASE}/v1.0"
IMAGE = Media("image", "https://cdn.example.com/a.jpg", "a dog")
VIDEO = Media("video", "https://cdn.example.com/b.mp4")
QUOTA_OK = {"data": [{"quota_usage": 4, "config": {"quota_total": 250, "quota_duration": 86400}}]}


def request(content: Content, *, deadline=None, resume=None) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(), content=content, scheduled_at=None, timezone="UTC",
        channel_id=uuid.uuid4(), account_id="th1", metadata={}, credentials={"access_token": "tok"},
        idempotency_key="herald-k", deadline=deadline, resume=resume,
    )


def form(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.content.decode()).items()}


def query(call) -> dict[str, str]:
    return dict(call.request.url.params)


@pytest.fixture
def platform():
    return ThreadsPlatform(BASE, client_id="app", client_secret="shh", poll_seconds=0)


def mock_flow(container="c1", post="t1", quota=QUOTA_OK):
    routes = {
        "quota": respx.get(f"{GRAPH}/th1/threads_publishing_limit").respond(200, json=quota),
        "create": respx.post(f"{GRAPH}/th1/threads").respond(200, json={"id": container}),
        "status": respx.get(f"{GRAPH}/{container}").respond(200, json={"status": "FINISHED"}),
        "publish": respx.post(f"{GRAPH}/th1/threads_publish").respond(200, json={"id": post}),
    }
    respx.get(f"{GRAPH}/{post}").respond(200, json={"id": post, "permalink": f"https://www.threads.net/@me/post/{post}"})
    return routes


@respx.mock
async def test_text_post_is_a_text_container_published_with_its_permalink(platform):
    routes = mock_flow()
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Hello threads")), http)
    assert (published.platform_post_id, published.url, published.http_status) == ("t1", "https://www.threads.net/@me/post/t1", 200)
    assert query(routes["quota"].calls.last) == {"fields": "quota_usage,config"}
    assert form(routes["create"].calls.last) == {"media_type": "TEXT", "text": "Hello threads"}
    assert query(routes["status"].calls.last) == {"fields": "status,error_message"}
    assert form(routes["publish"].calls.last) == {"creation_id": "c1"}
    assert all(r.calls.last.request.headers["authorization"] == "Bearer tok" for r in routes.values())


@pytest.mark.parametrize(
    ("media", "expected"),
    [
        (IMAGE, {"media_type": "IMAGE", "image_url": IMAGE.url, "alt_text": "a dog", "text": "Look"}),
        (VIDEO, {"media_type": "VIDEO", "video_url": VIDEO.url, "text": "Look"}),
    ],
)
@respx.mock
async def test_single_media_container_per_kind(platform, media, expected):
    routes = mock_flow()
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="Look", media=(media,))), http)
    assert form(routes["create"].calls.last) == expected


@respx.mock
async def test_carousel_items_are_settled_before_the_carousel_container(platform):
    respx.get(f"{GRAPH}/th1/threads_publishing_limit").respond(200, json=QUOTA_OK)
    create = respx.post(f"{GRAPH}/th1/threads").mock(side_effect=[
        httpx.Response(200, json={"id": "k1"}), httpx.Response(200, json={"id": "k2"}), httpx.Response(200, json={"id": "c2"})])
    statuses = [respx.get(f"{GRAPH}/{c}").respond(200, json={"status": "FINISHED"}) for c in ("k1", "k2", "c2")]
    publish = respx.post(f"{GRAPH}/th1/threads_publish").respond(200, json={"id": "t2"})
    respx.get(f"{GRAPH}/t2").respond(200, json={"permalink": "https://www.threads.net/@me/post/t2"})
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="Two", media=(IMAGE, VIDEO))), http)
    assert [form(c) for c in create.calls] == [
        {"is_carousel_item": "true", "media_type": "IMAGE", "image_url": IMAGE.url, "alt_text": "a dog"},
        {"is_carousel_item": "true", "media_type": "VIDEO", "video_url": VIDEO.url},
        {"media_type": "CAROUSEL", "children": "k1,k2", "text": "Two"},
    ]
    assert all(s.called for s in statuses) and form(publish.calls.last) == {"creation_id": "c2"}


@respx.mock
async def test_carousel_item_not_ready_is_transient_without_a_resumable_container():
    platform = ThreadsPlatform(BASE, poll_seconds=5)
    respx.get(f"{GRAPH}/th1/threads_publishing_limit").respond(200, json=QUOTA_OK)
    respx.post(f"{GRAPH}/th1/threads").respond(200, json={"id": "k1"})
    respx.get(f"{GRAPH}/k1").respond(200, json={"status": "IN_PROGRESS"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(VIDEO, VIDEO)), deadline=time.monotonic() + 1), http)
    # an item is not the post: resuming it would publish one video alone, so nothing is recorded
    assert err.value.code == "container_not_ready" and err.value.details == {}


@respx.mock
async def test_video_not_ready_by_the_deadline_keeps_the_container_for_the_next_run():
    platform = ThreadsPlatform(BASE, poll_seconds=5)
    routes = mock_flow("c3")
    routes["status"].respond(200, json={"status": "IN_PROGRESS"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(VIDEO,)), deadline=time.monotonic() + 1), http)
    assert (err.value.outcome, err.value.code, err.value.details) == (Outcome.TRANSIENT, "container_not_ready", {"container_id": "c3"})
    assert not routes["publish"].called


@respx.mock
async def test_lost_publish_answer_is_reconciled_through_the_container(platform):
    routes = mock_flow("c4")
    routes["status"].mock(side_effect=[httpx.Response(200, json={"status": "FINISHED"}),
                                       httpx.Response(200, json={"status": "PUBLISHED"})])
    routes["publish"].mock(side_effect=httpx.ReadTimeout("lost"))
    listing = respx.get(f"{GRAPH}/th1/threads").respond(200, json={"data": [
        {"id": "t4", "text": "Once", "permalink": "https://www.threads.net/@me/post/t4"}]})
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Once")), http)
    assert (published.platform_post_id, published.url) == ("t4", "https://www.threads.net/@me/post/t4")
    assert routes["publish"].call_count == 1
    assert query(listing.calls.last) == {"fields": "id,permalink,text", "limit": "10"}


@respx.mock
async def test_resumed_published_container_is_not_published_again(platform):
    respx.get(f"{GRAPH}/c5").respond(200, json={"status": "PUBLISHED"})
    respx.get(f"{GRAPH}/th1/threads").respond(200, json={"data": [{"id": "t5", "text": "Once", "permalink": "https://x/t5"}]})
    publish = respx.post(f"{GRAPH}/th1/threads_publish")
    create = respx.post(f"{GRAPH}/th1/threads")
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Once"), resume={"container_id": "c5"}), http)
    assert published.platform_post_id == "t5" and not publish.called and not create.called


@respx.mock
async def test_lookup_finished_container_is_not_published(platform):
    respx.get(f"{GRAPH}/c6").respond(200, json={"status": "FINISHED"})
    async with httpx.AsyncClient() as http:
        assert await platform.lookup(request(Content(text="x"), resume={"container_id": "c6"}), http) is None


@respx.mock
async def test_exhausted_quota_is_rate_limited(platform):
    routes = mock_flow(quota={"data": [{"quota_usage": 250, "config": {"quota_total": 250, "quota_duration": 86400}}]})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="x")), http)
    assert err.value.outcome is Outcome.RATE_LIMITED and not routes["create"].called


@respx.mock
async def test_container_error_is_permanent_with_the_error_message(platform):
    routes = mock_flow("c7")
    routes["status"].respond(200, json={"status": "ERROR", "error_message": "FAILED_DOWNLOADING_VIDEO"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(VIDEO,))), http)
    assert err.value.outcome is Outcome.PERMANENT and "FAILED_DOWNLOADING_VIDEO" in err.value.message


@pytest.mark.parametrize(
    ("body", "status", "outcome"),
    [
        ({"message": "Invalid OAuth access token", "code": 190}, 400, Outcome.AUTH),
        ({"message": "Application request limit reached", "code": 4}, 400, Outcome.RATE_LIMITED),
        ({"message": "Unexpected error", "code": 2, "is_transient": True}, 500, Outcome.TRANSIENT),
        ({"message": "Param text must be at most 500 characters long", "code": 100}, 400, Outcome.PERMANENT),
    ],
)
@respx.mock
async def test_graph_errors_at_creation_are_classified(platform, body, status, outcome):
    routes = mock_flow()
    routes["create"].respond(status, json={"error": {"type": "THApiException", **body}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="x")), http)
    assert err.value.outcome is outcome and body["message"] in err.value.message


@pytest.mark.parametrize(
    ("body", "scope"),
    [
        # Herald's Threads app ran out: every Threads channel waits
        ({"message": "Application request limit reached", "code": 4, "is_transient": True}, APP),
        # this user's limit: this channel only
        ({"message": "User request limit reached", "code": 17, "is_transient": True}, ACCOUNT),
    ],
)
@respx.mock
async def test_throttles_pause_the_scope_meta_documents(platform, body, scope):
    routes = mock_flow()
    routes["create"].respond(400, json={"error": {"type": "OAuthException", "fbtrace_id": "A1b", **body}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="x")), http)
    assert (err.value.outcome, err.value.limit_scope) == (Outcome.RATE_LIMITED, scope)


@respx.mock
async def test_exhausted_quota_waits_an_hour_for_this_account_only(platform):
    mock_flow(quota={"data": [{"quota_usage": 250, "config": {"quota_total": 250, "quota_duration": 86400}}]})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="x")), http)
    assert (err.value.limit_scope, err.value.retry_after_seconds) == (ACCOUNT, 3600)


@pytest.mark.parametrize(
    ("text", "length"),
    [("hello", 5), ("👍", 4), ("hi 👍🏽", 3 + 8), ("❤️", 6), ("👨‍👩‍👧", 18), ("é漢", 2)],
)
def test_text_length_counts_emoji_as_their_utf8_bytes(text, length):
    assert text_length(text) == length


@pytest.mark.parametrize(
    ("content", "field", "says"),
    [
        (Content(text="a" * 497 + "👍"), "content.text", "limit is 500"),  # 497 + 4 bytes
        (Content(text=" ".join(f"https://e{i}.com" for i in range(6))), "content.text", "6 links"),
        (Content(), "content.text", "text or media"),
        (Content(media=(IMAGE,) * 21), "content.media", "at most 20"),
        (Content(media=(Media("gif", "https://a/b.gif"),)), "content.media", "images or videos"),
    ],
)
def test_validate_rejects_what_threads_would(platform, content, field, says):
    problems = platform.validate(content)
    assert [p.field for p in problems] == [field]
    assert problems[0].message.startswith("threads: ") and says in problems[0].message


def test_validate_accepts_the_limits(platform):
    assert platform.validate(Content(text="a" * 496 + "👍")) == []
    assert platform.validate(Content(text=" ".join(["https://same.com"] * 9), media=(IMAGE,) * 20)) == []


def test_authorize_url_is_threads_oauth(platform):
    url = urlsplit(platform.authorize_url(state="st", redirect_uri="https://herald.example/cb", code_challenge=None))
    assert (url.netloc, url.path) == ("threads.net", "/oauth/authorize")
    assert parse_qs(url.query) == {"client_id": ["app"], "redirect_uri": ["https://herald.example/cb"],
                                   "scope": ["threads_basic,threads_content_publish,threads_manage_insights,threads_manage_replies"], "response_type": ["code"],
                                   "state": ["st"]}


@respx.mock
async def test_exchange_code_gets_a_long_lived_token_and_the_profile(platform):
    short = respx.post(f"{BASE}/oauth/access_token").respond(200, json={"access_token": "short", "user_id": 1})
    long = respx.get(f"{BASE}/access_token").respond(200, json={"access_token": "long", "token_type": "bearer", "expires_in": 5183944})
    me = respx.get(f"{GRAPH}/me").respond(200, json={"id": "th1", "username": "dogs"})
    async with httpx.AsyncClient() as http:
        tokens, account = await platform.exchange_code(code="abc", redirect_uri="https://herald.example/cb",
                                                       code_verifier=None, http=http)
    assert form(short.calls.last) == {"client_id": "app", "client_secret": "shh", "grant_type": "authorization_code",
                                      "redirect_uri": "https://herald.example/cb", "code": "abc"}
    assert query(long.calls.last) == {"grant_type": "th_exchange_token", "client_secret": "shh", "access_token": "short"}
    assert query(me.calls.last) == {"fields": "id,username"}
    assert tokens.credentials == {"access_token": "long"} and tokens.expires_at is not None
    assert (account.account_id, account.name) == ("th1", "dogs")


@respx.mock
async def test_refresh_uses_th_refresh_token(platform):
    route = respx.get(f"{BASE}/refresh_access_token").respond(200, json={"access_token": "new", "expires_in": 5183944})
    async with httpx.AsyncClient() as http:
        tokens = await platform.refresh({"access_token": "old"}, {}, http)
    assert query(route.calls.last) == {"grant_type": "th_refresh_token", "access_token": "old"}
    assert tokens.credentials == {"access_token": "new"}


@respx.mock
async def test_verify_with_a_wrong_token_is_auth(platform):
    respx.get(f"{GRAPH}/me").respond(400, json={"error": {"message": "Invalid OAuth access token", "code": 190}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.verify({"access_token": "bad"}, {}, http)
    assert err.value.outcome is Outcome.AUTH


def metrics_request(*, deadline=None) -> MetricsRequest:
    return MetricsRequest(platform_post_id="t1", platform_post_url="https://www.threads.net/@herald/post/abc",
                          published_at=None, channel_id=uuid.uuid4(), account_id="th1", metadata={},
                          credentials={"access_token": "tok"}, deadline=deadline)


def insights(**values) -> dict:
    return {"data": [{"name": name, "period": "lifetime", "values": [{"value": value}], "title": name.title(),
                      "description": "", "id": f"t1/insights/{name}/lifetime"} for name, value in values.items()]}


@respx.mock
async def test_metrics_read_the_posts_insights(platform):
    edge = respx.get(f"{GRAPH}/t1/insights").respond(200, json=insights(views=1200, likes=80, replies=9, reposts=4,
                                                                        quotes=2, shares=3))
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    # shares: every way the post was passed on, reposts + quotes + shares; each kept as Threads named it
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.clicks, figures.saves) == (
        80, 9, 9, 1200, None, None)
    assert figures.raw == {"views": 1200, "likes": 80, "replies": 9, "reposts": 4, "quotes": 2, "shares": 3}
    sent = edge.calls.last.request
    assert query(edge.calls.last) == {"metric": "views,likes,replies,reposts,quotes,shares"}
    assert sent.headers["authorization"] == "Bearer tok" and "access_token" not in sent.url.params


@respx.mock
async def test_a_metric_threads_does_not_return_is_none_and_shares_add_up_what_there_is(platform):
    respx.get(f"{GRAPH}/t1/insights").respond(200, json=insights(likes=5, reposts=1))
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert (figures.likes, figures.comments, figures.shares, figures.impressions) == (5, None, 1, None)


@pytest.mark.parametrize(
    ("error", "outcome", "code"),
    [
        # a channel connected before Herald asked for threads_manage_insights: reconnecting grants it,
        # but the token still publishes, so the channel is not flagged (AUTH)
        ({"message": "(#10) Application does not have permission for this action", "type": "OAuthException", "code": 10},
         Outcome.PERMANENT, "insights_not_permitted"),
        # a deleted post
        ({"message": "Unsupported get request. Object with ID 't1' does not exist", "type": "GraphMethodException",
          "code": 100, "error_subcode": 33}, Outcome.PERMANENT, "graph_100_33"),
        ({"message": "Error validating access token", "type": "OAuthException", "code": 190}, Outcome.AUTH, "graph_190"),
        ({"message": "(#17) User request limit reached", "code": 17}, Outcome.RATE_LIMITED, "graph_17"),
    ],
)
@respx.mock
async def test_metrics_failures_are_classified(platform, error, outcome, code):
    respx.get(f"{GRAPH}/t1/insights").respond(400, json={"error": error})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(), http)
    assert (err.value.outcome, err.value.code) == (outcome, code)
    if code == "insights_not_permitted":
        assert "threads_manage_insights" in err.value.message and "reconnect" in err.value.message


@respx.mock
async def test_metrics_past_the_deadline_call_nothing(platform):
    await assert_metrics_call_nothing_past_the_deadline(platform, metrics_request(deadline=time.monotonic() - 1))


THREE_PARTS = Content(text="1/3 the post", thread=(ThreadPart("2/3 more"), ThreadPart("3/3 the end")))


def mock_chain(posts: list[str], publish_answers=None):
    """Containers c1, c2, ... each FINISHED, published as ``posts`` in order, each with its permalink."""
    containers = [f"c{i + 1}" for i in range(len(posts))]
    routes = {
        "quota": respx.get(f"{GRAPH}/th1/threads_publishing_limit").respond(200, json=QUOTA_OK),
        "create": respx.post(f"{GRAPH}/th1/threads").mock(
            side_effect=[httpx.Response(200, json={"id": c}) for c in containers]),
        "publish": respx.post(f"{GRAPH}/th1/threads_publish").mock(
            side_effect=publish_answers or [httpx.Response(200, json={"id": p}) for p in posts]),
    }
    for container in containers:
        respx.get(f"{GRAPH}/{container}").respond(200, json={"status": "FINISHED"})
    for post in posts:
        respx.get(f"{GRAPH}/{post}").respond(200, json={"id": post, "permalink": f"https://www.threads.net/@me/post/{post}"})
    return routes


@respx.mock
async def test_a_thread_is_a_chain_of_containers_each_replying_to_the_part_before(platform):
    routes = mock_chain(["t1", "t2", "t3"])
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, request(THREE_PARTS), http)
    assert [form(c) for c in routes["create"].calls] == [
        {"media_type": "TEXT", "text": "1/3 the post"},
        {"media_type": "TEXT", "text": "2/3 more", "reply_to_id": "t1"},
        {"media_type": "TEXT", "text": "3/3 the end", "reply_to_id": "t2"},
    ]
    assert [form(c) for c in routes["publish"].calls] == [{"creation_id": "c1"}, {"creation_id": "c2"},
                                                          {"creation_id": "c3"}]
    assert [(s["id"], s["url"]) for s in published.steps] == [
        (p, f"https://www.threads.net/@me/post/{p}") for p in ("t1", "t2", "t3")]


@respx.mock
async def test_a_thread_failing_at_part_3_resumes_at_part_3_with_its_container(platform):
    routes = mock_chain(["t1", "t2", "t3"], publish_answers=[
        httpx.Response(200, json={"id": "t1"}), httpx.Response(200, json={"id": "t2"}),
        httpx.Response(500, json={"error": {"message": "An unknown error occurred", "code": 1, "is_transient": True}})])
    first = request(THREE_PARTS)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await steps.publish(platform, first, http)
    assert err.value.outcome is Outcome.TRANSIENT
    assert err.value.details["container_id"] == "c3"  # part 3's container, made replying to part 2
    assert form(routes["create"].calls[2]) == {"media_type": "TEXT", "text": "3/3 the end", "reply_to_id": "t2"}

    for route in routes.values():
        route.reset()
    routes["publish"].mock(side_effect=[httpx.Response(200, json={"id": "t3"})])
    again = request(THREE_PARTS, resume={**first.progress, **err.value.details})
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, again, http)
    assert routes["create"].call_count == 0  # no part made again, not even part 3's container
    assert [form(c) for c in routes["publish"].calls] == [{"creation_id": "c3"}]
    assert [s["id"] for s in published.steps] == ["t1", "t2", "t3"]


@respx.mock
async def test_the_first_comment_is_the_authors_reply_to_the_post(platform):
    routes = mock_chain(["t1", "t2"])
    content = Content(text="Launch day", first_comment="Details below")
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, request(content), http)
    assert form(routes["create"].calls[1]) == {"media_type": "TEXT", "text": "Details below", "reply_to_id": "t1"}
    assert published.steps[-1]["kind"] == "first_comment" and published.steps[-1]["id"] == "t2"
    assert published.first_comment_error is None
