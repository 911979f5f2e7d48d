"""User actions on posts: publish now, retry, resolve, bulk, idempotent creation, calendar, recurrence."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from api.routes import posts as posts_routes
from services.scheduling.calendar import calendar_days
from tests.api.conftest import CRON, sandbox_channel

PATH = "/api/v1/cron/publish-scheduled"


def soon(**delta) -> str:
    return (datetime.now(timezone.utc) + timedelta(**(delta or {"days": 1}))).isoformat()


async def create(client, who, channel_ids, **body) -> dict:
    response = await client.post("/api/v1/posts", headers=who.headers,
                                 json={"content": {"text": "hello"}, "channel_ids": channel_ids, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def test_publish_now_publishes_at_once_and_only_once(client, alice):
    channel = await sandbox_channel(client, alice)
    draft = await create(client, alice, [channel["id"]])
    response = await client.post(f"/api/v1/posts/{draft['id']}/publish", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "published" and response.json()["targets"][0]["status"] == "published"
    again = await client.post(f"/api/v1/posts/{draft['id']}/publish", headers=alice.headers)
    assert again.status_code == 409
    assert (await client.post(PATH, headers=CRON)).json()["processed"] == 0
    assert len((await client.get("/api/v1/sandbox/outbox", headers=alice.headers)).json()["items"]) == 1


async def test_retry_resends_only_the_failed_targets(client, alice):
    ok = await sandbox_channel(client, alice, "ok")
    broken = await sandbox_channel(client, alice, "broken", metadata={"fail": "permanent"})
    post = await create(client, alice, [ok["id"], broken["id"]])
    partial = (await client.post(f"/api/v1/posts/{post['id']}/publish", headers=alice.headers)).json()
    assert partial["status"] == "partial"
    retried = await client.post(f"/api/v1/posts/{post['id']}/retry", headers=alice.headers)
    assert retried.status_code == 200 and retried.json()["status"] == "scheduled"
    by_channel = {t["channel_id"]: t["status"] for t in retried.json()["targets"]}
    assert by_channel == {ok["id"]: "published", broken["id"]: "pending"}
    summary = (await client.post(PATH, headers=CRON)).json()
    assert summary["processed"] == 1 and summary["partial"] == 1
    outbox = (await client.get("/api/v1/sandbox/outbox", headers=alice.headers)).json()["items"]
    assert len(outbox) == 1  # the published target was not sent again
    runs = (await client.get(f"/api/v1/posts/{post['id']}/runs", headers=alice.headers)).json()["items"]
    assert sorted((r["outcome"], r["attempt"]) for r in runs) == [("permanent", 1), ("permanent", 2), ("published", 1)]
    assert (await client.post(f"/api/v1/posts/{post['id']}/retry", headers=bob_headers(client))).status_code in (401, 404)


def bob_headers(client) -> dict:
    return {"Authorization": "Bearer nope"}


async def test_a_draft_cannot_be_retried(client, alice):
    draft = await create(client, alice, [(await sandbox_channel(client, alice))["id"]])
    response = await client.post(f"/api/v1/posts/{draft['id']}/retry", headers=alice.headers)
    assert response.status_code == 409


async def test_unknown_targets_are_resolved_by_hand(client, alice):
    channel = await sandbox_channel(client, alice, metadata={"fail": "unknown"})
    post = await create(client, alice, [channel["id"]])
    held = (await client.post(f"/api/v1/posts/{post['id']}/publish", headers=alice.headers)).json()
    assert held["status"] == "needs_review" and held["targets"][0]["status"] == "unknown"
    target_id = held["targets"][0]["id"]
    resolved = await client.post(f"/api/v1/posts/{post['id']}/resolve", headers=alice.headers, json={
        "target_id": target_id, "outcome": "published", "platform_post_url": "https://example.com/live/1"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "published"
    assert resolved.json()["targets"][0]["platform_post_url"] == "https://example.com/live/1"
    twice = await client.post(f"/api/v1/posts/{post['id']}/resolve", headers=alice.headers,
                              json={"target_id": target_id, "outcome": "failed"})
    assert twice.status_code == 409


async def test_bulk_is_all_or_nothing_with_every_error_listed(client, alice):
    channel = await sandbox_channel(client, alice)
    good = {"content": {"text": "ok"}, "channel_ids": [channel["id"]], "scheduled_at": soon()}
    response = await client.post("/api/v1/posts/bulk", headers=alice.headers, json={"posts": [
        good, {**good, "timezone": "Nowhere/Land"}, good, {**good, "scheduled_at": "2001-01-01T00:00:00Z"}]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "posts.1.timezone"
    assert [(i["index"], i["field"]) for i in error["items"]] == [(1, "timezone"), (3, "scheduled_at")]
    assert (await client.get("/api/v1/posts", headers=alice.headers)).json()["total"] == 0
    created = await client.post("/api/v1/posts/bulk", headers=alice.headers, json={"posts": [good, good]})
    assert created.status_code == 201 and len(created.json()["items"]) == 2
    too_many = await client.post("/api/v1/posts/bulk", headers=alice.headers, json={"posts": [good] * 101})
    assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "posts"


async def test_idempotency_key_returns_the_first_answer(client, alice, bob):
    channel = await sandbox_channel(client, alice)
    body = {"content": {"text": "once"}, "channel_ids": [channel["id"]], "scheduled_at": soon()}
    headers = {**alice.headers, "Idempotency-Key": "dash-req-1"}
    first = await client.post("/api/v1/posts", headers=headers, json=body)
    second = await client.post("/api/v1/posts", headers=headers, json=body)
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"] and second.headers["idempotent-replayed"] == "true"
    changed = await client.post("/api/v1/posts", headers=headers, json={**body, "content": {"text": "other"}})
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "idempotency_key_reused"
    assert (await client.get("/api/v1/posts", headers=alice.headers)).json()["total"] == 1
    # Keys are per user: the same key from someone else is a different request.
    theirs = await sandbox_channel(client, bob)
    other = await client.post("/api/v1/posts", headers={**bob.headers, "Idempotency-Key": "dash-req-1"},
                              json={**body, "channel_ids": [theirs["id"]]})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]


async def test_calendar_expands_a_series_in_local_time_across_dst(client, alice):
    channel = await sandbox_channel(client, alice)
    series = await create(client, alice, [channel["id"]], scheduled_at="2030-03-29T10:00:00",
                          timezone="Europe/Berlin", rrule="FREQ=DAILY;COUNT=4")
    single = await create(client, alice, [channel["id"]], scheduled_at="2030-03-30T07:00:00Z")
    response = await client.get("/api/v1/posts/calendar", headers=alice.headers, params={
        "from": "2030-03-28T00:00:00", "to": "2030-04-05T00:00:00", "timezone": "Europe/Berlin"})
    assert response.status_code == 200, response.text
    days = response.json()["days"]
    assert response.json()["timezone"] == "Europe/Berlin"
    assert [d["date"] for d in days] == ["2030-03-29", "2030-03-30", "2030-03-31", "2030-04-01"]
    times = [(i["local_time"], i["virtual"], i["post_id"]) for d in days for i in d["items"]]
    assert times == [
        ("2030-03-29T10:00:00+01:00", False, series["id"]),
        ("2030-03-30T08:00:00+01:00", False, single["id"]),
        ("2030-03-30T10:00:00+01:00", True, series["id"]),
        ("2030-03-31T10:00:00+02:00", True, series["id"]),  # DST begins on 31 March 2030: still 10:00
        ("2030-04-01T10:00:00+02:00", True, series["id"]),  # COUNT=4 ends here
    ]


async def test_calendar_range_is_validated(client, alice):
    response = await client.get("/api/v1/posts/calendar", headers=alice.headers,
                                params={"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "to"


async def test_calendar_a_year_after_an_hourly_series_starts_lists_that_day(client, alice):
    # Stepping from the series' start, this did not answer in ten minutes (issue 12).
    channel = await sandbox_channel(client, alice)
    series = await create(client, alice, [channel["id"]], scheduled_at="2030-01-06T09:00:00",
                          timezone="Europe/Berlin", rrule="FREQ=HOURLY")
    response = await client.get("/api/v1/posts/calendar", headers=alice.headers, params={
        "from": "2031-01-06T00:00:00", "to": "2031-01-06T23:59:59", "timezone": "Europe/Berlin"})
    assert response.status_code == 200, response.text
    body = response.json()
    [day] = body["days"]
    assert day["date"] == "2031-01-06" and len(day["items"]) == 24
    assert {(i["post_id"], i["virtual"]) for i in day["items"]} == {(series["id"], True)}
    assert day["items"][9]["local_time"] == "2031-01-06T09:00:00+01:00"
    assert (body["truncated"], body["next_from"], body["capped_series"]) == (False, None, [])


async def test_calendar_names_a_series_it_lists_only_in_part(client, alice):
    channel = await sandbox_channel(client, alice)
    series = await create(client, alice, [channel["id"]], scheduled_at="2030-01-06T09:00:00Z", rrule="FREQ=HOURLY")
    response = await client.get("/api/v1/posts/calendar", headers=alice.headers,
                                params={"from": "2030-01-06T00:00:00Z", "to": "2030-02-06T00:00:00Z"})
    body = response.json()
    assert response.status_code == 200 and body["truncated"] is True and body["next_from"] is None
    assert body["capped_series"] == [{"post_id": series["id"], "reason": "max_per_series",
                                      "next_at": "2030-01-27T06:00:00+00:00"}]  # 500 hours after the first
    assert sum(len(d["items"]) for d in body["days"]) == 501


async def test_health_answers_while_a_calendar_is_being_worked_out(client, alice, monkeypatch):
    """The calendar's CPU work runs in a worker thread: the event loop keeps answering meanwhile."""
    working = threading.Event()

    def slow_calendar_days(*args, **kwargs):
        working.set()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:  # CPU-bound, as expanding many series is
            pass
        return calendar_days(*args, **kwargs)

    monkeypatch.setattr(posts_routes, "calendar_days", slow_calendar_days)
    request = asyncio.create_task(client.get("/api/v1/posts/calendar", headers=alice.headers, params={
        "from": "2030-01-01T00:00:00Z", "to": "2030-12-31T00:00:00Z"}))
    while not working.is_set():
        await asyncio.sleep(0.01)
    began = time.monotonic()
    health = await client.get("/health")
    answered_in = time.monotonic() - began
    assert health.status_code == 200 and answered_in < 1
    assert not request.done()  # the calendar is still being worked out
    assert (await request).status_code == 200


async def test_a_published_occurrence_creates_the_next_one_in_local_time(client, alice):
    channel = await sandbox_channel(client, alice)
    local_now = datetime.now(timezone.utc).astimezone(ZoneInfo("Asia/Tokyo"))
    post = await create(client, alice, [channel["id"]], timezone="Asia/Tokyo", rrule="FREQ=DAILY;COUNT=2",
                        scheduled_at=(local_now + timedelta(days=1)).replace(tzinfo=None, microsecond=0).isoformat())
    published = (await client.post(f"/api/v1/posts/{post['id']}/publish", headers=alice.headers)).json()
    assert published["status"] == "published"
    listed = (await client.get("/api/v1/posts?status=scheduled", headers=alice.headers)).json()["items"]
    [following] = listed
    assert following["parent_post_id"] == post["id"] and following["series_id"] == post["series_id"] == post["id"]
    assert following["content"] == post["content"] and following["channel_ids"] == [channel["id"]]
    # published early, the first occurrence still counts as tomorrow's: the next is the day after
    assert following["local_scheduled_at"] == (local_now + timedelta(days=2)).replace(microsecond=0).isoformat()
    # COUNT=2: the second occurrence is the last one.
    last = (await client.post(f"/api/v1/posts/{following['id']}/publish", headers=alice.headers)).json()
    assert last["status"] == "published"
    assert (await client.get("/api/v1/posts?status=scheduled", headers=alice.headers)).json()["total"] == 0


async def test_an_occurrence_only_edit_does_not_change_the_series(client, alice):
    channel = await sandbox_channel(client, alice)
    post = await create(client, alice, [channel["id"]], scheduled_at=soon(days=1), rrule="FREQ=WEEKLY")
    edited = await client.patch(f"/api/v1/posts/{post['id']}?scope=occurrence", headers=alice.headers,
                                json={"content": {"text": "just this week"}})
    assert edited.status_code == 200 and edited.json()["content"]["text"] == "just this week"
    refused = await client.patch(f"/api/v1/posts/{post['id']}?scope=occurrence", headers=alice.headers,
                                 json={"rrule": "FREQ=DAILY"})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "rrule"
    await client.post(f"/api/v1/posts/{post['id']}/publish", headers=alice.headers)
    [following] = (await client.get("/api/v1/posts?status=scheduled", headers=alice.headers)).json()["items"]
    assert following["content"]["text"] == "hello"


async def test_dry_run_lists_without_claiming(client, alice):
    channel = await sandbox_channel(client, alice)
    post = await create(client, alice, [channel["id"]], scheduled_at=soon(seconds=-1))
    response = await client.post(f"{PATH}?dry_run=true", headers=CRON)
    assert response.status_code == 200
    assert response.json()["would_claim"] == 1 and response.json()["posts"][0]["id"] == post["id"]
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()["status"] == "scheduled"
    assert (await client.post(f"{PATH}?dry_run=true")).status_code == 401


async def test_cron_health_goes_stale_when_posts_wait_and_nobody_calls(client, alice):
    healthy = await client.get("/api/v1/cron/health")
    assert healthy.status_code == 200 and healthy.json()["status"] == "ok" and healthy.json()["last_run_at"] is None
    channel = await sandbox_channel(client, alice)
    await create(client, alice, [channel["id"]], scheduled_at=soon(seconds=-5))
    stale = await client.get("/api/v1/cron/health")
    assert stale.status_code == 503
    body = stale.json()
    assert body["status"] == "stale" and body["due_now"] == 1 and body["oldest_due_lag_seconds"] >= 5
    await client.post(PATH, headers=CRON)
    after = (await client.get("/api/v1/cron/health")).json()
    assert after["status"] == "ok" and after["due_now"] == 0 and after["seconds_since_last_run"] <= 5


@pytest.mark.parametrize("limit", [0, 201])
async def test_activity_limit_is_validated(client, alice, limit):
    assert (await client.get(f"/api/v1/activity?limit={limit}", headers=alice.headers)).status_code == 422


async def test_activity_tells_a_posts_story(client, alice):
    channel = await sandbox_channel(client, alice)
    post = await create(client, alice, [channel["id"]])
    await client.post(f"/api/v1/posts/{post['id']}/publish", headers=alice.headers)
    events = [a["event"] for a in (await client.get(f"/api/v1/activity?post_id={post['id']}",
                                                    headers=alice.headers)).json()["items"]]
    assert events == ["post.published", "target.published", "post.claimed", "post.publish", "post.created"]
