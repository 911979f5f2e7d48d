"""Continuous dispatch, rate-limit pauses, lookahead and publish lag, on each store transport.

No test here measures speed (``make bench`` does): each asserts what a user sees, with events
instead of clocks where an order matters, and an injected run clock where a wait is computed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from services.domain.models import Content, Outcome, PostStatus, TargetStatus, User
from services.platforms.base import APP, PlatformError
from services.platforms.sandbox import SandboxPlatform
from services.publishing.run import RunLimits, publish_due
from services.store.base import NewChannel, NewPost
from tests.contract.test_publish_run import CIPHER

#: a deadlock guard, not a speed target: a run that waits on the wrong call never ends
GUARD = 60
DEFAULT_LIMITS = RunLimits()


class Scripted(SandboxPlatform):
    """The sandbox with a script per account: ``hold`` waits for an event, ``limit`` answers 429."""

    def __init__(self, outbox, *, hold: dict[str, asyncio.Event] | None = None,
                 limit: dict[str, PlatformError] | None = None, delay: float = 0.0):
        super().__init__(outbox)
        self.hold, self.limit, self.delay = hold or {}, limit or {}, delay
        self.calls: list[str] = []

    async def publish(self, request, http):
        self.calls.append(request.account_id)
        if request.account_id in self.hold:
            await self.hold[request.account_id].wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        if request.account_id in self.limit:
            raise self.limit[request.account_id]
        return await super().publish(request, http)


async def channels(harness, user: User, count: int, *, prefix="acct"):
    return [await harness.store.create_channel(user, NewChannel(
        platform="sandbox", account_id=f"{prefix}-{i}", name=f"{prefix} {i}",
        credentials_encrypted=CIPHER.encrypt({"access_token": "t"}))) for i in range(count)]


async def post_to(harness, user, targets, *, at, text="hello"):
    return await harness.store.create_post(user, NewPost(
        content=Content(text=text), channel_ids=tuple(c.id for c in targets), status=PostStatus.SCHEDULED,
        scheduled_at=at))


class CountingStore:
    """The store, counting its calls by method (the bench's round trips)."""

    def __init__(self, store):
        self._store, self.calls = store, {}

    def __getattr__(self, name):
        method = getattr(self._store, name)

        async def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return await method(*args, **kwargs)

        return counted


async def run(store, platform, *, now, limits=DEFAULT_LIMITS, monotonic=None):
    async with httpx.AsyncClient() as http:
        kwargs = {"monotonic": monotonic} if monotonic else {}
        return await asyncio.wait_for(publish_due(store, {"sandbox": platform}, CIPHER, http, limits,
                                                  trigger="manual", now=now, **kwargs), GUARD)


async def test_a_slow_account_holds_only_its_own_channel(harness):
    # Two slots; the slow account's call is answered only after every other account's call has
    # finished. In waves the run would wait on it forever; continuously, the others flow past it.
    user = harness.new_user()
    slow, *fast = await channels(harness, user, 6)
    now = datetime.now(timezone.utc)
    await post_to(harness, user, [slow], at=now - timedelta(minutes=2))  # due first
    for channel in fast:
        await post_to(harness, user, [channel], at=now - timedelta(minutes=1))
    release = asyncio.Event()
    platform = Scripted(harness.store, hold={slow.account_id: release})

    async def release_when_the_others_are_out():
        while len(await harness.store.list_outbox(user, limit=50)) < len(fast):
            await asyncio.sleep(0.01)
        release.set()

    summary, _ = await asyncio.gather(run(harness.store, platform, now=now, limits=RunLimits(concurrency=2)),
                                      asyncio.wait_for(release_when_the_others_are_out(), GUARD))
    assert summary.published == 6 and summary.not_started == 0
    assert platform.calls[0] == slow.account_id  # due first, started first, finished last


async def test_one_call_at_a_time_per_channel_in_due_order(harness):
    user = harness.new_user()
    [channel] = await channels(harness, user, 1)
    now = datetime.now(timezone.utc)
    made = [await post_to(harness, user, [channel], at=now - timedelta(seconds=10 - i), text=f"#{i}") for i in range(5)]
    in_flight, most = 0, 0

    class Counting(Scripted):
        async def publish(self, request, http):
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.01)
            try:
                return await super().publish(request, http)
            finally:
                in_flight -= 1

    await run(harness.store, Counting(harness.store), now=now, limits=RunLimits(concurrency=8))
    outbox = sorted(await harness.store.list_outbox(user, limit=10), key=lambda e: e.published_at)
    assert most == 1
    assert [e.text for e in outbox] == [p.content.text for p in made]


async def test_accounts_known_to_be_slow_start_first(harness):
    # One run teaches Herald how long each account takes; the next starts the slow one first
    # even though its post is due last, so its long call does not end the run late.
    user = harness.new_user()
    slow, *fast = await channels(harness, user, 4)
    now = datetime.now(timezone.utc)
    for i, channel in enumerate([*fast, slow]):
        await post_to(harness, user, [channel], at=now - timedelta(seconds=60 - i))

    class Timed(Scripted):
        async def publish(self, request, http):
            if request.account_id == slow.account_id:
                await asyncio.sleep(0.3)
            return await super().publish(request, http)

    first = Timed(harness.store)
    await run(harness.store, first, now=now, limits=RunLimits(concurrency=1))
    assert first.calls[-1] == slow.account_id  # nothing known yet: due order
    assert (await harness.store.get_channel(user, slow.id)).typical_call_ms >= 300
    for i, channel in enumerate([*fast, slow]):
        await post_to(harness, user, [channel], at=now + timedelta(seconds=i))
    second = Timed(harness.store)
    await run(harness.store, second, now=now + timedelta(minutes=1), limits=RunLimits(concurrency=1))
    assert second.calls[0] == slow.account_id
    assert second.calls[1:] == [c.account_id for c in fast]  # the rest in due order


async def test_marks_are_batched_so_round_trips_stay_near_targets_over_concurrency(harness):
    user = harness.new_user()
    made = await channels(harness, user, 40)
    now = datetime.now(timezone.utc)
    for i in range(0, 40, 2):
        await post_to(harness, user, made[i:i + 2], at=now - timedelta(seconds=40 - i))
    store = CountingStore(harness.store)
    summary = await run(store, Scripted(harness.store, delay=0.005), now=now, limits=RunLimits(concurrency=8))
    assert summary.published == 20
    # 40 targets, 8 in flight: each mark covers at least half the slots, so at most 40 / 4 of them
    assert store.calls["mark_sending"] <= 10
    assert (store.calls["claim_due_posts"], store.calls["record_results"]) == (1, 1)


async def test_a_rate_limit_pauses_the_account_and_spends_no_retry(harness):
    user = harness.new_user()
    limited, other = await channels(harness, user, 2)
    now = datetime.now(timezone.utc)
    posts = [await post_to(harness, user, [limited, other], at=now - timedelta(seconds=30 - i)) for i in range(3)]
    platform = Scripted(harness.store, limit={limited.account_id: PlatformError(
        Outcome.RATE_LIMITED, "rate_limited", "too many requests", http_status=429, retry_after_seconds=600)})
    elapsed = iter([0.0] + [12.0] * 10_000)  # the 429 arrives 12 s into the run
    summary = await run(harness.store, platform, now=now, monotonic=lambda: next(elapsed))

    assert platform.calls.count(limited.account_id) == 1  # the account's other targets were not tried
    assert summary.published == 0 and summary.held == 2 and summary.not_started == 0
    until = now + timedelta(seconds=12 + 600)  # counted from the answer, not from the run's start
    channel = await harness.store.get_channel(user, limited.id)
    assert channel.rate_limited_until == until
    for post in posts:
        stored = await harness.store.get_post(user, post.id)
        mine = next(t for t in stored.targets if t.channel_id == limited.id)
        theirs = next(t for t in stored.targets if t.channel_id == other.id)
        assert theirs.status is TargetStatus.PUBLISHED
        assert mine.status is TargetStatus.PENDING and stored.next_attempt_at == until
        assert stored.status is PostStatus.SCHEDULED
    first = await harness.store.get_post(user, posts[0].id)
    first_target = next(t for t in first.targets if t.channel_id == limited.id)
    assert (first_target.attempts, first_target.rate_limited, first_target.error_code) == (1, 1, "rate_limited")
    untouched = next(t for t in (await harness.store.get_post(user, posts[2].id)).targets if t.channel_id == limited.id)
    assert (untouched.attempts, untouched.error_code) == (0, None)
    assert await harness.store.list_runs(user, posts[2].id) != []  # the other channel's attempt only
    assert all(r.target_id != untouched.id for r in await harness.store.list_runs(user, posts[2].id))

    # A new post for the paused account, due now, waits too: later runs leave the channel alone.
    await post_to(harness, user, [limited], at=now)
    later = await run(harness.store, platform, now=now + timedelta(minutes=5))
    assert platform.calls.count(limited.account_id) == 1 and later.held == 1
    # After the pause, everything goes out.
    platform.limit.clear()
    done = await run(harness.store, platform, now=until + timedelta(seconds=1))
    assert done.published == 4
    assert platform.calls.count(limited.account_id) == 5


async def test_an_app_wide_limit_pauses_every_channel_of_the_platform(harness):
    user, someone = harness.new_user(), harness.new_user()
    first, second = await channels(harness, user, 2)
    [theirs] = await channels(harness, someone, 1, prefix="theirs")
    now = datetime.now(timezone.utc)
    await post_to(harness, user, [first], at=now - timedelta(seconds=20))
    await post_to(harness, user, [second], at=now - timedelta(seconds=10))
    await post_to(harness, someone, [theirs], at=now - timedelta(seconds=5))
    platform = Scripted(harness.store, limit={first.account_id: PlatformError(
        Outcome.RATE_LIMITED, "app_limit", "the app's daily cap", http_status=429, retry_after_seconds=3600,
        limit_scope=APP)})
    summary = await run(harness.store, platform, now=now, limits=RunLimits(concurrency=1))
    assert platform.calls == [first.account_id]
    assert summary.held == 2
    [pause] = summary.paused
    assert (pause["platform"], pause["reason"]) == ("sandbox", "the app's daily cap")
    # The pause is kept in the store: a later run (another instance) holds a new post of the
    # platform, on any account, until it ends.
    [newcomer] = await channels(harness, someone, 1, prefix="newcomer")
    await post_to(harness, someone, [newcomer], at=now + timedelta(minutes=5))
    later = await run(harness.store, platform, now=now + timedelta(minutes=10))
    assert platform.calls == [first.account_id] and (later.claimed, later.held, later.published) == (1, 1, 0)
    platform.limit.clear()
    after = await run(harness.store, platform, now=now + timedelta(hours=2))
    assert after.published == 4


async def test_lookahead_claims_a_post_due_soon_and_sends_it_at_its_time(harness):
    user = harness.new_user()
    [channel] = await channels(harness, user, 1)
    now = datetime.now(timezone.utc)
    due = now + timedelta(seconds=1.5)
    post = await post_to(harness, user, [channel], at=due)
    assert (await run(harness.store, Scripted(harness.store), now=now)).claimed == 0  # not due without lookahead
    summary = await run(harness.store, Scripted(harness.store), now=now,
                        limits=RunLimits(lookahead_seconds=5, budget_seconds=40, request_timeout=30))
    assert summary.published == 1
    [entry] = await harness.store.list_outbox(user)
    assert entry.published_at >= due  # never before its time
    stored = await harness.store.get_post(user, post.id)
    assert 0 <= stored.targets[0].publish_lag_ms < 60_000
    assert summary.publish_lag["count"] == 1 and summary.publish_lag["p50_ms"] == stored.targets[0].publish_lag_ms


async def test_a_lookahead_never_takes_a_live_runs_lease_early(harness):
    user = harness.new_user()
    [channel] = await channels(harness, user, 1)
    now = datetime.now(timezone.utc)
    post = await post_to(harness, user, [channel], at=now - timedelta(seconds=1))
    held = await harness.store.claim_due_posts(now=now, limit=5, lease_seconds=60)
    assert [c.post.id for c in held.posts] == [post.id]
    # A lease that ends within the lookahead is still live: only `now` judges it.
    again = await harness.store.claim_due_posts(now=now, limit=5, lease_seconds=60, due_by=now + timedelta(seconds=120))
    assert again.posts == () and again.recovered == ()


@pytest.mark.parametrize(("failure", "code"), [
    ("transient", "transient"), ("permanent", "permanent"), ("auth", "reconnect_required"), ("unknown", "unknown"),
])
async def test_each_failed_target_says_what_kind_of_failure_it_is(harness, failure, code):
    user = harness.new_user()
    [channel] = await channels(harness, user, 1)
    now = datetime.now(timezone.utc)
    post = await post_to(harness, user, [channel], at=now - timedelta(seconds=1))
    platform = Scripted(harness.store, limit={channel.account_id: PlatformError(
        Outcome(failure), f"x_{failure}", f"it said {failure}")})
    await run(harness.store, platform, now=now)
    target = (await harness.store.get_post(user, post.id)).targets[0]
    assert target.error_code == code and target.error == f"it said {failure}"
    runs = await harness.store.list_runs(user, post.id)
    assert runs[-1].error_code == f"x_{failure}"  # the attempt keeps the platform's own code
