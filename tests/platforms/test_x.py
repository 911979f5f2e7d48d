"""The X adapter against api.x.com mocked with respx: exact requests, media flows, errors, OAuth, counting, metrics.

Metrics answers are shaped as docs.x.com/x-api/fundamentals/metrics shows (``data.public_metrics``,
``data.non_public_metrics``); a deleted post as X answers a lookup of a missing resource: 200 with ``errors``
(``type: https://api.twitter.com/2/problems/resource-not-found``) and no ``data``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome, ThreadPart
from services.platforms import mediafile, steps, x
from services.platforms.base import ACCOUNT, APP, MetricsRequest, PlatformError, PublishRequest
from services.platforms.x import XPlatform
from services.platforms.xtext import weighted_length
from tests.platforms.conftest import assert_metrics_call_nothing_past_the_deadline

API = "https://api.x.com"
IMAGE_URL = "https://cdn.example.com/a.png"
VIDEO_URL = "https://cdn.example.com/clip.mp4"


def request(content: Content, *, deadline: float | None = None, metadata=None, credentials=None) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(), content=content,
        scheduled_at=datetime(2030, 1, 1, 9, tzinfo=timezone.utc), timezone="UTC", channel_id=uuid.uuid4(),
        account_id="42", metadata={"username": "herald"} if metadata is None else metadata,
        credentials=credentials or {"access_token": "tok", "refresh_token": "r1"}, idempotency_key="herald-k",
        deadline=deadline,
    )


@pytest.fixture
def platform(monkeypatch):
    async def public(url, *, allow_private, field="metadata.url"):  # no DNS in tests: the URL rules have their own
        return url
    monkeypatch.setattr(mediafile, "check_public_url", public)
    return XPlatform(client_id="cid", client_secret="csecret")


@pytest.fixture
def sleeps(monkeypatch):
    waited: list[float] = []

    async def fake_sleep(seconds):
        waited.append(seconds)
    monkeypatch.setattr(x, "_sleep", fake_sleep)
    return waited


def multipart_fields(sent: httpx.Request) -> str:
    return sent.content.decode("latin-1")


@respx.mock
async def test_text_post_sends_bearer_json_and_builds_the_username_url(platform):
    route = respx.post(f"{API}/2/tweets").respond(201, json={"data": {"id": "190", "text": "Hello"}})
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Hello")), http)
    assert (published.platform_post_id, published.url, published.http_status) == ("190", "https://x.com/herald/status/190", 201)
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer tok"
    assert json.loads(sent.content) == {"text": "Hello"}


@respx.mock
async def test_without_a_username_the_url_needs_none(platform):
    respx.post(f"{API}/2/tweets").respond(201, json={"data": {"id": "190"}})
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Hi"), metadata={}), http)
    assert published.url == "https://x.com/i/web/status/190"


@respx.mock
async def test_image_is_fetched_uploaded_with_alt_text_and_attached(platform):
    fetch = respx.get(IMAGE_URL).respond(200, content=b"PNGDATA", headers={"Content-Type": "image/png"})
    upload = respx.post(f"{API}/2/media/upload").respond(200, json={"data": {"id": "m1", "media_key": "3_m1"}})
    alt = respx.post(f"{API}/2/media/metadata").respond(200, json={"data": {}})
    post = respx.post(f"{API}/2/tweets").respond(201, json={"data": {"id": "191"}})
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="pic", media=(Media("image", IMAGE_URL, "a cat"),))), http)
    assert fetch.called
    sent = upload.calls.last.request
    assert sent.headers["authorization"] == "Bearer tok"
    assert sent.headers["content-type"].startswith("multipart/form-data")
    body = multipart_fields(sent)
    assert 'name="media_category"\r\n\r\ntweet_image' in body
    assert 'name="media"; filename="media"' in body and "Content-Type: image/png" in body and "PNGDATA" in body
    assert json.loads(alt.calls.last.request.content) == {"id": "m1", "metadata": {"alt_text": {"text": "a cat"}}}
    assert json.loads(post.calls.last.request.content) == {"text": "pic", "media": {"media_ids": ["m1"]}}


@respx.mock
async def test_four_images_are_uploaded_in_order_and_images_without_alt_skip_metadata(platform):
    urls = [f"https://cdn.example.com/{i}.jpg" for i in range(4)]
    for u in urls:
        respx.get(u).respond(200, content=u.encode(), headers={"Content-Type": "image/jpeg"})
    upload = respx.post(f"{API}/2/media/upload").mock(
        side_effect=[httpx.Response(200, json={"data": {"id": f"m{i}"}}) for i in range(4)])
    alt = respx.post(f"{API}/2/media/metadata").respond(200, json={})
    post = respx.post(f"{API}/2/tweets").respond(201, json={"data": {"id": "192"}})
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="", media=tuple(Media("image", u) for u in urls))), http)
    assert upload.call_count == 4 and not alt.called
    assert json.loads(post.calls.last.request.content) == {"media": {"media_ids": ["m0", "m1", "m2", "m3"]}}


@respx.mock
async def test_video_is_uploaded_in_chunks_and_polled_as_x_asks(platform, sleeps, monkeypatch):
    monkeypatch.setattr(x, "CHUNK_BYTES", 4)
    respx.get(VIDEO_URL).respond(200, content=b"0123456789", headers={"Content-Type": "video/mp4"})
    init = respx.post(f"{API}/2/media/upload/initialize").respond(200, json={"data": {"id": "v1"}})
    append = respx.post(f"{API}/2/media/upload/v1/append").respond(204)
    respx.post(f"{API}/2/media/upload/v1/finalize").respond(
        200, json={"data": {"id": "v1", "processing_info": {"state": "pending", "check_after_secs": 3}}})
    status = respx.get(f"{API}/2/media/upload").mock(side_effect=[
        httpx.Response(200, json={"data": {"processing_info": {"state": "in_progress", "check_after_secs": 5}}}),
        httpx.Response(200, json={"data": {"processing_info": {"state": "succeeded"}}}),
    ])
    post = respx.post(f"{API}/2/tweets").respond(201, json={"data": {"id": "193"}})
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="clip", media=(Media("video", VIDEO_URL),)),
                                       deadline=time.monotonic() + 60), http)
    assert json.loads(init.calls.last.request.content) == {
        "media_type": "video/mp4", "total_bytes": 10, "media_category": "tweet_video"}
    chunks = [multipart_fields(c.request) for c in append.calls]
    assert [('name="segment_index"\r\n\r\n' + str(i)) in c for i, c in enumerate(chunks)] == [True] * 3
    assert "0123" in chunks[0] and "4567" in chunks[1] and "89" in chunks[2]
    assert parse_qs(urlsplit(str(status.calls.last.request.url)).query) == {"command": ["STATUS"], "media_id": ["v1"]}
    assert sleeps == [3, 5]
    assert json.loads(post.calls.last.request.content)["media"] == {"media_ids": ["v1"]}


@respx.mock
async def test_gif_goes_through_the_chunked_flow_as_tweet_gif(platform, sleeps):
    respx.get("https://cdn.example.com/a.gif").respond(200, content=b"GIF89a", headers={"Content-Type": "image/gif"})
    init = respx.post(f"{API}/2/media/upload/initialize").respond(200, json={"data": {"id": "g1"}})
    respx.post(f"{API}/2/media/upload/g1/append").respond(204)
    respx.post(f"{API}/2/media/upload/g1/finalize").respond(200, json={"data": {"id": "g1"}})  # no processing_info: ready
    respx.post(f"{API}/2/tweets").respond(201, json={"data": {"id": "194"}})
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="", media=(Media("image", "https://cdn.example.com/a.gif"),))), http)
    assert json.loads(init.calls.last.request.content)["media_category"] == "tweet_gif"
    assert sleeps == []


@respx.mock
async def test_processing_that_would_outlast_the_deadline_stops_before_polling(platform, sleeps):
    respx.get(VIDEO_URL).respond(200, content=b"v", headers={"Content-Type": "video/mp4"})
    respx.post(f"{API}/2/media/upload/initialize").respond(200, json={"data": {"id": "v1"}})
    respx.post(f"{API}/2/media/upload/v1/append").respond(204)
    respx.post(f"{API}/2/media/upload/v1/finalize").respond(
        200, json={"data": {"processing_info": {"state": "pending", "check_after_secs": 30}}})
    status = respx.get(f"{API}/2/media/upload").respond(200, json={})
    post = respx.post(f"{API}/2/tweets").respond(201, json={"data": {"id": "1"}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(Media("video", VIDEO_URL),)), deadline=time.monotonic() + 5), http)
    assert (err.value.outcome, err.value.code) == (Outcome.TRANSIENT, "media_processing")
    assert not status.called and not post.called and sleeps == []


@respx.mock
async def test_a_passed_deadline_starts_no_request_at_all(platform):
    post = respx.post(f"{API}/2/tweets").respond(201, json={"data": {"id": "1"}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="late"), deadline=time.monotonic() - 1), http)
    assert err.value.outcome is Outcome.TRANSIENT and not post.called


@respx.mock
async def test_failed_media_processing_is_permanent_with_xs_reason(platform):
    respx.get(VIDEO_URL).respond(200, content=b"v", headers={"Content-Type": "video/mp4"})
    respx.post(f"{API}/2/media/upload/initialize").respond(200, json={"data": {"id": "v1"}})
    respx.post(f"{API}/2/media/upload/v1/append").respond(204)
    respx.post(f"{API}/2/media/upload/v1/finalize").respond(200, json={"data": {"processing_info": {
        "state": "failed", "error": {"code": 1, "name": "InvalidMedia", "message": "Unsupported video codec"}}}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(Media("video", VIDEO_URL),))), http)
    assert err.value.outcome is Outcome.PERMANENT and "Unsupported video codec" in err.value.message


@respx.mock
async def test_media_that_cannot_be_fetched_is_permanent_and_nothing_is_posted(platform):
    respx.get(IMAGE_URL).respond(404)
    post = respx.post(f"{API}/2/tweets").respond(201, json={"data": {"id": "1"}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(media=(Media("image", IMAGE_URL),))), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "media_unavailable") and not post.called


RESET = int(datetime.now(timezone.utc).timestamp()) + 600


@pytest.mark.parametrize(
    ("response", "outcome", "code"),
    [
        # 15-minute window exhausted: wait until x-rate-limit-reset
        (httpx.Response(429, json={"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429},
                        headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(RESET)}), Outcome.RATE_LIMITED, "rate_limited"),
        # monthly/daily cap
        (httpx.Response(429, json={"title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly product cap",
                                   "type": "https://api.twitter.com/2/problems/usage-capped", "status": 429},
                        headers={"x-rate-limit-reset": str(RESET)}), Outcome.RATE_LIMITED, "usage_capped"),
        (httpx.Response(401, json={"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
         Outcome.AUTH, "unauthorized"),
        (httpx.Response(403, json={"detail": "You are not allowed to create a Tweet with duplicate content.",
                                   "type": "about:blank", "title": "Forbidden", "status": 403}), Outcome.PERMANENT, "duplicate"),
        (httpx.Response(403, json={"title": "Client Forbidden", "type": "https://api.twitter.com/2/problems/client-forbidden",
                                   "reason": "client-not-enrolled", "detail": "This request must be made using an approved developer account"}),
         Outcome.PERMANENT, "client_forbidden"),
        (httpx.Response(402, json={"title": "Payment Required"}), Outcome.PERMANENT, "payment_required"),
        (httpx.Response(503, text="over capacity"), Outcome.TRANSIENT, "http_503"),
        (httpx.Response(500, json={"title": "Internal"}), Outcome.TRANSIENT, "http_500"),
        (httpx.Response(400, json={"errors": [{"parameters": {"text": ["x" * 3]}, "message": "Text is too long"}],
                                   "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                                   "type": "https://api.twitter.com/2/problems/invalid-request"}), Outcome.PERMANENT, "http_400"),
    ],
)
@respx.mock
async def test_error_answers_are_classified(platform, response, outcome, code):
    respx.post(f"{API}/2/tweets").mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    assert (err.value.outcome, err.value.code, err.value.http_status) == (outcome, code, response.status_code)


@respx.mock
async def test_rate_limit_waits_until_the_reset_epoch(platform):
    reset = int(time.time()) + 600
    respx.post(f"{API}/2/tweets").respond(429, headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    assert 590 <= err.value.retry_after_seconds <= 600


@respx.mock
async def test_an_exhausted_24_hour_user_cap_waits_for_its_own_reset(platform):
    reset = int(time.time()) + 600
    day_reset = reset + 40_000
    respx.post(f"{API}/2/tweets").respond(429, headers={
        "x-rate-limit-remaining": "80", "x-rate-limit-reset": str(reset),
        "x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": str(day_reset)})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    assert 40_590 <= err.value.retry_after_seconds <= 40_600


def rate_headers(at: datetime, windows: dict[str, tuple[int, int]]) -> dict[str, str]:
    """X's rate headers: for each window prefix, (remaining, seconds from ``at`` to its reset epoch)."""
    headers = {}
    for prefix, (remaining, reset_in) in windows.items():
        headers |= {f"{prefix}-limit": "100", f"{prefix}-remaining": str(remaining),
                    f"{prefix}-reset": str(int(at.timestamp()) + reset_in)}
    return headers


@pytest.mark.parametrize(
    ("windows", "scope", "wait"),
    [
        # the user's 15-minute window ran out; the app's day has room
        ({"x-rate-limit": (0, 600), "x-app-limit-24hour": (9_000, 30_000)}, ACCOUNT, 600),
        # the user's 24-hour window ran out
        ({"x-rate-limit": (80, 600), "x-user-limit-24hour": (0, 40_000), "x-app-limit-24hour": (9_000, 30_000)},
         ACCOUNT, 40_000),
        # the app's 24-hour cap (every user's posts together) ran out: every X channel waits for its reset
        ({"x-rate-limit": (80, 600), "x-user-limit-24hour": (20, 40_000), "x-app-limit-24hour": (0, 30_000)},
         APP, 30_000),
        # app and user both ran out: the app's reset holds everyone; the user's own window is met on the next try
        ({"x-rate-limit": (0, 600), "x-user-limit-24hour": (0, 40_000), "x-app-limit-24hour": (0, 30_000)}, APP, 30_000),
        # no window says 0: the 15-minute reset, for this account
        ({"x-rate-limit": (3, 600)}, ACCOUNT, 600),
    ],
)
@respx.mock
async def test_a_429_pauses_whoever_ran_out_until_that_windows_reset(platform, answered_at, windows, scope, wait):
    respx.post(f"{API}/2/tweets").respond(429, json={"title": "Too Many Requests", "detail": "Too Many Requests",
                                                     "type": "about:blank", "status": 429},
                                          headers=rate_headers(answered_at, windows))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, scope, wait)


@respx.mock
async def test_the_monthly_read_cap_pauses_only_this_account(platform, answered_at):
    respx.get(f"{API}/2/users/42/tweets").respond(429, json={
        "title": "UsageCapExceeded", "detail": "Usage cap exceeded: Monthly product cap",
        "type": "https://api.twitter.com/2/problems/usage-capped", "status": 429},
        headers=rate_headers(answered_at, {"x-rate-limit": (850, 900)}))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.lookup(request(Content(text="Hello")), http)
    assert (err.value.code, err.value.limit_scope, err.value.retry_after_seconds) == ("usage_capped", ACCOUNT, 900)


@respx.mock
async def test_a_throttled_token_refresh_is_rate_limited_not_a_reconnect(platform, answered_at):
    respx.post(f"{API}/2/oauth2/token").respond(429, json={"title": "Too Many Requests", "status": 429},
                                                headers=rate_headers(answered_at, {"x-rate-limit": (0, 120)}))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.refresh({"access_token": "tok", "refresh_token": "r1"}, {}, http)
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, ACCOUNT, 120)


@respx.mock
async def test_invalid_request_keeps_xs_detail(platform):
    respx.post(f"{API}/2/tweets").respond(400, json={"title": "Invalid Request", "detail": "One or more parameters were invalid.",
                                                     "errors": [{"message": "media_ids: not found"}]})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    assert "media_ids: not found" in err.value.message


@pytest.mark.parametrize(
    ("error", "outcome"),
    [(httpx.ConnectError("refused"), Outcome.TRANSIENT),  # never reached X
     (httpx.ReadTimeout("slow"), Outcome.UNKNOWN),  # may be live: X has no idempotency key
     (httpx.RemoteProtocolError("dropped"), Outcome.UNKNOWN)],
)
@respx.mock
async def test_a_lost_answer_to_the_post_call_is_unknown(platform, error, outcome):
    respx.post(f"{API}/2/tweets").mock(side_effect=error)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    assert err.value.outcome is outcome


@respx.mock
async def test_lookup_finds_the_live_post_despite_tco_links_and_escaping(platform):
    route = respx.get(f"{API}/2/users/42/tweets").respond(200, json={"data": [
        {"id": "300", "text": "Other post"},
        {"id": "301", "text": "Fish &amp; chips https://t.co/abc https://t.co/pic",
         "attachments": {"media_keys": ["3_1"]},
         "entities": {"urls": [{"url": "https://t.co/abc", "expanded_url": "https://example.com/menu"},
                               {"url": "https://t.co/pic", "expanded_url": "https://x.com/herald/status/301/photo/1",
                                "media_key": "3_1"}]}},
    ], "meta": {"result_count": 2}})
    req = request(Content(text="Fish & chips https://example.com/menu", media=(Media("image", IMAGE_URL),)))
    async with httpx.AsyncClient() as http:
        found = await platform.lookup(req, http)
    assert found is not None and (found.platform_post_id, found.url) == ("301", "https://x.com/herald/status/301")
    params = parse_qs(urlsplit(str(route.calls.last.request.url)).query)
    assert params["exclude"] == ["retweets,replies"] and params["max_results"] == ["100"]
    assert route.calls.last.request.headers["authorization"] == "Bearer tok"


@respx.mock
async def test_lookup_says_none_when_no_recent_post_matches(platform):
    respx.get(f"{API}/2/users/42/tweets").respond(200, json={"data": [{"id": "300", "text": "Hello world"}], "meta": {}})
    async with httpx.AsyncClient() as http:
        assert await platform.lookup(request(Content(text="Hello")), http) is None


@respx.mock
async def test_lookup_cannot_be_sure_when_more_pages_remain(platform):
    respx.get(f"{API}/2/users/42/tweets").respond(200, json={"data": [{"id": "1", "text": "a"}], "meta": {"next_token": "n"}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.lookup(request(Content(text="Hello")), http)
    assert err.value.outcome is Outcome.UNKNOWN


@respx.mock
async def test_refresh_uses_basic_auth_and_returns_the_rotated_refresh_token(platform):
    route = respx.post(f"{API}/2/oauth2/token").respond(200, json={
        "token_type": "bearer", "expires_in": 7200, "access_token": "tok2", "scope": "tweet.read", "refresh_token": "r2"})
    before = datetime.now(timezone.utc)
    async with httpx.AsyncClient() as http:
        tokens = await platform.refresh({"access_token": "tok", "refresh_token": "r1", "extra": "kept"}, {}, http)
    assert tokens.credentials == {"access_token": "tok2", "refresh_token": "r2", "scope": "tweet.read", "extra": "kept"}
    assert before + timedelta(seconds=7190) <= tokens.expires_at <= datetime.now(timezone.utc) + timedelta(seconds=7200)
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(b"cid:csecret").decode()
    assert parse_qs(sent.content.decode()) == {"grant_type": ["refresh_token"], "refresh_token": ["r1"], "client_id": ["cid"]}


@respx.mock
async def test_refresh_for_a_public_client_sends_no_basic_auth():
    route = respx.post(f"{API}/2/oauth2/token").respond(200, json={"access_token": "t", "refresh_token": "r2", "expires_in": 7200})
    async with httpx.AsyncClient() as http:
        await XPlatform(client_id="cid").refresh({"access_token": "t0", "refresh_token": "r1"}, {}, http)
    assert "authorization" not in route.calls.last.request.headers


@respx.mock
async def test_a_refused_refresh_is_auth(platform):
    respx.post(f"{API}/2/oauth2/token").respond(400, json={"error": "invalid_request",
                                                           "error_description": "Value passed for the token was invalid."})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.refresh({"access_token": "t", "refresh_token": "spent"}, {}, http)
    assert err.value.outcome is Outcome.AUTH and "invalid" in err.value.message


def test_authorize_url_asks_for_pkce_s256_and_the_posting_scopes(platform):
    url = platform.authorize_url(state="st", redirect_uri="https://herald.example/cb", code_challenge="chal")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://x.com/i/oauth2/authorize"
    assert parse_qs(parts.query) == {
        "response_type": ["code"], "client_id": ["cid"], "redirect_uri": ["https://herald.example/cb"],
        "scope": ["tweet.read tweet.write users.read offline.access media.write"], "state": ["st"],
        "code_challenge": ["chal"], "code_challenge_method": ["S256"]}


@respx.mock
async def test_exchange_code_sends_the_verifier_and_reads_the_account(platform):
    token = respx.post(f"{API}/2/oauth2/token").respond(200, json={"access_token": "t", "refresh_token": "r", "expires_in": 7200})
    me = respx.get(f"{API}/2/users/me").respond(200, json={"data": {"id": "42", "name": "Herald", "username": "herald"}})
    async with httpx.AsyncClient() as http:
        tokens, account = await platform.exchange_code(code="c", redirect_uri="https://herald.example/cb",
                                                       code_verifier="ver", http=http)
    assert parse_qs(token.calls.last.request.content.decode()) == {
        "grant_type": ["authorization_code"], "code": ["c"], "redirect_uri": ["https://herald.example/cb"],
        "code_verifier": ["ver"], "client_id": ["cid"]}
    assert me.calls.last.request.headers["authorization"] == "Bearer t"
    assert tokens.credentials == {"access_token": "t", "refresh_token": "r"}
    assert (account.account_id, account.name, account.metadata) == ("42", "Herald", {"username": "herald"})


@respx.mock
async def test_verify_with_a_revoked_token_is_auth(platform):
    respx.get(f"{API}/2/users/me").respond(401, json={"title": "Unauthorized", "status": 401})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.verify({"access_token": "bad"}, {}, http)
    assert err.value.outcome is Outcome.AUTH


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 280, 280),  # ASCII: one each, exactly at the limit
        ("a" * 281, 281),  # one over
        ("日本語", 6),  # CJK counts double
        ("é", 1),  # Latin-1 range weighs 1
        ("cafe\u0301", 4),  # NFC: e + combining accent is one character
        ("\u2014\u201c\u2026", 4),  # dash and quote (8208-8223) weigh 1; the ellipsis U+2026 (8230) weighs 2
        ("👾", 2),  # a single emoji
        ("🙋🏽", 2),  # skin-tone modifier joins the emoji
        ("👨\u200d👩\u200d👧\u200d👦", 2),  # ZWJ family sequence is one emoji
        ("🇩🇪", 2),  # a flag (two regional indicators)
        ("❤️", 2),  # emoji presentation selector adds nothing
        ("https://example.com/a/very/long/path/that/goes/on", 23),  # any URL is 23
        ("see https://example.com.", 4 + 23 + 1),  # trailing full stop is text
        ("visit example.com today", 6 + 23 + 6),  # a bare domain is a URL too
        ("hello, world! 👋", 16),  # the docs.x.com example
    ],
)
def test_weighted_length(text, expected):
    assert weighted_length(text) == expected


@pytest.mark.parametrize(
    ("content", "problem_field"),
    [
        (Content(text="a" * 280), None),  # ASCII 280: fine
        (Content(text="a" * 281), "content.text"),  # ASCII 281: rejected
        (Content(text="日" * 140), None),  # 140 CJK = 280
        (Content(text="日" * 141), "content.text"),  # 141 CJK = 282
        (Content(text="👍" * 141), "content.text"),  # 141 emoji = 282
        (Content(text=("https://example.com/" + "p" * 40 + " ") * 10 + "a" * 40), None),  # 650 raw, 10 x (23+1) + 40 = 280
        (Content(text=""), "content.text"),  # nothing to post
        (Content(text="x", media=tuple(Media("image", f"https://c/{i}.png") for i in range(4))), None),  # 4 images
        (Content(text="x", media=tuple(Media("image", f"https://c/{i}.png") for i in range(5))), "content.media"),  # 5
        (Content(text="x", media=(Media("video", "https://c/v.mp4"), Media("image", "https://c/i.png"))), "content.media"),
        (Content(text="x", media=(Media("image", "https://c/a.gif"), Media("image", "https://c/i.png"))), "content.media"),
        (Content(text="x", media=(Media("image", "https://c/i.png", "a" * 1001),)), "content.media[0].alt"),
    ],
)
def test_validate(platform, content, problem_field):
    problems = platform.validate(content)
    assert [p.field for p in problems] == ([problem_field] if problem_field else [])
    assert all(p.message.startswith("x: ") for p in problems)


def metrics_request(published_at: datetime | None, *, deadline=None) -> MetricsRequest:
    return MetricsRequest(platform_post_id="1850", platform_post_url="https://x.com/herald/status/1850",
                          published_at=published_at, channel_id=uuid.uuid4(), account_id="42",
                          metadata={"username": "herald"}, credentials={"access_token": "tok"}, deadline=deadline)


PUBLIC = {"retweet_count": 4, "reply_count": 6, "like_count": 51, "quote_count": 2, "bookmark_count": 3,
          "impression_count": 2300}


@respx.mock
async def test_metrics_of_a_recent_post_add_its_link_clicks(platform, answered_at):
    route = respx.get(f"{API}/2/tweets/1850").respond(200, json={"data": {
        "id": "1850", "text": "hi", "edit_history_tweet_ids": ["1850"], "public_metrics": PUBLIC,
        "non_public_metrics": {"impression_count": 2300, "url_link_clicks": 17, "user_profile_clicks": 5}}})
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(answered_at - timedelta(days=2)), http)
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.clicks, figures.saves) == (
        51, 6, 6, 2300, 17, 3)
    assert figures.raw["non_public_metrics"]["user_profile_clicks"] == 5
    sent = route.calls.last.request
    assert dict(sent.url.params) == {"tweet.fields": "public_metrics,non_public_metrics"}
    assert sent.headers["authorization"] == "Bearer tok"


@pytest.mark.parametrize("age", [timedelta(days=30), None])
@respx.mock
async def test_metrics_of_an_older_or_undated_post_ask_public_metrics_only(platform, answered_at, age):
    # non-public metrics exist for 30 days only; asking for them later is not done
    route = respx.get(f"{API}/2/tweets/1850").respond(200, json={"data": {"id": "1850", "text": "hi", "public_metrics": PUBLIC}})
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(answered_at - age if age else None), http)
    assert dict(route.calls.last.request.url.params) == {"tweet.fields": "public_metrics"}
    assert (figures.impressions, figures.clicks, figures.raw) == (2300, None, {"public_metrics": PUBLIC})


@respx.mock
async def test_a_count_x_does_not_send_is_none(platform):
    public = {"retweet_count": 1, "reply_count": 0, "like_count": 9}
    respx.get(f"{API}/2/tweets/1850").respond(200, json={"data": {"id": "1850", "text": "hi", "public_metrics": public}})
    async with httpx.AsyncClient() as http:
        figures = await platform.metrics(metrics_request(None), http)
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.saves) == (9, 0, 1, None, None)


@respx.mock
async def test_metrics_of_a_deleted_post_are_permanent(platform):
    respx.get(f"{API}/2/tweets/1850").respond(200, json={"errors": [{
        "value": "1850", "detail": "Could not find tweet with id: [1850].", "title": "Not Found Error",
        "resource_type": "tweet", "parameter": "id", "resource_id": "1850",
        "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(None), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "post_not_found")
    assert "Could not find tweet" in err.value.message


@respx.mock
async def test_metrics_with_a_refused_token_are_auth(platform):
    respx.get(f"{API}/2/tweets/1850").respond(401, json={"title": "Unauthorized", "type": "about:blank", "status": 401,
                                                         "detail": "Unauthorized"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(None), http)
    assert (err.value.outcome, err.value.code) == (Outcome.AUTH, "unauthorized")


@respx.mock
async def test_throttled_metrics_wait_for_the_window_reset(platform, answered_at):
    respx.get(f"{API}/2/tweets/1850").respond(429, json={"title": "Too Many Requests", "status": 429},
                                              headers=rate_headers(answered_at, {"x-rate-limit": (0, 900)}))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(None), http)
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, ACCOUNT, 900)


@respx.mock
async def test_metrics_past_the_deadline_call_nothing(platform):
    await assert_metrics_call_nothing_past_the_deadline(platform, metrics_request(None, deadline=time.monotonic() - 1))


THREE_PARTS = Content(text="1/3 the post", thread=(ThreadPart("2/3 more"), ThreadPart("3/3 the end")))


def _tweet(id_: str, status: int = 201) -> httpx.Response:
    return httpx.Response(status, json={"data": {"id": id_, "text": "..."}})


@respx.mock
async def test_a_thread_is_a_reply_chain_each_part_replying_to_the_one_before(platform):
    route = respx.post(f"{API}/2/tweets").mock(side_effect=[_tweet("100"), _tweet("101"), _tweet("102")])
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, request(THREE_PARTS), http)
    assert [json.loads(c.request.content) for c in route.calls] == [
        {"text": "1/3 the post"},
        {"text": "2/3 more", "reply": {"in_reply_to_tweet_id": "100"}},
        {"text": "3/3 the end", "reply": {"in_reply_to_tweet_id": "101"}},
    ]
    assert all(c.request.headers["authorization"] == "Bearer tok" for c in route.calls)
    assert (published.platform_post_id, published.url) == ("100", "https://x.com/herald/status/100")
    assert [(s["kind"], s.get("index"), s["id"]) for s in published.steps] == [
        ("post", None, "100"), ("thread", 0, "101"), ("thread", 1, "102")]


@respx.mock
async def test_a_thread_failing_at_part_3_resumes_at_part_3_replying_to_part_2(platform):
    route = respx.post(f"{API}/2/tweets").mock(side_effect=[
        _tweet("100"), _tweet("101"), httpx.Response(503, json={"title": "Service Unavailable"})])
    first = request(THREE_PARTS)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await steps.publish(platform, first, http)
    assert err.value.outcome is Outcome.TRANSIENT
    assert [s["id"] for s in err.value.details["steps"]] == ["100", "101"]
    assert "content.thread[0]" in err.value.message  # says what is live already

    route.reset()
    route.mock(side_effect=[_tweet("102")])
    again = dataclasses.replace(request(THREE_PARTS), resume={**first.progress, **err.value.details})
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, again, http)
    assert [json.loads(c.request.content) for c in route.calls] == [
        {"text": "3/3 the end", "reply": {"in_reply_to_tweet_id": "101"}}]  # parts 1 and 2 never again
    assert [s["id"] for s in published.steps] == ["100", "101", "102"]
    assert published.platform_post_id == "100"


@respx.mock
async def test_the_first_comment_is_the_authors_reply_to_the_post(platform):
    route = respx.post(f"{API}/2/tweets").mock(side_effect=[_tweet("100"), _tweet("200")])
    content = Content(text="Launch day", first_comment="Details: https://example.com/launch")
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, request(content), http)
    assert [json.loads(c.request.content) for c in route.calls] == [
        {"text": "Launch day"},
        {"text": "Details: https://example.com/launch", "reply": {"in_reply_to_tweet_id": "100"}}]
    assert published.steps[-1] == {"kind": "first_comment", "id": "200", "url": "https://x.com/herald/status/200"}
    assert published.first_comment_error is None


@respx.mock
async def test_a_refused_first_comment_leaves_the_post_published_and_says_why(platform):
    respx.post(f"{API}/2/tweets").mock(side_effect=[
        _tweet("100"), httpx.Response(403, json={"title": "Forbidden", "detail": "You are not permitted to reply"})])
    content = Content(text="Launch day", first_comment="Details")
    async with httpx.AsyncClient() as http:
        published = await steps.publish(platform, request(content), http)
    assert published.platform_post_id == "100"
    assert published.first_comment_error.startswith("the first comment was not posted: x answered 403")
    assert [s["kind"] for s in published.steps] == ["post"]

