"""Benchmarks: one cron run's wall time, store round trips and peak memory, on each store transport.

    make bench                      # everything below, on both transports
    .venv/bin/python scripts/bench.py --stores postgres

Both transports call the same SQL functions on a fresh clone of the test template database, on
the embedded PostgreSQL (or HERALD_TEST_DATABASE_URL): ``postgres`` directly over psycopg (the
local default), ``supabase`` through supabase-py and the PostgREST fixture.

Scenarios (each measured in a fresh process, so peak RSS is that run's alone):
- webhook: 50 due posts x 2 channels (100 distinct webhook channels) against the loopback
  platform simulator answering after 300 ms, at the default PUBLISH_CONCURRENCY and at 1;
- sandbox: 50 due sandbox posts, one channel each (the embedded setup's platform).
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


async def one_run(kind: str, scenario: str, concurrency: int, latency: float) -> dict:
    import httpx
    from cryptography.fernet import Fernet

    from api.factory import create_app
    from services.domain.models import Content, PostStatus
    from services.security.crypto import TokenCipher
    from services.settings import Settings
    from services.store.base import NewChannel, NewPost
    from tests.support.simulator import Simulator

    key = Fernet.generate_key().decode()
    cipher = TokenCipher([key])
    cron_secret = "bench-cron-secret-0123456789"
    with Simulator(latency=latency) as sim:
        store, new_user, close = await open_store(kind)
        try:
            user = new_user()
            past = datetime.now(timezone.utc) - timedelta(minutes=1)
            channels_per_post = 2 if scenario == "webhook" else 1
            for i in range(50):
                ids = []
                for j in range(channels_per_post):
                    metadata = {"url": f"{sim.url}/hook/{i}/{j}"} if scenario == "webhook" else {}
                    channel = await store.create_channel(user, NewChannel(
                        platform=scenario, account_id=f"acct-{i}-{j}", name=f"bench {i}/{j}",
                        credentials_encrypted=cipher.encrypt({}), metadata=metadata))
                    ids.append(channel.id)
                await store.create_post(user, NewPost(content=Content(text=f"bench post {i}"), channel_ids=tuple(ids),
                                                      status=PostStatus.SCHEDULED, scheduled_at=past))
            counting = CountingStore(store)
            settings = Settings(_env_file=None, herald_encryption_keys=[key], supabase_jwt_secret="b" * 32,
                                cron_secret=cron_secret, publish_concurrency=concurrency,
                                herald_allow_private_hosts=True, request_timeout=10, run_budget_seconds=120,
                                lease_seconds=300)
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
        "store_round_trips": sum(counting.calls.values()), "calls": dict(counting.calls),
        "sandbox_outbox_writes": outbox_calls,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="postgres,supabase")
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--one", nargs=3, metavar=("STORE", "SCENARIO", "CONCURRENCY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        kind, scenario, concurrency = args.one
        latency = args.latency if scenario == "webhook" else 0.0
        print(json.dumps(asyncio.run(one_run(kind, scenario, int(concurrency), latency))))
        return

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
        print(f"{kind}: 50 sandbox posts: {sandbox['wall_s']:.2f} s wall, {sandbox['store_round_trips']} store round trips "
              f"+ {sandbox['sandbox_outbox_writes']} outbox writes, peak RSS {sandbox['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
