"""The Mastodon adapter against an instance mocked with respx: exact requests, media polling, every answer classified,
metrics.

Metrics answers are Status entities as docs.joinmastodon.org/entities/Status describes them (``replies_count``,
``reblogs_count``, ``favourites_count``), read with ``GET /api/v1/statuses/:id`` (docs.joinmastodon.org/methods/statuses).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome, ThreadPart
from services.platforms import steps
from services.platforms.base import ACCOUNT, Feature, MetricsRequest, PlatformError, PublishRequest
from services.platforms.mastodon import MastodonPlatform
from tests.platforms.conftest import assert_metrics_call_nothing_past_the_deadline

INSTANCE = "https://mastodon.example"
IMAGE_URL = "https://cdn.example.com/pics/cat.png"
STATUS = {"id": "111", "url": f"{INSTANCE}/@alice/111", "uri": f"{INSTANCE}/users/alice/statuses/111"}


def request(text: str = "Hello", media: tuple[Media, ...] = (), deadline: float | None = None, **metadata) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(), content=Content(text=text, media=media),
        scheduled_at=None, timezone="UTC", channel_id=uuid.uuid4(), account_id="42",
        metadata={"instance_url": INSTANCE, **metadata}, credentials={"access_token": "tok-1"},
        idempotency_key="herald-key-1", deadline=deadline,
    )


@pytest.fixture
def platform(monkeypatch):
    async def public(url, *, allow_private, field="metadata.url"):  # no DNS in tests: the URL rules have their own
        return url
    monkeypatch.setattr("services.platforms.mastodon.check_public_url", public)
    monkeypatch.setattr("services.platforms.mediafile.check_public_url", public)
    return MastodonPlatform(poll_interval=0)


@respx.mock
async def test_a_status_carries_the_idempotency_key_token_and_visibility(platform):
    route = respx.post(f"{INSTANCE}/api/v1/statuses").respond(200, json=STATUS)
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(visibility="unlisted"), http)
    sent = route.calls.last.request
    assert sent.headers["idempotency-key"] == "herald-key-1"
    assert sent.headers["authorization"] == "Bearer tok-1"
    assert json.loads(sent.content) == {"status": "Hello", "visibility": "unlisted"}
    assert (published.platform_post_id, published.url) == ("111", f"{INSTANCE}/@alice/111")


@respx.mock
async def test_visibility_defaults_to_public(platform):
    route = respx.post(f"{INSTANCE}/api/v1/statuses").respond(200, json=STATUS)
    async with httpx.AsyncClient() as http:
        await platform.publish(request(), http)
    assert json.loads(route.calls.last.request.content)["visibility"] == "public"


@respx.mock
async def test_media_is_uploaded_then_polled_until_processed_before_the_status(platform):
    respx.get(IMAGE_URL).respond(200, content=b"PNGDATA", headers={"Content-Type": "image/png"})
    upload = respx.post(f"{INSTANCE}/api/v2/media").respond(202, json={"id": "m1", "type": "image", "url": None})
    poll = respx.get(f"{INSTANCE}/api/v1/media/m1").mock(side_effect=[
        httpx.Response(206, json={"id": "m1", "url": None}),
        httpx.Response(200, json={"id": "m1", "url": f"{INSTANCE}/media/m1.png"}),
    ])
    status = respx.post(f"{INSTANCE}/api/v1/statuses").respond(200, json=STATUS)
    async with httpx.AsyncClient() as http:
        await platform.publish(request("look", media=(Media("image", IMAGE_URL, "a cat on a mat"),)), http)
    sent = upload.calls.last.request
    assert sent.headers["authorization"] == "Bearer tok-1"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="file"; filename="cat.png"\r\nContent-Type: image/png\r\n\r\nPNGDATA' in sent.content
    assert b'name="description"\r\n\r\na cat on a mat' in sent.content
    assert poll.call_count == 2
    assert json.loads(status.calls.last.request.content) == {"status": "look", "visibility": "public", "media_ids": ["m1"]}


@respx.mock
async def test_a_206_with_an_empty_body_keeps_polling_the_uploaded_media_id(platform):
    # Mastodon's documentation shows GET /api/v1/media/:id answering 206 with no body while processing.
    respx.get(IMAGE_URL).respond(200, content=b"PNGDATA", headers={"Content-Type": "image/png"})
    respx.post(f"{INSTANCE}/api/v2/media").respond(202, json={"id": "m7", "type": "image", "url": None})
    poll = respx.get(f"{INSTANCE}/api/v1/media/m7").mock(side_effect=[
        httpx.Response(206), httpx.Response(206, content=b""),
        httpx.Response(200, json={"id": "m7", "url": f"{INSTANCE}/media/m7.png"}),
    ])
    status = respx.post(f"{INSTANCE}/api/v1/statuses").respond(200, json=STATUS)
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request("look", media=(Media("image", IMAGE_URL),)), http)
    assert poll.call_count == 3 and published.platform_post_id == "111"
    assert json.loads(status.calls.last.request.content)["media_ids"] == ["m7"]


@respx.mock
async def test_media_still_processing_at_the_deadline_is_transient_and_no_request_starts_after_it(platform):
    respx.get(IMAGE_URL).respond(200, content=b"MP4", headers={"Content-Type": "video/mp4"})
    respx.post(f"{INSTANCE}/api/v2/media").respond(202, json={"id": "m1", "url": None})
    poll = respx.get(f"{INSTANCE}/api/v1/media/m1")
    status = respx.post(f"{INSTANCE}/api/v1/statuses")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(media=(Media("video", IMAGE_URL),), deadline=time.monotonic()), http)
    assert (err.value.outcome, err.value.code) == (Outcome.TRANSIENT, "media_processing")
    assert not poll.called and not status.called


@respx.mock
async def test_media_larger_than_the_instance_limit_is_permanent(platform):
    respx.get(IMAGE_URL).respond(200, content=b"x" * 11, headers={"Content-Type": "image/png"})
    upload = respx.post(f"{INSTANCE}/api/v2/media")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(media=(Media("image", IMAGE_URL),), image_size_limit=10), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "media_too_large") and not upload.called


@pytest.mark.parametrize(
    ("response", "outcome", "text"),
    [
        (httpx.Response(401, json={"error": "The access token is invalid"}), Outcome.AUTH, "The access token is invalid"),
        (httpx.Response(403, json={"error": "This action is outside the authorized scopes"}), Outcome.AUTH, "reconnect"),
        (httpx.Response(422, json={"error": "Validation failed: Text character limit of 500 exceeded"}),
         Outcome.PERMANENT, "Text character limit of 500 exceeded"),
        (httpx.Response(404, json={"error": "Record not found"}), Outcome.PERMANENT, "Record not found"),
        (httpx.Response(500, json={"error": "Thumbnail failed"}), Outcome.TRANSIENT, "Thumbnail failed"),
        (httpx.Response(503, text="maintenance"), Outcome.TRANSIENT, "503"),
    ],
)
@respx.mock
async def test_status_errors_are_classified(platform, response, outcome, text):
    respx.post(f"{INSTANCE}/api/v1/statuses").mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert err.value.outcome is outcome and err.value.http_status == response.status_code
    assert text in err.value.message


@respx.mock
async def test_429_waits_until_the_iso_reset_time(platform):
    reset = (datetime.now(timezone.utc) + timedelta(seconds=300)).isoformat().replace("+00:00", "Z")
    respx.post(f"{INSTANCE}/api/v1/statuses").respond(
        429, json={"error": "Too many requests"},
        headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert err.value.outcome is Outcome.RATE_LIMITED and 295 <= err.value.retry_after_seconds <= 300


@respx.mock
async def test_429_waits_from_the_answer_to_the_reset_for_this_account_only(platform, answered_at):
    respx.post(f"{INSTANCE}/api/v1/statuses").respond(
        429, json={"error": "Too many requests"},
        headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2030-01-01T12:04:10.245059Z"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert answered_at.isoformat() == "2030-01-01T12:00:00+00:00"
    assert (err.value.outcome, err.value.limit_scope) == (Outcome.RATE_LIMITED, ACCOUNT)
    assert err.value.retry_after_seconds == pytest.approx(250.245059)


@respx.mock
async def test_a_status_timeout_is_transient_because_the_idempotency_key_makes_retries_safe(platform):
    respx.post(f"{INSTANCE}/api/v1/statuses").mock(side_effect=httpx.ReadTimeout("slow"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert err.value.outcome is Outcome.TRANSIENT
    assert Feature.IDEMPOTENCY_KEY in platform.features


@respx.mock
async def test_verify_reads_the_account_and_stores_the_instance_limits(platform):
    account = respx.get(f"{INSTANCE}/api/v1/accounts/verify_credentials").respond(
        200, json={"id": "42", "username": "alice", "acct": "alice", "display_name": "Alice"})
    respx.get(f"{INSTANCE}/api/v2/instance").respond(200, json={"domain": "mastodon.example", "configuration": {
        "statuses": {"max_characters": 1000, "max_media_attachments": 6, "characters_reserved_per_url": 23},
        "media_attachments": {"image_size_limit": 10485760, "video_size_limit": 41943040}}})
    async with httpx.AsyncClient() as http:
        info = await platform.verify({"access_token": "tok-1"}, {"instance_url": INSTANCE}, http)
    assert account.calls.last.request.headers["authorization"] == "Bearer tok-1"
    assert (info.account_id, info.name) == ("42", "@alice@mastodon.example")
    assert info.metadata == {"instance_url": INSTANCE, "max_characters": 1000, "max_media_attachments": 6,
                             "characters_reserved_per_url": 23, "image_size_limit": 10485760, "video_size_limit": 41943040}


async def test_a_private_instance_url_is_refused():
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await MastodonPlatform().verify({"access_token": "t"}, {"instance_url": "https://192.168.1.10"}, http)
    assert err.value.outcome is Outcome.PERMANENT and err.value.code == "private_address"


URL = "https://example.com/" + "a" * 100


@pytest.mark.parametrize(
    ("content", "metadata", "problems"),
    [
        (Content(text="a" * 500), {}, []),
        (Content(text="a" * 501), {}, ["mastodon: text counts 501 characters; this instance allows 500"]),
        (Content(text="a" * 477 + URL), {}, []),  # the 120-character URL counts as 23: 500 in all
        (Content(text="a" * 478 + URL), {}, ["mastodon: text counts 501 characters; this instance allows 500"]),
        (Content(text="a" * 490 + " @bob@very.long.example.org"), {}, []),  # a remote mention counts as "@bob"
        (Content(text="a" * 900), {"max_characters": 1000}, []),  # the instance's own limit, stored by verify
        (Content(media=tuple(Media("image", IMAGE_URL) for _ in range(5))), {},
         ["mastodon: 5 attachments; this instance allows 4"]),
        (Content(media=(Media("video", IMAGE_URL), Media("image", IMAGE_URL))), {},
         ["mastodon: a video must be the only attachment"]),
    ],
)
def test_validate_counts_urls_and_mentions_the_mastodon_way(content, metadata, problems):
    assert [p.message for p in MastodonPlatform().validate(content, metadata)] == problems


def metrics_request(*, deadline=None) -> MetricsRequest:
    return MetricsRequest(platform_post_id="111", platform_post_url=f"{INSTANCE}/@alice/111", published_at=None,
                          channel_id=uuid.uuid4(), account_id="42", metadata={"instance_url": INSTANCE},
                          credentials={"access_token": "tok-1"}, deadline=deadline)


@respx.mock
async def test_metrics_read_the_status_counts_without_the_write_only_token(platform):
    route = respx.get(f"{INSTANCE}/api/v1/statuses/111").respond(200, json={
        **STATUS, "created_at": "2030-01-01T09:00:00.000Z", "visibility": "public", "replies_count": 3,
        "reblogs_count": 8, "favourites_count": 21, "content": "<p>Hello</p>"})
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.clicks, figures.saves) == (
        21, 3, 8, None, None, None)
    assert figures.raw == {"favourites_count": 21, "replies_count": 3, "reblogs_count": 8}
    # a token without read:statuses would be refused (403 "outside the authorized scopes"): none is sent
    assert "authorization" not in route.calls.last.request.headers


@respx.mock
async def test_a_count_the_instance_does_not_send_is_none(platform):
    respx.get(f"{INSTANCE}/api/v1/statuses/111").respond(200, json={**STATUS, "favourites_count": 2})
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert (figures.likes, figures.comments, figures.shares) == (2, None, None)


@pytest.mark.parametrize(
    ("response", "outcome", "code"),
    [
        # deleted, or private/direct (Mastodon answers 404 rather than 403 for what the caller may not see)
        (httpx.Response(404, json={"error": "Record not found"}), Outcome.PERMANENT, "status_not_found"),
        # an instance serving its API to signed-in clients only: no refresh or reconnect changes that
        (httpx.Response(401, json={"error": "This API requires an authenticated user"}), Outcome.PERMANENT,
         "status_not_public"),
        (httpx.Response(503, text="Service Unavailable"), Outcome.TRANSIENT, "http_503"),
    ],
)
@respx.mock
async def test_metrics_failures_are_classified(platform, response, outcome, code):
    respx.get(f"{INSTANCE}/api/v1/statuses/111").mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(), http)
    assert (err.value.outcome, err.value.code) == (outcome, code)


@respx.mock
async def test_throttled_metrics_wait_for_the_reset(platform, answered_at):
    respx.get(f"{INSTANCE}/api/v1/statuses/111").respond(
        429, json={"error": "Too many requests"},
        headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2030-01-01T12:05:00.000Z"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(), http)
    assert (err.value.outcome, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, 300)


@respx.mock
async def test_metrics_past_the_deadline_call_nothing(platform):
    await assert_metrics_call_nothing_past_the_deadline(platform, metrics_request(deadline=time.monotonic() - 1))


def _thread_request() -> PublishRequest:
    part = request("1/3 the post")
    return dataclasses.replace(part, content=Content(text="1/3 the post", thread=(
        ThreadPart("2/3 more"), ThreadPart("3/3 the end"))))


def _status(id_: str) -> httpx.Response:
    return httpx.Response(200, json={"id": id_, "url": f"{INSTANCE}/@alice/{id_}"})


@respx.mock
async def test_a_thread_is_a_chain_of_replies_each_under_its_own_idempotency_key(platform):
    route = respx.post(f"{INSTANCE}/api/v1/statuses").mock(side_effect=[_status("1"), _status("2"), _status("3")])
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, _thread_request(), http)
    assert [json.loads(c.request.content) for c in route.calls] == [
        {"status": "1/3 the post", "visibility": "public"},
        {"status": "2/3 more", "visibility": "public", "in_reply_to_id": "1"},
        {"status": "3/3 the end", "visibility": "public", "in_reply_to_id": "2"},
    ]
    assert [c.request.headers["idempotency-key"] for c in route.calls] == [
        "herald-key-1", "herald-key-1:thread:0", "herald-key-1:thread:1"]
    assert [s["id"] for s in published.steps] == ["1", "2", "3"]
    assert published.url == f"{INSTANCE}/@alice/1"


@respx.mock
async def test_a_thread_failing_at_part_3_resumes_at_part_3_replying_to_part_2(platform):
    route = respx.post(f"{INSTANCE}/api/v1/statuses").mock(side_effect=[
        _status("1"), _status("2"), httpx.Response(502, json={"error": "Bad gateway"})])
    first = _thread_request()
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await steps.publish(platform, first, http)
    assert err.value.outcome is Outcome.TRANSIENT
    route.reset()
    route.mock(side_effect=[_status("3")])
    again = dataclasses.replace(_thread_request(), resume={**first.progress, **err.value.details})
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, again, http)
    assert len(route.calls) == 1
    assert json.loads(route.calls[0].request.content) == {
        "status": "3/3 the end", "visibility": "public", "in_reply_to_id": "2"}
    assert route.calls[0].request.headers["idempotency-key"] == "herald-key-1:thread:1"
    assert [s["id"] for s in published.steps] == ["1", "2", "3"]
