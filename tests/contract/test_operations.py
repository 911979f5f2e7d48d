"""Operations figures (issue 13) on both transports: a user's, the service's, and what /cron/health
judges, from posts claimed and recorded the way the publish run does it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from services.domain.models import CronRun, Outcome, PostResult, PostStatus, TargetResult, TargetStatus
from services.domain.transitions import ALLOWED_FROM
from services.errors import AuthenticationError
from services.store.base import PostChanges
from tests.contract.test_store_contract import make_channel, make_post

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)
CALL_MS = 120  #: every attempt here ends this long after it starts

PUBLISHED = (Outcome.PUBLISHED, TargetStatus.PUBLISHED)
FAILED = (Outcome.PERMANENT, TargetStatus.FAILED)
UNKNOWN = (Outcome.UNKNOWN, TargetStatus.UNKNOWN)
RETRY = (Outcome.TRANSIENT, TargetStatus.PENDING)


async def attempt(store, post, *, at, outcomes, lag_ms=0, status=None, next_attempt_at=None):
    """Claim ``post`` at ``at`` and record one attempt per target: ``outcomes`` maps a platform to
    (outcome, new target status); the attempt ends CALL_MS after ``at``."""
    [claimed] = (await store.claim_due_posts(now=at, limit=10, lease_seconds=60, post_ids=(post.id,))).posts
    targets = tuple(
        TargetResult(target_id=t.id, outcome=outcomes[t.platform][0], status=outcomes[t.platform][1],
                     attempt=t.attempts + 1, started_at=at, finished_at=at + timedelta(milliseconds=CALL_MS),
                     lag_ms=lag_ms if outcomes[t.platform][1] is TargetStatus.PUBLISHED else None)
        for t in claimed.post.targets)
    statuses = {s for _, s in outcomes.values()}
    status = status or (PostStatus.PUBLISHED if statuses == {TargetStatus.PUBLISHED} else PostStatus.FAILED)
    await store.record_results([PostResult(post_id=post.id, lease_id=claimed.lease_id, status=status, error=None,
                                           targets=targets, next_attempt_at=next_attempt_at)], now=at)


async def due_post(store, user, channels, at):
    return await make_post(store, user, channels, at=at - timedelta(minutes=1))


@pytest.fixture
async def seeded(harness):
    """User A's week: in the last 24 h a partial post (sandbox published, webhook failed), a post
    published on its second attempt, an unknown outcome; 3 days ago a published webhook post; 8
    days ago one more (outside both windows); a post stuck past its lease and one due. User B: a
    published post, a stuck one and a due one."""
    store = harness.store
    a, b = harness.new_user(), harness.new_user()
    sandbox, hook = await make_channel(store, a), await make_channel(store, a, platform="webhook", account="h")
    b_sandbox = await make_channel(store, b)
    hour_ago = NOW - timedelta(hours=1)

    partial = await due_post(store, a, [sandbox, hook], hour_ago)
    await attempt(store, partial, at=hour_ago, outcomes={"sandbox": PUBLISHED, "webhook": FAILED}, lag_ms=100,
                  status=PostStatus.PARTIAL)
    retried = await due_post(store, a, [sandbox], NOW - timedelta(hours=2))
    await attempt(store, retried, at=NOW - timedelta(hours=2), outcomes={"sandbox": RETRY}, status=PostStatus.SCHEDULED,
                  next_attempt_at=hour_ago)
    await attempt(store, retried, at=hour_ago, outcomes={"sandbox": PUBLISHED}, lag_ms=300)
    lost = await due_post(store, a, [sandbox], NOW - timedelta(minutes=30))
    await attempt(store, lost, at=NOW - timedelta(minutes=30), outcomes={"sandbox": UNKNOWN},
                  status=PostStatus.NEEDS_REVIEW)
    for days, lag in ((3, 500), (8, 7_000)):
        old = await due_post(store, a, [hook], NOW - timedelta(days=days))
        await attempt(store, old, at=NOW - timedelta(days=days), outcomes={"webhook": PUBLISHED}, lag_ms=lag)
    stuck = await due_post(store, a, [sandbox], NOW - timedelta(minutes=20))
    await store.claim_due_posts(now=NOW - timedelta(minutes=20), limit=1, lease_seconds=60, post_ids=(stuck.id,))
    await make_post(store, a, [sandbox], at=NOW - timedelta(minutes=5))  # due, not claimed
    await make_post(store, a, [sandbox], at=NOW + timedelta(minutes=5))  # not due yet

    theirs = await due_post(store, b, [b_sandbox], hour_ago)
    await attempt(store, theirs, at=hour_ago, outcomes={"sandbox": PUBLISHED}, lag_ms=99_999)
    b_stuck = await due_post(store, b, [b_sandbox], NOW - timedelta(minutes=40))
    await store.claim_due_posts(now=NOW - timedelta(minutes=40), limit=1, lease_seconds=60, post_ids=(b_stuck.id,))
    await make_post(store, b, [b_sandbox], at=NOW - timedelta(minutes=50))
    return a, b


async def test_a_users_figures_count_their_targets_by_when_their_last_attempt_ended(harness, seeded):
    a, _ = seeded
    figures = await harness.store.operations(a, now=NOW)
    assert (figures.now, figures.is_service, figures.last_run_at) == (NOW, False, None)
    day, week = figures.windows["24h"], figures.windows["7d"]
    assert (day.name, day.since, day.until) == ("24h", NOW - timedelta(hours=24), NOW)
    assert (day.finished, day.published, day.failed, day.unknown, day.retried) == (4, 2, 1, 1, 1)
    assert (day.success_ratio, day.failure_ratio, day.retry_ratio) == (0.5, 0.5, 0.25)
    assert (day.publish_lag.count, day.publish_lag.p50_ms, day.publish_lag.p95_ms, day.publish_lag.max_ms) == (
        2, 200, 290, 300)  # percentile_cont over 100 and 300
    assert {p: (c.finished, c.published, c.failed, c.unknown) for p, c in day.by_platform.items()} == {
        "sandbox": (3, 2, 0, 1), "webhook": (1, 0, 1, 0)}
    # the week adds the webhook post of 3 days ago; the one of 8 days ago is in neither window
    assert (week.since, week.finished, week.published, week.failed, week.unknown, week.retried) == (
        NOW - timedelta(days=7), 5, 3, 1, 1, 1)
    assert (week.success_ratio, week.retry_ratio) == (0.6, 0.2)
    assert (week.publish_lag.count, week.publish_lag.p50_ms, week.publish_lag.p95_ms, week.publish_lag.max_ms) == (
        3, 300, 480, 500)
    assert {p: (c.finished, c.published) for p, c in week.by_platform.items()} == {"sandbox": (3, 2), "webhook": (2, 1)}
    # posts: one stuck since its 60 s lease ran out 19 minutes ago; one due 5 minutes ago
    assert (figures.stuck, figures.oldest_stuck_lease_expires_at) == (1, NOW - timedelta(minutes=19))
    assert (figures.due_backlog, figures.oldest_due_at) == (1, NOW - timedelta(minutes=5))


async def test_a_user_never_sees_another_users_figures(harness, seeded):
    _, b = seeded
    figures = await harness.store.operations(b, now=NOW)
    day = figures.windows["24h"]
    assert (day.finished, day.published, day.publish_lag.p50_ms, list(day.by_platform)) == (1, 1, 99_999, ["sandbox"])
    assert (figures.stuck, figures.due_backlog) == (1, 1)
    nobody = await harness.store.operations(harness.new_user(), now=NOW)
    assert (nobody.windows["7d"].finished, nobody.stuck, nobody.due_backlog) == (0, 0, 0)
    empty = nobody.windows["24h"]
    assert (empty.success_ratio, empty.failure_ratio, empty.retry_ratio) == (None, None, None)
    assert (empty.publish_lag.count, empty.publish_lag.p50_ms, empty.by_platform) == (0, None, {})


async def test_the_service_figures_count_every_user(harness, seeded):
    figures = await harness.store.service_operations(now=NOW)
    day = figures.windows["24h"]
    assert figures.is_service and figures.last_run_at is None  # no cron run recorded
    assert (day.finished, day.published, day.failed, day.unknown, day.retried) == (5, 3, 1, 1, 1)
    assert (day.publish_lag.count, day.publish_lag.max_ms) == (3, 99_999)
    assert {p: c.finished for p, c in day.by_platform.items()} == {"sandbox": 4, "webhook": 1}
    assert (figures.stuck, figures.oldest_stuck_lease_expires_at) == (2, NOW - timedelta(minutes=39))
    assert (figures.due_backlog, figures.oldest_due_at) == (2, NOW - timedelta(minutes=50))
    run = CronRun(id=uuid.uuid4(), trigger="manual", started_at=NOW - timedelta(seconds=30),
                  finished_at=NOW - timedelta(seconds=29), claimed=0, published=0, failed=0, remaining_due=0,
                  duration_ms=1000)
    await harness.store.record_results([], now=NOW - timedelta(seconds=29), cron_run=run)
    assert (await harness.store.service_operations(now=NOW)).last_run_at == NOW - timedelta(seconds=30)


async def test_service_health_gives_the_last_24_hours_and_the_oldest_stuck_lease(harness, seeded):
    health = await harness.store.service_health(now=NOW)
    assert (health.cron.due_now, health.cron.stuck, health.stuck_since) == (2, 2, NOW - timedelta(minutes=39))
    day = health.last_24h
    assert (day.name, day.finished, day.published, day.not_published) == ("24h", 5, 3, 2)
    assert day == (await harness.store.service_operations(now=NOW)).windows["24h"]
    calm = await harness.store.service_health(now=NOW - timedelta(days=30))
    assert (calm.stuck_since, calm.cron.stuck, calm.last_24h.finished) == (None, 0, 0)


async def test_a_window_holds_attempts_that_ended_after_its_start_and_by_its_end(harness):
    user = harness.new_user()
    channel = await make_channel(harness.store, user)
    ends = {"at the window's start": NOW - timedelta(hours=24), "just after it": NOW - timedelta(hours=24, microseconds=-1),
            "at now": NOW, "after now": NOW + timedelta(microseconds=1)}
    for end in ends.values():
        start = end - timedelta(milliseconds=CALL_MS)
        post = await due_post(harness.store, user, [channel], start)
        await attempt(harness.store, post, at=start, outcomes={"sandbox": PUBLISHED})
    figures = await harness.store.operations(user, now=NOW)
    assert figures.windows["24h"].finished == 2  # (since, until]: just after the start, and now
    assert figures.windows["7d"].finished == 3


async def test_a_target_retried_by_hand_is_no_longer_finished(harness):
    user = harness.new_user()
    post = await due_post(harness.store, user, [await make_channel(harness.store, user)], NOW - timedelta(hours=1))
    await attempt(harness.store, post, at=NOW - timedelta(hours=1), outcomes={"sandbox": FAILED})
    before = (await harness.store.operations(user, now=NOW)).windows["24h"]
    assert (before.finished, before.failed, before.failure_ratio) == (1, 1, 1.0)
    await harness.store.update_post(user, post.id, PostChanges(status=PostStatus.SCHEDULED, next_attempt_at=NOW),
                                    allowed_from=ALLOWED_FROM["retry"], action="retry")
    after = (await harness.store.operations(user, now=NOW)).windows["24h"]
    assert (after.finished, after.failed, after.failure_ratio) == (0, 0, None)


async def test_a_users_figures_need_the_users_token(harness):
    user = harness.new_user()
    with pytest.raises(AuthenticationError):
        await harness.store.operations(type(user)(id=user.id, token=None), now=NOW)
