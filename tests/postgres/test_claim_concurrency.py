"""herald_claim_due_posts_v2 under real concurrency: separate sessions, as the service role."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)
SESSIONS = 8


@pytest.fixture
def db(pg_database):
    with psycopg.connect(pg_database, autocommit=True) as conn:
        yield conn


def seed_due_posts(db: psycopg.Connection, count: int, *, status: str = "scheduled",
                   lease_expired: bool = False) -> list[str]:
    """``count`` posts due a second apart (oldest first), each with a pending target."""
    user = uuid.uuid4()
    db.execute("insert into auth.users (id) values (%s)", [user])
    channel = db.execute("insert into herald.channels (user_id, platform, account_id, name, credentials_encrypted)"
                         " values (%s, 'sandbox', 'acct', 'c', 'x') returning id", [user]).fetchone()[0]
    ids = [r[0] for r in db.execute(
        "insert into herald.posts (user_id, content, status, scheduled_at, lease_id, lease_expires_at)"
        " select %(user)s, '{\"text\": \"x\"}', %(status)s, %(now)s - make_interval(secs => %(count)s - i),"
        "        case when %(status)s = 'publishing' then gen_random_uuid() end,"
        "        case when %(expired)s then %(now)s - interval '1 second' end"
        "   from generate_series(1, %(count)s) i order by i returning id",
        {"user": user, "status": status, "now": NOW, "count": count, "expired": lease_expired}).fetchall()]
    db.execute("insert into herald.post_targets (post_id, channel_id, user_id, platform)"
               " select p.id, %s, p.user_id, 'sandbox' from herald.posts p where p.user_id = %s", [channel, user])
    return [str(i) for i in ids]


async def service_session(conninfo: str) -> psycopg.AsyncConnection:
    conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    await conn.execute("set role service_role")
    await conn.execute("set statement_timeout = '5s'")  # a claim that waits on a lock fails instead of hanging
    return conn


async def claim(conn: psycopg.AsyncConnection, *, limit: int, now: datetime = NOW) -> dict:
    cur = await conn.execute("select herald_claim_due_posts_v2(p_now => %s, p_limit => %s, p_lease_seconds => 60)",
                             [now, limit])
    return (await cur.fetchone())[0]


async def drain(conninfo: str, *, limit: int, now: datetime = NOW) -> list[str]:
    """One worker: claim until nothing is left, as overlapping cron runs would."""
    conn = await service_session(conninfo)
    taken: list[str] = []
    try:
        while True:
            result = await claim(conn, limit=limit, now=now)
            if not result["posts"]:
                return taken
            taken += [p["post"]["id"] for p in result["posts"]]
            await asyncio.sleep(0)
    finally:
        await conn.close()


async def test_concurrent_sessions_claim_every_due_post_exactly_once(db, pg_database):
    due = seed_due_posts(db, 200)
    seed_due_posts(db, 5, status="draft")  # never due

    per_session = await asyncio.gather(*(drain(pg_database, limit=7) for _ in range(SESSIONS)))

    claimed = [post_id for taken in per_session for post_id in taken]
    assert len(claimed) == len(set(claimed)) == 200
    assert set(claimed) == set(due)
    assert sum(1 for taken in per_session if taken) > 1, "the sessions did not overlap"
    rows = db.execute("select status, attempts, count(*) from herald.posts where id = any(%s::uuid[]) group by 1, 2",
                      [due]).fetchall()
    assert rows == [("publishing", 1, 200)]
    leases = db.execute("select count(distinct lease_id) from herald.posts where status = 'publishing'").fetchone()[0]
    assert leases == 200
    events = Counter(r[0] for r in db.execute(
        "select post_id from herald.activity_logs where event = 'post.claimed'").fetchall())
    assert len(events) == 200 and set(events.values()) == {1}


async def test_concurrent_sessions_recover_each_expired_lease_once(db, pg_database):
    stuck = seed_due_posts(db, 60, status="publishing", lease_expired=True)

    per_session = await asyncio.gather(*(drain(pg_database, limit=3, now=NOW) for _ in range(SESSIONS)))

    recovered = [post_id for taken in per_session for post_id in taken]
    assert sorted(recovered) == sorted(stuck)
    assert db.execute("select count(*) from herald.posts where lease_expires_at > %s", [NOW]).fetchone()[0] == 60


async def test_claim_skips_rows_locked_by_another_session(db, pg_database):
    due = seed_due_posts(db, 5)
    oldest = due[0]
    holder = await psycopg.AsyncConnection.connect(pg_database)  # not autocommit: holds its lock
    try:
        await holder.execute("select 1 from herald.posts where id = %s for update", [oldest])
        claimer = await service_session(pg_database)
        try:
            started = time.monotonic()
            first = await claim(claimer, limit=10)
            waited = time.monotonic() - started
            assert waited < 1.0, "the claim waited for the lock instead of skipping the row"
            assert [p["post"]["id"] for p in first["posts"]] == due[1:]
            await holder.rollback()  # the lock goes; the skipped post is still due
            second = await claim(claimer, limit=10)
            assert [p["post"]["id"] for p in second["posts"]] == [oldest]
        finally:
            await claimer.close()
    finally:
        await holder.close()


async def test_claim_in_flight_holds_its_rows_until_it_commits(db, pg_database):
    """Two claims in open transactions at once: the second skips what the first locked."""
    due = seed_due_posts(db, 10)
    first = await psycopg.AsyncConnection.connect(pg_database)
    second = await psycopg.AsyncConnection.connect(pg_database)
    try:
        for conn in (first, second):
            await conn.execute("set role service_role")
            await conn.execute("set statement_timeout = '5s'")
        a = await claim(first, limit=4)   # transaction stays open
        b = await claim(second, limit=4)
        taken_a = [p["post"]["id"] for p in a["posts"]]
        taken_b = [p["post"]["id"] for p in b["posts"]]
        assert taken_a == due[:4] and taken_b == due[4:8]
        await first.commit()
        await second.commit()
    finally:
        await first.close()
        await second.close()


def test_claim_takes_oldest_due_first_and_returns_channels_with_credentials(db):
    due = seed_due_posts(db, 3)
    db.execute("update herald.posts set next_attempt_at = %s where id = %s", [NOW - timedelta(hours=1), due[2]])
    db.execute("set role service_role")
    result = db.execute("select herald_claim_due_posts_v2(%s, 2, 60)", [NOW]).fetchone()[0]
    assert [p["post"]["id"] for p in result["posts"]] == [due[2], due[0]]
    assert all(p["channels"][0]["credentials_encrypted"] == "x" for p in result["posts"])
    assert result["recovered"] == []
    assert json.dumps(result)  # plain JSON all the way down
