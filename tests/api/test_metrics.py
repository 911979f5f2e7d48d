"""GET /api/v1/metrics (a user's figures, or the service's with the cron secret) and its Prometheus
form, on rows placed at known ages."""

from __future__ import annotations

import math
import re

import httpx
import pytest

from api.factory import create_app
from tests.api.conftest import CRON, CRON_SECRET, make_settings

METRICS = "/api/v1/metrics"
PROMETHEUS = "/api/v1/metrics/prometheus"
BEARER_SECRET = {"Authorization": f"Bearer {CRON_SECRET}"}


def finished(db, who, *, status="published", ago="1 hour", platform="sandbox", attempts=1, lag_ms=2000, count=1):
    """``count`` targets of ``who`` in a final state, their last attempt ended ``ago`` (a Postgres interval)."""
    post_status = {"published": "published", "failed": "failed", "unknown": "needs_review"}[status]
    outcome = {"published": "published", "failed": "permanent", "unknown": "unknown"}[status]
    for _ in range(count):
        post = db.execute("insert into herald.posts (user_id, content, status, scheduled_at) values"
                          " (%s, '{}', %s, now() - %s::interval) returning id", [who.id, post_status, ago]).fetchone()[0]
        target = db.execute(
            "insert into herald.post_targets (post_id, user_id, platform, status, attempts, publish_lag_ms, published_at)"
            " values (%s, %s, %s, %s, %s, %s, case when %s = 'published' then now() - %s::interval end) returning id",
            [post, who.id, platform, status, attempts, lag_ms if status == "published" else None, status, ago]).fetchone()[0]
        db.execute("insert into herald.post_runs (post_id, target_id, attempt, outcome, started_at, finished_at, duration_ms)"
                   " values (%s, %s, %s, %s, now() - %s::interval, now() - %s::interval, 0)",
                   [post, target, attempts, outcome, ago, ago])


def stuck(db, who, *, expired="11 minutes"):
    """A post left publishing by a dead run: its lease expired ``expired`` ago."""
    db.execute("insert into herald.posts (user_id, content, status, scheduled_at, lease_id, lease_expires_at)"
               " values (%s, '{}', 'publishing', now() - interval '1 hour', gen_random_uuid(), now() - %s::interval)",
               [who.id, expired])


def due(db, who, *, ago="1 minute"):
    db.execute("insert into herald.posts (user_id, content, status, scheduled_at) values (%s, '{}', 'scheduled',"
               " now() - %s::interval)", [who.id, ago])


# --- who may ask ----------------------------------------------------------------------------------

async def test_a_user_gets_their_own_figures_only(client, db, alice, bob):
    finished(db, alice, lag_ms=1000)
    finished(db, alice, status="failed", platform="webhook", attempts=3)
    finished(db, alice, ago="3 days", lag_ms=3000)
    stuck(db, alice)
    due(db, alice)
    finished(db, bob, count=4)
    stuck(db, bob)
    response = await client.get(METRICS, headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "user" and body["last_run_at"] is None
    day, week = body["windows"]["24h"], body["windows"]["7d"]
    assert {k: day[k] for k in ("finished", "published", "failed", "unknown", "retried")} == {
        "finished": 2, "published": 1, "failed": 1, "unknown": 0, "retried": 1}
    assert (day["success_ratio"], day["failure_ratio"], day["retry_ratio"]) == (0.5, 0.5, 0.5)
    assert day["publish_lag"] == {"count": 1, "p50_ms": 1000, "p95_ms": 1000, "max_ms": 1000}
    assert day["by_platform"] == {"sandbox": {"finished": 1, "published": 1, "failed": 0, "unknown": 0},
                                  "webhook": {"finished": 1, "published": 0, "failed": 1, "unknown": 0}}
    assert (week["finished"], week["publish_lag"]["max_ms"]) == (3, 3000)
    assert body["stuck"]["count"] == 1 and body["stuck"]["oldest_lease_expires_at"] is not None
    assert body["due_backlog"]["count"] == 1
    theirs = (await client.get(METRICS, headers=bob.headers)).json()
    assert (theirs["windows"]["24h"]["finished"], theirs["windows"]["7d"]["failed"]) == (4, 0)
    assert (theirs["stuck"]["count"], theirs["due_backlog"]["count"]) == (1, 0)


@pytest.mark.parametrize("headers", [CRON, BEARER_SECRET], ids=["x-cron-secret", "bearer"])
async def test_the_cron_secret_gets_the_whole_services_figures(client, db, alice, bob, headers):
    await client.post("/api/v1/cron/publish-scheduled", headers=CRON)  # a run, so last_run_at is set
    finished(db, alice)
    finished(db, bob, status="unknown")
    stuck(db, bob)
    response = await client.get(METRICS, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "service" and body["last_run_at"] is not None
    day = body["windows"]["24h"]
    assert (day["finished"], day["published"], day["unknown"], day["failure_ratio"]) == (2, 1, 1, 0.5)
    assert body["stuck"]["count"] == 1


@pytest.mark.parametrize("headers", [
    {},                                                        # nothing
    {"X-Cron-Secret": "wrong-secret-0123456789"},              # a wrong secret
    {"Authorization": "Bearer not-a-token"},                   # neither the secret nor a user's token
    {"Authorization": CRON_SECRET},                            # the secret, not as a bearer token
    {"X-Cron-Secret": ""},                                     # an empty secret
])
async def test_metrics_without_a_valid_token_or_secret_is_401(client, db, alice, headers):
    finished(db, alice)
    response = await client.get(METRICS, headers=headers)
    assert response.status_code == 401, response.text
    assert "published" not in response.text


async def test_a_users_token_sent_as_the_cron_secret_is_refused(client, alice):
    token = alice.headers["Authorization"].removeprefix("Bearer ")
    assert (await client.get(METRICS, headers={"X-Cron-Secret": token})).status_code == 401


async def test_without_a_configured_secret_a_user_still_gets_figures_and_the_secret_is_refused(store, alice):
    app = create_app(make_settings(cron_secret=None), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        assert (await http.get(METRICS, headers=alice.headers)).json()["scope"] == "user"
        refused = await http.get(METRICS, headers={"X-Cron-Secret": "anything-at-all-1234"})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "not_configured"
        assert (await http.get(PROMETHEUS, headers={"Authorization": "Bearer anything-at-all-1234"})).status_code == 503
    await app.state.runtime.http.aclose()


# --- Prometheus ------------------------------------------------------------------------------------

SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def parse_exposition(text: str) -> dict[str, dict]:
    """The text format 0.0.4 read back: {family: {"help", "type", "samples": {labels tuple: value}}}.
    Fails on a sample before its family's HELP and TYPE, a family split apart, or a line it cannot read."""
    assert text.endswith("\n")
    families: dict[str, dict] = {}
    current = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in families, f"{name} described twice (or split)"
            families[name] = {"help": unescape(help_text), "type": None, "samples": {}}
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and families[name]["type"] is None and not families[name]["samples"], line
            families[name]["type"] = kind
        else:
            match = SAMPLE.match(line)
            assert match, f"unreadable line {line!r}"
            assert match["name"] == current and families[current]["type"], f"{line!r} outside its family"
            raw = match["labels"] or ""
            labels = tuple((k, unescape(v)) for k, v in LABEL.findall(raw))
            assert ",".join(f'{k}="{v}"' for k, v in LABEL.findall(raw)) == raw, f"bad labels in {line!r}"
            assert labels not in families[current]["samples"], f"duplicate sample {line!r}"
            families[current]["samples"][labels] = float(match["value"])  # Go's ParseFloat reads what float() reads
    return families


async def test_prometheus_needs_the_cron_secret(client, alice):
    for headers in ({}, alice.headers, {"X-Cron-Secret": "wrong-secret-0123456789"}):
        assert (await client.get(PROMETHEUS, headers=headers)).status_code == 401
    for headers in (CRON, BEARER_SECRET):
        assert (await client.get(PROMETHEUS, headers=headers)).status_code == 200


async def test_prometheus_text_reads_back_as_gauges_with_the_figures(client, db, alice, bob):
    finished(db, alice, lag_ms=1000, count=3)
    finished(db, alice, lag_ms=5000, ago="2 days")
    finished(db, bob, status="failed", platform="webhook", attempts=2)
    stuck(db, bob, expired="90 seconds")
    due(db, alice, ago="30 seconds")
    response = await client.get(PROMETHEUS, headers=BEARER_SECRET)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = parse_exposition(response.text)
    assert {f["type"] for f in families.values()} == {"gauge"}  # windowed counts fall: none is a counter
    assert not [name for name in families if name.endswith("_total")]
    assert all(f["help"] for f in families.values())
    done = families["herald_targets_finished"]["samples"]
    assert done[(("window", "24h"), ("platform", "sandbox"), ("outcome", "published"))] == 3
    assert done[(("window", "7d"), ("platform", "sandbox"), ("outcome", "published"))] == 4
    assert done[(("window", "24h"), ("platform", "webhook"), ("outcome", "failed"))] == 1
    assert done[(("window", "24h"), ("platform", "webhook"), ("outcome", "published"))] == 0  # every pair, zeros too
    assert len(done) == 2 * 2 * 3  # windows x platforms x outcomes
    assert families["herald_success_ratio"]["samples"][(("window", "24h"),)] == 0.75
    assert families["herald_failure_ratio"]["samples"][(("window", "7d"),)] == 0.2
    assert families["herald_retry_ratio"]["samples"][(("window", "24h"),)] == 0.25
    assert families["herald_targets_retried"]["samples"][(("window", "24h"),)] == 1
    lag = families["herald_publish_lag_seconds"]["samples"]
    assert lag[(("window", "24h"), ("quantile", "0.5"))] == 1.0
    assert lag[(("window", "7d"), ("quantile", "0.95"))] == 4.4  # 1000 + 0.85 * 4000 ms, percentile_cont
    assert families["herald_publish_lag_max_seconds"]["samples"][(("window", "7d"),)] == 5.0
    assert families["herald_posts_stuck"]["samples"] == {(): 1}
    assert 90 <= families["herald_posts_stuck_oldest_seconds"]["samples"][()] < 120
    assert families["herald_due_backlog"]["samples"] == {(): 1}
    assert 30 <= families["herald_due_backlog_oldest_seconds"]["samples"][()] < 60
    assert "herald_cron_last_run_timestamp_seconds" not in families  # no run yet


async def test_prometheus_says_nan_where_a_figure_is_undefined(client):
    families = parse_exposition((await client.get(PROMETHEUS, headers=CRON)).text)
    assert math.isnan(families["herald_success_ratio"]["samples"][(("window", "24h"),)])
    assert math.isnan(families["herald_publish_lag_seconds"]["samples"][(("window", "7d"), ("quantile", "0.95"))])
    assert families["herald_targets_finished"]["samples"] == {}  # no platform seen yet
    assert families["herald_posts_stuck"]["samples"] == {(): 0}


async def test_prometheus_escapes_a_label_value_with_quotes_backslashes_and_line_feeds(client, db, alice):
    odd = 'we"ird\\plat\nform'
    finished(db, alice, platform=odd)
    text = (await client.get(PROMETHEUS, headers=CRON)).text
    assert 'platform="we\\"ird\\\\plat\\nform"' in text
    samples = parse_exposition(text)["herald_targets_finished"]["samples"]
    assert samples[(("window", "24h"), ("platform", odd), ("outcome", "published"))] == 1
