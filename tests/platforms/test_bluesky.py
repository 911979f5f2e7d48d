"""The Bluesky adapter against a PDS mocked with respx: exact XRPC calls, sessions, facets, every error class, metrics.

Metrics answers are ``app.bsky.feed.getPosts`` outputs, ``{"posts": [postView]}``, with the optional counts of
``app.bsky.feed.defs#postView`` (bluesky-social/atproto lexicons): likeCount, replyCount, repostCount, quoteCount,
bookmarkCount.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome
from services.platforms.base import ACCOUNT, MetricsRequest, PlatformError, PublishRequest
from services.platforms.bluesky import BlueskyPlatform, count_graphemes, detect_facets, record_key, tid_time
from tests.platforms.conftest import assert_metrics_call_nothing_past_the_deadline

PDS = "https://pds.example.com"
XRPC = f"{PDS}/xrpc"
DID = "did:plc:author"
KEY = "herald-3f1c2a9e-0000-4000-8000-000000000001"
IMAGE_URL = "https://cdn.example.com/cat.png"


FIRST_ATTEMPT = datetime(2026, 12, 1, 9, 30, 0, 123456, tzinfo=timezone.utc)


def request(text: str = "Hello", media: tuple[Media, ...] = (), *, first_attempt_at=FIRST_ATTEMPT,
            key: str = KEY, **credentials) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(), content=Content(text=text, media=media),
        scheduled_at=None, timezone="UTC", channel_id=uuid.uuid4(), account_id=DID, metadata={"pds_url": PDS},
        credentials={"identifier": "author.bsky.social", "app_password": "app-pass", "access_jwt": "access-1",
                     "refresh_jwt": "refresh-1", "did": DID, **credentials},
        idempotency_key=key, first_attempt_at=first_attempt_at,
    )


RKEY = record_key(request())


def jwt(exp: int) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.signature"


@pytest.fixture
def platform(monkeypatch):
    async def public(url, *, allow_private, field="metadata.url"):  # no DNS in tests: the URL rules have their own
        return url
    monkeypatch.setattr("services.platforms.bluesky.check_public_url", public)
    monkeypatch.setattr("services.platforms.mediafile.check_public_url", public)
    return BlueskyPlatform()


@respx.mock
async def test_publish_creates_a_record_at_the_derived_rkey_with_byte_offset_facets(platform):
    respx.get(f"{XRPC}/com.atproto.identity.resolveHandle", params={"handle": "alice.bsky.social"}).respond(
        200, json={"did": "did:plc:alice"})
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(
        200, json={"uri": f"at://{DID}/app.bsky.feed.post/{RKEY}", "cid": "bafyrei"})
    # "Café ☕ → " is 10 characters but 14 UTF-8 bytes (é 2, ☕ 3, → 3): offsets are in bytes.
    text = "Café ☕ → https://example.com/a?b=1. Hi @alice.bsky.social!"
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(text), http)
    sent = create.calls.last.request
    assert sent.headers["authorization"] == "Bearer access-1"
    body = json.loads(sent.content)
    assert (body["repo"], body["collection"], body["rkey"]) == (DID, "app.bsky.feed.post", RKEY)
    record = body["record"]
    assert record["$type"] == "app.bsky.feed.post" and record["text"] == text
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["createdAt"])
    assert record["facets"] == [
        {"index": {"byteStart": 14, "byteEnd": 39},  # the trailing "." is not part of the link
         "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a?b=1"}]},
        {"index": {"byteStart": 44, "byteEnd": 62},
         "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:alice"}]},
    ]
    assert "embed" not in record
    assert published.platform_post_id == f"at://{DID}/app.bsky.feed.post/{RKEY}"
    assert published.url == f"https://bsky.app/profile/{DID}/post/{RKEY}"


@respx.mock
async def test_an_unresolvable_mention_stays_plain_text(platform):
    respx.get(f"{XRPC}/com.atproto.identity.resolveHandle").respond(
        400, json={"error": "InvalidRequest", "message": "Unable to resolve handle"})
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(200, json={"uri": "at://x", "cid": "c"})
    async with httpx.AsyncClient() as http:
        await platform.publish(request("hi @nobody.example.com"), http)
    assert "facets" not in json.loads(create.calls.last.request.content)["record"]


@respx.mock
async def test_images_are_fetched_uploaded_as_blobs_and_embedded_with_alt_text(platform):
    respx.get(IMAGE_URL).respond(200, content=b"\x89PNG-bytes", headers={"Content-Type": "image/png"})
    blob = {"$type": "blob", "ref": {"$link": "bafkrei"}, "mimeType": "image/png", "size": 10}
    upload = respx.post(f"{XRPC}/com.atproto.repo.uploadBlob").respond(200, json={"blob": blob})
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(200, json={"uri": "at://x", "cid": "c"})
    async with httpx.AsyncClient() as http:
        await platform.publish(request("look", media=(Media("image", IMAGE_URL, "a cat"),)), http)
    sent = upload.calls.last.request
    assert sent.content == b"\x89PNG-bytes"
    assert sent.headers["content-type"] == "image/png" and sent.headers["authorization"] == "Bearer access-1"
    assert json.loads(create.calls.last.request.content)["record"]["embed"] == {
        "$type": "app.bsky.embed.images", "images": [{"alt": "a cat", "image": blob}]}


@respx.mock
async def test_an_image_over_a_million_bytes_is_permanent_and_nothing_is_posted(platform):
    respx.get(IMAGE_URL).respond(200, content=b"x" * 1_000_001, headers={"Content-Type": "image/jpeg"})
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request("big", media=(Media("image", IMAGE_URL),)), http)
    assert err.value.outcome is Outcome.PERMANENT and err.value.code == "media_too_large"
    assert "1,000,000 bytes" in err.value.message and err.value.details == {"field": "content.media[0].url"}
    assert not create.called


async def test_without_a_session_publish_asks_for_one_through_auth(platform):
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(access_jwt=None), http)
    assert err.value.outcome is Outcome.AUTH and err.value.code == "no_session"


@pytest.mark.parametrize(
    ("response", "outcome", "code"),
    [
        (httpx.Response(400, json={"error": "ExpiredToken", "message": "Token has expired"}), Outcome.AUTH, "expired_token"),
        (httpx.Response(401, json={"error": "InvalidToken", "message": "Token could not be verified"}), Outcome.AUTH, "invalid_token"),
        (httpx.Response(401, json={"error": "AuthenticationRequired", "message": "Authentication Required"}),
         Outcome.AUTH, "authentication_required"),
        (httpx.Response(400, json={"error": "InvalidRequest", "message": "Invalid app.bsky.feed.post record: "
                                   "Record/text must not be longer than 300 graphemes"}), Outcome.PERMANENT, "invalid_request"),
        (httpx.Response(400, json={"error": "AccountTakedown", "message": "Account has been taken down"}),
         Outcome.PERMANENT, "account_takedown"),
        (httpx.Response(502, text="bad gateway"), Outcome.TRANSIENT, "http_502"),
    ],
)
@respx.mock
async def test_create_record_errors_are_classified(platform, response, outcome, code):
    respx.post(f"{XRPC}/com.atproto.repo.createRecord").mock(return_value=response)
    respx.get(f"{XRPC}/com.atproto.repo.getRecord").respond(400, json={"error": "RecordNotFound", "message": "no"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert (err.value.outcome, err.value.code, err.value.http_status) == (outcome, code, response.status_code)


@respx.mock
async def test_429_waits_until_ratelimit_reset_epoch(platform):
    reset = int(time.time()) + 120
    respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(
        429, json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
        headers={"RateLimit-Limit": "5000", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert err.value.outcome is Outcome.RATE_LIMITED
    assert 115 <= err.value.retry_after_seconds <= 120


@respx.mock
async def test_429_waits_from_the_answer_to_the_reset_for_this_account_only(platform, answered_at):
    reset = int(answered_at.timestamp()) + 1800
    respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(
        429, json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
        headers={"RateLimit-Limit": "5000", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
                 "RateLimit-Policy": "5000;w=3600"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, ACCOUNT, 1800)


@respx.mock
async def test_a_throttled_create_session_is_rate_limited_not_a_reconnect(platform, answered_at):
    # createSession is limited per handle (30 per 5 minutes, 300 a day)
    reset = int(answered_at.timestamp()) + 240
    respx.post(f"{XRPC}/com.atproto.server.createSession").respond(
        429, json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
        headers={"RateLimit-Limit": "30", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
                 "RateLimit-Policy": "30;w=300"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.refresh({"identifier": "author.bsky.social", "app_password": "app-pass"}, {"pds_url": PDS}, http)
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, ACCOUNT, 240)


@respx.mock
async def test_a_retried_create_that_collides_with_its_own_earlier_post_is_published(platform):
    # The reference PDS refuses a create on an existing key with a 500: the first attempt went out.
    respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(
        500, json={"error": "InternalServerError", "message": "Internal Server Error"})
    get = respx.get(f"{XRPC}/com.atproto.repo.getRecord",
                    params={"repo": DID, "collection": "app.bsky.feed.post", "rkey": RKEY}).respond(
        200, json={"uri": f"at://{DID}/app.bsky.feed.post/{RKEY}", "cid": "bafy", "value": {"text": "Hello"}})
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(), http)
    assert get.called and published.url == f"https://bsky.app/profile/{DID}/post/{RKEY}"


@respx.mock
async def test_a_create_timeout_is_transient_because_the_rkey_makes_a_retry_collide(platform):
    respx.post(f"{XRPC}/com.atproto.repo.createRecord").mock(side_effect=httpx.ReadTimeout("slow"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert err.value.outcome is Outcome.TRANSIENT


@respx.mock
async def test_lookup_finds_the_post_at_the_derived_rkey_or_says_none(platform):
    route = respx.get(f"{XRPC}/com.atproto.repo.getRecord",
                      params={"repo": DID, "collection": "app.bsky.feed.post", "rkey": RKEY})
    route.respond(200, json={"uri": f"at://{DID}/app.bsky.feed.post/{RKEY}", "value": {}})
    async with httpx.AsyncClient() as http:
        found = await platform.lookup(request(), http)
        assert found.platform_post_id == f"at://{DID}/app.bsky.feed.post/{RKEY}"
        route.respond(400, json={"error": "RecordNotFound", "message": f"Could not locate record: at://{DID}"})
        assert await platform.lookup(request(), http) is None


@respx.mock
async def test_refresh_uses_the_refresh_jwt_and_keeps_the_app_password(platform):
    exp = int(time.time()) + 7200
    route = respx.post(f"{XRPC}/com.atproto.server.refreshSession").respond(
        200, json={"accessJwt": jwt(exp), "refreshJwt": "refresh-2", "handle": "author.bsky.social", "did": DID})
    async with httpx.AsyncClient() as http:
        tokens = await platform.refresh(request().credentials, {"pds_url": PDS}, http)
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer refresh-1" and sent.content == b""
    assert tokens.credentials == {"identifier": "author.bsky.social", "app_password": "app-pass", "access_jwt": jwt(exp),
                                  "refresh_jwt": "refresh-2", "did": DID, "handle": "author.bsky.social"}
    assert tokens.expires_at == datetime.fromtimestamp(exp, tz=timezone.utc)


@respx.mock
async def test_refresh_falls_back_to_the_app_password_when_the_refresh_jwt_expired(platform):
    respx.post(f"{XRPC}/com.atproto.server.refreshSession").respond(
        400, json={"error": "ExpiredToken", "message": "Token has expired"})
    create = respx.post(f"{XRPC}/com.atproto.server.createSession").respond(
        200, json={"accessJwt": "not-a-jwt", "refreshJwt": "refresh-3", "handle": "author.bsky.social", "did": DID})
    async with httpx.AsyncClient() as http:
        tokens = await platform.refresh(request().credentials, {"pds_url": PDS}, http)
    assert json.loads(create.calls.last.request.content) == {"identifier": "author.bsky.social", "password": "app-pass"}
    assert tokens.credentials["refresh_jwt"] == "refresh-3" and tokens.expires_at is None


@respx.mock
async def test_refresh_with_a_revoked_app_password_is_auth(platform):
    respx.post(f"{XRPC}/com.atproto.server.createSession").respond(
        401, json={"error": "AuthenticationRequired", "message": "Invalid identifier or password"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.refresh({"identifier": "a", "app_password": "wrong"}, {"pds_url": PDS}, http)
    assert err.value.outcome is Outcome.AUTH and "Invalid identifier or password" in err.value.message


@respx.mock
async def test_verify_creates_a_session_on_the_default_entryway():
    route = respx.post("https://bsky.social/xrpc/com.atproto.server.createSession").respond(
        200, json={"accessJwt": "a", "refreshJwt": "r", "handle": "author.bsky.social", "did": DID})
    async with httpx.AsyncClient() as http:
        account = await BlueskyPlatform().verify({"identifier": "author.bsky.social", "app_password": "p"}, {}, http)
    assert route.called
    assert (account.account_id, account.name, account.metadata) == (DID, "author.bsky.social", {"handle": "author.bsky.social"})


async def test_a_private_pds_url_is_refused():
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await BlueskyPlatform().verify({}, {"pds_url": "https://10.0.0.5"}, http)
    assert err.value.outcome is Outcome.PERMANENT and err.value.code == "private_address"


def test_record_keys_are_tids_of_the_first_attempt_and_the_same_on_every_retry():
    tid = record_key(request())
    assert re.fullmatch(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}", tid)  # top bit 0
    assert tid == record_key(request(text="retried"))  # same target, same first attempt: same key
    # "derived from the creation time of the record" (atproto.com/specs/tid): the first attempt's
    # millisecond, not a hash that decodes to 1970-1994
    assert abs(tid_time(tid) - FIRST_ATTEMPT) < timedelta(milliseconds=1)
    # two targets first tried in the same run get different keys
    assert record_key(request(key="herald-other")) != tid
    later = record_key(request(first_attempt_at=FIRST_ATTEMPT + timedelta(seconds=1)))
    assert later > tid  # TIDs sort by time


def test_a_target_first_tried_before_first_attempts_were_stored_keeps_its_old_key():
    legacy = record_key(request(first_attempt_at=None))
    assert legacy == record_key(request(first_attempt_at=None)) and legacy != record_key(request())
    assert tid_time(legacy).year < 2006  # what the earlier release wrote: a retry must find it


def test_facet_links_drop_trailing_punctuation_and_unbalanced_parentheses():
    text = "(see https://en.wikipedia.org/wiki/Foo_(bar)) and https://example.com/x!"
    links = [f["features"][0]["uri"] for f in detect_facets(text, {})]
    assert links == ["https://en.wikipedia.org/wiki/Foo_(bar)", "https://example.com/x"]


def test_emails_and_handles_inside_words_are_not_mentions():
    assert detect_facets("mail bob@example.com", {"example.com": "did:plc:x"}) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),  # ASCII: one cluster per character
        ("e\u0301", 1),  # e + combining acute accent
        ("a\u0308\u0323", 1),  # two combining marks on one base
        ("\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466", 1),  # family: ZWJ sequence of four people
        ("\U0001F44D\U0001F3FD", 1),  # thumbs up + skin tone modifier
        ("\u2764\ufe0f", 1),  # heart + emoji presentation selector
        ("\U0001F3F3\ufe0f\u200d\U0001F308", 1),  # rainbow flag: flag, VS16, ZWJ, rainbow
        ("\U0001F1E9\U0001F1EA", 1),  # flag of Germany: two regional indicators
        ("\U0001F1E9\U0001F1EA\U0001F1EB\U0001F1F7", 2),  # two flags back to back pair up in order
        ("\U0001F1E9\U0001F1EA\U0001F1EB", 2),  # an odd regional indicator stands alone
        ("\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F", 1),  # Scotland: tag sequence
        ("\r\n", 1),  # CR LF is one cluster
        ("\n\u0301", 2),  # a mark after a newline does not join it
        ("नमस्ते", 4),  # Devanagari: न, म, स्, ते (no GB9c conjuncts: counts high, never low)
        ("", 0),  # empty
    ],
)
def test_graphemes_are_counted_as_extended_clusters(text, expected):
    assert count_graphemes(text) == expected


@pytest.mark.parametrize(
    ("content", "problems"),
    [
        (Content(text="a" * 300), []),
        (Content(text="a" * 301), ["bluesky: text is 301 graphemes; the limit is 300"]),
        # 200 family emoji are 200 graphemes but 3,600 bytes
        (Content(text="\U0001F468\u200d\U0001F469\u200d\U0001F467" * 200), ["bluesky: text is 3600 bytes in UTF-8; the limit is 3000"]),
        (Content(text="x", media=tuple(Media("image", IMAGE_URL) for _ in range(5))), ["bluesky: 5 images; the limit is 4"]),
        (Content(text="x", media=(Media("video", "https://cdn.example.com/v.mp4"),)), []),  # one MP4 video
        (Content(text="x", media=(Media("video", "https://cdn.example.com/v?sig=1"),)), []),  # no type named: checked when fetched
        (Content(text="x", media=(Media("video", "https://cdn.example.com/v.webm"),)),
         ["bluesky: a video must be MP4, not video/webm"]),
        (Content(text="x", media=(Media("video", "https://cdn.example.com/v.mp4"), Media("image", IMAGE_URL))),
         ["bluesky: a video is posted alone; this post has 2 media items"]),
        (Content(text="x", media=(Media("video", "https://cdn.example.com/v.mp4", "a" * 1001),)),
         ["bluesky: video alt text is 1001 graphemes; the limit is 1000"]),
        (Content(text="x", media=(Media("document", "https://cdn.example.com/a.pdf"),)),
         ["bluesky: media must be up to 4 images or one video"]),
    ],
)
def test_validate_counts_graphemes_bytes_and_images(content, problems):
    assert [p.message for p in BlueskyPlatform().validate(content)] == problems


POST_URI = f"at://{DID}/app.bsky.feed.post/{RKEY}"


def metrics_request(*, deadline=None, **credentials) -> MetricsRequest:
    return MetricsRequest(platform_post_id=POST_URI, platform_post_url=f"https://bsky.app/profile/{DID}/post/{RKEY}",
                          published_at=None, channel_id=uuid.uuid4(), account_id=DID, metadata={"pds_url": PDS},
                          credentials={"identifier": "author.bsky.social", "app_password": "app-pass",
                                       "access_jwt": "access-1", "refresh_jwt": "refresh-1", "did": DID, **credentials},
                          deadline=deadline)


def post_view(**counts) -> dict:
    return {"uri": POST_URI, "cid": "bafyreib2rxk3rh6kzwq", "indexedAt": "2030-01-01T09:00:00.000Z",
            "author": {"did": DID, "handle": "author.bsky.social"},
            "record": {"$type": "app.bsky.feed.post", "text": "Hello", "createdAt": "2030-01-01T09:00:00.000Z"}, **counts}


@respx.mock
async def test_metrics_read_the_post_view_through_the_pds_with_the_session(platform):
    route = respx.get(f"{XRPC}/app.bsky.feed.getPosts").respond(200, json={"posts": [post_view(
        likeCount=33, replyCount=4, repostCount=5, quoteCount=2, bookmarkCount=6)]})
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.clicks, figures.saves) == (
        33, 4, 7, None, None, 6)
    assert figures.raw == {"likeCount": 33, "replyCount": 4, "repostCount": 5, "quoteCount": 2, "bookmarkCount": 6}
    sent = route.calls.last.request
    assert dict(sent.url.params) == {"uris": POST_URI} and sent.headers["authorization"] == "Bearer access-1"


@respx.mock
async def test_a_count_the_appview_leaves_out_is_none(platform):
    respx.get(f"{XRPC}/app.bsky.feed.getPosts").respond(200, json={"posts": [post_view(likeCount=1, repostCount=2)]})
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(), http)
    assert (figures.likes, figures.comments, figures.shares, figures.saves) == (1, None, 2, None)


@respx.mock
async def test_metrics_of_a_deleted_post_are_permanent(platform):
    # getPosts leaves out what it cannot find: no error, no view
    respx.get(f"{XRPC}/app.bsky.feed.getPosts").respond(200, json={"posts": []})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "post_not_found")


@respx.mock
async def test_metrics_with_an_expired_session_or_none_are_auth(platform):
    respx.get(f"{XRPC}/app.bsky.feed.getPosts").respond(400, json={"error": "ExpiredToken", "message": "Token has expired"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as expired:
            await platform.metrics(metrics_request(), http)
        with pytest.raises(PlatformError) as missing:
            await platform.metrics(metrics_request(access_jwt=None), http)
    assert (expired.value.outcome, expired.value.code) == (Outcome.AUTH, "expired_token")
    assert (missing.value.outcome, missing.value.code) == (Outcome.AUTH, "no_session")


@respx.mock
async def test_throttled_metrics_wait_for_the_reset(platform, answered_at):
    reset = int(answered_at.timestamp()) + 300
    respx.get(f"{XRPC}/app.bsky.feed.getPosts").respond(
        429, json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
        headers={"RateLimit-Limit": "3000", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset)})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(), http)
    assert (err.value.outcome, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, 300)


@respx.mock
async def test_metrics_past_the_deadline_call_nothing(platform):
    await assert_metrics_call_nothing_past_the_deadline(platform, metrics_request(deadline=time.monotonic() - 1))


# --- video: the video service ---------------------------------------------------------------------

VIDEO_SERVICE = "https://video.bsky.app/xrpc"
VIDEO_URL = "https://cdn.example.com/clip.mp4"
CLIP = b"\x00\x00\x00\x18ftypmp42" + b"v" * 4096
JOB = "jh2cvxlw5ofgtm2d"
VIDEO_BLOB = {"$type": "blob", "ref": {"$link": "bafkreifzxw3"}, "mimeType": "video/mp4", "size": 412345}
#: where bsky.social really keeps the account: the audience of the video service's token
ACCOUNT_PDS = "https://morel.us-east.host.bsky.network"
SESSION = {"did": DID, "handle": "author.bsky.social", "didDoc": {"id": DID, "service": [
    {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": ACCOUNT_PDS}]}}


@pytest.fixture
def video_platform(platform):
    return BlueskyPlatform(poll_seconds=0)


def job(state: str, **more) -> dict:
    return {"jobId": JOB, "did": DID, "state": state, **more}


def mock_video_service(*statuses: dict):
    """The account's PDS (session, service auth) and video.bsky.app (upload, then ``statuses`` in turn)."""
    respx.get(VIDEO_URL).respond(200, content=CLIP, headers={"Content-Type": "video/mp4"})
    session = respx.get(f"{XRPC}/com.atproto.server.getSession").respond(200, json=SESSION)
    auth = respx.get(f"{XRPC}/com.atproto.server.getServiceAuth").respond(200, json={"token": "service-token"})
    # video.bsky.app answers uploadVideo with the jobStatus itself (not wrapped as the lexicon's output)
    upload = respx.post(f"{VIDEO_SERVICE}/app.bsky.video.uploadVideo").respond(200, json=job("JOB_STATE_CREATED"))
    status = respx.get(f"{VIDEO_SERVICE}/app.bsky.video.getJobStatus").mock(
        side_effect=[httpx.Response(200, json={"jobStatus": s}) for s in statuses])
    return session, auth, upload, status


@respx.mock
async def test_a_video_goes_through_the_video_service_with_service_auth_and_is_embedded(video_platform):
    session, auth, upload, status = mock_video_service(
        job("JOB_STATE_ENCODING", progress=40), job("JOB_STATE_COMPLETED", blob=VIDEO_BLOB))
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(200, json={"uri": "at://x", "cid": "c"})
    sent = request("watch", media=(Media("video", VIDEO_URL, "a dog surfing"),))
    before = int(time.time())
    async with httpx.AsyncClient() as http:
        await video_platform.publish(sent, http)

    assert session.calls.last.request.headers["authorization"] == "Bearer access-1"
    asked = dict(auth.calls.last.request.url.params)
    assert auth.calls.last.request.headers["authorization"] == "Bearer access-1"
    assert (asked["aud"], asked["lxm"]) == ("did:web:morel.us-east.host.bsky.network", "com.atproto.repo.uploadBlob")
    assert before + 1800 <= int(asked["exp"]) <= int(time.time()) + 1800  # 30 minutes, as Bluesky advises
    uploaded = upload.calls.last.request
    assert dict(uploaded.url.params) == {"did": DID, "name": "clip.mp4"}
    assert uploaded.headers["authorization"] == "Bearer service-token"
    assert uploaded.headers["content-type"] == "video/mp4" and uploaded.content == CLIP
    assert [dict(c.request.url.params) for c in status.calls] == [{"jobId": JOB}] * 2
    assert json.loads(create.calls.last.request.content)["record"]["embed"] == {
        "$type": "app.bsky.embed.video", "video": VIDEO_BLOB, "alt": "a dog surfing"}
    assert sent.progress == {"video_job": JOB, "video_blob": VIDEO_BLOB}


@respx.mock
async def test_a_video_job_that_outlives_the_run_is_resumed_from_its_id_never_uploaded_again(video_platform):
    mock_video_service()
    respx.get(f"{VIDEO_SERVICE}/app.bsky.video.getJobStatus").respond(200, json={"jobStatus": job("JOB_STATE_ENCODING")})
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(200, json={"uri": "at://x", "cid": "c"})
    first = replace(request("watch", media=(Media("video", VIDEO_URL),)), deadline=time.monotonic() + 0.2)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await video_platform.publish(first, http)
    assert (err.value.outcome, err.value.code) == (Outcome.TRANSIENT, "video_processing")
    assert err.value.details == {"video_job": JOB} and first.progress == {"video_job": JOB}
    assert not create.called

    respx.routes.clear()
    fetch = respx.get(VIDEO_URL)
    auth = respx.get(f"{XRPC}/com.atproto.server.getServiceAuth")
    upload = respx.post(f"{VIDEO_SERVICE}/app.bsky.video.uploadVideo")
    respx.get(f"{VIDEO_SERVICE}/app.bsky.video.getJobStatus").respond(
        200, json={"jobStatus": job("JOB_STATE_COMPLETED", blob=VIDEO_BLOB)})
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(200, json={"uri": "at://x", "cid": "c"})
    again = replace(request("watch", media=(Media("video", VIDEO_URL),)), resume=err.value.details)
    async with httpx.AsyncClient() as http:
        await video_platform.publish(again, http)
    assert not fetch.called and not auth.called and not upload.called
    record = json.loads(create.calls.last.request.content)
    assert record["rkey"] == RKEY and record["record"]["embed"]["video"] == VIDEO_BLOB


@respx.mock
async def test_a_failed_post_after_the_video_keeps_its_blob_so_the_retry_only_posts(video_platform):
    mock_video_service(job("JOB_STATE_COMPLETED", blob=VIDEO_BLOB))
    respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(400, json={"error": "ExpiredToken", "message": "expired"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await video_platform.publish(request("watch", media=(Media("video", VIDEO_URL),)), http)
    assert err.value.outcome is Outcome.AUTH  # the run refreshes the session and tries again with these details
    assert err.value.details == {"error": "ExpiredToken", "video_job": JOB, "video_blob": VIDEO_BLOB}

    respx.routes.clear()
    upload = respx.post(f"{VIDEO_SERVICE}/app.bsky.video.uploadVideo")
    status = respx.get(f"{VIDEO_SERVICE}/app.bsky.video.getJobStatus")
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(200, json={"uri": "at://x", "cid": "c"})
    again = replace(request("watch", media=(Media("video", VIDEO_URL),)), resume=err.value.details)
    async with httpx.AsyncClient() as http:
        await video_platform.publish(again, http)
    assert not upload.called and not status.called
    assert json.loads(create.calls.last.request.content)["record"]["embed"]["video"] == VIDEO_BLOB


@respx.mock
async def test_a_video_the_service_cannot_process_fails_with_its_reason(video_platform):
    mock_video_service(job("JOB_STATE_FAILED", error="Video is too long", failureCode="validation_failure"))
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await video_platform.publish(request("watch", media=(Media("video", VIDEO_URL),)), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "video_failed")
    assert "too long" in err.value.message and err.value.details["failure_code"] == "validation_failure"
    assert not create.called


@respx.mock
async def test_an_already_processed_video_is_taken_from_the_upload_answer(video_platform):
    _, _, upload, status = mock_video_service()
    upload.respond(200, json=job("JOB_STATE_COMPLETED", blob=VIDEO_BLOB))
    create = respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(200, json={"uri": "at://x", "cid": "c"})
    async with httpx.AsyncClient() as http:
        await video_platform.publish(request("watch", media=(Media("video", VIDEO_URL),)), http)
    assert not status.called
    assert json.loads(create.calls.last.request.content)["record"]["embed"]["video"] == VIDEO_BLOB


@pytest.mark.parametrize(
    ("answer", "outcome", "code"),
    [
        # the daily video quota or an unverified email: the service's own words, not a retry
        (httpx.Response(400, json={"error": "InvalidRequest", "message": "User has exceeded daily upload limit"}),
         Outcome.PERMANENT, "invalid_request"),
        (httpx.Response(401, json={"error": "AuthenticationRequired", "message": "bad service token"}),
         Outcome.AUTH, "authentication_required"),
        (httpx.Response(429, json={"error": "RateLimitExceeded"}, headers={"RateLimit-Reset": "4102444800"}),
         Outcome.RATE_LIMITED, "rate_limit_exceeded"),
        (httpx.Response(503), Outcome.TRANSIENT, "http_503"),
    ],
)
@respx.mock
async def test_video_service_errors_are_classified(video_platform, answer, outcome, code):
    _, _, upload, _ = mock_video_service()
    upload.mock(return_value=answer)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await video_platform.publish(request("watch", media=(Media("video", VIDEO_URL),)), http)
    assert (err.value.outcome, err.value.code) == (outcome, code)
    assert "video_job" not in err.value.details  # nothing uploaded: the next attempt uploads afresh


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Content-Type": "video/quicktime"}, "unsupported_media_type"),  # the embed takes video/mp4 only
        ({"Content-Type": "video/mp4", "Content-Length": "50000001"}, "media_too_large"),  # over the lexicon's 50 MB
    ],
)
@respx.mock
async def test_a_video_the_embed_would_refuse_is_not_uploaded(video_platform, headers, code):
    respx.get(VIDEO_URL).respond(200, content=CLIP, headers=headers)
    auth = respx.get(f"{XRPC}/com.atproto.server.getServiceAuth")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await video_platform.publish(request("watch", media=(Media("video", VIDEO_URL),)), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, code)
    assert not auth.called


@respx.mock
async def test_the_video_service_host_is_configurable_and_a_pds_without_did_doc_is_its_own_audience(platform):
    moved = BlueskyPlatform(video_url="http://127.0.0.1:8765", poll_seconds=0)
    respx.get(VIDEO_URL).respond(200, content=CLIP, headers={"Content-Type": "video/mp4"})
    respx.get(f"{XRPC}/com.atproto.server.getSession").respond(200, json={"did": DID, "handle": "a"})
    auth = respx.get(f"{XRPC}/com.atproto.server.getServiceAuth").respond(200, json={"token": "t"})
    upload = respx.post("http://127.0.0.1:8765/xrpc/app.bsky.video.uploadVideo").respond(
        200, json=job("JOB_STATE_COMPLETED", blob=VIDEO_BLOB))
    respx.post(f"{XRPC}/com.atproto.repo.createRecord").respond(200, json={"uri": "at://x", "cid": "c"})
    async with httpx.AsyncClient() as http:
        await moved.publish(request("watch", media=(Media("video", VIDEO_URL),)), http)
    assert upload.called and dict(auth.calls.last.request.url.params)["aud"] == "did:web:pds.example.com"
