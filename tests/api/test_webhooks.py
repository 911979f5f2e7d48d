"""Event webhooks end to end: endpoints through the API, events from real runs, deliveries to a real
HTTP receiver, every signature checked with the Standard Webhooks reference library
(``standardwebhooks``), not Herald's own signing code."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.factory import create_app
from services import clock
from services.events.delivery import DISABLE_AFTER, RETRY_SCHEDULE
from tests.api.conftest import CRON, make_settings, sandbox_channel
from tests.support.simulator import Reply, Simulator

HOOK = "/hook"


@pytest.fixture
def receiver():
    with Simulator() as sim:
        yield sim


@pytest.fixture
async def client(store):
    """The app with a short run budget (a hanging receiver costs the test seconds, not minutes, yet
    a loaded machine still has time to publish), allowed to call the loopback receiver."""
    app = create_app(make_settings(herald_allow_private_hosts=True, run_budget_seconds=6, request_timeout=1,
                                   lease_seconds=30), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        yield http
    if app.state.runtime is not None:
        await app.state.runtime.http.aclose()


async def endpoint(client, who, receiver, events=("*",), path=HOOK) -> dict:
    response = await client.post("/api/v1/webhooks", headers=who.headers,
                                 json={"url": f"{receiver.url}{path}", "events": list(events)})
    assert response.status_code == 201, response.text
    return response.json()


async def post_now(client, who, channel: dict, text: str = "hello") -> dict:
    at = (clock.utcnow() - timedelta(seconds=1)).isoformat()
    response = await client.post("/api/v1/posts", headers=who.headers,
                                 json={"content": {"text": text}, "channel_ids": [channel["id"]], "scheduled_at": at})
    assert response.status_code == 201, response.text
    return response.json()


async def cron(client) -> dict:
    response = await client.post("/api/v1/cron/publish-scheduled", headers=CRON)
    assert response.status_code == 200, response.text
    return response.json()


def verified(secret: str, received, *, clock_moved: bool = False) -> dict:
    """The payload, once the reference library has checked its signature (and, unless the test
    moved Herald's clock, that its timestamp is within the library's five minutes of now)."""
    if not clock_moved:
        return Webhook(secret).verify(received.body, received.headers)
    at = datetime.fromtimestamp(int(received.headers["webhook-timestamp"]), tz=timezone.utc)
    expected = Webhook(secret).sign(received.headers["webhook-id"], at, received.body.decode())
    assert received.headers["webhook-signature"] == expected
    return json.loads(received.body)


# --- endpoints ----------------------------------------------------------------------------------


async def test_the_secret_is_shown_once_and_never_again(client, alice, receiver):
    created = await endpoint(client, alice, receiver)
    assert created["secret"].startswith("whsec_") and created["status"] == "active"
    listed = (await client.get("/api/v1/webhooks", headers=alice.headers)).json()
    one = (await client.get(f"/api/v1/webhooks/{created['id']}", headers=alice.headers)).json()
    assert "secret" not in listed["items"][0] and "secret" not in one
    assert created["secret"] not in (await client.get("/api/v1/webhooks", headers=alice.headers)).text


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "http://hooks.example.com/h", "events": ["post.failed"]}, "url"),  # not https
    ({"url": "https://169.254.169.254/latest", "events": ["post.failed"]}, "url"),  # the cloud metadata address
    ({"url": "https://127.0.0.1/h", "events": ["post.failed"]}, "url"),
    ({"url": "https://hooks.example.com/h", "events": ["post.exploded"]}, "events"),
    ({"url": "https://hooks.example.com/h", "events": []}, "events"),
    ({"url": "https://hooks.example.com/h"}, "events"),
])
async def test_a_bad_endpoint_is_refused_naming_the_field(store, alice, body, field, dns):
    app = create_app(make_settings(), store=store)  # private hosts not allowed: the production rule
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        response = await http.post("/api/v1/webhooks", headers=alice.headers, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
        assert (await http.get("/api/v1/webhooks", headers=alice.headers)).json()["total"] == 0


async def test_no_endpoint_is_open_without_a_token_or_to_another_user(client, alice, bob, receiver):
    created = await endpoint(client, alice, receiver)
    assert (await client.get("/api/v1/webhooks")).status_code == 401
    for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/test"), ("GET", "/deliveries")]:
        response = await client.request(method, f"/api/v1/webhooks/{created['id']}{path}", headers=bob.headers,
                                        json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get("/api/v1/webhooks", headers=bob.headers)).json()["total"] == 0


# --- events from runs ---------------------------------------------------------------------------


async def test_a_published_post_is_announced_signed_with_the_post_as_the_api_shows_it(client, alice, receiver):
    created = await endpoint(client, alice, receiver)
    channel = await sandbox_channel(client, alice)
    post = await post_now(client, alice, channel)
    answer = await cron(client)
    assert answer["published"] == 1 and answer["events"]["delivered"] == 1, answer
    [received] = receiver.received(HOOK)
    payload = verified(created["secret"], received)
    shown = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
    assert payload["type"] == "post.published" and payload["data"]["post"] == shown
    assert received.headers["webhook-id"] == payload["id"]
    with pytest.raises(WebhookVerificationError):  # and a forged body is caught by the same library
        Webhook(created["secret"]).verify(received.body.replace(b"published", b"failed"), received.headers)


async def test_each_outcome_has_its_event_and_only_subscribers_get_it(client, alice, bob, receiver):
    failures = await endpoint(client, alice, receiver, events=("post.failed", "post.retry_scheduled"), path="/f")
    everything = await endpoint(client, alice, receiver, path="/all")
    await endpoint(client, bob, receiver, path="/bob")
    fails = await sandbox_channel(client, alice, "fails", metadata={"fail": "permanent"})
    flaky = await sandbox_channel(client, alice, "flaky", metadata={"fail": "transient"})
    unsure = await sandbox_channel(client, alice, "unsure", metadata={"fail": "unknown"})
    for channel in (fails, flaky, unsure):
        await post_now(client, alice, channel, text=channel["account_id"])
    await cron(client)
    types = sorted(verified(failures["secret"], r)["type"] for r in receiver.received("/f"))
    assert types == ["post.failed", "post.retry_scheduled"]
    types = sorted(verified(everything["secret"], r)["type"] for r in receiver.received("/all"))
    assert types == ["post.failed", "post.needs_review", "post.retry_scheduled"]
    assert receiver.received("/bob") == []  # another user's posts are not bob's events


async def test_channel_events_say_which_channel(client, alice, receiver):
    created = await endpoint(client, alice, receiver, events=("channel.rate_limited", "channel.needs_reconnect"))
    limited = await sandbox_channel(client, alice, "limited", metadata={"fail": "rate_limited"})
    refused = await sandbox_channel(client, alice, "refused", metadata={"fail": "auth"})
    for channel in (limited, refused):
        await post_now(client, alice, channel)
    await cron(client)
    payloads = {p["type"]: p["data"] for p in (verified(created["secret"], r) for r in receiver.received(HOOK))}
    assert payloads["channel.rate_limited"]["channel"]["id"] == limited["id"]
    assert payloads["channel.rate_limited"]["until"]
    assert payloads["channel.needs_reconnect"]["channel"]["id"] == refused["id"]
    assert payloads["channel.needs_reconnect"]["channel"]["status"] == "needs_reconnect"
    assert "credentials" not in str(payloads)


async def test_a_run_that_recorded_nothing_sends_nothing(client, alice, receiver):
    await endpoint(client, alice, receiver)
    answer = await cron(client)
    assert answer["claimed"] == 0 and answer["events"]["claimed"] == 0 and receiver.received(HOOK) == []


# --- delivery -----------------------------------------------------------------------------------


async def test_a_failed_delivery_is_retried_with_the_same_event_id_and_logged(client, alice, receiver, later):
    created = await endpoint(client, alice, receiver)
    receiver.script(HOOK, Reply(status=500))
    await post_now(client, alice, await sandbox_channel(client, alice))
    first = await cron(client)
    assert first["events"]["failed"] == 1
    log = (await client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=alice.headers)).json()
    [attempt] = log["items"]
    assert (attempt["attempt"], attempt["succeeded"], attempt["http_status"]) == (1, False, 500)
    assert attempt["delivery_status"] == "pending" and attempt["next_attempt_at"]

    assert (await cron(client))["events"]["claimed"] == 0  # not before its backoff
    later(RETRY_SCHEDULE[0].total_seconds() + 1)
    assert (await cron(client))["events"]["delivered"] == 1
    ids = [r.headers["webhook-id"] for r in receiver.received(HOOK)]
    assert len(ids) == 2 and len(set(ids)) == 1  # the same event, once delivered
    for received in receiver.received(HOOK):
        verified(created["secret"], received, clock_moved=True)
    log = (await client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=alice.headers)).json()
    assert [(a["attempt"], a["succeeded"], a["delivery_status"]) for a in log["items"]] == [
        (2, True, "delivered"), (1, False, "delivered")]
    assert all(a["duration_ms"] is not None for a in log["items"])
    later(3600)
    assert (await cron(client))["events"]["claimed"] == 0  # delivered once: never again


async def test_a_redirect_is_a_failure_never_followed(client, alice, receiver):
    created = await endpoint(client, alice, receiver)
    receiver.script(HOOK, Reply(status=307, headers={"location": f"{receiver.url}/elsewhere"}))
    await post_now(client, alice, await sandbox_channel(client, alice))
    assert (await cron(client))["events"]["failed"] == 1
    assert receiver.received("/elsewhere") == []
    log = (await client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=alice.headers)).json()
    assert "redirects are not followed" in log["items"][0]["error"]


async def test_an_endpoint_failing_for_a_day_is_disabled_and_its_owner_re_enables_it(client, alice, receiver, later):
    created = await endpoint(client, alice, receiver)
    receiver.answer(HOOK, Reply(status=503))
    channel = await sandbox_channel(client, alice)
    await post_now(client, alice, channel, text="first")
    await cron(client)
    elapsed, second = 0.0, None
    for wait in RETRY_SCHEDULE:
        elapsed += wait.total_seconds() + 1
        later(elapsed)
        if second is None and elapsed > 20 * 3600:  # an event whose retries outlast the endpoint
            second = await post_now(client, alice, channel, text="second")
        await cron(client)
        shown = (await client.get(f"/api/v1/webhooks/{created['id']}", headers=alice.headers)).json()
        if shown["status"] == "disabled":
            break
    assert elapsed >= DISABLE_AFTER.total_seconds()
    assert shown["status"] == "disabled" and "503" in shown["disabled_reason"]
    tries = len(receiver.received(HOOK))
    later(elapsed + 36_000)
    await cron(client)
    assert len(receiver.received(HOOK)) == tries  # a disabled endpoint is sent nothing

    receiver.answer(HOOK, Reply(status=204))
    enabled = await client.patch(f"/api/v1/webhooks/{created['id']}", headers=alice.headers, json={"status": "active"})
    assert enabled.json()["status"] == "active" and enabled.json()["disabled_reason"] is None
    await cron(client)
    [resumed] = receiver.received(HOOK)[tries:]  # the second post's delivery, still pending, resumed
    assert verified(created["secret"], resumed, clock_moved=True)["data"]["post"]["id"] == second["id"]


async def test_a_hanging_receiver_never_delays_the_next_post(client, alice, receiver):
    await endpoint(client, alice, receiver)
    receiver.answer(HOOK, Reply(hang=True))
    channel = await sandbox_channel(client, alice)
    first_post = await post_now(client, alice, channel, text="first")
    first = asyncio.create_task(cron(client))
    for _ in range(500):  # the first run has published and is now waiting on the receiver
        if receiver.received(HOOK):
            break
        await asyncio.sleep(0.01)
    assert receiver.received(HOOK) and not first.done()
    assert (await client.get(f"/api/v1/posts/{first_post['id']}", headers=alice.headers)).json()["status"] == "published"
    second_post = await post_now(client, alice, channel, text="second")
    second = await cron(client)  # another tick, while the first is still stuck on the receiver
    assert second["published"] == 1
    assert (await client.get(f"/api/v1/posts/{second_post['id']}", headers=alice.headers)).json()["status"] == "published"
    answer = await first
    assert answer["published"] == 1 and answer["events"]["failed"] == 1  # gave up at the run's budget


async def test_a_test_event_is_delivered_at_once_and_signed(client, alice, receiver):
    created = await endpoint(client, alice, receiver)
    response = await client.post(f"/api/v1/webhooks/{created['id']}/test", headers=alice.headers)
    assert response.status_code == 200 and response.json()["delivered"] is True, response.text
    [received] = receiver.received(HOOK)
    payload = verified(created["secret"], received)
    assert payload["type"] == "webhook.test" and payload["data"] == {"webhook_id": created["id"]}
    assert payload["id"] == response.json()["event_id"]


async def test_a_deleted_endpoint_gets_nothing_more(client, alice, receiver):
    created = await endpoint(client, alice, receiver)
    assert (await client.delete(f"/api/v1/webhooks/{created['id']}", headers=alice.headers)).status_code == 204
    await post_now(client, alice, await sandbox_channel(client, alice))
    answer = await cron(client)
    assert answer["published"] == 1 and receiver.received(HOOK) == []


async def test_events_are_kept_thirty_days_then_removed_with_their_log(client, alice, receiver, later, db):
    created = await endpoint(client, alice, receiver)
    await post_now(client, alice, await sandbox_channel(client, alice))
    await cron(client)
    assert db.execute("select count(*) from herald.events").fetchone()[0] == 1
    later(29 * 86400)
    await cron(client)
    assert db.execute("select count(*) from herald.events").fetchone()[0] == 1
    later(31 * 86400)
    await cron(client)
    assert db.execute("select count(*) from herald.events").fetchone()[0] == 0
    log = (await client.get(f"/api/v1/webhooks/{created['id']}/deliveries", headers=alice.headers)).json()
    assert log["total"] == 0 and (await client.get("/api/v1/webhooks", headers=alice.headers)).json()["total"] == 1
