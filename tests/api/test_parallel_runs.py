"""Parallel runs for real: Herald under uvicorn with 3 worker processes, on both store transports.

A tick that finds more due posts than one run may claim starts more runs by calling its own
endpoint over HTTP; here those calls land on other worker processes (as separate serverless
invocations would), each claiming its own posts from the same database. Webhook channels point
at the loopback simulator, which answers after a short latency so the runs overlap, and counts
every delivery per path and per ``Idempotency-Key``: each post must arrive exactly once.
No timing assertions here; speed is ``scripts/bench.py``'s business.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest

from tests.support.servers import herald_server
from tests.support.simulator import Reply, Simulator
from tests.support.supabase_fixtures import cloned_database, user_token

PATH = "/api/v1/cron/publish-scheduled"
POSTS = 20
SETTINGS = {"MAX_POSTS_PER_RUN": "5", "MAX_PARALLEL_RUNS": "4", "REQUEST_TIMEOUT": "10",
            "RUN_BUDGET_SECONDS": "20", "LEASE_SECONDS": "60"}


@pytest.fixture(scope="module")
def simulator():
    with Simulator(latency=0.15) as sim:
        yield sim


@pytest.fixture(scope="module", params=["postgres", "supabase"])
def deployment(request, herald_template):
    """A database clone and Herald on it (3 workers) through one transport, shared by the
    module's tests: each test makes its own user, channels and posts."""
    with cloned_database(herald_template) as dsn, \
            herald_server(request.param, dsn, workers=3, env=SETTINGS) as server, \
            psycopg.connect(dsn, autocommit=True) as db:
        yield server, db
        assert server.tracebacks() == [], server.stderr_tail()


async def due_webhook_posts(http: httpx.AsyncClient, db: psycopg.Connection, sim: Simulator, count: int):
    """A new user with ``count`` webhook channels (distinct accounts) and one due post on each,
    made through the API; returns the user id, the posts, and the simulator path prefix they use."""
    user_id = uuid.uuid4()
    db.execute("insert into auth.users (id, email) values (%s, %s)", [user_id, f"{user_id}@herald.test"])
    headers = {"Authorization": f"Bearer {user_token(user_id)}"}
    prefix = f"/{uuid.uuid4().hex}"
    due = (datetime.now(timezone.utc) - timedelta(seconds=5)).isoformat()
    limit = asyncio.Semaphore(8)

    async def one(i: int) -> dict:
        async with limit:
            channel = await http.post("/api/v1/channels", headers=headers, json={
                "platform": "webhook", "name": f"hook {i}", "metadata": {"url": f"{sim.url}{prefix}/hook/{i}"},
                "credentials": {}})
            assert channel.status_code == 201, channel.text
            post = await http.post("/api/v1/posts", headers=headers, json={
                "content": {"text": f"burst post {i}"}, "channel_ids": [channel.json()["id"]], "scheduled_at": due})
            assert post.status_code == 201, post.text
            return post.json()

    posts = await asyncio.gather(*(one(i) for i in range(count)))
    assert len({p["targets"][0]["channel_id"] for p in posts}) == count
    return user_id, posts, prefix


def assert_each_delivered_once(sim: Simulator, posts: list[dict], prefix: str) -> None:
    received = [r for r in sim.received(method="POST") if r.path.startswith(prefix + "/")]
    per_path = Counter(r.path for r in received)
    assert per_path == Counter({f"{prefix}/hook/{i}": 1 for i in range(len(posts))})
    per_key = Counter(r.headers["idempotency-key"] for r in received)
    assert per_key == Counter({f"herald-{p['targets'][0]['id']}": 1 for p in posts})
    assert {r.json()["post_id"] for r in received} == {p["id"] for p in posts}


def assert_all_published(db: psycopg.Connection, user_id: uuid.UUID, count: int) -> None:
    posts = db.execute("select status, count(*) from herald.posts where user_id = %s group by status",
                       [user_id]).fetchall()
    targets = db.execute("select status, count(*) from herald.post_targets where user_id = %s group by status",
                         [user_id]).fetchall()
    assert dict(posts) == {"published": count} and dict(targets) == {"published": count}


def runs_of(db: psycopg.Connection, tick_ids: list[str]) -> list[tuple]:
    """(id, parent_run_id, trigger, claimed, published) of the ticks and the runs they started."""
    return db.execute(
        "select id::text, parent_run_id::text, trigger, claimed, published from herald.cron_runs"
        " where id = any(%s::uuid[]) or parent_run_id = any(%s::uuid[])", [tick_ids, tick_ids]).fetchall()


async def test_one_tick_publishes_a_burst_through_parallel_runs(deployment, simulator):
    server, db = deployment
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        user_id, posts, prefix = await due_webhook_posts(http, db, simulator, POSTS)
        response = await http.post(PATH, headers=server.cron_headers)
    assert response.status_code == 200, response.text
    tick = response.json()
    # 20 due, 5 per run, at most 4 runs: the tick takes 5 and starts 3 runs, which take the rest.
    helpers = tick["parallel_runs"]
    assert tick["processed"] == 5 and len(helpers) == 3, tick
    assert [(h["status_code"], h["processed"], h["published"], h["error"]) for h in helpers] == [(200, 5, 5, None)] * 3
    assert tick["published"] + sum(h["published"] for h in helpers) == POSTS
    assert tick["remaining_due"] == 0 or tick["remaining_due"] < POSTS  # read while the others still ran

    assert_each_delivered_once(simulator, posts, prefix)
    assert_all_published(db, user_id, POSTS)

    runs = runs_of(db, [tick["run_id"]])
    [own] = [r for r in runs if r[0] == tick["run_id"]]
    assert own[1] is None and own[3] == 5
    children = [r for r in runs if r[1] is not None]
    assert {r[1] for r in children} == {tick["run_id"]} and {r[2] for r in children} == {"burst"}
    assert sorted(r[0] for r in children) == sorted(h["run_id"] for h in helpers)
    assert sum(r[3] for r in runs) == sum(r[4] for r in runs) == POSTS


@pytest.mark.parametrize("ticks", [2, 3])
async def test_overlapping_ticks_still_deliver_each_post_exactly_once(deployment, simulator, ticks):
    server, db = deployment
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        user_id, posts, prefix = await due_webhook_posts(http, db, simulator, POSTS)
        responses = await asyncio.gather(*(http.post(PATH, headers=server.cron_headers) for _ in range(ticks)))
    assert [r.status_code for r in responses] == [200] * ticks, [r.text for r in responses]
    answers = [r.json() for r in responses]
    helpers = [h for a in answers for h in a.get("parallel_runs", [])]
    assert all(h["status_code"] == 200 and h["error"] is None for h in helpers), helpers
    # However the ticks and their runs shared the work, every post was claimed by exactly one run.
    assert sum(a["processed"] for a in answers) + sum(h["processed"] for h in helpers) == POSTS
    assert sum(a["published"] for a in answers) + sum(h["published"] for h in helpers) == POSTS

    assert_each_delivered_once(simulator, posts, prefix)
    assert_all_published(db, user_id, POSTS)

    tick_ids = [a["run_id"] for a in answers]
    runs = runs_of(db, tick_ids)
    assert len(runs) == ticks + len(helpers)
    assert all(r[1] is None for r in runs if r[0] in tick_ids)
    assert sorted(r[0] for r in runs if r[1] is not None) == sorted(h["run_id"] for h in helpers)
    assert sum(r[3] for r in runs) == POSTS


@pytest.mark.parametrize("kind", ["postgres", "supabase"])
async def test_servers_killed_mid_burst_lose_nothing_and_send_nothing_twice(herald_template, simulator, kind):
    # A tick and the runs it started are SIGKILLed (every worker at once) while their calls are in
    # flight; a new server's tick, once the leases have expired, recovers the posts. Webhook
    # honours idempotency keys, so a call that may have gone out is repeated with the same key; no
    # post gets a second key and none is lost.
    settings = {**SETTINGS, "REQUEST_TIMEOUT": "3", "RUN_BUDGET_SECONDS": "6", "LEASE_SECONDS": "10"}
    with cloned_database(herald_template) as dsn, psycopg.connect(dsn, autocommit=True) as db:
        with herald_server(kind, dsn, workers=3, env=settings) as server:
            key = server.encryption_key  # the next deployment decrypts the same stored tokens
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                user_id, posts, prefix = await due_webhook_posts(http, db, simulator, POSTS)
                for i in range(POSTS):
                    simulator.answer(f"{prefix}/hook/{i}", Reply(delay=2.0))  # slow: calls are in flight
                tick = asyncio.create_task(http.post(PATH, headers=server.cron_headers))
                while len([r for r in simulator.received(method="POST") if r.path.startswith(prefix)]) < 3:
                    await asyncio.sleep(0.02)
                os.killpg(server.process.pid, signal.SIGKILL)  # the supervisor and every worker
                with pytest.raises(httpx.HTTPError):
                    await tick
        sent_before = {r.headers["idempotency-key"] for r in simulator.received(method="POST")
                       if r.path.startswith(prefix)}
        assert sent_before  # calls did go out before the kill
        stuck = db.execute("select count(*) from herald.posts where user_id = %s and status = 'publishing'",
                           [user_id]).fetchone()[0]
        assert stuck > 0  # leased by the dead runs: nothing is lost, it waits for the lease

        for i in range(POSTS):
            simulator.answer(f"{prefix}/hook/{i}", Reply())  # the platform is fast again
        await asyncio.sleep(10.5)  # LEASE_SECONDS: the dead runs' leases expire
        with herald_server(kind, dsn, workers=2, env=settings, encryption_key=key) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                # One tick recovers them all: the dead runs' posts count as a burst, so it starts
                # more runs for them.
                response = await http.post(PATH, headers=server.cron_headers)
                assert response.status_code == 200, response.text
                recovered = response.json()
                assert recovered["recovered"] + sum(r["processed"] for r in recovered.get("parallel_runs", [])) >= stuck

        received = [r for r in simulator.received(method="POST") if r.path.startswith(prefix + "/")]
        keys_per_path: dict[str, set] = {}
        for r in received:
            keys_per_path.setdefault(r.path, set()).add(r.headers["idempotency-key"])
        assert {path: len(keys) for path, keys in keys_per_path.items()} == {
            f"{prefix}/hook/{i}": 1 for i in range(POSTS)}  # every post reached its account, under one key only
        assert_all_published(db, user_id, POSTS)
