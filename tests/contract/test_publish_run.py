"""The publish run on each store: exactly once under overlap, budgeted, and honest about failures."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta, timezone
from uuid import UUID

import httpx
import pytest
from cryptography.fernet import Fernet

from services.domain.models import Content, Outcome, PostStatus, TargetStatus
from services.domain.transitions import ALLOWED_FROM
from services.errors import ConflictError
from services.platforms.base import Feature, PlatformError, Published, TokenSet
from services.platforms.sandbox import SandboxPlatform
from services.publishing.run import RunLimits, publish_due
from services.security.crypto import TokenCipher
from services.store.base import NewChannel, NewPost, PostChanges, PostFilter

CIPHER = TokenCipher([Fernet.generate_key().decode()])
DEFAULT_LIMITS = RunLimits()


class SlowSandbox(SandboxPlatform):
    """The sandbox with platform latency, so that overlapping runs really overlap."""

    def __init__(self, outbox, delay: float):
        super().__init__(outbox)
        self.delay = delay

    async def publish(self, request, http):
        await asyncio.sleep(self.delay)
        return await super().publish(request, http)


async def seed(harness, *, posts: int, channels: int = 1, metadata=None, due=None):
    store, user = harness.store, harness.new_user()
    now = datetime.now(timezone.utc)
    made = [
        await store.create_channel(user, NewChannel(platform="sandbox", account_id=f"acct-{i}", name=f"c{i}",
                                                    credentials_encrypted=CIPHER.encrypt({"access_token": "t"}),
                                                    metadata=metadata or {}))
        for i in range(channels)
    ]
    for i in range(posts):
        await store.create_post(user, NewPost(
            content=Content(text=f"post {i}"), channel_ids=tuple(c.id for c in made), status=PostStatus.SCHEDULED,
            scheduled_at=(due or now) - timedelta(seconds=posts - i)))
    return user, now


async def run(store, *, now, limits=DEFAULT_LIMITS, delay=0.0, monotonic=None):
    async with httpx.AsyncClient() as http:
        kwargs = {"monotonic": monotonic} if monotonic else {}
        return await publish_due(store, {"sandbox": SlowSandbox(store, delay)}, CIPHER, http, limits,
                                 trigger="manual", now=now, **kwargs)


async def test_overlapping_runs_never_publish_a_post_twice(harness):
    user, now = await seed(harness, posts=24, channels=2)
    stores = [harness.store, harness.another_store()]
    limits = RunLimits(max_posts=10, concurrency=4)
    summaries = await asyncio.gather(*(run(s, now=now, limits=limits, delay=0.01) for s in stores))
    summaries += await asyncio.gather(*(run(s, now=now, limits=limits, delay=0.01) for s in stores))

    claimed = [p["id"] for s in summaries for p in s.posts]
    assert len(claimed) == len(set(claimed)) == 24
    outbox = await harness.store.list_outbox(user, limit=200)
    per_target = Counter(e.target_id for e in outbox)
    assert len(per_target) == 48 and set(per_target.values()) == {1}
    page = await harness.store.list_posts(user, PostFilter(limit=100))
    assert {p.status for p in page.items} == {PostStatus.PUBLISHED}


async def test_calls_that_cannot_finish_inside_the_budget_are_not_started(harness):
    user, now = await seed(harness, posts=3)
    clock = iter([0.0] + [100.0] * 50)  # the run starts, then the budget is already spent
    summary = await run(harness.store, now=now, limits=RunLimits(budget_seconds=50, request_timeout=30),
                        monotonic=lambda: next(clock))
    assert summary.claimed == 3 and summary.not_started == 3 and summary.remaining_due == 3
    assert await harness.store.list_outbox(user) == []
    post = (await harness.store.list_posts(user, PostFilter())).items[0]
    assert post.status is PostStatus.SCHEDULED
    assert [(t.status, t.attempts) for t in post.targets] == [(TargetStatus.PENDING, 0)]
    assert await harness.store.list_runs(user, post.id) == []
    # The next run, with time to spare, publishes them.
    assert (await run(harness.store, now=now)).published == 3


async def test_transient_failures_retry_with_backoff_then_fail(harness):
    user, now = await seed(harness, posts=1, metadata={"fail": "transient"})
    limits = RunLimits(max_retries=2, retry_base_seconds=60)
    first = await run(harness.store, now=now, limits=limits)
    assert first.retry_scheduled == 1 and first.failed == 0
    [entry] = first.posts
    retry_at = datetime.fromisoformat(entry["next_attempt_at"])
    assert timedelta(seconds=48) <= retry_at - now <= timedelta(seconds=72)  # 60 s +-20%
    assert (await run(harness.store, now=now + timedelta(seconds=30), limits=limits)).claimed == 0  # not yet
    second = await run(harness.store, now=now + timedelta(seconds=80), limits=limits)
    assert second.retry_scheduled == 1
    third = await run(harness.store, now=now + timedelta(hours=1), limits=limits)
    assert third.failed == 1
    post = await harness.store.get_post(user, UUID(entry["id"]))
    assert post.status is PostStatus.FAILED and post.targets[0].attempts == 3
    assert [r.attempt for r in await harness.store.list_runs(user, post.id)] == [1, 2, 3]


async def test_a_lost_answer_is_held_for_review_not_resent(harness):
    user, now = await seed(harness, posts=1, metadata={"fail": "unknown"})
    summary = await run(harness.store, now=now)
    assert summary.needs_review == 1
    post = await harness.store.get_post(user, UUID(summary.posts[0]["id"]))
    assert post.status is PostStatus.NEEDS_REVIEW and post.targets[0].status is TargetStatus.UNKNOWN
    assert (await run(harness.store, now=now + timedelta(days=1))).claimed == 0


@pytest.mark.parametrize("posts", [0, 3])
async def test_every_run_leaves_a_heartbeat(harness, posts):
    _, now = await seed(harness, posts=posts)
    summary = await run(harness.store, now=now)
    last = await harness.store.last_cron_run()
    assert last.id == summary.run_id and last.claimed == posts and last.published == posts


class Rotating:
    """A platform with rotating refresh tokens: only the newest access token is accepted."""

    name = "rotating"
    required_credentials = ("access_token",)
    features = frozenset({Feature.REFRESH})

    def __init__(self, *, refusable: bool = True):
        self.refreshes = 0
        self.refusable = refusable
        self.seen: list[str] = []

    def validate(self, content, metadata=None):
        return []

    async def publish(self, request, http):
        self.seen.append(request.credentials["access_token"])
        if request.credentials["access_token"] != f"access-{self.refreshes}" or self.refreshes == 0:
            raise PlatformError(Outcome.AUTH, "token_expired", "token expired", http_status=401)
        return Published(platform_post_id=str(request.target_id))

    async def refresh(self, credentials, metadata, http):
        if not self.refusable:
            raise PlatformError(Outcome.AUTH, "invalid_grant", "refresh token revoked", http_status=400)
        self.refreshes += 1
        return TokenSet({"access_token": f"access-{self.refreshes}", "refresh_token": f"refresh-{self.refreshes}"},
                        expires_at=datetime.now(timezone.utc) + timedelta(hours=2))


async def seed_rotating(harness, *, posts: int, expires_at=None):
    user, now = harness.new_user(), datetime.now(timezone.utc)
    channel = await harness.store.create_channel(user, NewChannel(
        platform="rotating", account_id="acct", name="rot", token_expires_at=expires_at,
        credentials_encrypted=CIPHER.encrypt({"access_token": "access-0", "refresh_token": "refresh-0"})))
    for i in range(posts):
        await harness.store.create_post(user, NewPost(content=Content(text=f"r{i}"), channel_ids=(channel.id,),
                                                      status=PostStatus.SCHEDULED, scheduled_at=now - timedelta(seconds=i + 1)))
    return user, channel, now


async def stored_credentials(harness, user, channel, now):
    """Read back what the store holds for the channel, as the next run would."""
    await harness.store.create_post(user, NewPost(content=Content(text="probe"), channel_ids=(channel.id,),
                                                  status=PostStatus.SCHEDULED, scheduled_at=now))
    claim = await harness.store.claim_due_posts(now=now + timedelta(seconds=1), limit=10, lease_seconds=60)
    return CIPHER.decrypt(claim.posts[-1].channels[channel.id].credentials_encrypted)


async def test_a_refused_token_is_refreshed_once_saved_and_used(harness):
    user, channel, now = await seed_rotating(harness, posts=2)
    platform = Rotating()
    async with httpx.AsyncClient() as http:
        summary = await publish_due(harness.store, {"rotating": platform}, CIPHER, http, RunLimits(),
                                    trigger="manual", now=now)
    assert summary.published == 2 and platform.refreshes == 1
    assert platform.seen == ["access-0", "access-1", "access-1"]  # the second post used the new token at once
    assert await stored_credentials(harness, user, channel, now) == {"access_token": "access-1",
                                                                      "refresh_token": "refresh-1"}
    assert (await harness.store.get_channel(user, channel.id)).token_expires_at is not None


async def test_a_token_near_expiry_is_refreshed_before_publishing(harness):
    user, channel, now = await seed_rotating(harness, posts=1, expires_at=datetime.now(timezone.utc) + timedelta(minutes=1))
    platform = Rotating()
    async with httpx.AsyncClient() as http:
        summary = await publish_due(harness.store, {"rotating": platform}, CIPHER, http, RunLimits(),
                                    trigger="manual", now=now)
    assert summary.published == 1 and platform.seen == ["access-1"]


async def test_a_refresh_that_fails_asks_the_user_to_reconnect(harness):
    user, channel, now = await seed_rotating(harness, posts=1)
    async with httpx.AsyncClient() as http:
        summary = await publish_due(harness.store, {"rotating": Rotating(refusable=False)}, CIPHER, http, RunLimits(),
                                    trigger="manual", now=now)
    assert summary.failed == 1
    [post] = (await harness.store.list_posts(user, PostFilter())).items
    assert post.status is PostStatus.FAILED and "refresh" in post.targets[0].error
    runs = await harness.store.list_runs(user, post.id)
    assert [r.error_code for r in runs] == ["reconnect_required"]
    assert (await harness.store.get_channel(user, channel.id)).status == "needs_reconnect"


class Stepwise:
    """A platform whose publish has steps that must not be repeated (like WhatsApp's recipients):
    each attempt does the steps not yet done, fails transiently after the first, and says how far it got."""

    name = "stepwise"
    required_credentials = ("access_token",)
    features: frozenset = frozenset()

    def __init__(self):
        self.done: list[str] = []
        self.resumes: list[dict | None] = []

    def validate(self, content, metadata=None):
        return []

    async def publish(self, request, http):
        self.resumes.append(request.resume)
        done = list((request.resume or {}).get("done", []))
        for step in ("a", "b", "c"):
            if step in done:
                continue
            self.done.append(step)
            done.append(step)
            if len(self.resumes) == 1:
                raise PlatformError(Outcome.TRANSIENT, "http_500", "server error", http_status=500, details={"done": done})
        return Published(platform_post_id="+".join(done))


async def test_a_failed_attempt_resumes_where_it_stopped_and_repeats_no_step(harness):
    user, now = harness.new_user(), datetime.now(timezone.utc)
    channel = await harness.store.create_channel(user, NewChannel(
        platform="stepwise", account_id="acct", name="steps", credentials_encrypted=CIPHER.encrypt({"access_token": "t"})))
    post = await harness.store.create_post(user, NewPost(content=Content(text="x"), channel_ids=(channel.id,),
                                                         status=PostStatus.SCHEDULED, scheduled_at=now))
    platform = Stepwise()
    limits = RunLimits(retry_base_seconds=60)
    async with httpx.AsyncClient() as http:
        first = await publish_due(harness.store, {"stepwise": platform}, CIPHER, http, limits, trigger="manual", now=now)
        assert first.retry_scheduled == 1
        later = now + timedelta(minutes=5)
        second = await publish_due(harness.store, {"stepwise": platform}, CIPHER, http, limits, trigger="manual", now=later)
    assert second.published == 1
    assert platform.resumes == [None, {"done": ["a"]}]
    assert platform.done == ["a", "b", "c"]  # step a was not done again
    published = await harness.store.get_post(user, post.id)
    assert published.status is PostStatus.PUBLISHED and published.targets[0].platform_post_id == "a+b+c"


class Scripted:
    """A platform that fails as scripted, attempt after attempt, then publishes."""

    name = "scripted"
    required_credentials = ("access_token",)
    features: frozenset = frozenset()

    def __init__(self, *outcomes: Outcome):
        self.outcomes = list(outcomes)

    def validate(self, content, metadata=None):
        return []

    async def publish(self, request, http):
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            raise PlatformError(outcome, outcome.value, f"scripted {outcome.value}", retry_after_seconds=60)
        return Published(platform_post_id="live")


async def test_rate_limits_spend_no_retry(harness):
    user, now = harness.new_user(), datetime.now(timezone.utc)
    channel = await harness.store.create_channel(user, NewChannel(
        platform="scripted", account_id="acct", name="s", credentials_encrypted=CIPHER.encrypt({"access_token": "t"})))
    post = await harness.store.create_post(user, NewPost(content=Content(text="x"), channel_ids=(channel.id,),
                                                         status=PostStatus.SCHEDULED, scheduled_at=now))
    platform = Scripted(Outcome.RATE_LIMITED, Outcome.RATE_LIMITED, Outcome.TRANSIENT)
    limits = RunLimits(max_retries=1, retry_base_seconds=60)
    async with httpx.AsyncClient() as http:
        for hour in range(4):
            await publish_due(harness.store, {"scripted": platform}, CIPHER, http, limits, trigger="manual",
                              now=now + timedelta(hours=hour))
    done = await harness.store.get_post(user, post.id)
    # two rate limits and a transient failure, yet MAX_RETRY_COUNT=1 still had its retry
    assert done.status is PostStatus.PUBLISHED and done.targets[0].attempts == 4


async def test_a_post_live_on_one_channel_cannot_be_edited_moved_or_deleted(harness):
    """Live on one channel, waiting to retry the other: ``scheduled``, yet already public."""
    user, now = harness.new_user(), datetime.now(timezone.utc)
    channels = [await harness.store.create_channel(user, NewChannel(
        platform="sandbox", account_id=f"acct-{i}", name=f"c{i}", metadata=metadata,
        credentials_encrypted=CIPHER.encrypt({"access_token": "t"}))) for i, metadata in enumerate([{}, {"fail": "transient"}])]
    post = await harness.store.create_post(user, NewPost(content=Content(text="x"), channel_ids=tuple(c.id for c in channels),
                                                         status=PostStatus.SCHEDULED, scheduled_at=now))
    await run(harness.store, now=now)
    live = await harness.store.get_post(user, post.id)
    assert live.status is PostStatus.SCHEDULED and {t.status for t in live.targets} == {TargetStatus.PUBLISHED,
                                                                                         TargetStatus.PENDING}
    for action, changes in [("edit", PostChanges(content=Content(text="changed"))),
                            ("schedule", PostChanges(scheduled_at=now + timedelta(days=1))),
                            ("unschedule", PostChanges(status=PostStatus.DRAFT))]:
        with pytest.raises(ConflictError, match="already live"):
            await harness.store.update_post(user, post.id, changes, allowed_from=ALLOWED_FROM[action], action=action)
    with pytest.raises(ConflictError, match="already live"):
        await harness.store.delete_post(user, post.id, allowed_from=ALLOWED_FROM["delete"])
    assert await harness.store.get_post(user, post.id) == live


class Remembering(Scripted):
    """Scripted, and notes the first-attempt time each attempt is given (Bluesky's record keys)."""

    def __init__(self, *outcomes: Outcome):
        super().__init__(*outcomes)
        self.first_attempts: list[datetime | None] = []

    async def publish(self, request, http):
        self.first_attempts.append(request.first_attempt_at)
        return await super().publish(request, http)


async def test_every_attempt_of_a_target_carries_the_time_of_its_first(harness):
    user, now = harness.new_user(), datetime.now(timezone.utc).replace(microsecond=0)
    channel = await harness.store.create_channel(user, NewChannel(
        platform="scripted", account_id="acct", name="s", credentials_encrypted=CIPHER.encrypt({"access_token": "t"})))
    post = await harness.store.create_post(user, NewPost(content=Content(text="x"), channel_ids=(channel.id,),
                                                         status=PostStatus.SCHEDULED, scheduled_at=now))
    platform = Remembering(Outcome.TRANSIENT)
    limits = RunLimits(retry_base_seconds=60)
    async with httpx.AsyncClient() as http:
        for at in (now, now + timedelta(minutes=5)):
            await publish_due(harness.store, {"scripted": platform}, CIPHER, http, limits, trigger="manual", now=at)
    assert platform.first_attempts == [now, now]  # the retry is told when the first attempt was
    stored = await harness.store.get_post(user, post.id)
    assert stored.status is PostStatus.PUBLISHED and stored.targets[0].first_attempt_at == now
