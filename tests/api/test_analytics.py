"""Analytics through the app: the refresh cron (guarded like the publish cron), a post's analytics,
and the summary with its inputs checked."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from api.factory import create_app
from services import clock
from services.platforms.base import Metrics
from tests.api.conftest import CRON, CRON_SECRET, make_settings, sandbox_channel
from tests.api.test_cron import PATH as PUBLISH_PATH
from tests.api.test_cron import due_post
from tests.contract.test_analytics_refresh import Measuring

REFRESH = "/api/v1/cron/refresh-analytics"
SUMMARY = "/api/v1/analytics/summary"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def app_client(settings, store):
    """The app and a client for it, so that a test can hand the runtime a measuring platform."""
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        yield app, http
    if app.state.runtime is not None:
        await app.state.runtime.http.aclose()


async def published_post(http, who) -> dict:
    channel = await sandbox_channel(http, who)
    post = await due_post(http, who, channel["id"])
    assert (await http.post(PUBLISH_PATH, headers=CRON)).json()["published"] == 1
    return (await http.get(f"/api/v1/posts/{post['id']}", headers=who.headers)).json()


async def test_the_refresh_cron_reads_due_posts_and_the_owner_sees_the_figures(app_client, alice, store, monkeypatch):
    app, http = app_client
    post = await published_post(http, alice)
    platform = Measuring(store, lambda r: Metrics(likes=7, comments=2, shares=1, impressions=100, raw={"reach": 90}))
    app.state.runtime.platforms["sandbox"] = platform
    nothing = await http.post(REFRESH, headers=CRON)
    assert nothing.status_code == 200 and nothing.json()["claimed"] == 0  # first due an hour after publishing

    published = datetime.fromisoformat(post["targets"][0]["published_at"])
    monkeypatch.setattr(clock, "utcnow", lambda: published + timedelta(hours=1, minutes=1))
    summary = (await http.post(REFRESH, headers=CRON)).json()
    assert (summary["claimed"], summary["measured"], summary["remaining_due"]) == (1, 1, 0)
    assert {"run_id", "failed", "stopped", "rate_limited", "held", "not_started", "duration_ms", "paused"} <= set(summary)
    assert await store.last_cron_run() is not None and (await store.last_cron_run()).published == 1  # not a publish run

    found = (await http.get(f"/api/v1/posts/{post['id']}/analytics", headers=alice.headers)).json()
    [target] = found["targets"]
    assert target["latest"] == {"recorded_at": target["latest"]["recorded_at"], "likes": 7, "comments": 2, "shares": 1,
                                "impressions": 100, "clicks": None, "saves": None, "engagement": 10,
                                "raw": {"reach": 90}}
    assert target["series"] == [target["latest"]]
    assert datetime.fromisoformat(target["next_refresh_at"]) == published + timedelta(hours=2)
    assert found["totals"]["engagement_rate"] == pytest.approx(0.1)

    window = {"from": (published - timedelta(days=1)).isoformat(), "to": (published + timedelta(days=1)).isoformat()}
    overview = await http.get(SUMMARY, params=window, headers=alice.headers)
    assert overview.status_code == 200, overview.text
    body = overview.json()
    assert (body["from"], body["platform"]) == (window["from"], None)
    assert (body["totals"]["posts"], body["totals"]["likes"], body["totals"]["engagement"]) == (1, 7, 10)
    assert body["by_platform"]["sandbox"]["impressions"] == 100
    assert [(p["post_id"], p["text"], p["engagement"]) for p in body["top_posts"]] == [(post["id"], "due", 10)]


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", REFRESH, {"X-Cron-Secret": CRON_SECRET}),  # cron-job.org
        ("GET", REFRESH, {"Authorization": f"Bearer {CRON_SECRET}", "User-Agent": "vercel-cron/1.0"}),  # Vercel Cron
        ("POST", REFRESH, {"Authorization": f"Bearer {CRON_SECRET}", "User-Agent": "pg_net/0.10"}),  # Supabase Cron
        ("GET", REFRESH + "/", {"X-Cron-Secret": CRON_SECRET}),  # a trailing slash answers too, never a redirect
    ],
)
async def test_each_cron_service_shape_is_accepted(client, method, path, headers):
    response = await client.request(method, path, headers=headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Cron-Secret": "wrong-secret-0123456789"}, {"Authorization": "Bearer nope"},
     {"Authorization": CRON_SECRET}, {"X-Cron-Secret": CRON_SECRET[:-1]}],
)
async def test_a_missing_or_wrong_secret_is_401_and_nothing_is_read(app_client, alice, store, headers, monkeypatch):
    app, http = app_client
    post = await published_post(http, alice)
    platform = Measuring(store)
    app.state.runtime.platforms["sandbox"] = platform
    published = datetime.fromisoformat(post["targets"][0]["published_at"])
    monkeypatch.setattr(clock, "utcnow", lambda: published + timedelta(hours=2))
    for method in ("GET", "POST"):
        response = await http.request(method, REFRESH, headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "bad_cron_secret"
    assert platform.reads == []


async def test_without_a_configured_secret_the_refresh_refuses_to_run(store):
    app = create_app(make_settings(cron_secret=None), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        response = await http.post(REFRESH, headers={"X-Cron-Secret": "anything-at-all-1234"})
        assert response.status_code == 503 and response.json()["error"]["code"] == "not_configured"


async def test_another_users_post_analytics_are_not_found(client, alice, bob):
    post = await published_post(client, alice)
    response = await client.get(f"/api/v1/posts/{post['id']}/analytics", headers=bob.headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert (await client.get(f"/api/v1/posts/{post['id']}/analytics")).status_code == 401
    mine = await client.get(f"/api/v1/posts/{post['id']}/analytics", headers=alice.headers)
    assert mine.status_code == 200 and mine.json()["targets"][0]["series"] == []
    theirs = (await client.get(SUMMARY, headers=bob.headers)).json()
    assert theirs["totals"]["targets"] == 0 and theirs["top_posts"] == []


async def test_the_summary_defaults_to_the_last_30_days(client, alice):
    body = (await client.get(SUMMARY, headers=alice.headers)).json()
    start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
    assert end - start == timedelta(days=30)
    assert abs(end - datetime.now(timezone.utc)) < timedelta(minutes=1)


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"}, "to"),  # backwards
    ({"from": "2030-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}, "to"),  # empty
    ({"from": "2029-01-01T00:00:00Z", "to": "2030-01-03T00:00:00Z"}, "to"),  # over 366 days
    ({"from": "2030-01-01T00:00:00"}, "from"),  # no offset
    ({"from": "yesterday"}, "from"),
    ({"to": "3100-01-01T00:00:00Z"}, "to"),  # outside 2000-2999
    ({"platform": "myspace"}, "platform"),
    ({"platform": "x" * 41}, "platform"),
    ({"channel_id": "not-a-uuid"}, "channel_id"),
    ({"channel_id": "00000000-0000-4000-8000-000000000000"}, "channel_id"),  # not the caller's
    ({"top": "0"}, "top"),
    ({"top": "51"}, "top"),
])
async def test_the_summary_refuses_bad_input_naming_the_field(client, alice, params, field):
    response = await client.get(SUMMARY, params=params, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


async def test_the_summary_refuses_a_channel_of_another_user(client, alice, bob):
    channel = await sandbox_channel(client, alice)
    response = await client.get(SUMMARY, params={"channel_id": channel["id"]}, headers=bob.headers)
    assert response.status_code == 422 and response.json()["error"]["field"] == "channel_id"
    assert (await client.get(SUMMARY, params={"channel_id": channel["id"]}, headers=alice.headers)).status_code == 200


async def test_the_service_info_and_vercel_json_name_both_jobs(client):
    info = (await client.get("/api/v1/cron/info/service")).json()
    assert CRON_SECRET not in json.dumps(info)
    jobs = info["jobs"]
    assert jobs["publish"]["endpoint"] == "http://herald.test/api/v1/cron/publish-scheduled"
    assert (jobs["analytics"]["endpoint"], jobs["analytics"]["schedule"]) == (
        "http://herald.test/api/v1/cron/refresh-analytics", "30 * * * *")
    vercel = json.loads((ROOT / "vercel.json").read_text())
    assert vercel["crons"] == info["services"]["vercel-cron"]["vercel.json"]["crons"]
    assert [c["path"] for c in vercel["crons"]] == ["/api/v1/cron/publish-scheduled", REFRESH]
    assert (ROOT / info["services"]["supabase-cron"]["analytics_sql"]).exists()
