"""Micro-benchmark: the calendar's expansion of series far from their start (pure: no database).

    make bench                               # runs this, with --server, after scripts/bench.py
    .venv/bin/python scripts/bench_calendar.py [--server]

Cases, each a call of ``calendar_days`` (what the calendar route runs in a worker thread):
- one FREQ=HOURLY series (Europe/Berlin) viewed for one day, 365 days after its start;
- 20 FREQ=DAILY series viewed for 31 days, 365 days after their start;
- the most a request can ask: 2000 FREQ=HOURLY series (the store query's cap) over 366 days,
  a year after their start; the listing stops at MAX_ITEMS, so this measures the setup per series;
- the event loop while that runs in a worker thread, as the route runs it: how much later than
  asked a 10 ms sleep on the loop wakes (the thread holds the GIL between switches).
Each is timed REPEAT times; the median and the maximum are printed, against a 100 ms target for
the first two.

``--server`` adds the whole request on a real server (``uvicorn`` with one worker, on a clone of
the test database, as ``scripts/bench.py`` uses): 2000 hourly series made through the API, then
GET /posts/calendar for a year a year after their start, 3 times, with GET /health asked over
and over while each is in flight (a target of under a second for each /health).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.domain.models import Content, Post, PostStatus  # noqa: E402 (after the path is set)
from services.scheduling.calendar import calendar_days  # noqa: E402

REPEAT = 7
TARGET_MS = 100
SERIES_START = datetime(2030, 1, 6, 9, 0, tzinfo=timezone.utc)


def series(rule: str) -> Post:
    """A series' scheduled head, still at its first occurrence: a year before the window viewed."""
    return Post(id=uuid.uuid4(), user_id=uuid.uuid4(), content=Content(text="bench"), scheduled_at=SERIES_START,
                timezone="Europe/Berlin", rrule=rule, status=PostStatus.SCHEDULED, attempts=0, error=None,
                created_at=SERIES_START, updated_at=SERIES_START, series_start_at=SERIES_START)


def end_of(start: datetime, days: int) -> datetime:
    """The last second of a view of ``days`` days from ``start`` (the calendar's ``to`` is inclusive)."""
    return start + timedelta(days=days, seconds=-1)


def timed(posts: list[Post], start: datetime, days: int) -> tuple[list[float], int, bool]:
    """Milliseconds per run, items listed, and whether the listing was truncated."""
    runs = []
    for _ in range(REPEAT):
        began = time.perf_counter()
        listing = calendar_days(posts, start=start, end=end_of(start, days), tz_name="Europe/Berlin")
        runs.append((time.perf_counter() - began) * 1000)
    return runs, sum(len(day["items"]) for day in listing.days), listing.is_truncated


def report(name: str, runs: list[float], items: int, truncated: bool, *, target: bool) -> None:
    verdict = f", target under {TARGET_MS} ms: {'ok' if max(runs) < TARGET_MS else 'MISSED'}" if target else ""
    print(f"  {name}: median {statistics.median(runs):.1f} ms, max {max(runs):.1f} ms "
          f"({items} items{', truncated' if truncated else ''}){verdict}")


def main() -> None:
    year_out = datetime(2031, 1, 6, tzinfo=ZoneInfo("Europe/Berlin"))  # midnight, 365 days after the start
    print(f"calendar expansion (calendar_days, {REPEAT} runs each, series started {SERIES_START:%Y-%m-%d})")
    report("1 FREQ=HOURLY series, 1 day viewed 365 days out", *timed([series("FREQ=HOURLY")], year_out, 1),
           target=True)
    daily = [series(f"FREQ=DAILY;BYHOUR={hour}") for hour in range(20)]
    report("20 FREQ=DAILY series, 31 days viewed 365 days out", *timed(daily, year_out, 31), target=True)
    hourly = [series("FREQ=HOURLY") for _ in range(2000)]
    report("2000 FREQ=HOURLY series, 366 days viewed 365 days out", *timed(hourly, year_out, 366), target=False)
    lags = [asyncio.run(loop_lag(hourly, year_out, 366)) for _ in range(REPEAT)]
    print(f"  event loop meanwhile (that expansion in a worker thread): a 10 ms sleep overran by at most "
          f"{statistics.median(lags):.1f} ms (median of runs), {max(lags):.1f} ms in the worst run")


async def loop_lag(posts: list[Post], start: datetime, days: int) -> float:
    """The most a 10 ms sleep on the event loop overran while calendar_days ran in a worker thread."""
    work = asyncio.create_task(asyncio.to_thread(calendar_days, posts, start=start, end=end_of(start, days),
                                                 tz_name="Europe/Berlin"))
    worst = 0.0
    while not work.done():
        began = time.perf_counter()
        await asyncio.sleep(0.01)
        worst = max(worst, (time.perf_counter() - began) * 1000 - 10)
    await work
    return worst


def on_server() -> None:
    from tests.support.servers import herald_server
    from tests.support.supabase_fixtures import cloned_database, ensure_template

    print("calendar on a real server (uvicorn, 1 worker, postgres): 2000 FREQ=HOURLY series, "
          "366 days viewed 365 days out")
    with cloned_database(ensure_template()) as dsn, herald_server("postgres", dsn, workers=1) as server:
        asyncio.run(health_during_calendars(server.url, dsn))


async def health_during_calendars(url: str, dsn: str) -> None:
    import httpx
    import psycopg

    from tests.support.supabase_fixtures import user_token

    user_id = uuid.uuid4()
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("insert into auth.users (id, email) values (%s, %s)", [user_id, f"{user_id}@herald.test"])
    headers = {"Authorization": f"Bearer {user_token(user_id)}"}
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        channel = (await http.post("/api/v1/channels", headers=headers, json={
            "platform": "sandbox", "name": "bench", "account_id": "bench",
            "credentials": {"access_token": "placeholder"}})).json()
        for _ in range(20):
            made = await http.post("/api/v1/posts/bulk", headers=headers, json={"posts": [
                {"content": {"text": "bench"}, "channel_ids": [channel["id"]], "scheduled_at": "2030-01-06T09:00:00",
                 "timezone": "Europe/Berlin", "rrule": "FREQ=HOURLY"} for _ in range(100)]})
            assert made.status_code == 201, made.text
        params = {"from": "2031-01-06T00:00:00", "to": "2032-01-06T23:00:00", "timezone": "Europe/Berlin"}
        for _ in range(3):
            began = time.perf_counter()
            calendar = asyncio.create_task(http.get("/api/v1/posts/calendar", headers=headers, params=params))
            waits = []
            while not calendar.done():
                asked = time.perf_counter()
                assert (await http.get("/health")).status_code == 200
                waits.append((time.perf_counter() - asked) * 1000)
                await asyncio.sleep(0.05)
            body = (await calendar).json()
            verdict = "ok" if max(waits) < 1000 else "MISSED"
            print(f"  calendar answered in {(time.perf_counter() - began) * 1000:.0f} ms "
                  f"({sum(len(day['items']) for day in body['days'])} items, truncated: {body['truncated']}); "
                  f"/health meanwhile: {len(waits)} calls, median {statistics.median(waits):.0f} ms, "
                  f"max {max(waits):.0f} ms (target under 1 s: {verdict})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", action="store_true", help="also time the request on a real server")
    arguments = parser.parse_args()
    main()
    if arguments.server:
        on_server()
