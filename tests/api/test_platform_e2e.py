"""Instagram, X and Mastodon end to end: the cron endpoint of the real app publishing to a loopback
platform simulator (HERALD_PLATFORM_BASE_URLS for Instagram and X, the channel's instance URL for
Mastodon), channels connected through the API (each adapter's ``verify`` answered by the simulator).

"Lost answer" cases come in two kinds: the platform applied the request and the connection dropped
before its answer (``Reply(drop=True)``), and the run itself died mid-call (the cron request is
cancelled while the simulator holds the call open; a later run recovers the expired lease). Either
way the post must never be published twice.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from api.factory import create_app
from tests.api.conftest import CRON, make_settings
from tests.support.simulator import Reply

PATH = "/api/v1/cron/publish-scheduled"
LEASE_SECONDS = 300

GRAPH = "/v25.0"
IG_USER = "17841400000000001"
IG_MEDIA = f"{GRAPH}/{IG_USER}/media"
IG_PUBLISH = f"{GRAPH}/{IG_USER}/media_publish"
IG_QUOTA = f"{GRAPH}/{IG_USER}/content_publishing_limit"
CONTAINER = "17900000000000001"
IG_POST = "17950000000000001"
PERMALINK = "https://www.instagram.com/p/C0ffee/"
IMAGE = {"type": "image", "url": "https://cdn.example.com/cat.jpg", "alt": "a cat on a sofa"}

X_USER = "2244994945"
TWEETS = "/2/tweets"

STATUSES = "/api/v1/statuses"


@asynccontextmanager
async def herald(store, sim, **overrides):
    """The real app, its platforms pointed at the simulator."""
    values = dict(herald_allow_private_hosts=True, retry_base_seconds=0, request_timeout=2, run_budget_seconds=20,
                  lease_seconds=LEASE_SECONDS,
                  herald_platform_base_urls={"instagram": sim.url, "x": sim.url})
    values.update(overrides)
    app = create_app(make_settings(**values), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        yield http
    if app.state.runtime is not None:
        await app.state.runtime.http.aclose()


@pytest.fixture
async def client(store, sim):
    async with herald(store, sim) as http:
        yield http


# --- helpers ---------------------------------------------------------------------------------


async def connect(client, who, body: dict) -> dict:
    response = await client.post("/api/v1/channels", headers=who.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def schedule(client, who, channel: dict, content: dict) -> dict:
    at = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    response = await client.post("/api/v1/posts", headers=who.headers, json={
        "content": content, "channel_ids": [channel["id"]], "scheduled_at": at})
    assert response.status_code == 201, response.text
    return response.json()


async def cron(client) -> dict:
    response = await client.post(PATH, headers=CRON)
    assert response.status_code == 200, response.text
    return response.json()


async def fetch(client, who, post: dict) -> dict:
    response = await client.get(f"/api/v1/posts/{post['id']}", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def cron_killed_mid_call(client, sim, method: str, path: str) -> None:
    """Start a cron run and kill it (like a function timeout) once its call to ``path`` reached the platform."""
    run = asyncio.create_task(client.post(PATH, headers=CRON))
    for _ in range(500):
        if sim.received(path, method=method) or run.done():
            break
        await asyncio.sleep(0.01)
    assert not run.done(), run.result().text
    assert sim.received(path, method=method), f"the run never called {method} {path}"
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


def calls(sim, method: str, path: str) -> int:
    return len(sim.received(path, method=method))


# --- Instagram -------------------------------------------------------------------------------


async def instagram_channel(client, who, sim) -> dict:
    sim.answer(f"{GRAPH}/me/accounts", Reply(body={"data": [
        {"id": "104000000000001", "instagram_business_account": {"id": IG_USER, "username": "cats_of_herald"}}]}))
    channel = await connect(client, who, {"platform": "instagram", "credentials": {"access_token": "ig-token"}})
    assert (channel["account_id"], channel["name"]) == (IG_USER, "cats_of_herald")
    return channel


def container(state: str) -> Reply:
    return Reply(body={"status_code": state, "status": state})


def instagram_platform(sim) -> None:
    """An account within its quota whose containers are ready at once and publish as IG_POST."""
    sim.answer(IG_QUOTA, Reply(body={"data": [{"quota_usage": 3, "config": {"quota_total": 50, "quota_duration": 86400}}]}))
    sim.answer(IG_MEDIA, Reply(body={"id": CONTAINER}), method="POST")
    sim.answer(f"{GRAPH}/{CONTAINER}", container("FINISHED"))
    sim.answer(IG_PUBLISH, Reply(body={"id": IG_POST}))
    sim.answer(f"{GRAPH}/{IG_POST}", Reply(body={"id": IG_POST, "permalink": PERMALINK}))


async def test_instagram_image_post_is_published_through_a_container_in_one_run(client, alice, sim):
    channel = await instagram_channel(client, alice, sim)
    instagram_platform(sim)
    post = await schedule(client, alice, channel, {"text": "Sofa time #cats", "media": [IMAGE]})
    sim.requests.clear()

    summary = await cron(client)

    assert summary["published"] == 1, summary
    assert [(r.method, r.path) for r in sim.received()] == [
        ("GET", IG_QUOTA), ("POST", IG_MEDIA), ("GET", f"{GRAPH}/{CONTAINER}"), ("POST", IG_PUBLISH),
        ("GET", f"{GRAPH}/{IG_POST}")]
    assert all(r.headers["authorization"] == "Bearer ig-token" and "access_token" not in r.params()
               for r in sim.received())
    [create] = sim.received(IG_MEDIA, method="POST")
    assert create.form() == {"image_url": IMAGE["url"], "alt_text": IMAGE["alt"], "caption": "Sofa time #cats"}
    [publish] = sim.received(IG_PUBLISH)
    assert publish.form() == {"creation_id": CONTAINER}
    after = await fetch(client, alice, post)
    [target] = after["targets"]
    assert after["status"] == "published" and target["status"] == "published"
    assert (target["platform_post_id"], target["platform_post_url"]) == (IG_POST, PERMALINK)


async def test_instagram_lost_publish_answer_is_reconciled_through_the_container(client, alice, sim, later):
    channel = await instagram_channel(client, alice, sim)
    # The publish lands, its answer is lost; asked afterwards, the container says PUBLISHED.
    instagram_platform(sim)
    sim.script(f"{GRAPH}/{CONTAINER}", container("FINISHED"), container("PUBLISHED"))
    sim.script(IG_PUBLISH, Reply(drop=True))
    sim.answer(IG_MEDIA, Reply(body={"data": [
        {"id": "17950000000000999", "permalink": "https://www.instagram.com/p/Older/", "caption": "yesterday"},
        {"id": IG_POST, "permalink": PERMALINK, "caption": "Sofa time #cats"}]}), method="GET")
    post = await schedule(client, alice, channel, {"text": "Sofa time #cats", "media": [IMAGE]})

    first = await cron(client)
    later(LEASE_SECONDS + 3600)
    second = await cron(client)

    # Settled within the run as a rule; on a machine so loaded that the call's 2 s deadline passes
    # first, a later run looks the container up instead. Either way: one publish, one post.
    assert first["published"] + second["published"] == 1, (first, second)
    assert calls(sim, "POST", IG_PUBLISH) == 1 and calls(sim, "POST", IG_MEDIA) == 1
    after = await fetch(client, alice, post)
    [target] = after["targets"]
    assert after["status"] == "published"
    assert (target["platform_post_id"], target["platform_post_url"]) == (IG_POST, PERMALINK)


async def test_instagram_lost_publish_answer_is_looked_up_later_and_its_container_published_once(
        client, alice, sim, later):
    channel = await instagram_channel(client, alice, sim)
    # The container still says FINISHED after the lost answer: the publish may yet land, so the run
    # cannot tell now. The post waits, and a run after LOOKUP_DELAY asks the container again.
    instagram_platform(sim)
    sim.script(IG_PUBLISH, Reply(drop=True))
    post = await schedule(client, alice, channel, {"text": "Sofa time #cats", "media": [IMAGE]})

    first = await cron(client)
    waiting = await fetch(client, alice, post)
    later(LEASE_SECONDS + 3600)
    second = await cron(client)

    assert first["awaiting_lookup"] == 1 and first["needs_review"] == 0 and first["published"] == 0, first
    assert waiting["status"] == "publishing" and waiting["targets"][0]["status"] == "publishing"
    assert second["published"] == 1, second
    # the container never went live, so the same container is published: still one post
    assert calls(sim, "POST", IG_MEDIA) == 1 and calls(sim, "POST", IG_PUBLISH) == 2
    after = await fetch(client, alice, post)
    assert after["status"] == "published" and after["targets"][0]["status"] == "published"


async def test_instagram_run_killed_during_media_publish_is_not_published_again(client, alice, sim, later):
    channel = await instagram_channel(client, alice, sim)
    instagram_platform(sim)
    sim.script(IG_PUBLISH, Reply(hang=True))
    post = await schedule(client, alice, channel, {"text": "Sofa time #cats", "media": [IMAGE]})

    await cron_killed_mid_call(client, sim, "POST", IG_PUBLISH)
    assert (await cron(client))["claimed"] == 0  # the dead run's lease still holds it
    later(LEASE_SECONDS + 1)
    recovery = await cron(client)
    later(LEASE_SECONDS + 7200)
    after_that = await cron(client)

    assert recovery["recovered"] == 1 and recovery["needs_review"] == 1, recovery
    assert after_that["claimed"] == 0, after_that
    assert calls(sim, "POST", IG_PUBLISH) == 1
    after = await fetch(client, alice, post)
    assert after["status"] == "needs_review" and after["targets"][0]["status"] == "unknown"


# --- X ---------------------------------------------------------------------------------------


async def x_channel(client, who, sim) -> dict:
    sim.answer("/2/users/me", Reply(body={"data": {"id": X_USER, "name": "Herald", "username": "heraldapp"}}))
    channel = await connect(client, who, {"platform": "x", "credentials": {"access_token": "x-token"}})
    assert channel["account_id"] == X_USER
    return channel


async def test_x_text_post_is_published_with_its_url_built_from_the_id(client, alice, sim):
    channel = await x_channel(client, alice, sim)
    sim.script(TWEETS, Reply(status=201, body={"data": {"id": "1445880548472328192", "text": "Hello from Herald",
                                                        "edit_history_tweet_ids": ["1445880548472328192"]}}))
    post = await schedule(client, alice, channel, {"text": "Hello from Herald"})

    summary = await cron(client)

    assert summary["published"] == 1, summary
    [sent] = sim.received(TWEETS, method="POST")
    assert sent.json() == {"text": "Hello from Herald"}
    assert sent.headers["authorization"] == "Bearer x-token" and sent.headers["content-type"] == "application/json"
    after = await fetch(client, alice, post)
    [target] = after["targets"]
    assert after["status"] == "published" and target["platform_post_id"] == "1445880548472328192"
    assert target["platform_post_url"] == "https://x.com/heraldapp/status/1445880548472328192"


async def test_x_rate_limit_waits_for_the_reset_without_spending_a_retry(store, sim, alice, later):
    reset = int(time.time()) + 900
    async with herald(store, sim, max_retry_count=0) as client:  # no retries at all: a transient error would fail it
        channel = await x_channel(client, alice, sim)
        sim.script(TWEETS, Reply(status=429, body={"title": "Too Many Requests", "detail": "Too Many Requests",
                                                   "type": "about:blank", "status": 429},
                                 headers={"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0",
                                          "x-rate-limit-reset": str(reset)}),
                   Reply(status=201, body={"data": {"id": "1900000000000000001", "text": "Patience"}}))
        post = await schedule(client, alice, channel, {"text": "Patience"})

        first = await cron(client)
        held = await fetch(client, alice, post)
        too_early = await cron(client)
        later(reset - time.time() + 1)
        second = await cron(client)
        after = await fetch(client, alice, post)

    assert first["rate_limited"] == 1 and first["retry_scheduled"] == 1 and first["failed"] == 0, first
    assert held["status"] == "scheduled" and held["targets"][0]["status"] == "pending"
    next_at = datetime.fromisoformat(held["next_attempt_at"].replace("Z", "+00:00"))
    assert abs(next_at.timestamp() - reset) < 5, (held["next_attempt_at"], reset)
    assert too_early["claimed"] == 0  # not before the reset
    assert second["published"] == 1, second
    assert after["status"] == "published" and after["targets"][0]["platform_post_id"] == "1900000000000000001"
    assert calls(sim, "POST", TWEETS) == 2


async def test_x_rate_limit_then_server_error_still_has_its_retry(store, sim, alice, later):
    reset = int(time.time()) + 60
    async with herald(store, sim, max_retry_count=1) as client:
        channel = await x_channel(client, alice, sim)
        sim.script(TWEETS, Reply(status=429, body={"title": "Too Many Requests"},
                                 headers={"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}),
                   Reply(status=503, body={"title": "Service Unavailable"}))
        post = await schedule(client, alice, channel, {"text": "Patience again"})
        await cron(client)
        later(reset - time.time() + 1)
        await cron(client)  # the first transient failure: MAX_RETRY_COUNT=1 leaves one retry
        after = await fetch(client, alice, post)
    assert after["status"] == "scheduled", after


async def test_x_lost_answer_is_looked_up_among_recent_posts_by_a_later_run(client, alice, sim, later):
    channel = await x_channel(client, alice, sim)
    sim.script(TWEETS, Reply(drop=True))  # X applied it; the answer was lost
    sim.answer(f"/2/users/{X_USER}/tweets", Reply(body={
        "data": [{"id": "1900000000000000088", "text": "Only once, please",
                  "edit_history_tweet_ids": ["1900000000000000088"], "created_at": "2026-01-01T10:00:00.000Z"}],
        "meta": {"result_count": 1, "newest_id": "1900000000000000088"}}))
    post = await schedule(client, alice, channel, {"text": "Only once, please"})

    first = await cron(client)
    waiting = await fetch(client, alice, post)
    later(LEASE_SECONDS + 3600)
    second = await cron(client)

    assert first["awaiting_lookup"] == 1 and first["needs_review"] == 0 and first["retry_scheduled"] == 0, first
    assert waiting["status"] == "publishing" and "a later run checks" in waiting["targets"][0]["error"]
    assert second["published"] == 1 and second["reconciled"] == 1, second
    assert calls(sim, "POST", TWEETS) == 1  # found, never posted twice
    after = await fetch(client, alice, post)
    assert after["status"] == "published" and after["targets"][0]["platform_post_id"] == "1900000000000000088"


async def test_x_lost_answer_the_lookup_cannot_settle_is_held_for_review(client, alice, sim, later):
    channel = await x_channel(client, alice, sim)
    sim.script(TWEETS, Reply(drop=True))
    sim.answer(f"/2/users/{X_USER}/tweets", Reply(body={  # more recent posts than one page: cannot be sure
        "data": [{"id": "1900000000000000066", "text": "an older post"}],
        "meta": {"result_count": 100, "next_token": "7140dibdnow9c7btw3w29grvxfcgvpb9n9coehpk7xz5i"}}))
    post = await schedule(client, alice, channel, {"text": "Only once, please"})

    await cron(client)
    later(LEASE_SECONDS + 3600)
    second = await cron(client)

    assert second["needs_review"] == 1, second
    assert calls(sim, "POST", TWEETS) == 1
    after = await fetch(client, alice, post)
    assert after["status"] == "needs_review" and after["targets"][0]["status"] == "unknown"


async def test_x_run_killed_mid_post_is_reconciled_through_lookup(client, alice, sim, later):
    channel = await x_channel(client, alice, sim)
    sim.script(TWEETS, Reply(hang=True))  # X applies it; the run dies before any answer
    sim.answer(f"/2/users/{X_USER}/tweets", Reply(body={
        "data": [{"id": "1900000000000000077", "text": "Only once, please",
                  "edit_history_tweet_ids": ["1900000000000000077"], "created_at": "2026-01-01T10:00:00.000Z"},
                 {"id": "1900000000000000066", "text": "an older post"}],
        "meta": {"result_count": 2, "newest_id": "1900000000000000077"}}))
    post = await schedule(client, alice, channel, {"text": "Only once, please"})

    await cron_killed_mid_call(client, sim, "POST", TWEETS)
    later(LEASE_SECONDS + 1)
    recovery = await cron(client)

    assert recovery["recovered"] == 1 and recovery["reconciled"] == 1 and recovery["published"] == 1, recovery
    assert calls(sim, "POST", TWEETS) == 1
    [lookup] = sim.received(f"/2/users/{X_USER}/tweets", method="GET")
    assert lookup.headers["authorization"] == "Bearer x-token" and lookup.params()["exclude"] == "retweets,replies"
    after = await fetch(client, alice, post)
    [target] = after["targets"]
    assert after["status"] == "published" and target["platform_post_id"] == "1900000000000000077"
    assert target["platform_post_url"] == "https://x.com/heraldapp/status/1900000000000000077"


# --- Mastodon --------------------------------------------------------------------------------


async def mastodon_channel(client, who, sim) -> dict:
    sim.answer("/api/v1/accounts/verify_credentials", Reply(body={"id": "42", "username": "alice", "acct": "alice"}))
    sim.answer("/api/v2/instance", Reply(body={"domain": "127.0.0.1", "configuration": {
        "statuses": {"max_characters": 1000, "max_media_attachments": 4, "characters_reserved_per_url": 23}}}))
    channel = await connect(client, who, {"platform": "mastodon", "metadata": {"instance_url": sim.url},
                                          "credentials": {"access_token": "masto-token"}})
    assert channel["account_id"] == "42" and channel["metadata"]["max_characters"] == 1000
    return channel


def status(sim, status_id: str = "111") -> Reply:
    return Reply(body={"id": status_id, "url": f"{sim.url}/@alice/{status_id}",
                       "uri": f"{sim.url}/users/alice/statuses/{status_id}"})


async def test_mastodon_status_is_published_with_an_idempotency_key(client, alice, sim):
    channel = await mastodon_channel(client, alice, sim)
    sim.script(STATUSES, status(sim))
    text = "A long toot. " * 54  # 702 characters: over Mastodon's default 500, within this instance's 1000
    post = await schedule(client, alice, channel, {"text": text})

    summary = await cron(client)

    assert summary["published"] == 1, summary
    [sent] = sim.received(STATUSES, method="POST")
    target_id = post["targets"][0]["id"]
    assert sent.headers["idempotency-key"] == f"herald-{target_id}"
    assert sent.headers["authorization"] == "Bearer masto-token"
    assert sent.json() == {"status": text, "visibility": "public"}
    after = await fetch(client, alice, post)
    [target] = after["targets"]
    assert after["status"] == "published" and target["platform_post_id"] == "111"
    assert target["platform_post_url"] == f"{sim.url}/@alice/111"


async def test_mastodon_dropped_answer_is_repeated_with_the_same_key(client, alice, sim):
    channel = await mastodon_channel(client, alice, sim)
    # Mastodon applied the first call; the repeat with the same key returns that same status.
    sim.script(STATUSES, Reply(drop=True), status(sim, "222"))
    post = await schedule(client, alice, channel, {"text": "said once"})

    first = await cron(client)
    second = await cron(client)

    assert first["retry_scheduled"] == 1 and first["published"] == 0 and first["needs_review"] == 0, first
    assert second["published"] == 1, second
    sent = sim.received(STATUSES, method="POST")
    assert len(sent) == 2 and dict(sim.by_key) == {f"herald-{post['targets'][0]['id']}": 2}
    after = await fetch(client, alice, post)
    assert after["status"] == "published" and after["targets"][0]["platform_post_id"] == "222"
    runs = (await client.get(f"/api/v1/posts/{post['id']}/runs", headers=alice.headers)).json()["items"]
    assert [r["outcome"] for r in runs] == ["transient", "published"]


async def test_mastodon_run_killed_mid_call_is_resent_with_the_same_key(client, alice, sim, later):
    channel = await mastodon_channel(client, alice, sim)
    sim.script(STATUSES, Reply(hang=True), status(sim, "333"))
    post = await schedule(client, alice, channel, {"text": "said once, even if we died"})

    await cron_killed_mid_call(client, sim, "POST", STATUSES)
    later(LEASE_SECONDS + 1)
    recovery = await cron(client)

    assert recovery["recovered"] == 1 and recovery["published"] == 1 and recovery["needs_review"] == 0, recovery
    assert dict(sim.by_key) == {f"herald-{post['targets'][0]['id']}": 2}
    after = await fetch(client, alice, post)
    assert after["status"] == "published" and after["targets"][0]["platform_post_id"] == "333"
