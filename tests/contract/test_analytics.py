"""The analytics store functions on each transport: the decaying schedule, snapshots, leases that
keep overlapping refresh calls apart, pauses, and each user's figures their own."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from services.domain.analytics import Figures, Reading, ReadingOutcome, Snapshot
from services.domain.models import Content, PostStatus, RateLimitPause, TargetStatus
from services.errors import NotFoundError, ValidationError
from services.platforms.sandbox import SandboxPlatform
from services.publishing.run import RunLimits, publish_due
from services.store.base import AnalyticsQuery, NewChannel, NewPost
from tests.contract.test_publish_run import CIPHER

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


async def channels(harness, user, platforms: list[str], *, prefix="acct"):
    return [await harness.store.create_channel(user, NewChannel(
        platform=platform, account_id=f"{prefix}-{i}", name=f"{platform} {i}",
        credentials_encrypted=CIPHER.encrypt({"access_token": f"token-{i}"}))) for i, platform in enumerate(platforms)]


async def publish(harness, user, targets, *, texts=("hello",)):
    """Posts on ``targets`` (channels), each published by a run now; returns the stored posts."""
    now = datetime.now(timezone.utc)
    made = [await harness.store.create_post(user, NewPost(
        content=Content(text=text), channel_ids=tuple(c.id for c in targets), status=PostStatus.SCHEDULED,
        scheduled_at=now - timedelta(seconds=len(texts) - i))) for i, text in enumerate(texts)]
    sandbox = SandboxPlatform(harness.store)
    async with httpx.AsyncClient() as http:
        summary = await publish_due(harness.store, {p: sandbox for p in {c.platform for c in targets}}, CIPHER, http,
                                    RunLimits(), trigger="manual", now=now, post_ids=tuple(p.id for p in made))
    assert summary.published == len(made), summary
    return [await harness.store.get_post(user, p.id) for p in made]


def measured(target_id, at, **figures) -> Reading:
    raw = figures.pop("raw", {})
    return Reading(target_id, ReadingOutcome.MEASURED, at=at, snapshot=Snapshot(at, Figures(**figures), raw))


async def next_read(harness, user, post, target_id):
    found = await harness.store.get_post_analytics(user, post.id)
    return next(t for t in found.targets if t.target_id == target_id).next_refresh_at


async def test_a_target_is_read_hourly_in_its_first_day_then_daily_until_day_30_then_never(harness):
    user = harness.new_user()
    [channel] = await channels(harness, user, ["sandbox"])
    [post] = await publish(harness, user, [channel])
    [target] = post.targets
    published = target.published_at
    store = harness.store
    assert await next_read(harness, user, post, target.id) == published + HOUR  # first read an hour after
    assert (await store.claim_analytics_due(now=published + 59 * timedelta(minutes=1), limit=10,
                                            lease_seconds=60)).targets == ()

    # (read at, next read): a grid anchored at published_at, hours then days; a read between two
    # slots is next due at the following slot, so an hourly cron reads it once an hour
    for at, expected in [(published + HOUR, published + 2 * HOUR),
                         (published + 2.5 * HOUR, published + 3 * HOUR),
                         (published + 23 * HOUR + timedelta(minutes=10), published + 24 * HOUR),
                         (published + 24 * HOUR, published + 2 * DAY),
                         (published + 5 * DAY + 3 * HOUR, published + 6 * DAY),
                         (published + 29 * DAY + HOUR, published + 30 * DAY),
                         (published + 30 * DAY, None)]:
        claim = await store.claim_analytics_due(now=at, limit=10, lease_seconds=60)
        assert [t.target_id for t in claim.targets] == [target.id], at - published
        recorded = await store.record_analytics(claim.lease_id, [measured(target.id, at, likes=1)], now=at)
        assert (recorded.stored, recorded.ignored) == (1, 0)
        assert await next_read(harness, user, post, target.id) == expected, at - published
    assert (await store.claim_analytics_due(now=published + 400 * DAY, limit=10, lease_seconds=60)).targets == ()
    assert len((await store.get_post_analytics(user, post.id)).targets[0].series) == 7


async def test_snapshots_are_kept_with_unknown_figures_left_unknown(harness):
    user = harness.new_user()
    first, second = await channels(harness, user, ["sandbox", "mastodon"])
    [post] = await publish(harness, user, [first, second])
    by_channel = {t.channel_id: t for t in post.targets}
    published = max(t.published_at for t in post.targets)
    store = harness.store
    for hours, likes in ((1, 3), (2, 5)):
        at = published + hours * HOUR
        claim = await store.claim_analytics_due(now=at, limit=10, lease_seconds=60)
        assert len(claim.targets) == 2
        assert claim.channels[first.id].credentials_encrypted is not None  # for the run to decrypt
        await store.record_analytics(claim.lease_id, [
            measured(by_channel[first.id].id, at, likes=likes, comments=1, impressions=100, raw={"reach": 80}),
            measured(by_channel[second.id].id, at, likes=2, shares=1),  # no impressions given
        ], now=at)

    found = await store.get_post_analytics(user, post.id)
    assert found.post_id == post.id
    mine = next(t for t in found.targets if t.channel_id == first.id)
    assert [s.figures.likes for s in mine.series] == [3, 5]  # oldest first
    assert mine.latest == mine.series[-1]
    assert mine.latest.figures == Figures(likes=5, comments=1, impressions=100)  # shares, clicks, saves: unknown
    assert mine.latest.raw == {"reach": 80}
    assert mine.published_at == by_channel[first.id].published_at and mine.status == "published"
    totals = found.totals
    assert (totals.targets, totals.measured, totals.likes, totals.comments, totals.shares) == (2, 2, 7, 1, 1)
    assert (totals.impressions, totals.clicks, totals.saves, totals.engagement) == (100, None, None, 9)
    # the rate counts only targets whose impressions are known: (5 + 1) / 100, not (5 + 1 + 2 + 1) / 100
    assert totals.engagement_rate == pytest.approx(0.06)


async def test_overlapping_claims_never_read_one_target_twice(harness):
    user = harness.new_user()
    made = await channels(harness, user, ["sandbox"] * 3)
    posts = await publish(harness, user, made, texts=("a", "b"))
    targets = {t.id for p in posts for t in p.targets}
    at = max(t.published_at for p in posts for t in p.targets) + HOUR
    stores = [harness.store, harness.another_store()]
    claims = await asyncio.gather(*(s.claim_analytics_due(now=at, limit=4, lease_seconds=60) for s in stores))
    taken = [t.target_id for c in claims for t in c.targets]
    assert len(taken) == len(set(taken)) == 6 and set(taken) == targets
    # while the leases hold, nothing more is due...
    assert (await harness.store.claim_analytics_due(now=at + timedelta(seconds=30), limit=10,
                                                    lease_seconds=60)).targets == ()
    # ...and a run that died gives its targets back when its lease ends
    [late] = [c for c in claims if c.targets][:1]
    again = await harness.store.claim_analytics_due(now=at + timedelta(seconds=61), limit=10, lease_seconds=60)
    assert {t.target_id for t in again.targets} == targets
    # the first run's readings, recorded after its lease ended, are ignored: nothing is stored twice
    stale = await harness.store.record_analytics(late.lease_id, [measured(t.target_id, at, likes=1)
                                                                  for t in late.targets], now=at + timedelta(seconds=70))
    assert (stale.stored, stale.ignored) == (0, len(late.targets))
    for post in posts:
        assert all(t.series == () for t in (await harness.store.get_post_analytics(user, post.id)).targets)


async def test_a_reading_given_back_stays_due_and_a_stopped_one_is_never_claimed_again(harness):
    user = harness.new_user()
    made = await channels(harness, user, ["sandbox"] * 2)
    [post] = await publish(harness, user, made)
    kept, gone = post.targets
    at = max(t.published_at for t in post.targets) + HOUR
    claim = await harness.store.claim_analytics_due(now=at, limit=10, lease_seconds=60)
    due = {t.target_id: t.due_at for t in claim.targets}
    assert due[kept.id] == kept.published_at + HOUR
    recorded = await harness.store.record_analytics(claim.lease_id, [
        Reading(kept.id, ReadingOutcome.RELEASED, due_at=due[kept.id]),
        Reading(gone.id, ReadingOutcome.STOPPED, at=at, error="the post was deleted on the platform"),
    ], now=at)
    assert recorded.stored == 0 and recorded.remaining_due == 1
    found = {t.target_id: t for t in (await harness.store.get_post_analytics(user, post.id)).targets}
    assert found[kept.id].next_refresh_at == due[kept.id]
    assert (found[gone.id].next_refresh_at, found[gone.id].refresh_error) == (None, "the post was deleted on the platform")
    later = await harness.store.claim_analytics_due(now=at + 40 * DAY, limit=10, lease_seconds=60)
    assert [t.target_id for t in later.targets] == [kept.id]


async def test_paused_accounts_are_left_due_and_never_paused_for_publishing(harness):
    user = harness.new_user()
    limited, analytics_paused, free = await channels(harness, user, ["sandbox"] * 3)
    [post] = await publish(harness, user, [limited, analytics_paused, free])
    by_channel = {t.channel_id: t.id for t in post.targets}
    at = max(t.published_at for t in post.targets) + HOUR
    # the publish run met a rate limit on one account; an analytics read on another
    await harness.store.record_results([], now=at, pauses=(
        RateLimitPause(until=at + timedelta(minutes=30), reason="429", channel_id=limited.id),))
    first = await harness.store.claim_analytics_due(now=at, limit=10, lease_seconds=60)
    assert {t.target_id for t in first.targets} == {by_channel[analytics_paused.id], by_channel[free.id]}
    await harness.store.record_analytics(first.lease_id, [
        Reading(by_channel[analytics_paused.id], ReadingOutcome.RELEASED, due_at=at),
        measured(by_channel[free.id], at, likes=1),
    ], now=at, pauses=(RateLimitPause(until=at + 2 * HOUR, reason="metrics 429", channel_id=analytics_paused.id),))
    assert (await harness.store.get_channel(user, analytics_paused.id)).rate_limited_until is None  # publishing goes on
    assert (await harness.store.claim_analytics_due(now=at + timedelta(minutes=29), limit=10,
                                                    lease_seconds=60)).targets == ()
    after = await harness.store.claim_analytics_due(now=at + timedelta(minutes=31), limit=10, lease_seconds=60)
    assert [t.target_id for t in after.targets] == [by_channel[limited.id]]  # its publish pause is over
    later = await harness.store.claim_analytics_due(now=at + 2 * HOUR - timedelta(minutes=1), limit=10,
                                                    lease_seconds=60)
    assert by_channel[analytics_paused.id] not in {t.target_id for t in later.targets}
    last = await harness.store.claim_analytics_due(now=at + 2 * HOUR + timedelta(minutes=1), limit=10, lease_seconds=60)
    assert by_channel[analytics_paused.id] in {t.target_id for t in last.targets}


async def test_a_deleted_channel_is_claimed_without_it_so_the_run_can_stop_its_targets(harness):
    user = harness.new_user()
    [channel] = await channels(harness, user, ["sandbox"])
    [post] = await publish(harness, user, [channel])
    await harness.store.delete_channel(user, channel.id, force=False)
    at = post.targets[0].published_at + HOUR
    claim = await harness.store.claim_analytics_due(now=at, limit=10, lease_seconds=60)
    assert [(t.target_id, t.channel_id) for t in claim.targets] == [(post.targets[0].id, None)]
    assert claim.channels == {}


async def test_each_user_sees_only_their_own_analytics(harness):
    alice, bob = harness.new_user(), harness.new_user()
    [channel] = await channels(harness, alice, ["sandbox"])
    [post] = await publish(harness, alice, [channel])
    at = post.targets[0].published_at + HOUR
    claim = await harness.store.claim_analytics_due(now=at, limit=10, lease_seconds=60)
    await harness.store.record_analytics(claim.lease_id, [measured(post.targets[0].id, at, likes=9)], now=at)
    with pytest.raises(NotFoundError):
        await harness.store.get_post_analytics(bob, post.id)
    window = AnalyticsQuery(start=at - DAY, end=at + HOUR)
    theirs = await harness.store.analytics_summary(bob, window)
    assert (theirs.totals.targets, theirs.totals.likes, theirs.top_posts, theirs.by_platform) == (0, None, (), {})
    mine = await harness.store.analytics_summary(alice, window)
    assert (mine.totals.targets, mine.totals.likes) == (1, 9)


async def test_the_summary_totals_rates_and_ranks_posts_with_filters(harness):
    user = harness.new_user()
    sandbox, mastodon = await channels(harness, user, ["sandbox", "mastodon"])
    quiet, loud = await publish(harness, user, [sandbox, mastodon], texts=("quiet", "loud"))
    published = max(t.published_at for p in (quiet, loud) for t in p.targets)
    at = published + HOUR
    figures = {(quiet.id, sandbox.id): dict(likes=1, impressions=50), (quiet.id, mastodon.id): dict(likes=1),
               (loud.id, sandbox.id): dict(likes=10, comments=5, shares=5, impressions=200, clicks=7),
               (loud.id, mastodon.id): dict(likes=4, shares=2, saves=1)}
    claim = await harness.store.claim_analytics_due(now=at, limit=10, lease_seconds=60)
    await harness.store.record_analytics(claim.lease_id, [
        measured(t.id, at, **figures[(p.id, t.channel_id)]) for p in (quiet, loud) for t in p.targets], now=at)
    start, end = published - HOUR, published + HOUR

    summary = await harness.store.analytics_summary(user, AnalyticsQuery(start=start, end=end))
    totals = summary.totals
    assert (totals.posts, totals.targets, totals.measured) == (2, 4, 4)
    assert (totals.likes, totals.comments, totals.shares, totals.impressions, totals.clicks, totals.saves) == \
        (16, 5, 7, 250, 7, 1)
    assert totals.engagement == 28
    assert totals.engagement_rate == pytest.approx((1 + 20) / 250)  # only the sandbox targets give impressions
    assert set(summary.by_platform) == {"sandbox", "mastodon"}
    assert summary.by_platform["mastodon"].engagement_rate is None
    assert (summary.by_platform["mastodon"].likes, summary.by_platform["mastodon"].posts) == (5, 2)
    assert [(p.post_id, p.engagement, p.text) for p in summary.top_posts] == [(loud.id, 26, "loud"),
                                                                               (quiet.id, 2, "quiet")]
    assert summary.top_posts[0].platforms == ("mastodon", "sandbox")
    assert summary.top_posts[0].engagement_rate == pytest.approx(20 / 200)

    only = await harness.store.analytics_summary(user, AnalyticsQuery(start=start, end=end, platform="mastodon"))
    assert (only.totals.targets, only.totals.likes, only.platform) == (2, 5, "mastodon")
    one = await harness.store.analytics_summary(user, AnalyticsQuery(start=start, end=end, channel_id=sandbox.id,
                                                                      top=1))
    assert (one.totals.targets, one.totals.likes, one.channel_id) == (2, 11, sandbox.id)
    assert [p.post_id for p in one.top_posts] == [loud.id]
    before = await harness.store.analytics_summary(user, AnalyticsQuery(start=start - DAY, end=start))
    assert before.totals.targets == 0 and before.totals.engagement_rate is None


@pytest.mark.parametrize(("query", "field"), [
    (dict(start=datetime(2030, 1, 2, tzinfo=timezone.utc), end=datetime(2030, 1, 1, tzinfo=timezone.utc)), "to"),
    (dict(start=datetime(2030, 1, 1, tzinfo=timezone.utc), end=datetime(2031, 1, 3, tzinfo=timezone.utc)), "to"),
    (dict(start=datetime(2030, 1, 1, tzinfo=timezone.utc), end=datetime(2030, 2, 1, tzinfo=timezone.utc), top=0),
     "top"),
])
async def test_the_summary_refuses_a_backwards_or_unbounded_range(harness, query, field):
    with pytest.raises(ValidationError) as refused:
        await harness.store.analytics_summary(harness.new_user(), AnalyticsQuery(**query))
    assert refused.value.field == field


async def test_the_summary_refuses_a_channel_that_is_not_the_callers(harness):
    alice, bob = harness.new_user(), harness.new_user()
    [channel] = await channels(harness, alice, ["sandbox"])
    start = datetime(2030, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ValidationError) as refused:
        await harness.store.analytics_summary(bob, AnalyticsQuery(start=start, end=start + DAY, channel_id=channel.id))
    assert (refused.value.field, refused.value.code) == ("channel_id", "unknown_channel")


async def test_a_target_resolved_as_published_by_hand_is_read_only_with_a_post_id(harness):
    # the target's status moves to published outside a run: no platform post id, nothing to read
    user = harness.new_user()
    [channel] = await channels(harness, user, ["sandbox"])
    [post] = await publish(harness, user, [channel])
    assert post.targets[0].status is TargetStatus.PUBLISHED and post.targets[0].platform_post_id
    assert harness.sql is not None
    harness.sql("update herald.post_targets set status = 'unknown', platform_post_id = null, published_at = null,"
                " metrics_next_at = null where id = %s", [post.targets[0].id])
    await harness.store.resolve_target(user, post.id, post.targets[0].id, published=True, url="https://x.test/1")
    found = await harness.store.get_post_analytics(user, post.id)
    assert found.targets[0].status == "published" and found.targets[0].next_refresh_at is None
