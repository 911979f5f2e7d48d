"""The Store contract: every store must behave exactly like this (run on SQLite and Supabase)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from services.domain.models import (
    Content,
    CronRun,
    Media,
    OutboxEntry,
    Outcome,
    PostResult,
    PostStatus,
    TargetResult,
    TargetStatus,
    User,
)
from services.domain.transitions import ALLOWED_FROM
from services.errors import ConflictError, NotFoundError, ValidationError
from services.store.base import NewChannel, NewPost, PostChanges, PostFilter

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)


async def make_channel(store, user, platform="sandbox", account="acct", name="Demo", metadata=None):
    return await store.create_channel(
        user,
        NewChannel(platform=platform, account_id=account, name=name, credentials_encrypted="gAAAA-secret",
                   metadata=metadata or {"k": "v"}),
    )


async def make_post(store, user, channels, *, at=NOW - timedelta(minutes=1), text="hello", status=PostStatus.SCHEDULED):
    return await store.create_post(
        user,
        NewPost(content=Content(text=text, media=(Media("image", "https://x.test/a.png", "alt"),)),
                channel_ids=tuple(c.id for c in channels), status=status,
                scheduled_at=at if status is PostStatus.SCHEDULED else None, timezone="Europe/Berlin"),
    )


def published(claimed, *, now=NOW):
    """A PostResult publishing every claimed target."""
    post = claimed.post
    return PostResult(
        post_id=post.id, lease_id=claimed.lease_id, status=PostStatus.PUBLISHED, error=None,
        targets=tuple(
            TargetResult(target_id=t.id, outcome=Outcome.PUBLISHED, status=TargetStatus.PUBLISHED, attempt=t.attempts + 1,
                         started_at=now, finished_at=now + timedelta(milliseconds=120),
                         platform_post_id=f"p-{t.id}", platform_post_url=f"https://sandbox.test/{t.id}", http_status=200)
            for t in post.targets if t.status is TargetStatus.PENDING
        ),
    )


class TestChannels:
    async def test_created_channel_is_listed_without_credentials(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        assert channel.platform == "sandbox" and channel.metadata == {"k": "v"} and channel.status == "active"
        assert channel.credentials_encrypted is None
        listed = await harness.store.list_channels(user)
        assert [c.id for c in listed] == [channel.id]
        assert (await harness.store.get_channel(user, channel.id)).name == "Demo"

    async def test_other_users_channel_is_not_found(self, harness):
        owner, other = harness.new_user(), harness.new_user()
        channel = await make_channel(harness.store, owner)
        assert await harness.store.list_channels(other) == []
        with pytest.raises(NotFoundError):
            await harness.store.get_channel(other, channel.id)
        with pytest.raises(NotFoundError):
            await harness.store.delete_channel(other, channel.id, force=True)

    async def test_connecting_the_same_account_twice_conflicts(self, harness):
        user = harness.new_user()
        await make_channel(harness.store, user)
        with pytest.raises(ConflictError):
            await make_channel(harness.store, user)

    async def test_delete_refuses_while_a_scheduled_post_targets_it(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        post = await make_post(harness.store, user, [channel], at=NOW + timedelta(days=1))
        with pytest.raises(ConflictError):
            await harness.store.delete_channel(user, channel.id, force=False)
        assert (await harness.store.get_post(user, post.id)).status is PostStatus.SCHEDULED

    async def test_forced_delete_cancels_targets_and_orphaned_posts(self, harness):
        user = harness.new_user()
        doomed, kept = await make_channel(harness.store, user), await make_channel(harness.store, user, account="b")
        lone = await make_post(harness.store, user, [doomed], at=NOW + timedelta(days=1))
        shared = await make_post(harness.store, user, [doomed, kept], at=NOW + timedelta(days=1))
        await harness.store.delete_channel(user, doomed.id, force=True)

        assert [c.id for c in await harness.store.list_channels(user)] == [kept.id]
        lone_after = await harness.store.get_post(user, lone.id)
        assert lone_after.status is PostStatus.CANCELLED
        assert [t.status for t in lone_after.targets] == [TargetStatus.CANCELLED]
        shared_after = await harness.store.get_post(user, shared.id)
        assert shared_after.status is PostStatus.SCHEDULED
        assert sorted(t.status.value for t in shared_after.targets) == ["cancelled", "pending"]
        # A cancelled target is never claimed.
        claim = await harness.store.claim_due_posts(now=NOW + timedelta(days=2), limit=10, lease_seconds=60)
        assert [c.post.id for c in claim.posts] == [shared.id]
        assert [t.channel_id for t in claim.posts[0].post.targets if t.status is TargetStatus.PENDING] == [kept.id]


class TestPosts:
    async def test_create_stores_post_and_one_pending_target_per_channel(self, harness):
        user = harness.new_user()
        a, b = await make_channel(harness.store, user, account="a"), await make_channel(harness.store, user, account="b")
        post = await make_post(harness.store, user, [a, b], at=NOW)
        assert post.status is PostStatus.SCHEDULED and post.scheduled_at == NOW and post.timezone == "Europe/Berlin"
        assert post.content.text == "hello" and post.content.media[0].alt == "alt"
        assert {t.channel_id for t in post.targets} == {a.id, b.id}
        assert all(t.status is TargetStatus.PENDING and t.attempts == 0 for t in post.targets)
        assert (await harness.store.get_post(user, post.id)) == post

    async def test_foreign_channel_is_rejected_and_nothing_is_written(self, harness):
        owner, other = harness.new_user(), harness.new_user()
        mine, theirs = await make_channel(harness.store, owner), await make_channel(harness.store, other)
        with pytest.raises(ValidationError) as err:
            await make_post(harness.store, owner, [mine, theirs])
        assert err.value.field == "channel_ids"
        with pytest.raises(ValidationError):
            await make_post(harness.store, owner, [mine, type(mine)(**{**mine.__dict__, "id": uuid.uuid4()})])
        assert (await harness.store.list_posts(owner, PostFilter())).total == 0

    async def test_other_users_post_is_not_found(self, harness):
        owner, other = harness.new_user(), harness.new_user()
        post = await make_post(harness.store, owner, [await make_channel(harness.store, owner)])
        with pytest.raises(NotFoundError):
            await harness.store.get_post(other, post.id)
        with pytest.raises(NotFoundError):
            await harness.store.update_post(other, post.id, PostChanges(content=Content(text="x")),
                                            allowed_from=ALLOWED_FROM["edit"], action="edit")
        with pytest.raises(NotFoundError):
            await harness.store.delete_post(other, post.id, allowed_from=ALLOWED_FROM["delete"])
        with pytest.raises(NotFoundError):
            await harness.store.list_runs(other, post.id)
        assert (await harness.store.get_post(owner, post.id)).content.text == "hello"

    async def test_list_filters_paginates_and_counts(self, harness):
        user, other = harness.new_user(), harness.new_user()
        sandbox = await make_channel(harness.store, user)
        hook = await make_channel(harness.store, user, platform="webhook", account="hook")
        await make_post(harness.store, other, [await make_channel(harness.store, other)])
        early = await make_post(harness.store, user, [sandbox], at=NOW + timedelta(hours=1))
        late = await make_post(harness.store, user, [hook], at=NOW + timedelta(hours=5))
        draft = await make_post(harness.store, user, [sandbox, hook], status=PostStatus.DRAFT)

        async def ids(**kw):
            page = await harness.store.list_posts(user, PostFilter(**kw))
            return page.total, [p.id for p in page.items]

        assert await ids() == (3, [draft.id, late.id, early.id])
        assert await ids(limit=1, offset=1) == (3, [late.id])
        assert await ids(statuses=(PostStatus.DRAFT,)) == (1, [draft.id])
        assert await ids(platform="webhook") == (2, [draft.id, late.id])
        assert await ids(channel_id=sandbox.id) == (2, [draft.id, early.id])
        assert await ids(scheduled_from=NOW + timedelta(hours=2)) == (1, [late.id])
        assert await ids(scheduled_to=NOW + timedelta(hours=2)) == (1, [early.id])
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        assert await ids(updated_since=later) == (0, [])

    async def test_update_applies_changes_and_replaces_targets(self, harness):
        user = harness.new_user()
        a, b = await make_channel(harness.store, user, account="a"), await make_channel(harness.store, user, account="b")
        post = await make_post(harness.store, user, [a], status=PostStatus.DRAFT)
        updated = await harness.store.update_post(
            user, post.id,
            PostChanges(content=Content(text="new"), channel_ids=(b.id,), scheduled_at=NOW, timezone="Asia/Tokyo",
                        rrule="FREQ=DAILY", status=PostStatus.SCHEDULED),
            allowed_from=ALLOWED_FROM["schedule"], action="schedule",
        )
        assert updated.content.text == "new" and updated.timezone == "Asia/Tokyo" and updated.rrule == "FREQ=DAILY"
        assert updated.status is PostStatus.SCHEDULED and updated.scheduled_at == NOW
        assert [t.channel_id for t in updated.targets] == [b.id]
        assert updated.updated_at >= post.updated_at

    async def test_update_of_a_claimed_post_conflicts_and_changes_nothing(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
        await harness.store.claim_due_posts(now=NOW, limit=10, lease_seconds=60)
        with pytest.raises(ConflictError) as err:
            await harness.store.update_post(user, post.id, PostChanges(content=Content(text="late edit")),
                                            allowed_from=ALLOWED_FROM["edit"], action="edit")
        assert "being published" in err.value.message
        with pytest.raises(ConflictError):
            await harness.store.delete_post(user, post.id, allowed_from=ALLOWED_FROM["delete"])
        after = await harness.store.get_post(user, post.id)
        assert after.content.text == "hello" and after.status is PostStatus.PUBLISHING

    async def test_delete_removes_the_post(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
        await harness.store.delete_post(user, post.id, allowed_from=ALLOWED_FROM["delete"])
        with pytest.raises(NotFoundError):
            await harness.store.get_post(user, post.id)

    async def test_statistics_count_by_status_and_platform(self, harness):
        user = harness.new_user()
        sandbox = await make_channel(harness.store, user)
        hook = await make_channel(harness.store, user, platform="webhook", account="h")
        await make_post(harness.store, user, [sandbox, hook], status=PostStatus.DRAFT)
        await make_post(harness.store, user, [sandbox], at=NOW + timedelta(days=1))
        await make_post(harness.store, harness.new_user(), [])  # someone else's
        stats = await harness.store.post_statistics(user, lag_since=NOW - timedelta(days=1))
        assert stats.total == 2
        assert stats.by_status == {"draft": 1, "scheduled": 1}
        assert stats.by_platform == {"sandbox": {"targets": 2, "pending": 2}, "webhook": {"targets": 1, "pending": 1}}
        assert (stats.publish_lag.count, stats.publish_lag.p50_ms) == (0, None)

    async def test_statistics_give_the_publish_lag_percentiles_over_the_window(self, harness):
        user, other = harness.new_user(), harness.new_user()
        channel = await make_channel(harness.store, user)
        for _ in range(5):
            await make_post(harness.store, user, [channel])
        await make_post(harness.store, other, [await make_channel(harness.store, other)])
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=10, lease_seconds=30)).posts
        lags = iter([100, 200, 300, 400, 10_000])
        results = []
        for c in claimed:
            result = published(c)
            lag = next(lags) if c.post.user_id == user.id else 99_999  # someone else's lag is not the user's
            results.append(replace(result, targets=tuple(replace(t, lag_ms=lag) for t in result.targets)))
        await harness.store.record_results(results, now=NOW)
        stats = await harness.store.post_statistics(user, lag_since=NOW - timedelta(hours=1))
        lag = stats.publish_lag
        assert (lag.count, lag.p50_ms, lag.max_ms) == (5, 300, 10_000)
        assert lag.p95_ms == 8_080  # percentile_cont: 400 + 0.8 * (10_000 - 400)
        assert (await harness.store.post_statistics(user, lag_since=NOW + timedelta(hours=1))).publish_lag.count == 0
        mine = next(c.post.id for c in claimed if c.post.user_id == user.id)
        post = await harness.store.get_post(user, mine)
        assert post.targets[0].publish_lag_ms == 100 and post.targets[0].error_code is None

    async def test_activity_records_transitions_for_the_owner_only(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)], status=PostStatus.DRAFT)
        await harness.store.update_post(user, post.id, PostChanges(status=PostStatus.SCHEDULED, scheduled_at=NOW),
                                        allowed_from=ALLOWED_FROM["schedule"], action="schedule")
        events = [a.event for a in await harness.store.list_activity(user, post_id=post.id)]
        assert events == ["post.schedule", "post.created"]
        assert await harness.store.list_activity(harness.new_user()) == []


class TestPublishRun:
    async def test_claim_takes_due_posts_oldest_first_up_to_the_limit(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        older = await make_post(harness.store, user, [channel], at=NOW - timedelta(minutes=10))
        newer = await make_post(harness.store, user, [channel], at=NOW - timedelta(minutes=5))
        await make_post(harness.store, user, [channel], at=NOW - timedelta(minutes=1))
        await make_post(harness.store, user, [channel], at=NOW + timedelta(minutes=1))  # not due
        await make_post(harness.store, user, [channel], status=PostStatus.DRAFT)  # never due

        claim = await harness.store.claim_due_posts(now=NOW, limit=2, lease_seconds=90)
        assert [c.post.id for c in claim.posts] == [older.id, newer.id]
        first = claim.posts[0]
        assert first.post.status is PostStatus.PUBLISHING and first.post.attempts == 1
        assert [t.status for t in first.post.targets] == [TargetStatus.PENDING]  # until mark_sending
        assert first.channels[channel.id].credentials_encrypted == "gAAAA-secret"
        assert await harness.store.count_due(now=NOW) == 1
        again = await harness.store.claim_due_posts(now=NOW, limit=10, lease_seconds=90)
        assert len(again.posts) == 1 and again.posts[0].post.id not in {older.id, newer.id}

    async def test_overlapping_claims_never_return_the_same_post(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        for i in range(30):
            await make_post(harness.store, user, [channel], at=NOW - timedelta(seconds=i))
        stores = [harness.another_store() for _ in range(4)]
        claims = await asyncio.gather(*(s.claim_due_posts(now=NOW, limit=10, lease_seconds=60) for s in stores))
        ids = [c.post.id for claim in claims for c in claim.posts]
        assert len(ids) == 30 and len(set(ids)) == 30

    async def test_record_results_finishes_posts_and_logs_runs(self, harness):
        user = harness.new_user()
        a, b = await make_channel(harness.store, user, account="a"), await make_channel(harness.store, user, account="b")
        ok = await make_post(harness.store, user, [a])
        mixed = await make_post(harness.store, user, [a, b])
        await make_post(harness.store, user, [a], at=NOW - timedelta(seconds=1))
        claim = await harness.store.claim_due_posts(now=NOW, limit=2, lease_seconds=60)
        by_id = {c.post.id: c for c in claim.posts}
        good, bad = sorted(by_id[mixed.id].post.targets, key=lambda t: t.channel_id != a.id)
        mixed_result = PostResult(
            post_id=mixed.id, lease_id=by_id[mixed.id].lease_id, status=PostStatus.PARTIAL, error="1 of 2 failed",
            targets=(
                published(by_id[mixed.id]).targets[0] if published(by_id[mixed.id]).targets[0].target_id == good.id
                else published(by_id[mixed.id]).targets[1],
                TargetResult(target_id=bad.id, outcome=Outcome.PERMANENT, status=TargetStatus.FAILED, attempt=1,
                             started_at=NOW, finished_at=NOW + timedelta(seconds=1), http_status=400,
                             error_code="content_rejected", error_message="text too long"),
            ),
        )
        run = CronRun(id=uuid.uuid4(), trigger="manual", started_at=NOW, finished_at=NOW + timedelta(seconds=2),
                      claimed=2, published=1, failed=0, remaining_due=-1, duration_ms=2000)
        remaining = await harness.store.record_results([published(by_id[ok.id]), mixed_result], now=NOW, cron_run=run)
        assert remaining == 1

        done = await harness.store.get_post(user, ok.id)
        assert done.status is PostStatus.PUBLISHED and done.published_at is not None
        assert done.targets[0].status is TargetStatus.PUBLISHED and done.targets[0].attempts == 1
        assert done.targets[0].platform_post_url == f"https://sandbox.test/{done.targets[0].id}"
        partial = await harness.store.get_post(user, mixed.id)
        assert partial.status is PostStatus.PARTIAL and partial.error == "1 of 2 failed"
        failed_target = next(t for t in partial.targets if t.id == bad.id)
        assert failed_target.status is TargetStatus.FAILED and failed_target.error == "text too long"
        runs = await harness.store.list_runs(user, mixed.id)
        assert sorted(r.outcome.value for r in runs) == ["permanent", "published"]
        assert next(r for r in runs if r.target_id == bad.id).duration_ms == 1000
        last = await harness.store.last_cron_run()
        assert last.id == run.id and last.remaining_due == 1 and last.published == 1
        events = [a.event for a in await harness.store.list_activity(user, post_id=ok.id)]
        assert events[:2] == ["post.published", "target.published"]

    async def test_a_dead_runs_post_is_recovered_with_its_maybe_sent_targets(self, harness):
        user = harness.new_user()
        a, b = await make_channel(harness.store, user, account="a"), await make_channel(harness.store, user, account="b")
        post = await make_post(harness.store, user, [a, b])
        first = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        sent = next(t for t in first.post.targets if t.channel_id == a.id)
        await harness.store.mark_sending([sent.id], now=NOW)
        # The first run dies here. A later claim re-leases the post and says which call may have gone out.
        later = NOW + timedelta(seconds=31)
        recovery = await harness.store.claim_due_posts(now=later, limit=5, lease_seconds=30)
        assert recovery.recovered == (post.id,)
        [again] = recovery.posts
        assert again.post.id == post.id and again.lease_id != first.lease_id and again.maybe_sent == {sent.id}
        assert {t.id: t.status for t in again.post.targets}[sent.id] is TargetStatus.PUBLISHING
        # The dead run's late results are ignored; the new run's are recorded.
        await harness.store.record_results([published(first)], now=later)
        assert await harness.store.list_runs(user, post.id) == []
        await harness.store.record_results([PostResult(
            post_id=post.id, lease_id=again.lease_id, status=PostStatus.NEEDS_REVIEW, error="may be live",
            targets=(TargetResult(target_id=sent.id, outcome=Outcome.UNKNOWN, status=TargetStatus.UNKNOWN, attempt=1,
                                  started_at=later, finished_at=later, error_code="maybe_sent"),
                     published(again, now=later).targets[0]))], now=later)
        after = await harness.store.get_post(user, post.id)
        assert after.status is PostStatus.NEEDS_REVIEW
        assert {t.channel_id: t.status for t in after.targets} == {a.id: TargetStatus.UNKNOWN, b.id: TargetStatus.PUBLISHED}

    async def test_released_targets_go_back_to_pending_and_others_stay_maybe_sent(self, harness):
        user = harness.new_user()
        a, b = await make_channel(harness.store, user, account="a"), await make_channel(harness.store, user, account="b")
        post = await make_post(harness.store, user, [a, b])
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        released, kept = sorted(claimed.post.targets, key=lambda t: t.channel_id != a.id)
        await harness.store.mark_sending([released.id, kept.id], now=NOW)
        await harness.store.record_results([PostResult(post_id=post.id, lease_id=claimed.lease_id, released=(released.id,),
                                                       status=PostStatus.SCHEDULED, error=None, targets=())], now=NOW)
        after = await harness.store.get_post(user, post.id)
        assert after.status is PostStatus.SCHEDULED
        assert {t.id: (t.status, t.attempts) for t in after.targets} == {
            released.id: (TargetStatus.PENDING, 0), kept.id: (TargetStatus.PUBLISHING, 0)}
        # The next claim says which call may already have gone out.
        again = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        assert again.maybe_sent == {kept.id}

    async def test_mark_sending_touches_only_leased_pending_targets(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        leased = await make_post(harness.store, user, [channel])
        idle = await make_post(harness.store, user, [channel], at=NOW + timedelta(days=1))
        await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)
        await harness.store.mark_sending([leased.targets[0].id, idle.targets[0].id], now=NOW)
        assert (await harness.store.get_post(user, leased.id)).targets[0].status is TargetStatus.PUBLISHING
        assert (await harness.store.get_post(user, idle.id)).targets[0].status is TargetStatus.PENDING

    async def test_claim_can_be_limited_to_given_posts(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        wanted = await make_post(harness.store, user, [channel])
        await make_post(harness.store, user, [channel], at=NOW - timedelta(hours=1))
        claim = await harness.store.claim_due_posts(now=NOW, limit=10, lease_seconds=30, post_ids=(wanted.id,))
        assert [c.post.id for c in claim.posts] == [wanted.id]

    async def test_unexpired_lease_is_left_alone(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
        await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)
        claim = await harness.store.claim_due_posts(now=NOW + timedelta(seconds=29), limit=1, lease_seconds=30)
        assert claim.posts == () and claim.recovered == ()
        assert (await harness.store.get_post(user, post.id)).status is PostStatus.PUBLISHING

    async def test_rescheduling_a_failed_post_revives_its_failed_targets(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        target = claimed.post.targets[0]
        await harness.store.record_results([PostResult(
            post_id=post.id, lease_id=claimed.lease_id, status=PostStatus.FAILED, error="boom",
            targets=(TargetResult(target_id=target.id, outcome=Outcome.TRANSIENT, status=TargetStatus.FAILED,
                                  attempt=1, started_at=NOW, finished_at=NOW, error_message="boom"),))], now=NOW)
        again = await harness.store.update_post(
            user, post.id, PostChanges(status=PostStatus.SCHEDULED, scheduled_at=NOW),
            allowed_from=ALLOWED_FROM["schedule"], action="schedule")
        assert again.status is PostStatus.SCHEDULED and again.error is None
        assert [(t.status, t.error, t.attempts) for t in again.targets] == [(TargetStatus.PENDING, None, 1)]

    async def test_outbox_keeps_what_the_sandbox_published(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        await make_post(harness.store, user, [channel])
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        entry = OutboxEntry(id=uuid.uuid4(), channel_id=channel.id, target_id=claimed.post.targets[0].id,
                            text="hello", media=(Media("image", "https://x.test/a.png"),), published_at=NOW)
        await harness.store.deliver_to_outbox(entry)
        assert await harness.store.list_outbox(user) == [entry]
        assert await harness.store.list_outbox(harness.new_user()) == []


async def test_reconnecting_an_account_renews_it_in_place(harness):
    """What an OAuth callback does for an account the user connected before (say, one needing a reconnect)."""
    store, user, now = harness.store, harness.new_user(), datetime.now(timezone.utc)
    first = await store.create_channel(user, NewChannel(platform="x", account_id="42", name="old", credentials_encrypted="c1",
                                                        metadata={"ig_type": "story", "username": "old"}))
    post = await store.create_post(user, NewPost(content=Content(text="hi"), channel_ids=(first.id,),
                                                 status=PostStatus.SCHEDULED, scheduled_at=now + timedelta(hours=1)))
    await store.mark_channel_needs_reconnect(first.id, reason="token revoked")
    with pytest.raises(ConflictError):  # a plain connect still refuses a duplicate
        await store.create_channel(user, NewChannel(platform="x", account_id="42", name="dup", credentials_encrypted="c"))

    again = await store.create_channel(User(id=user.id), NewChannel(
        platform="x", account_id="42", name="new", credentials_encrypted="c2", metadata={"username": "new"}, reconnect=True))

    assert (again.id, again.status, again.name) == (first.id, "active", "new")
    assert again.metadata == {"ig_type": "story", "username": "new"}
    assert [c.id for c in await store.list_channels(user)] == [first.id]
    claim = await store.claim_due_posts(now=now + timedelta(hours=2), limit=5, lease_seconds=60)
    assert claim.posts[0].post.id == post.id and claim.posts[0].channels[first.id].credentials_encrypted == "c2"
