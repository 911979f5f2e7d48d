"""The cron endpoint: guarded by its secret, on its exact path, publishing what is due."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from api.factory import create_app
from tests.api.conftest import CRON, CRON_SECRET, make_settings, sandbox_channel

PATH = "/api/v1/cron/publish-scheduled"


async def due_post(client, who, channel_id) -> dict:
    """A post scheduled a moment ago (inside the API's grace for clock skew), so it is due now."""
    at = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    response = await client.post("/api/v1/posts", headers=who.headers, json={
        "content": {"text": "due"}, "channel_ids": [channel_id], "scheduled_at": at})
    assert response.status_code == 201, response.text
    return response.json()


async def test_publishes_due_posts_and_reports_a_summary(client, alice, store):
    channel = await sandbox_channel(client, alice)
    post = await due_post(client, alice, channel["id"])
    response = await client.post(PATH, headers=CRON)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["processed"] == 1 and summary["published"] == 1 and summary["failed"] == 0
    assert summary["remaining_due"] == 0 and summary["duration_ms"] >= 0
    assert summary["posts"] == [{"id": post["id"], "outcome": "published", "next_attempt_at": None, "targets": [
        {"id": post["targets"][0]["id"], "outcome": "published", "status": "published", "error": None}]}]
    after = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
    assert after["status"] == "published" and after["targets"][0]["platform_post_url"].startswith("http://herald.test/")
    outbox = (await client.get("/api/v1/sandbox/outbox", headers=alice.headers)).json()["items"]
    assert [(o["target_id"], o["text"]) for o in outbox] == [(post["targets"][0]["id"], "due")]
    last = await store.last_cron_run()
    assert last is not None and str(last.id) == summary["run_id"] and last.published == 1
    # A second call finds nothing left to do and publishes nothing again.
    again = (await client.post(PATH, headers=CRON)).json()
    assert again["processed"] == 0
    assert len((await client.get("/api/v1/sandbox/outbox", headers=alice.headers)).json()["items"]) == 1


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("POST", PATH, {"X-Cron-Secret": CRON_SECRET}),  # cron-job.org
        ("GET", PATH, {"Authorization": f"Bearer {CRON_SECRET}", "User-Agent": "vercel-cron/1.0"}),  # Vercel Cron
        ("POST", PATH, {"Authorization": f"Bearer {CRON_SECRET}", "User-Agent": "pg_net/0.10"}),  # Supabase Cron
        ("GET", PATH + "/", {"X-Cron-Secret": CRON_SECRET}),  # a trailing slash answers too, never a redirect
    ],
)
async def test_each_cron_service_shape_is_accepted(client, method, path, headers):
    response = await client.request(method, path, headers=headers)
    assert response.status_code == 200, response.text


async def test_trigger_is_recorded_from_the_caller(client, store):
    await client.get(PATH, headers={"Authorization": f"Bearer {CRON_SECRET}", "User-Agent": "vercel-cron/1.0"})
    assert (await store.last_cron_run()).trigger == "vercel-cron"


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Cron-Secret": "wrong-secret-0123456789"}, {"Authorization": "Bearer nope"},
     {"Authorization": CRON_SECRET}, {"X-Cron-Secret": CRON_SECRET[:-1]}],
)
async def test_missing_or_wrong_secret_is_401_and_nothing_runs(client, alice, store, headers):
    channel = await sandbox_channel(client, alice)
    post = await due_post(client, alice, channel["id"])
    response = await client.post(PATH, headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "bad_cron_secret"
    assert (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()["status"] == "scheduled"
    assert await store.last_cron_run() is None


async def test_without_a_configured_secret_the_endpoint_refuses_to_run(store, tmp_path):
    app = create_app(make_settings(cron_secret=None), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        for headers in ({}, {"X-Cron-Secret": "anything-at-all-1234"}, {"Authorization": "Bearer "}):
            response = await http.post(PATH, headers=headers)
            assert response.status_code == 503 and response.json()["error"]["code"] == "not_configured"
        info = (await http.get("/api/v1/cron/info/service")).json()
        assert info["secret_configured"] is False
    assert await store.last_cron_run() is None


async def test_service_info_explains_setup_without_the_secret(client):
    response = await client.get("/api/v1/cron/info/service")
    assert response.status_code == 200
    assert CRON_SECRET not in response.text
    info = response.json()
    assert info["endpoint"] == "http://herald.test/api/v1/cron/publish-scheduled"
    assert set(info["services"]) == {"cron-job.org", "vercel-cron", "supabase-cron"}
    assert info["secret_configured"] is True


async def test_a_failing_channel_fails_its_post_with_the_reason(client, alice):
    channel = await sandbox_channel(client, alice, metadata={"fail": "permanent"})
    post = await due_post(client, alice, channel["id"])
    summary = (await client.post(PATH, headers=CRON)).json()
    assert summary["failed"] == 1 and summary["published"] == 0
    after = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
    assert after["status"] == "failed" and after["targets"][0]["status"] == "failed"
    assert "fail" in after["targets"][0]["error"]


async def test_a_transient_failure_is_retried_later_not_now(client, alice):
    channel = await sandbox_channel(client, alice, metadata={"fail": "transient"})
    post = await due_post(client, alice, channel["id"])
    summary = (await client.post(PATH, headers=CRON)).json()
    assert summary["retry_scheduled"] == 1 and summary["remaining_due"] == 0
    after = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
    assert after["status"] == "scheduled" and after["targets"][0]["status"] == "pending"
    next_at = datetime.fromisoformat(after["next_attempt_at"])
    assert timedelta(minutes=3) < next_at - datetime.now(timezone.utc) < timedelta(minutes=7)  # 300 s +-20%
    assert (await client.post(PATH, headers=CRON)).json()["processed"] == 0


async def test_health_reports_the_store(client):
    response = await client.get("/api/v1/health")
    assert response.status_code == 200 and response.json() == {"status": "ok", "store": "postgres"}


async def test_a_burst_is_drained_by_parallel_runs_started_by_one_tick(store, new_caller, db):
    # 7 due posts, 2 per run, 3 runs at most: the tick takes 2 and starts 2 more runs through its
    # own endpoint (here the app itself, in process), each claiming its own posts.
    settings = make_settings(max_posts_per_run=2, max_parallel_runs=3)
    app = create_app(settings, store=store)
    app.state.http = httpx.AsyncClient(mounts={"http://herald.test": httpx.ASGITransport(app=app)})
    alice = new_caller()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as client:
        channel = await sandbox_channel(client, alice)
        for _ in range(7):
            await due_post(client, alice, channel["id"])
        tick = (await client.post(PATH, headers=CRON)).json()
        assert tick["processed"] == 2 and len(tick["parallel_runs"]) == 2
        assert [(r["status_code"], r["processed"]) for r in tick["parallel_runs"]] == [(200, 2), (200, 2)]
        outbox = (await client.get("/api/v1/sandbox/outbox", headers=alice.headers)).json()["items"]
        assert len(outbox) == len({o["target_id"] for o in outbox}) == 6  # each post exactly once
        runs = db.execute("select id::text, parent_run_id::text, trigger from herald.cron_runs").fetchall()
        children = [r for r in runs if r[1] is not None]
        assert {r[1] for r in children} == {tick["run_id"]} and {r[2] for r in children} == {"burst"}
        assert sorted(r[0] for r in children) == sorted(r["run_id"] for r in tick["parallel_runs"])
        # A started run never starts more (one level), however much is due; a dry run starts none.
        for _ in range(6):
            await due_post(client, alice, channel["id"])
        child = (await client.post(PATH, headers={**CRON, "X-Herald-Parent-Run": tick["run_id"]})).json()
        assert child["processed"] == 2 and "parallel_runs" not in child and child["parent_run_id"] == tick["run_id"]
        dry = (await client.post(PATH + "?dry_run=true", headers=CRON)).json()
        assert dry["dry_run"] and "parallel_runs" not in dry
        bad = await client.post(PATH, headers={**CRON, "X-Herald-Parent-Run": "not-a-run"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "X-Herald-Parent-Run"
    await app.state.http.aclose()


@pytest.mark.parametrize("path", ["/health", "/api/v1/health"])
async def test_health_answers_at_the_root_too_for_uptime_monitors(client, path):
    for method in ("GET", "HEAD"):
        response = await client.request(method, path)
        assert response.status_code == 200, (method, path, response.text)
    assert (await client.get(path)).json()["status"] == "ok"
