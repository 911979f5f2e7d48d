"""The webhook adapter against a receiver mocked with respx: exact request, every answer classified."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import datetime, timezone

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome
from services.platforms.base import ACCOUNT, PlatformError, PublishRequest
from services.platforms.urls import check_public_url
from services.platforms.webhook import WebhookPlatform

URL = "https://hooks.example.com/herald"


def request(**credentials) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(),
        content=Content(text="Hello", media=(Media("image", "https://cdn.example.com/a.png", "alt"),)),
        scheduled_at=datetime(2030, 1, 1, 9, tzinfo=timezone.utc), timezone="Europe/Berlin", channel_id=uuid.uuid4(),
        account_id=URL, metadata={"url": URL}, credentials=credentials, idempotency_key="herald-key-1",
    )


@pytest.fixture
def platform(monkeypatch):
    async def public(url, *, allow_private, field="metadata.url"):  # no DNS in tests: the URL rules have their own
        return url
    monkeypatch.setattr("services.platforms.webhook.check_public_url", public)
    return WebhookPlatform()


@respx.mock
async def test_posts_signed_json_with_an_idempotency_key(platform):
    route = respx.post(URL).respond(201, json={"id": "rcv-1", "url": "https://example.com/p/1"})
    req = request(secret="s3cret")
    async with httpx.AsyncClient() as http:
        published = await platform.publish(req, http)
    assert (published.platform_post_id, published.url, published.http_status) == ("rcv-1", "https://example.com/p/1", 201)
    sent = route.calls.last.request
    assert sent.headers["idempotency-key"] == "herald-key-1"
    assert sent.headers["content-type"] == "application/json"
    body = json.loads(sent.content)
    assert body == {"post_id": str(req.post_id), "target_id": str(req.target_id), "text": "Hello",
                    "media": [{"type": "image", "url": "https://cdn.example.com/a.png", "alt": "alt"}],
                    "scheduled_at": "2030-01-01T09:00:00+00:00", "timezone": "Europe/Berlin"}
    timestamp = sent.headers["x-herald-timestamp"]
    expected = hmac.new(b"s3cret", timestamp.encode() + b"." + sent.content, hashlib.sha256).hexdigest()
    assert sent.headers["x-herald-signature"] == f"sha256={expected}"


@respx.mock
async def test_without_a_secret_nothing_is_signed_and_plain_2xx_is_published(platform):
    route = respx.post(URL).respond(204)
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(), http)
    assert published.platform_post_id == "herald-key-1" and published.url is None
    assert "x-herald-signature" not in route.calls.last.request.headers


@pytest.mark.parametrize(
    ("response", "outcome", "retry_after"),
    [
        (httpx.Response(429, headers={"Retry-After": "120"}), Outcome.RATE_LIMITED, 120),
        (httpx.Response(401, json={"error": "bad signature"}), Outcome.AUTH, None),
        (httpx.Response(403), Outcome.AUTH, None),
        (httpx.Response(500), Outcome.TRANSIENT, None),
        (httpx.Response(503, headers={"Retry-After": "30"}), Outcome.TRANSIENT, 30),
        (httpx.Response(422, json={"message": "text too long"}), Outcome.PERMANENT, None),
        (httpx.Response(404, text="no such hook"), Outcome.PERMANENT, None),
    ],
)
@respx.mock
async def test_answers_are_classified(platform, response, outcome, retry_after):
    respx.post(URL).mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert err.value.outcome is outcome and err.value.http_status == response.status_code
    assert err.value.retry_after_seconds == retry_after


@respx.mock
async def test_a_retry_after_date_is_counted_from_the_answer_for_this_channel_only(platform, answered_at):
    respx.post(URL).respond(429, headers={"Retry-After": "Tue, 01 Jan 2030 12:05:00 GMT"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert answered_at.isoformat() == "2030-01-01T12:00:00+00:00"
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, ACCOUNT, 300)


@respx.mock
async def test_receivers_message_is_kept(platform):
    respx.post(URL).respond(422, json={"message": "text too long"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert "text too long" in err.value.message


@pytest.mark.parametrize(
    ("error", "outcome"),
    [(httpx.ConnectError("refused"), Outcome.TRANSIENT),
     (httpx.ReadTimeout("slow"), Outcome.TRANSIENT),  # safe: the receiver dedupes on Idempotency-Key
     (httpx.RemoteProtocolError("dropped"), Outcome.TRANSIENT)],
)
@respx.mock
async def test_transport_failures_are_transient_because_the_key_makes_retries_safe(platform, error, outcome):
    respx.post(URL).mock(side_effect=error)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert err.value.outcome is outcome


@pytest.mark.parametrize(
    ("url", "code"),
    [("http://hooks.example.com/x", "insecure_url"), ("https://127.0.0.1/x", "private_address"),
     ("https://10.1.2.3/x", "private_address"), ("https://[::1]/x", "private_address"),
     ("https://169.254.169.254/latest", "private_address"), ("ftp://example.com", "invalid_url"),
     ("https://localhost/x", "private_address")],
)
async def test_user_urls_must_be_https_and_public(url, code):
    with pytest.raises(PlatformError) as err:
        await check_public_url(url, allow_private=False)
    assert err.value.code == code and err.value.outcome is Outcome.PERMANENT


async def test_private_hosts_are_allowed_only_when_configured():
    assert await check_public_url("http://127.0.0.1:9000/hook", allow_private=True) == "http://127.0.0.1:9000/hook"
    assert await check_public_url("https://93.184.215.14/hook", allow_private=False)  # a public literal needs no DNS
