"""/cron/health's verdicts: ok, degraded (failures over the last 24 hours, a post stuck past its
lease) with reasons, and stale (503), which wins; on rows placed at known ages."""

from __future__ import annotations

import pytest

from tests.api.conftest import CRON_SECRET
from tests.api.test_metrics import due, finished, stuck

HEALTH = "/api/v1/cron/health"


@pytest.mark.parametrize(("published", "failed", "unknown", "status"), [
    (19, 1, 0, "ok"),        # 1 of 20: exactly 5%
    (18, 2, 0, "degraded"),  # 2 of 20: 10%
    (38, 2, 0, "ok"),        # 2 of 40: exactly 5%
    (37, 2, 0, "degraded"),  # 2 of 39: 5.1%
    (37, 1, 1, "degraded"),  # an unknown outcome is not a success
    (1, 1, 0, "ok"),         # a quiet day: 1 of 2, counted over 20, is 5%
    (1, 2, 0, "degraded"),   # 2 of 3, counted over 20, is 10%
])
async def test_health_is_degraded_when_more_than_5_percent_of_the_last_day_failed(
        client, db, alice, published, failed, unknown, status):
    finished(db, alice, count=published)
    finished(db, alice, status="failed", count=failed)
    finished(db, alice, status="unknown", count=unknown)
    finished(db, alice, status="failed", ago="25 hours", count=10)  # yesterday's failures are not counted
    response = await client.get(HEALTH)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == status
    assert [r["code"] for r in body["reasons"]] == ([] if status == "ok" else ["failure_rate"])


@pytest.mark.parametrize(("expired", "status"), [("9 minutes", "ok"), ("11 minutes", "degraded")])
async def test_health_is_degraded_when_a_post_is_stuck_more_than_10_minutes_past_its_lease(client, db, alice, expired,
                                                                                         status):
    stuck(db, alice, expired=expired)
    response = await client.get(HEALTH)
    body = response.json()
    assert (response.status_code, body["status"], body["stuck"]) == (200, status, 1)
    assert [r["code"] for r in body["reasons"]] == ([] if status == "ok" else ["stuck_posts"])
    if status == "degraded":
        assert "past its lease" in body["reasons"][0]["message"]


async def test_stale_wins_over_degraded_and_keeps_every_reason_and_field(client, db, alice):
    stuck(db, alice, expired="1 hour")
    finished(db, alice, status="failed", count=3)
    due(db, alice, ago="5 minutes")
    response = await client.get(HEALTH)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "stale"
    assert [r["code"] for r in body["reasons"]] == ["cron_stale", "failure_rate", "stuck_posts"]
    assert {"last_run_at", "seconds_since_last_run", "due_now", "oldest_due_lag_seconds", "stuck"} <= set(body)
    assert (body["due_now"], body["stuck"], body["last_run_at"]) == (1, 1, None)
    assert (await client.head(HEALTH)).status_code == 503


async def test_health_is_ok_with_no_reasons_on_a_quiet_service(client):
    response = await client.get(HEALTH)
    assert (response.status_code, response.json()["status"], response.json()["reasons"]) == (200, "ok", [])
    assert CRON_SECRET not in response.text
