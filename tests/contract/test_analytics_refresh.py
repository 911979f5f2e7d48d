"""The analytics refresh run on each store: it reads due targets through a measuring platform, one
call at a time per account inside the budget, pauses an account's analytics (never its publishing)
on a rate limit, stops reading a post that is gone, and never spends a post's publish quota."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import pytest

from services.analytics.refresh import AUTH_PAUSE, RefreshLimits, refresh_due
from services.domain.models import Outcome, RateLimitPause
from services.platforms.base import APP, Feature, Metrics, MetricsRequest, PlatformError
from services.platforms.sandbox import SandboxPlatform
from tests.contract.test_analytics import HOUR, channels, publish
from tests.contract.test_publish_run import CIPHER

GUARD = 60  #: a deadlock guard, not a speed target
DEFAULT_LIMITS = RefreshLimits()


class Measuring(SandboxPlatform):
    """The sandbox, able to read figures: ``answer`` says what each read returns (Metrics) or raises."""

    features = frozenset({Feature.VERIFY, Feature.METRICS, Feature.REFRESH})

    def __init__(self, outbox, answer: Callable[[MetricsRequest], Metrics | PlatformError] | None = None,
                 *, delay: float = 0.0):
        super().__init__(outbox)
        self.answer = answer or (lambda request: Metrics(likes=1, impressions=10))
        self.delay = delay
        self.reads: list[MetricsRequest] = []
        self.refreshes = 0
        self.in_flight: dict[str, int] = {}
        self.most_in_flight: dict[str, int] = {}

    async def metrics(self, request: MetricsRequest, http: httpx.AsyncClient) -> Metrics:
        self.reads.append(request)
        account = request.account_id
        self.in_flight[account] = self.in_flight.get(account, 0) + 1
        self.most_in_flight[account] = max(self.most_in_flight.get(account, 0), self.in_flight[account])
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            found = self.answer(request)
        finally:
            self.in_flight[account] -= 1
        if isinstance(found, PlatformError):
            raise found
        return found

    async def refresh(self, credentials, metadata, http):
        self.refreshes += 1
        raise AssertionError("a metrics read never refreshes a token")


async def refresh(store, platform, *, now, limits=DEFAULT_LIMITS, monotonic=None):
    async with httpx.AsyncClient() as http:
        kwargs = {"monotonic": monotonic} if monotonic else {}
        return await asyncio.wait_for(refresh_due(store, {"sandbox": platform}, CIPHER, http, limits, now=now,
                                                  **kwargs), GUARD)


def accounts(platform: Measuring) -> list[str]:
    return [r.account_id for r in platform.reads]


async def published_after(harness, user, made, *, texts=("hello",)) -> tuple[list, datetime]:
    posts = await publish(harness, user, made, texts=texts)
    return posts, max(t.published_at for p in posts for t in p.targets)


async def test_due_targets_get_a_snapshot_and_no_publish_quota_is_spent(harness):
    user = harness.new_user()
    made = await channels(harness, user, ["sandbox"] * 2)
    posts, published = await published_after(harness, user, made, texts=("a", "b"))
    before = {p.id: await harness.store.get_post(user, p.id) for p in posts}
    runs = {p.id: await harness.store.list_runs(user, p.id) for p in posts}
    platform = Measuring(harness.store, lambda r: Metrics(likes=4, comments=None, impressions=40, raw={"views": 40}))

    assert (await refresh(harness.store, platform, now=published + HOUR - timedelta(minutes=1))).claimed == 0
    summary = await refresh(harness.store, platform, now=published + HOUR)
    assert (summary.claimed, summary.measured, summary.failed, summary.stopped) == (4, 4, 0, 0)
    assert summary.remaining_due == 0 and summary.failures == []
    # the adapter got what it needs to find each post, with the channel's decrypted credentials
    targets = {t.platform_post_id: t for p in posts for t in p.targets}
    assert sorted(r.platform_post_id for r in platform.reads) == sorted(targets)
    assert {r.credentials["access_token"] for r in platform.reads} == {"token-0", "token-1"}
    for post in posts:
        found = await harness.store.get_post_analytics(user, post.id)
        assert [(t.latest.figures.likes, t.latest.figures.comments, t.latest.raw) for t in found.targets] == \
            [(4, None, {"views": 40})] * 2
        # reads only: the post, its targets, runs and channels are as the publish run left them
        assert await harness.store.get_post(user, post.id) == before[post.id]
        assert await harness.store.list_runs(user, post.id) == runs[post.id]
    for channel in made:
        stored = await harness.store.get_channel(user, channel.id)
        assert (stored.rate_limited_until, stored.status) == (None, "active")


async def test_one_read_at_a_time_per_account_and_all_accounts_at_once(harness):
    user = harness.new_user()
    made = await channels(harness, user, ["sandbox"] * 4)
    _, published = await published_after(harness, user, made, texts=("a", "b", "c"))
    platform = Measuring(harness.store, delay=0.02)
    summary = await refresh(harness.store, platform, now=published + HOUR, limits=RefreshLimits(concurrency=8))
    assert summary.measured == 12
    assert set(platform.most_in_flight.values()) == {1}  # never two reads of one account at once


async def test_a_rate_limit_pauses_only_that_accounts_analytics(harness):
    user = harness.new_user()
    limited, other = await channels(harness, user, ["sandbox"] * 2)
    posts, published = await published_after(harness, user, [limited, other], texts=("a", "b", "c"))
    platform = Measuring(harness.store, lambda r: PlatformError(
        Outcome.RATE_LIMITED, "rate_limited", "too many requests", http_status=429, retry_after_seconds=600)
        if r.account_id == limited.account_id else Metrics(likes=2))
    now = published + HOUR
    elapsed = iter([0.0] + [12.0] * 10_000)  # the 429 arrives 12 s into the run
    summary = await refresh(harness.store, platform, now=now, limits=RefreshLimits(concurrency=1),
                            monotonic=lambda: next(elapsed))

    assert accounts(platform).count(limited.account_id) == 1  # its other targets were not tried
    assert (summary.measured, summary.rate_limited, summary.held, summary.not_started) == (3, 1, 2, 0)
    until = now + timedelta(seconds=12 + 600)  # counted from the answer
    assert summary.paused == [{"channel_id": str(limited.id), "until": until.isoformat(),
                               "reason": "metrics read rate limited: too many requests"}]
    # publishing is not paused: a post to that account goes out at once
    assert (await harness.store.get_channel(user, limited.id)).rate_limited_until is None
    await publish(harness, user, [limited], texts=("still publishing",))
    # the account's targets are still due at their slot, and read once the pause is over
    for post in posts:
        found = await harness.store.get_post_analytics(user, post.id)
        mine = next(t for t in found.targets if t.channel_id == limited.id)
        assert mine.series == () and mine.next_refresh_at == mine.published_at + HOUR
    during = await refresh(harness.store, platform, now=now + timedelta(minutes=5))
    assert during.claimed == 0
    platform.answer = lambda r: Metrics(likes=2)
    after = await refresh(harness.store, platform, now=until + timedelta(seconds=1))
    # its three targets, and the post published meanwhile (the other account's are read at their next slot)
    assert after.measured == 4 and accounts(platform).count(limited.account_id) == 5


async def test_an_app_wide_limit_pauses_every_account_of_the_platform_in_the_run(harness):
    user = harness.new_user()
    made = await channels(harness, user, ["sandbox"] * 3)
    _, published = await published_after(harness, user, made)
    platform = Measuring(harness.store, lambda r: PlatformError(
        Outcome.RATE_LIMITED, "app_limit", "the app's read cap", retry_after_seconds=3600, limit_scope=APP))
    summary = await refresh(harness.store, platform, now=published + HOUR, limits=RefreshLimits(concurrency=1))
    assert len(platform.reads) == 1 and summary.held == 2
    assert {p["channel_id"] for p in summary.paused} == {str(c.id) for c in made}
    assert (await refresh(harness.store, platform, now=published + 90 * timedelta(minutes=1))).claimed == 0


async def test_a_post_deleted_on_its_platform_is_never_read_again(harness):
    user = harness.new_user()
    [channel] = await channels(harness, user, ["sandbox"])
    [post], published = await published_after(harness, user, [channel])
    platform = Measuring(harness.store, lambda r: PlatformError(
        Outcome.PERMANENT, "post_not_found", "the post no longer exists on sandbox", http_status=404))
    summary = await refresh(harness.store, platform, now=published + HOUR)
    assert (summary.stopped, summary.measured) == (1, 0)
    assert summary.failures == [{"target_id": str(post.targets[0].id), "platform": "sandbox", "outcome": "stopped",
                                 "error": "the post no longer exists on sandbox"}]
    [target] = (await harness.store.get_post_analytics(user, post.id)).targets
    assert (target.next_refresh_at, target.refresh_error) == (None, "the post no longer exists on sandbox")
    assert (await refresh(harness.store, platform, now=published + 10 * 24 * HOUR)).claimed == 0
    assert len(platform.reads) == 1
    events = [a.event for a in await harness.store.list_activity(user, post_id=post.id)]
    assert "target.analytics_stopped" in events


@pytest.mark.parametrize(("failure", "error"), [
    (PlatformError(Outcome.TRANSIENT, "server_error", "sandbox answered 503", http_status=503), "sandbox answered 503"),
    (TimeoutError(), "no answer within REQUEST_TIMEOUT"),
    (KeyError("likes"), "the sandbox adapter failed (KeyError)"),
])
async def test_a_failed_read_skips_one_slot_and_reads_again_at_the_next(harness, failure, error):
    user = harness.new_user()
    [channel] = await channels(harness, user, ["sandbox"])
    [post], published = await published_after(harness, user, [channel])

    def answer(request):
        raise failure

    summary = await refresh(harness.store, Measuring(harness.store, answer), now=published + HOUR)
    assert (summary.failed, summary.stopped) == (1, 0)
    [target] = (await harness.store.get_post_analytics(user, post.id)).targets
    assert (target.next_refresh_at, target.refresh_error) == (published + 2 * HOUR, error)
    again = await refresh(harness.store, Measuring(harness.store), now=published + 2 * HOUR)
    assert again.measured == 1
    [target] = (await harness.store.get_post_analytics(user, post.id)).targets
    assert target.refresh_error is None and len(target.series) == 1


async def test_a_refused_token_neither_refreshes_nor_asks_to_reconnect(harness):
    user = harness.new_user()
    refused, fine = await channels(harness, user, ["sandbox"] * 2)
    _, published = await published_after(harness, user, [refused, fine], texts=("a", "b"))
    platform = Measuring(harness.store, lambda r: PlatformError(Outcome.AUTH, "unauthorized", "token expired",
                                                                http_status=401)
                         if r.account_id == refused.account_id else Metrics(likes=1))
    now = published + HOUR
    summary = await refresh(harness.store, platform, now=now, limits=RefreshLimits(concurrency=1))
    assert platform.refreshes == 0
    assert accounts(platform).count(refused.account_id) == 1
    assert (summary.measured, summary.failed, summary.held) == (2, 1, 1)
    stored = await harness.store.get_channel(user, refused.id)
    assert (stored.status, stored.rate_limited_until) == ("active", None)
    [pause] = summary.paused
    assert pause["channel_id"] == str(refused.id)
    assert datetime.fromisoformat(pause["until"]) - now >= AUTH_PAUSE


async def test_a_platform_without_metrics_stops_its_targets(harness):
    user = harness.new_user()
    [channel] = await channels(harness, user, ["sandbox"])
    [post], published = await published_after(harness, user, [channel])
    class Unmeasured(SandboxPlatform):  # a platform that has no figures to give (Telegram, WhatsApp)
        features = frozenset({Feature.VERIFY})

    summary = await refresh(harness.store, Unmeasured(harness.store), now=published + HOUR)
    assert summary.stopped == 1
    [target] = (await harness.store.get_post_analytics(user, post.id)).targets
    assert (target.next_refresh_at, target.refresh_error) == (None, "sandbox does not report metrics to Herald")
    # nothing the owner did or needs to act on: their activity log stays quiet
    assert "target.analytics_stopped" not in [a.event for a in await harness.store.list_activity(user, post_id=post.id)]


async def test_reads_that_cannot_finish_inside_the_budget_are_not_started(harness):
    user = harness.new_user()
    [channel] = await channels(harness, user, ["sandbox"])
    _, published = await published_after(harness, user, [channel], texts=("a", "b", "c"))
    clock = iter([0.0] + [100.0] * 50)  # the run starts, then the budget is already spent
    platform = Measuring(harness.store)
    summary = await refresh(harness.store, platform, now=published + HOUR,
                            limits=RefreshLimits(budget_seconds=50, request_timeout=30), monotonic=lambda: next(clock))
    assert (summary.claimed, summary.not_started, summary.measured, summary.remaining_due) == (3, 3, 0, 3)
    assert platform.reads == []
    # the next run, with time to spare, reads them
    assert (await refresh(harness.store, platform, now=published + HOUR)).measured == 3


async def test_channels_paused_for_publishing_are_left_alone(harness):
    user = harness.new_user()
    [channel] = await channels(harness, user, ["sandbox"])
    _, published = await published_after(harness, user, [channel])
    await harness.store.record_results([], now=published, pauses=(
        RateLimitPause(until=published + 2 * HOUR, reason="429", channel_id=channel.id),))
    platform = Measuring(harness.store)
    assert (await refresh(harness.store, platform, now=published + HOUR)).claimed == 0
    assert (await refresh(harness.store, platform, now=published + 2 * HOUR + timedelta(seconds=1))).measured == 1


async def test_overlapping_refreshes_read_each_target_once(harness):
    user = harness.new_user()
    made = await channels(harness, user, ["sandbox"] * 4)
    _, published = await published_after(harness, user, made, texts=("a", "b"))
    platform = Measuring(harness.store, delay=0.01)
    stores = [harness.store, harness.another_store()]
    summaries = await asyncio.gather(*(refresh(s, platform, now=published + HOUR,
                                               limits=RefreshLimits(max_targets=5)) for s in stores))
    assert sum(s.measured for s in summaries) == 8
    assert len(platform.reads) == len({r.platform_post_id for r in platform.reads}) == 8


async def test_tokens_never_reach_the_logs(harness, caplog):
    user = harness.new_user()
    [channel] = await channels(harness, user, ["sandbox"])
    _, published = await published_after(harness, user, [channel])
    platform = Measuring(harness.store, lambda r: PlatformError(Outcome.AUTH, "unauthorized", "token refused"))
    with caplog.at_level(logging.DEBUG, logger="herald"):
        await refresh(harness.store, platform, now=published + HOUR)
    assert platform.reads[0].credentials == {"access_token": "token-0"}
    assert caplog.records and "token-0" not in caplog.text
    assert channel.credentials_encrypted is None or channel.credentials_encrypted not in caplog.text
