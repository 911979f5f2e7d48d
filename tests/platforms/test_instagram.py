"""The Instagram adapter against graph.facebook.com mocked with respx: containers, quota, resume, reconciliation, errors, OAuth,
metrics.

Metrics answers are shaped as the IG Media reference (developers.facebook.com/documentation/instagram-platform/reference/
instagram-media, updated 2026-06-22) and Instagram Media Insights (.../instagram-media/insights, updated 2026-06-18) show:
``{"data": [{"name", "period": "lifetime", "values": [{"value"}], "title", "description", "id"}]}``.
"""

from __future__ import annotations

import asyncio
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
from services.platforms.instagram import InstagramPlatform
from tests.platforms.conftest import assert_metrics_call_nothing_past_the_deadline

GRAPH = "https://graph.facebook.com/v25.0"
IMAGE = Media("image", "https://cdn.example.com/a.jpg", "a cat")
VIDEO = Media("video", "https://cdn.example.com/b.mp4")
QUOTA_OK = {"data": [{"quota_usage": 2, "config": {"quota_total": 50, "quota_duration": 86400}}]}


def request(content: Content, *, metadata=None, deadline=None, resume=None) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(), content=content, scheduled_at=None, timezone="UTC",
        channel_id=uuid.uuid4(), account_id="ig1", metadata=metadata or {}, credentials={"access_token": "tok"},
        idempotency_key="herald-k", deadline=deadline, resume=resume,
    )


def form(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.content.decode()).items()}


def query(call) -> dict[str, str]:
    return dict(call.request.url.params)


@pytest.fixture
def platform():
    return InstagramPlatform("https://graph.facebook.com", client_id="app", client_secret="shh", poll_seconds=0)


def mock_quota(body=QUOTA_OK):
    return respx.get(f"{GRAPH}/ig1/content_publishing_limit").respond(200, json=body)


def mock_publish(media_id="m1", permalink="https://www.instagram.com/p/abc/"):
    publish = respx.post(f"{GRAPH}/ig1/media_publish").respond(200, json={"id": media_id})
    respx.get(f"{GRAPH}/{media_id}").respond(200, json={"permalink": permalink, "id": media_id})
    return publish


@respx.mock
async def test_single_image_checks_quota_creates_polls_publishes_and_reads_the_permalink(platform):
    quota = mock_quota()
    create = respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c1"})
    status = respx.get(f"{GRAPH}/c1").respond(200, json={"status_code": "FINISHED", "status": "Finished: Media has been uploaded"})
    publish = mock_publish()
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Hello #cats", media=(IMAGE,))), http)
    assert (published.platform_post_id, published.url, published.http_status) == ("m1", "https://www.instagram.com/p/abc/", 200)
    assert query(quota.calls.last) == {"fields": "quota_usage,config"}
    assert form(create.calls.last) == {"image_url": IMAGE.url, "alt_text": "a cat", "caption": "Hello #cats"}
    assert query(status.calls.last) == {"fields": "status_code,status"}
    assert form(publish.calls.last) == {"creation_id": "c1"}
    for route in (quota, create, status, publish):
        sent = route.calls.last.request
        assert sent.headers["authorization"] == "Bearer tok" and "access_token" not in sent.url.params


@respx.mock
async def test_video_is_a_reel_shared_to_feed_and_polled_until_finished(platform):
    mock_quota()
    create = respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c2"})
    status = respx.get(f"{GRAPH}/c2").mock(side_effect=[
        httpx.Response(200, json={"status_code": "IN_PROGRESS"}), httpx.Response(200, json={"status_code": "FINISHED"})])
    mock_publish("m2")
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Reel", media=(VIDEO,))), http)
    assert published.platform_post_id == "m2" and status.call_count == 2
    assert form(create.calls.last) == {"media_type": "REELS", "video_url": VIDEO.url, "share_to_feed": "true", "caption": "Reel"}


@respx.mock
async def test_carousel_creates_and_settles_each_item_then_the_parent(platform):
    mock_quota()
    create = respx.post(f"{GRAPH}/ig1/media").mock(side_effect=[
        httpx.Response(200, json={"id": "k1"}), httpx.Response(200, json={"id": "k2"}), httpx.Response(200, json={"id": "c3"})])
    for container in ("k1", "k2", "c3"):
        respx.get(f"{GRAPH}/{container}").respond(200, json={"status_code": "FINISHED"})
    publish = mock_publish("m3")
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="Both", media=(IMAGE, VIDEO))), http)
    assert [form(c) for c in create.calls] == [
        {"is_carousel_item": "true", "image_url": IMAGE.url},
        {"is_carousel_item": "true", "media_type": "VIDEO", "video_url": VIDEO.url},
        {"media_type": "CAROUSEL", "children": "k1,k2", "caption": "Both"},
    ]
    assert form(publish.calls.last) == {"creation_id": "c3"}


@respx.mock
async def test_story_channel_posts_a_story_without_caption(platform):
    mock_quota()
    create = respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c4"})
    respx.get(f"{GRAPH}/c4").respond(200, json={"status_code": "FINISHED"})
    mock_publish("m4")
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(media=(VIDEO,)), metadata={"ig_type": "story"}), http)
    assert form(create.calls.last) == {"media_type": "STORIES", "video_url": VIDEO.url}


@respx.mock
async def test_container_not_ready_by_the_deadline_is_transient_with_the_container_id():
    platform = InstagramPlatform("https://graph.facebook.com", poll_seconds=5)
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c5"})
    status = respx.get(f"{GRAPH}/c5").respond(200, json={"status_code": "IN_PROGRESS"})
    publish = respx.post(f"{GRAPH}/ig1/media_publish")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(VIDEO,)), deadline=time.monotonic() + 1), http)
    assert err.value.outcome is Outcome.TRANSIENT and err.value.code == "container_not_ready"
    assert err.value.details == {"container_id": "c5"}
    assert status.call_count == 1 and not publish.called  # no sleep that would end past the deadline


@respx.mock
async def test_no_poll_starts_after_the_deadline(platform):
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c6"})
    status = respx.get(f"{GRAPH}/c6")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(IMAGE,)), deadline=time.monotonic() - 1), http)
    assert err.value.code == "container_not_ready" and err.value.details == {"container_id": "c6"}
    assert not status.called


@respx.mock
async def test_resumed_container_still_processing_is_polled_never_recreated(platform):
    create = respx.post(f"{GRAPH}/ig1/media")
    respx.get(f"{GRAPH}/c7").respond(200, json={"status_code": "IN_PROGRESS"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(VIDEO,)), deadline=time.monotonic() + 0.05,
                                           resume={"container_id": "c7"}), http)
    assert err.value.code == "container_not_ready" and err.value.details == {"container_id": "c7"}
    assert not create.called


@respx.mock
async def test_a_container_is_in_progress_as_soon_as_it_exists_so_a_call_cut_off_keeps_it(platform):
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c7b"})
    polled = asyncio.Event()

    async def processing(_request):
        polled.set()
        await asyncio.sleep(60)  # the poll hangs: the run stops the call before it returns

    respx.get(f"{GRAPH}/c7b").mock(side_effect=processing)
    publishing = request(Content(media=(VIDEO,)))
    async with httpx.AsyncClient() as http:
        call = asyncio.create_task(platform.publish(publishing, http))
        await asyncio.wait_for(polled.wait(), 5)
        call.cancel()  # what asyncio.wait_for does at the run's hard stop
        with pytest.raises(asyncio.CancelledError):
            await call
    assert publishing.progress == {"container_id": "c7b"}  # what the run saves for the next attempt


@respx.mock
async def test_resumed_finished_container_is_published_without_a_new_one(platform):
    quota = mock_quota()
    create = respx.post(f"{GRAPH}/ig1/media")
    respx.get(f"{GRAPH}/c8").respond(200, json={"status_code": "FINISHED"})
    publish = mock_publish("m8")
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(media=(IMAGE,)), resume={"container_id": "c8"}), http)
    assert published.platform_post_id == "m8" and quota.called and not create.called
    assert form(publish.calls.last) == {"creation_id": "c8"}


@respx.mock
async def test_resumed_published_container_is_found_not_published_again(platform):
    respx.get(f"{GRAPH}/c9").respond(200, json={"status_code": "PUBLISHED"})
    listing = respx.get(f"{GRAPH}/ig1/media").respond(200, json={"data": [
        {"id": "m0", "caption": "older", "permalink": "https://www.instagram.com/p/old/"},
        {"id": "m9", "caption": "Hello", "permalink": "https://www.instagram.com/p/new/"}]})
    publish = respx.post(f"{GRAPH}/ig1/media_publish")
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Hello", media=(IMAGE,)), resume={"container_id": "c9"}), http)
    assert (published.platform_post_id, published.url) == ("m9", "https://www.instagram.com/p/new/")
    assert query(listing.calls.last) == {"fields": "id,permalink,caption", "limit": "10"}
    assert not publish.called


@respx.mock
async def test_resumed_expired_container_is_replaced_by_a_new_one(platform):
    mock_quota()
    respx.get(f"{GRAPH}/old").respond(200, json={"status_code": "EXPIRED"})
    create = respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c10"})
    respx.get(f"{GRAPH}/c10").respond(200, json={"status_code": "FINISHED"})
    publish = mock_publish("m10")
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(media=(IMAGE,)), resume={"container_id": "old"}), http)
    assert create.call_count == 1 and form(publish.calls.last) == {"creation_id": "c10"}


@respx.mock
async def test_lost_publish_answer_with_a_published_container_is_reconciled_without_a_second_publish(platform):
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c11"})
    respx.get(f"{GRAPH}/c11").mock(side_effect=[
        httpx.Response(200, json={"status_code": "FINISHED"}), httpx.Response(200, json={"status_code": "PUBLISHED"})])
    publish = respx.post(f"{GRAPH}/ig1/media_publish").mock(side_effect=httpx.ReadTimeout("lost"))
    respx.get(f"{GRAPH}/ig1/media").respond(200, json={"data": [{"id": "m11", "caption": "Hi", "permalink": "https://www.instagram.com/p/x/"}]})
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Hi", media=(IMAGE,))), http)
    assert (published.platform_post_id, published.url) == ("m11", "https://www.instagram.com/p/x/")
    assert publish.call_count == 1


@respx.mock
async def test_lost_publish_answer_with_a_finished_container_is_unknown_and_keeps_the_container(platform):
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c12"})
    respx.get(f"{GRAPH}/c12").respond(200, json={"status_code": "FINISHED"})
    publish = respx.post(f"{GRAPH}/ig1/media_publish").mock(side_effect=httpx.RemoteProtocolError("dropped"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(IMAGE,))), http)
    assert err.value.outcome is Outcome.UNKNOWN and err.value.details == {"container_id": "c12"}
    assert publish.call_count == 1


@respx.mock
async def test_published_container_without_a_matching_post_stands_in_with_its_id(platform):
    respx.get(f"{GRAPH}/c13").respond(200, json={"status_code": "PUBLISHED"})
    respx.get(f"{GRAPH}/ig1/media").respond(200, json={"data": [{"id": "m0", "caption": "other"}]})
    async with httpx.AsyncClient() as http:
        found = await platform.lookup(request(Content(text="Mine", media=(IMAGE,)), resume={"container_id": "c13"}), http)
    assert (found.platform_post_id, found.url) == ("c13", None)


@pytest.mark.parametrize(
    ("state", "published"),
    [("PUBLISHED", True), ("FINISHED", False), ("IN_PROGRESS", False), ("EXPIRED", False), ("ERROR", False)],
)
@respx.mock
async def test_lookup_reads_the_recorded_containers_status(platform, state, published):
    respx.get(f"{GRAPH}/c14").respond(200, json={"status_code": state})
    respx.get(f"{GRAPH}/ig1/media").respond(200, json={"data": [{"id": "m14", "caption": "Hi", "permalink": "https://i/p"}]})
    async with httpx.AsyncClient() as http:
        found = await platform.lookup(request(Content(text="Hi", media=(IMAGE,)), resume={"container_id": "c14"}), http)
    assert (found is not None) is published
    if published:
        assert found.platform_post_id == "m14"


async def test_lookup_without_a_recorded_container_is_unknown(platform):
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.lookup(request(Content(media=(IMAGE,))), http)
    assert err.value.outcome is Outcome.UNKNOWN


@respx.mock
async def test_exhausted_quota_is_rate_limited_before_any_container(platform):
    mock_quota({"data": [{"quota_usage": 50, "config": {"quota_total": 50, "quota_duration": 86400}}]})
    create = respx.post(f"{GRAPH}/ig1/media")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(IMAGE,))), http)
    assert err.value.outcome is Outcome.RATE_LIMITED and err.value.code == "publishing_limit_reached"
    assert err.value.retry_after_seconds == 3600 and not create.called


@respx.mock
async def test_container_error_is_permanent_with_metas_reason(platform):
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c15"})
    respx.get(f"{GRAPH}/c15").respond(200, json={"status_code": "ERROR", "status": "Error: 2207026"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(VIDEO,))), http)
    assert err.value.outcome is Outcome.PERMANENT and "2207026" in err.value.message
    assert err.value.details == {"container_id": "c15"}


@respx.mock
async def test_publish_cap_answer_is_rate_limited_and_keeps_the_container(platform):
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c16"})
    respx.get(f"{GRAPH}/c16").respond(200, json={"status_code": "FINISHED"})
    respx.post(f"{GRAPH}/ig1/media_publish").respond(400, json={"error": {
        "message": "Application request limit reached", "code": 9, "error_subcode": 2207042}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(IMAGE,))), http)
    assert err.value.outcome is Outcome.RATE_LIMITED and err.value.retry_after_seconds == 3600
    assert err.value.details["container_id"] == "c16"


def graph(status, code, subcode=None, *, headers=None, **extra):
    error = {"message": f"m{code}", "type": "OAuthException", "code": code, "fbtrace_id": "t", **extra}
    if subcode:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


BUC = {"X-Business-Use-Case-Usage": json.dumps({"ig1": [{"type": "instagram", "call_count": 100,
                                                         "estimated_time_to_regain_access": 15}]})}


@pytest.mark.parametrize(
    ("response", "outcome", "wait"),
    [
        (graph(500, 1), Outcome.TRANSIENT, None),  # unknown error
        (graph(500, 2), Outcome.TRANSIENT, None),  # service temporarily unavailable
        (graph(400, 9999, is_transient=True), Outcome.TRANSIENT, None),
        (httpx.Response(502, text="Bad Gateway"), Outcome.TRANSIENT, None),
        (graph(400, 4, headers=BUC), Outcome.RATE_LIMITED, 900),  # app limit; BUC minutes -> seconds
        (graph(400, 17), Outcome.RATE_LIMITED, None),
        (graph(400, 32), Outcome.RATE_LIMITED, None),
        (graph(400, 613), Outcome.RATE_LIMITED, None),
        (graph(400, 80002, headers=BUC), Outcome.RATE_LIMITED, 900),  # Instagram BUC throttle
        (graph(400, 368), Outcome.RATE_LIMITED, None),  # temporary policy block
        (graph(400, 190, 463), Outcome.AUTH, None),  # token expired
        (graph(400, 190, 460), Outcome.AUTH, None),  # password changed
        (graph(400, 102), Outcome.AUTH, None),
        (graph(403, 10), Outcome.AUTH, None),
        (graph(403, 200), Outcome.AUTH, None),
        (graph(400, 100, 2207004), Outcome.PERMANENT, None),  # image too large
        (graph(400, 506), Outcome.PERMANENT, None),  # duplicate post
        (graph(400, 9007, 2207027), Outcome.TRANSIENT, None),  # media not ready
        (graph(400, 9004, 2207003), Outcome.TRANSIENT, None),  # fetch timed out
        (graph(400, 9, 2207042), Outcome.RATE_LIMITED, 3600),  # daily cap
        (graph(400, 100, 2207001), Outcome.PERMANENT, None),  # spam
    ],
)
@respx.mock
async def test_graph_errors_are_classified(platform, response, outcome, wait):
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(IMAGE,))), http)
    assert err.value.outcome is outcome and err.value.retry_after_seconds == wait
    assert err.value.http_status == response.status_code


@pytest.mark.parametrize(
    ("response", "scope", "wait"),
    [
        # Herald's Meta app ran out: every Instagram channel waits, as long as the BUC header says
        (graph(400, 4, headers=BUC, is_transient=True), APP, 900),
        # this user's, this account's (BUC) limits: this channel only
        (graph(400, 17), ACCOUNT, None),
        (graph(400, 80002, headers=BUC), ACCOUNT, 900),
        # the account's 24-hour publishing cap
        (graph(400, 9, 2207042), ACCOUNT, 3600),
    ],
)
@respx.mock
async def test_throttles_pause_the_scope_meta_documents(platform, response, scope, wait):
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(IMAGE,))), http)
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, scope, wait)


@respx.mock
async def test_metas_user_message_is_kept(platform):
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").respond(400, json={"error": {
        "message": "Invalid parameter", "code": 100, "error_subcode": 2207009,
        "error_user_title": "Aspect ratio", "error_user_msg": "The aspect ratio is not supported."}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(IMAGE,))), http)
    assert err.value.message == "instagram: The aspect ratio is not supported. (code 100, subcode 2207009)"
    assert err.value.code == "graph_100_2207009"


@pytest.mark.parametrize(
    ("content", "metadata", "field", "says"),
    [
        (Content(text="just words"), None, "content.media", "text-only"),
        (Content(text="x" * 2201, media=(IMAGE,)), None, "content.text", "limit is 2200"),
        (Content(text=" ".join(f"#t{i}" for i in range(31)), media=(IMAGE,)), None, "content.text", "30 hashtags"),
        (Content(text=" ".join(f"@u{i}" for i in range(21)), media=(IMAGE,)), None, "content.text", "20 @mentions"),
        (Content(media=(IMAGE,) * 11), None, "content.media", "at most 10"),
        (Content(media=(Media("audio", "https://a/b.mp3"),)), None, "content.media", "images or videos"),
        (Content(media=(IMAGE, VIDEO)), {"ig_type": "story"}, "content.media", "exactly 1"),
        (Content(text="hi", media=(IMAGE,)), {"ig_type": "story"}, "content.text", "no caption"),
        (Content(media=(IMAGE,)), {"ig_type": "reel"}, "metadata.ig_type", '"feed" or "story"'),
    ],
)
def test_validate_rejects_what_instagram_would(platform, content, metadata, field, says):
    problems = platform.validate(content, metadata)
    assert [p.field for p in problems] == [field]
    assert problems[0].message.startswith("instagram: ") and says in problems[0].message


def test_validate_accepts_a_full_caption_and_a_full_carousel(platform):
    text = "x" * 2170 + " " + " ".join(f"#t{i}" for i in range(5))
    assert platform.validate(Content(text=text[:2200], media=(IMAGE,) * 10)) == []
    assert platform.validate(Content(media=(VIDEO,)), {"ig_type": "story"}) == []


def test_authorize_url_is_the_facebook_login_dialog(platform):
    url = urlsplit(platform.authorize_url(state="st", redirect_uri="https://herald.example/cb", code_challenge=None))
    assert (url.scheme, url.netloc, url.path) == ("https", "www.facebook.com", "/v25.0/dialog/oauth")
    assert parse_qs(url.query) == {"client_id": ["app"], "redirect_uri": ["https://herald.example/cb"], "state": ["st"],
                                   "scope": ["instagram_basic,instagram_content_publish,pages_show_list,pages_read_engagement,instagram_manage_insights,"
                                             "instagram_manage_comments"],
                                   "response_type": ["code"]}
    assert platform.uses_pkce is False


@respx.mock
async def test_exchange_code_gets_a_long_lived_token_and_the_linked_account(platform):
    token = respx.get(f"{GRAPH}/oauth/access_token").mock(side_effect=[
        httpx.Response(200, json={"access_token": "short", "token_type": "bearer", "expires_in": 3600}),
        httpx.Response(200, json={"access_token": "long", "token_type": "bearer", "expires_in": 5183944})])
    accounts = respx.get(f"{GRAPH}/me/accounts").respond(200, json={"data": [
        {"id": "p1", "instagram_business_account": {"id": "ig1", "username": "cats"}}, {"id": "p2"}]})
    async with httpx.AsyncClient() as http:
        tokens, account = await platform.exchange_code(code="abc", redirect_uri="https://herald.example/cb",
                                                       code_verifier=None, http=http)
    assert query(token.calls[0]) == {"client_id": "app", "client_secret": "shh", "redirect_uri": "https://herald.example/cb", "code": "abc"}
    assert query(token.calls[1]) == {"grant_type": "fb_exchange_token", "client_id": "app", "client_secret": "shh",
                                     "fb_exchange_token": "short"}
    assert tokens.credentials == {"access_token": "long"} and tokens.expires_at is not None
    assert (account.account_id, account.name) == ("ig1", "cats")
    assert accounts.calls.last.request.headers["authorization"] == "Bearer long"


@respx.mock
async def test_two_linked_accounts_are_refused_with_a_way_out(platform):
    respx.get(f"{GRAPH}/me/accounts").respond(200, json={"data": [
        {"instagram_business_account": {"id": "a"}}, {"instagram_business_account": {"id": "b"}}]})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.verify({"access_token": "tok"}, {}, http)
    assert err.value.outcome is Outcome.PERMANENT and "exactly one" in err.value.message


@respx.mock
async def test_refresh_trades_the_user_token_for_a_new_long_lived_one(platform):
    route = respx.get(f"{GRAPH}/oauth/access_token").respond(200, json={"access_token": "new", "expires_in": 5183944})
    async with httpx.AsyncClient() as http:
        tokens = await platform.refresh({"access_token": "old"}, {}, http)
    assert tokens.credentials == {"access_token": "new"}
    assert query(route.calls.last)["fb_exchange_token"] == "old"


@respx.mock
async def test_refused_refresh_is_auth(platform):
    respx.get(f"{GRAPH}/oauth/access_token").respond(400, json={"error": {"message": "Session has expired", "code": 190, "error_subcode": 463}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.refresh({"access_token": "old"}, {}, http)
    assert err.value.outcome is Outcome.AUTH


@respx.mock
async def test_verify_with_a_wrong_token_is_auth(platform):
    respx.get(f"{GRAPH}/me/accounts").respond(400, json={"error": {"message": "Invalid OAuth access token.", "code": 190}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.verify({"access_token": "bad"}, {}, http)
    assert err.value.outcome is Outcome.AUTH



def metrics_request(*, deadline=None) -> MetricsRequest:
    return MetricsRequest(platform_post_id="m1", platform_post_url="https://www.instagram.com/p/abc/",
                          published_at=None, channel_id=uuid.uuid4(), account_id="ig1", metadata={},
                          credentials={"access_token": "tok"}, deadline=deadline)


def insights(**values) -> dict:
    return {"data": [{"name": name, "period": "lifetime", "values": [{"value": value}], "title": name.title(),
                      "description": "", "id": f"m1/insights/{name}/lifetime"} for name, value in values.items()]}


@respx.mock
async def test_metrics_read_the_media_counts_and_its_feed_insights(platform):
    media = respx.get(f"{GRAPH}/m1").respond(200, json={"like_count": 40, "comments_count": 6,
                                                        "media_product_type": "FEED", "id": "m1"})
    edge = respx.get(f"{GRAPH}/m1/insights").respond(200, json=insights(views=900, reach=700, shares=5, saved=8,
                                                                        total_interactions=59))
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.clicks, figures.saves) == (
        40, 6, 5, 900, None, 8)
    assert figures.raw["reach"] == 700 and figures.raw["media_product_type"] == "FEED"
    assert query(media.calls.last) == {"fields": "like_count,comments_count,media_product_type"}
    assert query(edge.calls.last) == {"metric": "views,reach,shares,saved,total_interactions"}
    for route in (media, edge):  # a read: the token in the header, and no content_publishing_limit call
        sent = route.calls.last.request
        assert sent.headers["authorization"] == "Bearer tok" and "access_token" not in sent.url.params


@respx.mock
async def test_story_metrics_ask_only_story_metrics_and_count_replies_as_comments(platform):
    respx.get(f"{GRAPH}/m1").respond(200, json={"media_product_type": "STORY", "id": "m1"})
    edge = respx.get(f"{GRAPH}/m1/insights").respond(200, json=insights(views=300, reach=250, shares=2, replies=4,
                                                                        total_interactions=6))
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert query(edge.calls.last) == {"metric": "views,reach,shares,replies,total_interactions"}
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.saves) == (None, 4, 2, 300, None)


@respx.mock
async def test_a_metric_meta_does_not_return_is_none_not_zero(platform):
    # "If insights data you are requesting does not exist or is currently unavailable, the API returns an
    # empty data set instead of 0 for individual metrics."
    respx.get(f"{GRAPH}/m1").respond(200, json={"like_count": 3, "media_product_type": "REELS", "id": "m1"})
    respx.get(f"{GRAPH}/m1/insights").respond(200, json=insights(views=50))
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.saves) == (3, None, None, 50, None)


@pytest.mark.parametrize(
    "refusal",
    [
        # a channel connected before Herald asked for instagram_manage_insights
        {"message": "(#10) Application does not have permission for this action", "type": "OAuthException", "code": 10},
        {"message": "(#200) Requires instagram_manage_insights permission", "type": "OAuthException", "code": 200},
        # Meta withholds a story's insights below 5 viewers
        {"message": "(#10) Not enough viewers for the media to show insights", "type": "OAuthException", "code": 10},
    ],
)
@respx.mock
async def test_insights_refused_still_give_the_media_counts_and_say_why(platform, refusal):
    respx.get(f"{GRAPH}/m1").respond(200, json={"like_count": 7, "comments_count": 1, "media_product_type": "FEED"})
    respx.get(f"{GRAPH}/m1/insights").respond(400, json={"error": refusal})
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert (figures.likes, figures.comments, figures.impressions) == (7, 1, None)
    assert refusal["message"] in figures.raw["insights_error"]
    assert "instagram_manage_insights" in figures.raw["insights_error"]


BUC = {"ig1": [{"type": "instagram", "call_count": 100, "total_cputime": 5, "total_time": 5,
                "estimated_time_to_regain_access": 15}]}


@pytest.mark.parametrize(
    ("answer", "outcome", "code", "wait"),
    [
        # a deleted media: "Unsupported get request. Object with ID ... does not exist"
        (httpx.Response(400, json={"error": {"message": "Unsupported get request. Object with ID 'm1' does not exist",
                                             "type": "GraphMethodException", "code": 100, "error_subcode": 33}}),
         Outcome.PERMANENT, "graph_100_33", None),
        # an expired or revoked token
        (httpx.Response(400, json={"error": {"message": "Error validating access token: Session has expired",
                                             "type": "OAuthException", "code": 190, "error_subcode": 463}}),
         Outcome.AUTH, "graph_190_463", None),
        # the account's Business Use Case limit, with Meta's estimate of when it lifts
        (httpx.Response(400, json={"error": {"message": "Application request limit reached", "code": 80002}},
                        headers={"X-Business-Use-Case-Usage": json.dumps(BUC)}),
         Outcome.RATE_LIMITED, "graph_80002", 900),
        (httpx.Response(500, json={"error": {"message": "An unknown error occurred", "code": 1}}),
         Outcome.TRANSIENT, "graph_1", None),
    ],
)
@respx.mock
async def test_metrics_failures_are_classified_like_publish_failures(platform, answer, outcome, code, wait):
    respx.get(f"{GRAPH}/m1").mock(return_value=answer)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(), http)
    assert (err.value.outcome, err.value.code, err.value.retry_after_seconds) == (outcome, code, wait)


@respx.mock
async def test_a_throttled_insights_read_is_rate_limited_not_a_partial_answer(platform):
    respx.get(f"{GRAPH}/m1").respond(200, json={"like_count": 7, "media_product_type": "FEED"})
    respx.get(f"{GRAPH}/m1/insights").respond(400, json={"error": {"message": "limit", "code": 80002}},
                                              headers={"X-Business-Use-Case-Usage": json.dumps(BUC)})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(), http)
    assert (err.value.outcome, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, 900)


@respx.mock
async def test_metrics_past_the_deadline_call_nothing(platform):
    await assert_metrics_call_nothing_past_the_deadline(platform, metrics_request(deadline=time.monotonic() - 1))


def _post_with_comment(comment_answer: httpx.Response):
    mock_quota()
    respx.post(f"{GRAPH}/ig1/media").respond(200, json={"id": "c1"})
    respx.get(f"{GRAPH}/c1").respond(200, json={"status_code": "FINISHED"})
    mock_publish()
    return respx.post(f"{GRAPH}/m1/comments").mock(return_value=comment_answer)


@respx.mock
async def test_the_first_comment_is_posted_on_the_media_right_after_it(platform):
    comments = _post_with_comment(httpx.Response(200, json={"id": "17870913679156914"}))
    content = Content(text="New in store", media=(IMAGE,), first_comment="#shoes #spring")
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, request(content), http)
    assert form(comments.calls.last) == {"message": "#shoes #spring"}
    assert comments.calls.last.request.headers["authorization"] == "Bearer tok"
    assert published.platform_post_id == "m1"
    assert published.steps == ({"kind": "post", "id": "m1", "url": "https://www.instagram.com/p/abc/"},
                               {"kind": "first_comment", "id": "17870913679156914", "url": None})
    assert published.first_comment_error is None


@respx.mock
async def test_a_failed_first_comment_leaves_the_post_published_with_the_reason(platform):
    _post_with_comment(httpx.Response(400, json={"error": {
        "message": "Invalid parameter", "type": "OAuthException", "code": 100,
        "error_user_msg": "Comments are turned off for this post"}}))
    content = Content(text="New in store", media=(IMAGE,), first_comment="#shoes")
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, request(content), http)
    assert published.platform_post_id == "m1"
    assert published.first_comment_error == (
        "the first comment was not posted: instagram: Comments are turned off for this post (code 100)")


def test_a_story_takes_no_first_comment(platform):
    story = {"ig_type": "story"}
    assert platform.validate(Content(media=(IMAGE,)), story) == []
    [problem] = platform.validate(Content(media=(IMAGE,), first_comment="#tags"), story)
    assert problem.field == "content.first_comment" and "stories take no comments" in problem.message
    assert platform.validate(Content(text="feed", media=(IMAGE,), first_comment="#tags"), {"ig_type": "feed"}) == []
