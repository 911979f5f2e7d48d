"""The /cron/health verdict: ok, degraded (too many failures, a post stuck) or stale, at the edges."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.domain.health import ServiceHealth, is_failure_rate_high, judge
from services.domain.models import CronHealth, CronRun
from services.domain.operations import LagFigures, WindowFigures

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)


def window(finished: int = 0, failed: int = 0, unknown: int = 0) -> WindowFigures:
    published = finished - failed - unknown
    return WindowFigures(name="24h", since=NOW - timedelta(hours=24), until=NOW, finished=finished, published=published,
                         failed=failed, unknown=unknown, retried=0, success_ratio=None, failure_ratio=None,
                         retry_ratio=None, publish_lag=LagFigures(count=0, p50_ms=None, p95_ms=None, max_ms=None))


def health(*, last_run_ago: timedelta | None = timedelta(seconds=30), due: int = 0, stuck_for: timedelta | None = None,
           last_24h: WindowFigures | None = None) -> ServiceHealth:
    run = None if last_run_ago is None else CronRun(
        id=uuid.uuid4(), trigger="manual", started_at=NOW - last_run_ago, finished_at=NOW - last_run_ago, claimed=0,
        published=0, failed=0, remaining_due=0, duration_ms=0)
    return ServiceHealth(cron=CronHealth(last_run=run, due_now=due, oldest_due_at=NOW if due else None,
                                         stuck=1 if stuck_for is not None else 0),
                         stuck_since=NOW - stuck_for if stuck_for is not None else None,
                         last_24h=last_24h or window())


@pytest.mark.parametrize(("not_published", "finished", "high"), [
    (0, 0, False),     # nothing finished
    (1, 1, False),     # one failure on a quiet day: 1 of at least 20 is 5%
    (2, 3, True),      # two on a quiet day: 2 of 20 is 10%
    (1, 19, False),    # under the sample, counted over 20
    (1, 20, False),    # exactly 5% is not more than 5%
    (2, 20, True),     # 10%
    (2, 40, False),    # exactly 5% again
    (2, 39, True),     # 5.13%
    (5, 100, False),   # 5%
    (6, 100, True),    # 6%
    (50, 1000, False), # 5%
    (51, 1000, True),  # 5.1%
])
def test_failure_rate_is_more_than_5_percent_over_at_least_20_targets(not_published, finished, high):
    assert is_failure_rate_high(not_published, finished) is high


@pytest.mark.parametrize(("case", "status", "codes"), [
    (health(), "ok", []),                                                         # calls come, nothing wrong
    (health(last_run_ago=None), "ok", []),                                        # never called, nothing due
    (health(last_run_ago=timedelta(hours=2)), "ok", []),                          # idle, nothing due
    (health(last_run_ago=timedelta(seconds=180), due=3), "ok", []),               # 3 minutes exactly: not yet stale
    (health(last_run_ago=timedelta(seconds=181), due=3), "stale", ["cron_stale"]),  # past 3 minutes
    (health(last_run_ago=None, due=1), "stale", ["cron_stale"]),                  # due, and never called
    (health(stuck_for=timedelta(minutes=10)), "ok", []),                          # 10 minutes past its lease exactly
    (health(stuck_for=timedelta(minutes=10, seconds=1)), "degraded", ["stuck_posts"]),  # more than 10
    (health(last_24h=window(20, failed=1)), "ok", []),                            # 5% exactly
    (health(last_24h=window(20, failed=1, unknown=1)), "degraded", ["failure_rate"]),  # unknown counts as not published
    (health(last_24h=window(39, failed=2)), "degraded", ["failure_rate"]),        # 5.13%
    (health(last_24h=window(40, failed=2)), "ok", []),                            # 5%
    (health(last_24h=window(40, failed=5), stuck_for=timedelta(hours=1)), "degraded",
     ["failure_rate", "stuck_posts"]),                                            # every reason that holds
    (health(last_run_ago=timedelta(minutes=5), due=1, last_24h=window(20, failed=20), stuck_for=timedelta(hours=1)),
     "stale", ["cron_stale", "failure_rate", "stuck_posts"]),                     # stale wins, reasons kept
])
def test_the_verdict_names_every_reason_and_stale_wins(case, status, codes):
    verdict = judge(case, now=NOW)
    assert verdict.status == status
    assert [r.code for r in verdict.reasons] == codes
    assert all(r.message for r in verdict.reasons)


def test_reasons_say_what_was_seen():
    verdict = judge(health(last_24h=window(39, failed=1, unknown=1), stuck_for=timedelta(minutes=25)), now=NOW)
    failure, stuck = verdict.reasons
    assert failure.message.startswith("2 of the 39 targets that finished in the last 24 h") and "5%" in failure.message
    assert "25 min past its lease" in stuck.message
    stale = judge(health(last_run_ago=timedelta(seconds=200), due=2), now=NOW).reasons[0]
    assert stale.message == "2 post(s) due and no run for 200 s: is the external cron calling?"
