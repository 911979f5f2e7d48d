"""Webhook channels end to end: the cron endpoint publishing to a real loopback receiver."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from api.factory import create_app
from tests.api.conftest import CRON, make_settings
from tests.support.simulator import Reply, Simulator

PATH = "/api/v1/cron/publish-scheduled"


@pytest.fixture
def receiver():
    with Simulator() as sim:
        yield sim


@pytest.fixture
async def client(store):
    settings = make_settings(herald_allow_private_hosts=True, retry_base_seconds=0, request_timeout=2,
                             run_budget_seconds=20)
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        yield http
    await app.state.runtime.http.aclose()


async def webhook_post(client, who, url, secret=None) -> dict:
    channel = await client.post("/api/v1/channels", headers=who.headers, json={
        "platform": "webhook", "name": "n8n", "account_id": "n8n-1", "metadata": {"url": url},
        "credentials": {"secret": secret} if secret else {}})
    assert channel.status_code == 201, channel.text
    at = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    post = await client.post("/api/v1/posts", headers=who.headers, json={
        "content": {"text": "to the hook"}, "channel_ids": [channel.json()["id"]], "scheduled_at": at})
    assert post.status_code == 201, post.text
    return post.json()


async def test_a_due_post_reaches_the_receiver_once_signed(client, alice, receiver):
    post = await webhook_post(client, alice, f"{receiver.url}/hook", secret="hook-secret")
    summary = (await client.post(PATH, headers=CRON)).json()
    assert summary["published"] == 1, summary
    [received] = receiver.received("/hook")
    target_id = post["targets"][0]["id"]
    assert received.headers["idempotency-key"] == f"herald-{target_id}"
    assert received.json()["text"] == "to the hook" and received.json()["post_id"] == post["id"]
    mac = hmac.new(b"hook-secret", received.headers["x-herald-timestamp"].encode() + b"." + received.body,
                   hashlib.sha256).hexdigest()
    assert received.headers["x-herald-signature"] == f"sha256={mac}"
    after = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
    assert after["status"] == "published" and after["targets"][0]["platform_post_url"].startswith(receiver.url)


@pytest.mark.parametrize("failure", [Reply(status=503), Reply(drop=True), Reply(hang=True)])
async def test_a_failed_delivery_is_retried_with_the_same_key(client, alice, receiver, failure):
    post = await webhook_post(client, alice, f"{receiver.url}/hook")
    receiver.script("/hook", failure)
    first = (await client.post(PATH, headers=CRON)).json()
    assert first["retry_scheduled"] == 1 and first["published"] == 0, first
    second = (await client.post(PATH, headers=CRON)).json()
    assert second["published"] == 1, second
    keys = {r.headers["idempotency-key"] for r in receiver.received("/hook")}
    assert keys == {f"herald-{post['targets'][0]['id']}"} and len(receiver.received("/hook")) == 2
    runs = (await client.get(f"/api/v1/posts/{post['id']}/runs", headers=alice.headers)).json()["items"]
    assert [r["outcome"] for r in runs] == ["transient", "published"]


async def test_a_rejected_delivery_fails_with_the_receivers_message(client, alice, receiver):
    post = await webhook_post(client, alice, f"{receiver.url}/hook")
    receiver.script("/hook", Reply(status=422, body={"message": "unknown channel in n8n"}))
    assert (await client.post(PATH, headers=CRON)).json()["failed"] == 1
    after = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
    assert after["status"] == "failed" and "unknown channel in n8n" in after["targets"][0]["error"]
