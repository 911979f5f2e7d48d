"""The Store contract for every PostChanges field, on both transports.

These behaviours were once reached only through the API: one-occurrence edits, re-anchoring a
series, reviving or cancelling targets with the status, ``next_attempt_at`` for publish-now and
retry-now. Each is asserted here at the store, where ``herald_update_post_v1`` implements it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.domain.models import (
    Content,
    Outcome,
    PostResult,
    PostStatus,
    TargetResult,
    TargetStatus,
)
from services.domain.transitions import ALLOWED_FROM
from services.errors import ValidationError
from services.store.base import NewPost, PostChanges, PostFilter
from tests.contract.test_store_contract import NOW, make_channel, make_post, published


async def edit(harness, user, post, action="edit", **changes):
    return await harness.store.update_post(user, post.id, PostChanges(**changes),
                                           allowed_from=ALLOWED_FROM[action], action=action)


async def series(harness, user, channels, *, rrule="FREQ=DAILY", text="series text", at=NOW - timedelta(minutes=1)):
    return await harness.store.create_post(user, NewPost(
        content=Content(text=text), channel_ids=tuple(c.id for c in channels), status=PostStatus.SCHEDULED,
        scheduled_at=at, rrule=rrule, timezone="Europe/Berlin"))


async def finish_with_successor(harness, post_id, *, next_at):
    """Claim the due post, publish it, and have the run create its next occurrence at ``next_at``."""
    claimed = next(c for c in (await harness.store.claim_due_posts(now=NOW, limit=10, lease_seconds=30)).posts
                   if c.post.id == post_id)
    result = PostResult(**{**published(claimed).__dict__, "next_occurrence_at": next_at})
    await harness.store.record_results([result], now=NOW)


async def successor_of(harness, user, post_id):
    page = await harness.store.list_posts(user, PostFilter(recurring=True))
    return next(p for p in page.items if p.parent_post_id == post_id)


async def fail_every_target(harness, post_id, *, error="platform said no"):
    claimed = next(c for c in (await harness.store.claim_due_posts(now=NOW, limit=10, lease_seconds=30)).posts
                   if c.post.id == post_id)
    await harness.store.record_results([PostResult(
        post_id=post_id, lease_id=claimed.lease_id, status=PostStatus.FAILED, error=error,
        targets=tuple(TargetResult(target_id=t.id, outcome=Outcome.PERMANENT, status=TargetStatus.FAILED,
                                   attempt=t.attempts + 1, started_at=NOW, finished_at=NOW, error_code="invalid")
                      for t in claimed.post.targets))], now=NOW)


class TestContent:
    async def test_a_content_edit_changes_only_the_content(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        post = await make_post(harness.store, user, [channel], at=NOW + timedelta(hours=1))
        updated = await edit(harness, user, post, content=Content(text="edited"))
        assert updated.content.text == "edited"
        assert (updated.scheduled_at, updated.timezone, updated.rrule, updated.status) == (
            post.scheduled_at, post.timezone, post.rrule, PostStatus.SCHEDULED)
        assert [t.id for t in updated.targets] == [t.id for t in post.targets]

    async def test_a_series_content_edit_carries_to_later_occurrences(self, harness):
        user = harness.new_user()
        post = await series(harness, user, [await make_channel(harness.store, user)])
        await edit(harness, user, post, content=Content(text="new for the whole series"))
        await finish_with_successor(harness, post.id, next_at=NOW + timedelta(days=1))
        assert (await successor_of(harness, user, post.id)).content.text == "new for the whole series"

    async def test_a_one_occurrence_edit_stays_with_that_occurrence(self, harness):
        user = harness.new_user()
        post = await series(harness, user, [await make_channel(harness.store, user)])
        once = await edit(harness, user, post, content=Content(text="only today"), occurrence_only=True)
        assert once.content.text == "only today"
        again = await edit(harness, user, post, content=Content(text="only today, fixed"), occurrence_only=True)
        assert again.content.text == "only today, fixed"
        await finish_with_successor(harness, post.id, next_at=NOW + timedelta(days=1))
        # two one-off edits in a row still leave the series' own text for the next occurrence
        assert (await successor_of(harness, user, post.id)).content.text == "series text"

    async def test_a_series_edit_after_a_one_off_edit_replaces_the_series_text(self, harness):
        user = harness.new_user()
        post = await series(harness, user, [await make_channel(harness.store, user)])
        await edit(harness, user, post, content=Content(text="only today"), occurrence_only=True)
        await edit(harness, user, post, content=Content(text="from now on"))
        await finish_with_successor(harness, post.id, next_at=NOW + timedelta(days=1))
        assert (await successor_of(harness, user, post.id)).content.text == "from now on"


class TestChannels:
    async def test_channel_ids_replace_the_targets_but_keep_a_published_one(self, harness):
        user = harness.new_user()
        a, b, c = [await make_channel(harness.store, user, account=name) for name in "abc"]
        post = await make_post(harness.store, user, [a, b])
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        target_a, target_b = sorted(claimed.post.targets, key=lambda t: t.channel_id != a.id)
        # a published on a, failed for a transient reason on b: the post waits for its retry
        await harness.store.record_results([PostResult(
            post_id=post.id, lease_id=claimed.lease_id, status=PostStatus.PARTIAL, error="b failed",
            targets=(
                TargetResult(target_id=target_a.id, outcome=Outcome.PUBLISHED, status=TargetStatus.PUBLISHED,
                             attempt=1, started_at=NOW, finished_at=NOW, platform_post_id="a1"),
                TargetResult(target_id=target_b.id, outcome=Outcome.PERMANENT, status=TargetStatus.FAILED,
                             attempt=1, started_at=NOW, finished_at=NOW, error_code="invalid"),
            ))], now=NOW)
        updated = await edit(harness, user, post, "retry", channel_ids=(c.id,), status=PostStatus.SCHEDULED)
        by_channel = {t.channel_id: t for t in updated.targets}
        assert set(by_channel) == {a.id, c.id}  # b's target is gone, a's published one stays
        assert by_channel[a.id].status is TargetStatus.PUBLISHED and by_channel[a.id].platform_post_id == "a1"
        assert by_channel[c.id].status is TargetStatus.PENDING

    async def test_an_unknown_or_foreign_channel_is_refused_and_nothing_changes(self, harness):
        user, other = harness.new_user(), harness.new_user()
        mine = await make_channel(harness.store, user)
        theirs = await make_channel(harness.store, other)
        post = await make_post(harness.store, user, [mine], status=PostStatus.DRAFT)
        for channel_id in (theirs.id, uuid.uuid4()):
            with pytest.raises(ValidationError) as err:
                await edit(harness, user, post, channel_ids=(channel_id,), content=Content(text="half-written?"))
            assert err.value.field == "channel_ids"
        after = await harness.store.get_post(user, post.id)
        assert after.content.text == "hello" and [t.channel_id for t in after.targets] == [mine.id]


class TestSeriesAnchor:
    async def test_a_new_time_re_anchors_the_series_at_that_time(self, harness):
        user = harness.new_user()
        post = await series(harness, user, [await make_channel(harness.store, user)], at=NOW + timedelta(hours=1))
        assert (post.series_id, post.series_start_at) == (post.id, NOW + timedelta(hours=1))
        moved = await edit(harness, user, post, "schedule", scheduled_at=NOW + timedelta(hours=5))
        assert moved.scheduled_at == moved.series_start_at == NOW + timedelta(hours=5)
        assert moved.series_id == post.id

    async def test_a_later_occurrence_re_anchored_keeps_its_series_and_counts_from_itself(self, harness):
        user = harness.new_user()
        post = await series(harness, user, [await make_channel(harness.store, user)], rrule="FREQ=DAILY;COUNT=5")
        await finish_with_successor(harness, post.id, next_at=NOW + timedelta(days=1))
        child = await successor_of(harness, user, post.id)
        assert child.series_start_at == post.series_start_at
        changed = await edit(harness, user, child, rrule="FREQ=WEEKLY;COUNT=3", timezone="Asia/Tokyo")
        assert (changed.series_id, changed.rrule, changed.timezone) == (post.id, "FREQ=WEEKLY;COUNT=3", "Asia/Tokyo")
        assert changed.series_start_at == child.scheduled_at  # COUNT now counts from this occurrence

    async def test_a_one_occurrence_move_leaves_the_series_anchor(self, harness):
        user = harness.new_user()
        post = await series(harness, user, [await make_channel(harness.store, user)], at=NOW + timedelta(hours=1))
        moved = await edit(harness, user, post, "schedule", scheduled_at=NOW + timedelta(hours=3),
                           occurrence_only=True)
        assert moved.scheduled_at == NOW + timedelta(hours=3)
        assert (moved.series_id, moved.series_start_at) == (post.id, NOW + timedelta(hours=1))

    async def test_clearing_the_rule_ends_the_series(self, harness):
        user = harness.new_user()
        post = await series(harness, user, [await make_channel(harness.store, user)], at=NOW + timedelta(hours=1))
        single = await edit(harness, user, post, rrule=None)
        assert (single.rrule, single.series_id, single.series_start_at) == (None, None, None)
        page = await harness.store.list_posts(user, PostFilter(recurring=True))
        assert page.total == 0

    async def test_a_rule_added_to_a_single_post_starts_a_series_there(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)],
                               at=NOW + timedelta(hours=2))
        assert post.series_id is None
        recurring = await edit(harness, user, post, rrule="FREQ=WEEKLY")
        assert (recurring.series_id, recurring.series_start_at) == (post.id, NOW + timedelta(hours=2))


class TestStatus:
    async def test_scheduling_again_revives_failed_targets_and_clears_the_error(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
        await fail_every_target(harness, post.id)
        failed = await harness.store.get_post(user, post.id)
        assert failed.status is PostStatus.FAILED and failed.error == "platform said no"
        retried = await edit(harness, user, failed, "retry", status=PostStatus.SCHEDULED, next_attempt_at=NOW)
        assert retried.status is PostStatus.SCHEDULED and retried.error is None
        assert [(t.status, t.error) for t in retried.targets] == [(TargetStatus.PENDING, None)]
        assert retried.next_attempt_at == NOW

    async def test_a_target_whose_channel_was_deleted_is_not_revived(self, harness):
        user = harness.new_user()
        keep, gone = await make_channel(harness.store, user, account="k"), await make_channel(harness.store, user, account="g")
        post = await make_post(harness.store, user, [keep, gone])
        await fail_every_target(harness, post.id)
        await harness.store.delete_channel(user, gone.id, force=True)
        retried = await edit(harness, user, post, "retry", status=PostStatus.SCHEDULED, next_attempt_at=NOW)
        assert sorted((t.channel_id is None, t.status.value) for t in retried.targets) == [
            (False, "pending"), (True, "failed")]

    async def test_cancelling_cancels_the_pending_targets(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)],
                               at=NOW + timedelta(hours=1))
        cancelled = await edit(harness, user, post, status=PostStatus.CANCELLED)
        assert cancelled.status is PostStatus.CANCELLED
        assert [t.status for t in cancelled.targets] == [TargetStatus.CANCELLED]
        assert (await harness.store.claim_due_posts(now=NOW + timedelta(days=1), limit=10, lease_seconds=30)).posts == ()
        revived = await edit(harness, user, cancelled, "schedule", status=PostStatus.SCHEDULED)
        assert [t.status for t in revived.targets] == [TargetStatus.PENDING]


class TestNextAttempt:
    async def test_publish_now_makes_a_future_post_due_without_moving_its_time(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)],
                               at=NOW + timedelta(days=3))
        assert (await harness.store.claim_due_posts(now=NOW, limit=10, lease_seconds=30)).posts == ()
        now = await edit(harness, user, post, "publish", status=PostStatus.SCHEDULED, next_attempt_at=NOW)
        assert now.scheduled_at == NOW + timedelta(days=3) and now.next_attempt_at == NOW
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=10, lease_seconds=30)).posts
        assert [c.post.id for c in claimed] == [post.id]

    async def test_scheduling_without_next_attempt_clears_an_earlier_one(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
        await fail_every_target(harness, post.id)
        await edit(harness, user, post, "retry", status=PostStatus.SCHEDULED, next_attempt_at=NOW + timedelta(hours=1))
        moved = await edit(harness, user, post, "schedule", scheduled_at=NOW + timedelta(days=2),
                           status=PostStatus.SCHEDULED)
        assert moved.next_attempt_at is None and moved.scheduled_at == NOW + timedelta(days=2)

    async def test_a_change_without_status_keeps_next_attempt(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)],
                               at=NOW + timedelta(days=1))
        await edit(harness, user, post, "publish", status=PostStatus.SCHEDULED, next_attempt_at=NOW)
        kept = await edit(harness, user, post, content=Content(text="typo fixed"))
        assert kept.next_attempt_at == NOW
