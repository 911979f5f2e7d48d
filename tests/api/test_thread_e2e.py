"""Threads and first comments end to end: the cron endpoint of the real app publishing to the loopback
platform simulator, through the store's real functions (``herald_record_results_v2`` keeps each
step with the target, so a later run, a separate call, carries on where the last one stopped).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from services import clock
from tests.api.test_platform_e2e import (
    LEASE_SECONDS,
    STATUSES,
    TWEETS,
    cron,
    fetch,
    herald,
    mastodon_channel,
    schedule,
    status,
    x_channel,
)
from tests.support.simulator import Reply


@pytest.fixture
async def client(store, sim):
    async with herald(store, sim) as http:
        yield http


def tweet(id_: str) -> Reply:
    return Reply(status=201, body={"data": {"id": id_, "text": "...", "edit_history_tweet_ids": [id_]}})


async def test_a_three_part_thread_failing_at_part_3_resumes_at_part_3_in_the_next_run(client, alice, sim, monkeypatch):
    channel = await x_channel(client, alice, sim)
    sim.script(TWEETS, tweet("1901"), tweet("1902"), Reply(status=503, body={"title": "Service Unavailable"}),
               tweet("1903"), method="POST")
    post = await schedule(client, alice, channel, {"text": "1/3 Herald now posts threads", "thread": [
        {"text": "2/3 each part replies to the one before"}, {"text": "3/3 and resumes where it stopped"}]})
    assert [p["text"] for p in post["content"]["thread"]] == [
        "2/3 each part replies to the one before", "3/3 and resumes where it stopped"]

    first = await cron(client)
    halfway = await fetch(client, alice, post)
    moved = datetime.now(timezone.utc) + timedelta(seconds=30)  # past the retry's backoff
    monkeypatch.setattr(clock, "utcnow", lambda: moved)
    second = await cron(client)
    after = await fetch(client, alice, post)

    assert first["retry_scheduled"] == 1 and first["published"] == 0, first
    [target] = halfway["targets"]
    assert halfway["status"] == "scheduled" and target["status"] == "pending"
    assert [(s["kind"], s["index"], s["id"]) for s in target["steps"]] == [
        ("post", None, "1901"), ("thread", 0, "1902")]  # live already, shown while part 3 waits
    assert "503" in target["error"]

    assert second["published"] == 1, second
    sent = [r.json() for r in sim.received(TWEETS, method="POST")]
    assert sent == [
        {"text": "1/3 Herald now posts threads"},
        {"text": "2/3 each part replies to the one before", "reply": {"in_reply_to_tweet_id": "1901"}},
        {"text": "3/3 and resumes where it stopped", "reply": {"in_reply_to_tweet_id": "1902"}},  # refused (503)
        {"text": "3/3 and resumes where it stopped", "reply": {"in_reply_to_tweet_id": "1902"}},  # the next run
    ]
    [target] = after["targets"]
    assert after["status"] == "published" and target["status"] == "published"
    assert target["platform_post_id"] == "1901"
    assert target["platform_post_url"] == "https://x.com/heraldapp/status/1901"
    assert [(s["kind"], s["index"], s["id"]) for s in target["steps"]] == [
        ("post", None, "1901"), ("thread", 0, "1902"), ("thread", 1, "1903")]
    assert target["error"] is None and target["first_comment_error"] is None


async def test_a_refused_first_comment_leaves_the_post_published_with_first_comment_error(client, alice, sim):
    channel = await x_channel(client, alice, sim)
    sim.script(TWEETS, tweet("1911"), Reply(status=403, body={
        "title": "Forbidden", "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank", "status": 403}), method="POST")
    post = await schedule(client, alice, channel, {"text": "Launch day", "first_comment": "Details inside"})

    summary = await cron(client)
    after = await fetch(client, alice, post)

    assert summary["published"] == 1, summary
    [target] = after["targets"]
    assert after["status"] == "published" and target["status"] == "published"
    assert target["platform_post_id"] == "1911"
    assert target["first_comment_error"].startswith("the first comment was not posted: x: refused as a duplicate")
    assert [s["kind"] for s in target["steps"]] == ["post"]
    assert len(sim.received(TWEETS, method="POST")) == 2  # the comment was tried once, the post never again


async def test_a_thread_part_whose_answer_was_lost_on_x_is_held_for_review_never_posted_twice(
        client, alice, sim, monkeypatch):
    channel = await x_channel(client, alice, sim)
    sim.script(TWEETS, tweet("1921"), Reply(drop=True), method="POST")  # part 2 applied by X, its answer lost
    post = await schedule(client, alice, channel, {"text": "1/2 a thread", "thread": [{"text": "2/2 its end"}]})

    first = await cron(client)
    waiting = await fetch(client, alice, post)
    moved = datetime.now(timezone.utc) + timedelta(seconds=LEASE_SECONDS + 3600)
    monkeypatch.setattr(clock, "utcnow", lambda: moved)
    second = await cron(client)
    after = await fetch(client, alice, post)

    assert first["awaiting_lookup"] == 1, first
    assert [s["id"] for s in waiting["targets"][0]["steps"]] == ["1921"]
    assert second["needs_review"] == 1, second
    [target] = after["targets"]
    assert after["status"] == "needs_review" and target["status"] == "unknown"
    assert "content.thread[0]" in target["error"] and "check the thread" in target["error"]
    assert len(sim.received(TWEETS, method="POST")) == 2  # part 2 was never sent again


async def test_a_thread_part_whose_answer_was_lost_on_mastodon_is_repeated_under_its_own_key(client, alice, sim):
    channel = await mastodon_channel(client, alice, sim)
    # Mastodon applied part 2; its answer was lost; the repeat under the same key returns that status.
    sim.script(STATUSES, status(sim, "301"), Reply(drop=True), status(sim, "302"), method="POST")
    post = await schedule(client, alice, channel, {"text": "1/2 a thread", "thread": [{"text": "2/2 its end"}]})

    first = await cron(client)
    second = await cron(client)
    after = await fetch(client, alice, post)

    assert first["retry_scheduled"] == 1 and first["needs_review"] == 0, first
    assert second["published"] == 1, second
    key = f"herald-{post['targets'][0]['id']}"
    assert dict(sim.by_key) == {key: 1, f"{key}:thread:0": 2}  # the post once; part 2 again under its own key
    assert [r.json().get("in_reply_to_id") for r in sim.received(STATUSES, method="POST")] == [None, "301", "301"]
    [target] = after["targets"]
    assert after["status"] == "published" and [s["id"] for s in target["steps"]] == ["301", "302"]


async def test_a_token_refused_mid_thread_is_refreshed_and_the_thread_goes_on_from_that_part(store, alice, sim):
    async with herald(store, sim, x_client_id="x-client") as client:
        channel = await connect_x_with_refresh(client, alice, sim)
        sim.script(TWEETS, tweet("1931"), Reply(status=401, body={"title": "Unauthorized", "status": 401}),
                   tweet("1932"), method="POST")
        sim.script("/2/oauth2/token", Reply(body={"access_token": "x-token-2", "refresh_token": "x-refresh-2",
                                                  "expires_in": 7200, "token_type": "bearer"}), method="POST")
        post = await schedule(client, alice, channel, {"text": "1/2 a thread", "thread": [{"text": "2/2 its end"}]})

        summary = await cron(client)
        after = await fetch(client, alice, post)

    assert summary["published"] == 1, summary
    sent = sim.received(TWEETS, method="POST")
    assert [(r.json()["text"], r.headers["authorization"]) for r in sent] == [
        ("1/2 a thread", "Bearer x-token"), ("2/2 its end", "Bearer x-token"), ("2/2 its end", "Bearer x-token-2")]
    assert [s["id"] for s in after["targets"][0]["steps"]] == ["1931", "1932"]


async def connect_x_with_refresh(client, who, sim) -> dict:
    sim.answer("/2/users/me", Reply(body={"data": {"id": "2244994945", "name": "Herald", "username": "heraldapp"}}))
    response = await client.post("/api/v1/channels", headers=who.headers, json={
        "platform": "x", "credentials": {"access_token": "x-token", "refresh_token": "x-refresh"}})
    assert response.status_code == 201, response.text
    return response.json()
