"""Benchmarks: one cron run's wall time, store round trips and peak memory, on each store transport.

    make bench                      # everything below, on both transports
    .venv/bin/python scripts/bench.py --stores postgres

Both transports call the same SQL functions on a fresh clone of the test template database, on
the embedded PostgreSQL (or HERALD_TEST_DATABASE_URL): ``postgres`` directly over psycopg (the
local default), ``supabase`` through supabase-py and the PostgREST fixture.

Scenarios (each measured in a fresh process, so peak RSS is that run's alone):
- webhook: 50 due posts x 2 channels (100 distinct webhook channels) against the loopback
  platform simulator answering after 300 ms, at the default PUBLISH_CONCURRENCY and at 1;
- sandbox: 50 due sandbox posts, one channel each (the embedded setup's platform);
- events: the webhook scenario with an event webhook endpoint subscribed to every event that
  answers after 2 s: the publish part (claim to recorded results, the run's ``duration_ms``) and
  the whole call (which then delivers the run's events), against the same run with no endpoint;
- mixed latency: the same 50 x 2, but 8 of the 100 accounts answer after 4 s (the rest after
  300 ms), at PUBLISH_CONCURRENCY=16: the slow accounts spread through the batch, and all first
  in due order. Besides wall time, round trips and the publish lag (p50, p99 from the targets'
  ``publish_lag_ms``), it prints the floor for that due order: the wall time of an ideal
  dispatcher that starts calls in due order with no overhead at all;
- burst: 300 posts due at once on 300 webhook accounts (300 ms), one tick to Herald served by
  ``uvicorn --workers 4`` (``tests/support/servers.py``) with MAX_PARALLEL_RUNS=10: the time from the
  tick until the simulator has received all 300, deliveries per target (each must be exactly 1),
  the runs the tick started, and the publish lag.
In the mixed and burst scenarios every post is made due at the same instant just before the tick,
so a target's publish lag is how long after that instant its call was answered.
Also the cold import time of ``api.index`` (what a serverless cold start pays before serving).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class CountingStore:
    """Counts store calls: each is one round trip (one SQL function call on Supabase)."""

    def __init__(self, inner):
        self._inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr

        async def counted(*args, **kwargs):
            self.calls[name] += 1
            return await attr(*args, **kwargs)

        return counted


async def open_store(kind: str):
    """(store, new_user, close) for ``kind`` (postgres or supabase) on a fresh database clone."""
    from tests.support.supabase_fixtures import open_bench_store

    return await open_bench_store(kind)


def bench_settings(key: str, cron_secret: str, concurrency: int):
    """One run's settings: loopback hosts allowed, a budget no bench load reaches."""
    from services.settings import Settings

    return Settings(_env_file=None, herald_encryption_keys=[key], supabase_jwt_secret="b" * 32,
                    cron_secret=cron_secret, publish_concurrency=concurrency, herald_allow_private_hosts=True,
                    request_timeout=10, run_budget_seconds=120, lease_seconds=300)


EVENT_RECEIVER_LATENCY = 2.0


async def one_run(kind: str, scenario: str, concurrency: int, latency: float) -> dict:
    import httpx
    from cryptography.fernet import Fernet

    from api.factory import create_app
    from services.domain.models import Content, PostStatus
    from services.events.signing import new_secret
    from services.security.crypto import TokenCipher
    from services.store.base import NewChannel, NewPost
    from tests.support.simulator import Simulator

    key = Fernet.generate_key().decode()
    cipher = TokenCipher([key])
    cron_secret = "bench-cron-secret-0123456789"
    events = scenario == "events"
    platform = "webhook" if events else scenario
    with Simulator(latency=latency) as sim, Simulator(latency=EVENT_RECEIVER_LATENCY) as receiver:
        store, new_user, close = await open_store(kind)
        try:
            user = new_user()
            if events:
                await store.create_webhook(user, url=f"{receiver.url}/events", events=("*",), description=None,
                                           secret_encrypted=cipher.encrypt({"secret": new_secret()}))
            past = datetime.now(timezone.utc) - timedelta(minutes=1)
            channels_per_post = 2 if platform == "webhook" else 1
            for i in range(50):
                ids = []
                for j in range(channels_per_post):
                    metadata = {"url": f"{sim.url}/hook/{i}/{j}"} if platform == "webhook" else {}
                    channel = await store.create_channel(user, NewChannel(
                        platform=platform, account_id=f"acct-{i}-{j}", name=f"bench {i}/{j}",
                        credentials_encrypted=cipher.encrypt({}), metadata=metadata))
                    ids.append(channel.id)
                await store.create_post(user, NewPost(content=Content(text=f"bench post {i}"), channel_ids=tuple(ids),
                                                      status=PostStatus.SCHEDULED, scheduled_at=past))
            counting = CountingStore(store)
            settings = bench_settings(key, cron_secret, concurrency)
            app = create_app(settings, store=counting)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
                started = time.perf_counter()
                response = await http.post("/api/v1/cron/publish-scheduled", headers={"X-Cron-Secret": cron_secret})
                wall = time.perf_counter() - started
            await app.state.runtime.http.aclose()
            summary = response.json()
            assert response.status_code == 200 and summary["published"] == 50, summary
        finally:
            await close()
    outbox_calls = counting.calls.pop("deliver_to_outbox", 0)
    return {
        "store": kind, "scenario": scenario, "concurrency": concurrency, "wall_s": round(wall, 3),
        "publish_s": summary["duration_ms"] / 1000, "events": summary["events"],
        "events_received": len(receiver.received("/events")),
        "store_round_trips": sum(counting.calls.values()), "calls": dict(counting.calls),
        "sandbox_outbox_writes": outbox_calls,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


# --- mixed latency and burst ------------------------------------------------------------------------

SLOW_LATENCY = 4.0
MIXED_POSTS = 50
#: which 8 of the 100 accounts (post, channel) answer slowly
SLOW_ACCOUNTS = {
    "spread": {(i, 0) for i in range(3, MIXED_POSTS, 6)},  # posts 3, 9, ..., 45: spread through the batch
    "front": {(i, j) for i in range(4) for j in range(2)},  # both channels of the first 4 posts due
}
BURST_POSTS = 300
BURST_WORKERS = 4
BURST_PARALLEL_RUNS = 10
MIXED_TARGET_S, BURST_TARGET_S = 6.0, 20.0


def make_due_now(sql, post_ids: list) -> datetime:
    """Every post due at one instant, now, keeping their order (``post_ids[0]`` first, 1 µs apart)."""
    at = datetime.now(timezone.utc)
    sql("update herald.posts p set scheduled_at = %s - make_interval(secs => (%s - o.n) / 1e6)"
        " from unnest(%s::uuid[]) with ordinality as o(id, n) where p.id = o.id",
        [at, len(post_ids), post_ids])
    return at


def due_order_urls(sql, post_ids: list) -> list[str]:
    """The webhook URLs of ``post_ids`` in the order the claim hands out their targets (posts by
    due time and id, targets by platform and id)."""
    return [row[0] for row in sql(
        "select c.metadata ->> 'url' from herald.post_targets t join herald.posts p on p.id = t.post_id"
        " join herald.channels c on c.id = t.channel_id where p.id = any(%s::uuid[])"
        " order by coalesce(p.next_attempt_at, p.scheduled_at), p.id, t.platform, t.id", [post_ids])]


def dispatch_floor(latencies: list[float], concurrency: int) -> float:
    """Wall time of an ideal dispatcher: calls started in this order, ``concurrency`` at a time, no overhead."""
    import heapq

    slots = [0.0] * concurrency
    end = 0.0
    for latency in latencies:
        start = heapq.heappop(slots)
        heapq.heappush(slots, start + latency)
        end = max(end, start + latency)
    return end


def lag_percentiles(sql, post_ids: list | None = None) -> dict:
    """p50, p99 and max of the published targets' publish_lag_ms (of ``post_ids`` if given), with their count."""
    count, p50, p99, top = sql(
        "select count(*), round(percentile_cont(0.5) within group (order by publish_lag_ms)),"
        " round(percentile_cont(0.99) within group (order by publish_lag_ms)), max(publish_lag_ms)"
        " from herald.post_targets where status = 'published' and publish_lag_ms is not null"
        " and (%s::uuid[] is null or post_id = any(%s::uuid[]))", [post_ids, post_ids])[0]
    return {"count": count, "p50_ms": int(p50) if p50 is not None else None,
            "p99_ms": int(p99) if p99 is not None else None, "max_ms": top}


async def mixed_run(kind: str, placement: str, concurrency: int, latency: float) -> dict:
    import httpx
    from cryptography.fernet import Fernet

    from api.factory import create_app
    from services.domain.models import Content, PostStatus
    from services.security.crypto import TokenCipher
    from services.store.base import NewChannel, NewPost
    from tests.support.simulator import Reply, Simulator
    from tests.support.supabase_fixtures import open_bench_database

    key = Fernet.generate_key().decode()
    cipher = TokenCipher([key])
    cron_secret = "bench-cron-secret-0123456789"
    # "-known": the accounts have history (one earlier run), so the run knows which are slow
    known = placement.endswith("-known")
    slow = SLOW_ACCOUNTS[placement.removesuffix("-known")]
    with Simulator(latency=latency) as sim:
        bench = await open_bench_database(kind)
        store = bench.store
        try:
            user = bench.new_user()
            later = datetime.now(timezone.utc) + timedelta(hours=1)  # not due until made due below
            latency_of: dict[str, float] = {}
            post_ids, channels_of = [], []
            for i in range(MIXED_POSTS):
                ids = []
                for j in range(2):
                    url = f"{sim.url}/hook/{i}/{j}"
                    latency_of[url] = SLOW_LATENCY if (i, j) in slow else latency
                    if (i, j) in slow:
                        sim.answer(f"/hook/{i}/{j}", Reply(delay=SLOW_LATENCY))
                    channel = await store.create_channel(user, NewChannel(
                        platform="webhook", account_id=f"acct-{i}-{j}", name=f"bench {i}/{j}",
                        credentials_encrypted=cipher.encrypt({}), metadata={"url": url}))
                    ids.append(channel.id)
                channels_of.append(tuple(ids))
                post = await store.create_post(user, NewPost(content=Content(text=f"bench post {i}"),
                                                             channel_ids=tuple(ids), status=PostStatus.SCHEDULED,
                                                             scheduled_at=later))
                post_ids.append(post.id)
            counting = CountingStore(store)
            settings = bench_settings(key, cron_secret, concurrency)
            app = create_app(settings, store=counting)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
                if known:  # an earlier round on the same accounts, not measured
                    make_due_now(bench.sql, post_ids)
                    warm = await http.post("/api/v1/cron/publish-scheduled", headers={"X-Cron-Secret": cron_secret})
                    assert warm.status_code == 200 and warm.json()["published"] == MIXED_POSTS, warm.text
                    post_ids = [(await store.create_post(user, NewPost(
                        content=Content(text=f"bench post {i} again"), channel_ids=ids, status=PostStatus.SCHEDULED,
                        scheduled_at=later))).id for i, ids in enumerate(channels_of)]
                    counting.calls.clear()
                make_due_now(bench.sql, post_ids)
                order = [latency_of[url] for url in due_order_urls(bench.sql, post_ids)]
                # with history the run starts the slow accounts first (longest first)
                floor = dispatch_floor(sorted(order, reverse=True) if known else order, concurrency)
                started = time.perf_counter()
                response = await http.post("/api/v1/cron/publish-scheduled", headers={"X-Cron-Secret": cron_secret})
                wall = time.perf_counter() - started
            await app.state.runtime.http.aclose()
            summary = response.json()
            assert response.status_code == 200 and summary["published"] == MIXED_POSTS, summary
            lag = lag_percentiles(bench.sql, post_ids)
        finally:
            await bench.close()
    return {
        "store": kind, "scenario": f"mixed-{placement}", "concurrency": concurrency, "wall_s": round(wall, 3),
        "floor_s": round(floor, 3), "store_round_trips": sum(counting.calls.values()), "calls": dict(counting.calls),
        "lag": lag, "summary_lag": summary["publish_lag"],
    }


async def burst_run(kind: str, concurrency: int, latency: float) -> dict:
    import httpx
    import psycopg
    from cryptography.fernet import Fernet

    from services.domain.models import Content, PostStatus
    from services.security.crypto import TokenCipher
    from services.store.base import NewChannel, NewPost
    from services.store.postgres import PostgresStore
    from tests.support.servers import herald_server
    from tests.support.simulator import Simulator
    from tests.support.supabase_fixtures import _sql_runner, _user_maker, cloned_database, ensure_template

    key = Fernet.generate_key().decode()
    cipher = TokenCipher([key])
    with Simulator(latency=latency) as sim, cloned_database(ensure_template()) as dsn, \
            psycopg.connect(dsn, autocommit=True) as admin:
        sql = _sql_runner(admin)
        user = _user_maker(admin)()
        # The data is written directly (not what is measured), one post per account, not due yet.
        setup = PostgresStore(dsn, max_connections=8)
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        limit = asyncio.Semaphore(8)

        async def one(i: int):
            async with limit:
                channel = await setup.create_channel(user, NewChannel(
                    platform="webhook", account_id=f"burst-{i}", name=f"burst {i}",
                    credentials_encrypted=cipher.encrypt({}), metadata={"url": f"{sim.url}/burst/{i}"}))
                return await setup.create_post(user, NewPost(content=Content(text=f"burst post {i}"),
                                                             channel_ids=(channel.id,), status=PostStatus.SCHEDULED,
                                                             scheduled_at=later))

        try:
            posts = await asyncio.gather(*(one(i) for i in range(BURST_POSTS)))
        finally:
            await setup.close()
        expected_keys = {f"herald-{p.targets[0].id}" for p in posts}
        env = {"MAX_PARALLEL_RUNS": str(BURST_PARALLEL_RUNS), "PUBLISH_CONCURRENCY": str(concurrency)}
        with herald_server(kind, dsn, workers=BURST_WORKERS, env=env, encryption_key=key) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(180.0)) as http:
                make_due_now(sql, [p.id for p in posts])
                started = time.monotonic()
                response = await http.post("/api/v1/cron/publish-scheduled", headers=server.cron_headers)
                answered = time.monotonic() - started
            assert response.status_code == 200, response.text
            tick = response.json()
            # A started run that outlived the tick's wait goes on by itself: wait for its deliveries.
            deadline = time.monotonic() + 60
            while len(sim.received(method="POST")) < BURST_POSTS and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            received = sim.received(method="POST")
            server_errors = server.tracebacks()
        per_key = Counter(r.headers.get("idempotency-key") for r in received)
        runs = sql("select claimed, published from herald.cron_runs where id = %s or parent_run_id = %s"
                   " order by parent_run_id nulls first, claimed desc", [tick["run_id"], tick["run_id"]])
        statuses = dict(sql("select status, count(*) from herald.posts group by status"))
        lag = lag_percentiles(sql)
    return {
        "store": kind, "scenario": "burst", "concurrency": concurrency, "posts": BURST_POSTS,
        "workers": BURST_WORKERS, "tick_answered_s": round(answered, 3),
        "all_delivered_s": round(max(r.at for r in received) - started, 3) if received else None,
        "delivered": len(received), "targets_delivered": len(set(per_key) & expected_keys),
        "exactly_once": sum(per_key[k] == 1 for k in expected_keys),
        "missing": len(expected_keys - set(per_key)), "repeated": sum(n > 1 for n in per_key.values()),
        "unexpected": len(set(per_key) - expected_keys),
        "runs": len(runs), "started": len(tick.get("parallel_runs", [])),
        "helpers_answered": sum(h["status_code"] == 200 for h in tick.get("parallel_runs", [])),
        "claimed_per_run": [r[0] for r in runs], "statuses": statuses, "lag": lag,
        "server_errors": len(server_errors),
    }


def child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", *args], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"benchmark run {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def import_time() -> float:
    env = {**os.environ, "HERALD_ENCRYPTION_KEYS": "x" * 43 + "=", "SUPABASE_JWT_SECRET": "b" * 32}
    code = "import time; t = time.perf_counter(); import api.index; print(time.perf_counter() - t)"
    times = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        times.append(float(out.stdout.strip()))
    return min(times)


def ok(good: bool) -> str:
    return "ok" if good else "MISSED"


def lag_text(lag: dict) -> str:
    return f"publish lag p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms (max {lag['max_ms']} ms, {lag['count']} targets)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="postgres,supabase")
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--one", nargs=3, metavar=("STORE", "SCENARIO", "CONCURRENCY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, scenario, concurrency = args.one
        if scenario.startswith("mixed-"):
            result = mixed_run(kind, scenario.removeprefix("mixed-"), int(concurrency), args.latency)
        elif scenario == "burst":
            result = burst_run(kind, int(concurrency), args.latency)
        else:
            latency = args.latency if scenario in ("webhook", "events") else 0.0
            result = one_run(kind, scenario, int(concurrency), latency)
        print(json.dumps(asyncio.run(result)))
        return

    ms = f"{args.latency * 1000:.0f} ms"
    broken = []
    print(f"import api.index (cold, best of 3): {import_time() * 1000:.0f} ms")
    for kind in args.stores.split(","):
        fast = child([kind, "webhook", "16"])
        slow = child([kind, "webhook", "1"])
        sandbox = child([kind, "sandbox", "16"])
        print(f"\n{kind}: 50 posts x 2 webhook channels (100 channels), {args.latency * 1000:.0f} ms platform latency")
        print(f"  PUBLISH_CONCURRENCY=16: {fast['wall_s']:.2f} s wall, {fast['store_round_trips']} store round trips "
              f"{fast['calls']}, peak RSS {fast['peak_rss_mb']} MB")
        print(f"  PUBLISH_CONCURRENCY=1:  {slow['wall_s']:.2f} s wall")
        print(f"  speed-up: {slow['wall_s'] / fast['wall_s']:.1f}x")
        print(f"  targets: under 3 s {ok(fast['wall_s'] < 3)}, >= 10x sequential {ok(slow['wall_s'] / fast['wall_s'] >= 10)}, "
              f"peak RSS under 128 MB {ok(fast['peak_rss_mb'] < 128)}")
        print(f"{kind}: 50 sandbox posts: {sandbox['wall_s']:.2f} s wall, {sandbox['store_round_trips']} store round trips "
              f"+ {sandbox['sandbox_outbox_writes']} outbox writes, peak RSS {sandbox['peak_rss_mb']} MB")
        events = child([kind, "events", "16"])
        slower = events["publish_s"] / fast["publish_s"] - 1
        print(f"{kind}: the same 50 x 2 with an event webhook endpoint answering after {EVENT_RECEIVER_LATENCY:.0f} s")
        print(f"  publishing (claim to recorded): {events['publish_s']:.2f} s, without an endpoint {fast['publish_s']:.2f} s "
              f"({slower:+.0%}; target within 10%: {ok(slower <= 0.10)})")
        print(f"  the whole call, delivering the run's {events['events_received']} events after recording: "
              f"{events['wall_s']:.2f} s (without an endpoint {fast['wall_s']:.2f} s); deliveries {events['events']}")

        print(f"{kind}: mixed latency, 50 posts x 2 webhook channels (100 accounts), 8 accounts answer after "
              f"{SLOW_LATENCY:.0f} s and the rest after {ms}, PUBLISH_CONCURRENCY=16")
        for placement, label in (("spread", "slow accounts spread, no history yet:"),
                                 ("spread-known", "slow accounts spread, known from a run:"),
                                 ("front", "slow accounts first in due order:")):
            mixed = child([kind, f"mixed-{placement}", "16"])
            print(f"  {label:<39} {mixed['wall_s']:.2f} s wall (target under {MIXED_TARGET_S:.0f} s: "
                  f"{ok(mixed['wall_s'] < MIXED_TARGET_S)}; ideal for this order {mixed['floor_s']:.2f} s), "
                  f"{mixed['store_round_trips']} store round trips {mixed['calls']}, {lag_text(mixed['lag'])}")

        burst = child([kind, "burst", "16"])
        once = burst["exactly_once"] == burst["posts"] and not burst["unexpected"]
        if not once or burst["server_errors"]:
            broken.append(kind)
        print(f"{kind}: burst, {burst['posts']} posts due at once on {burst['posts']} webhook accounts, {ms} platform "
              f"latency, one tick to uvicorn --workers {burst['workers']} (MAX_PARALLEL_RUNS={BURST_PARALLEL_RUNS})")
        all_in_time = burst["targets_delivered"] == burst["posts"] and burst["all_delivered_s"] < BURST_TARGET_S
        print(f"  all {burst['targets_delivered']} delivered {burst['all_delivered_s']:.2f} s after the tick "
              f"(target within {BURST_TARGET_S:.0f} s: {ok(all_in_time)}); "
              f"the tick answered after {burst['tick_answered_s']:.2f} s")
        print(f"  deliveries per target: exactly 1 for {burst['exactly_once']} of {burst['posts']} targets "
              f"({burst['missing']} missing, {burst['repeated']} repeated, {burst['unexpected']} unexpected): "
              f"{'ok' if once else 'FAILED'}; posts {burst['statuses']}")
        print(f"  runs: {burst['runs']} (the tick + {burst['started']} started, {burst['helpers_answered']} answered), "
              f"posts per run {burst['claimed_per_run']}"
              + (f"; {burst['server_errors']} tracebacks in the server's log" if burst["server_errors"] else ""))
        print(f"  {lag_text(burst['lag'])}")
    if broken:
        raise SystemExit(f"a post was not delivered exactly once, or the server failed, on: {', '.join(broken)}")

if __name__ == "__main__":
    main()
