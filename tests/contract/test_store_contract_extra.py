"""More of the Store contract: the exact errors, and the methods the main suite reaches only through the run.

Both stores must raise the same classes with the same message, code and field, since the API
renders them as they are.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.domain.models import (
    Content,
    CronRun,
    Outcome,
    PostResult,
    PostStatus,
    TargetResult,
    TargetStatus,
    User,
)
from services.domain.transitions import ALLOWED_FROM, conflict_message
from services.errors import ConflictError, NotFoundError, ValidationError
from services.store.base import NewPost, PostChanges, PostFilter
from tests.contract.test_store_contract import NOW, make_channel, make_post, published


def new_post(channels, *, text="bulk", at=NOW - timedelta(minutes=1), rrule=None):
    return NewPost(content=Content(text=text), channel_ids=tuple(c.id for c in channels), status=PostStatus.SCHEDULED,
                   scheduled_at=at, rrule=rrule)


def shape(err: Exception) -> tuple:
    return type(err), err.message, err.code, err.field


class TestErrors:
    async def test_missing_rows_name_their_field(self, harness):
        user = harness.new_user()
        with pytest.raises(NotFoundError) as post_err:
            await harness.store.get_post(user, uuid.uuid4())
        with pytest.raises(NotFoundError) as channel_err:
            await harness.store.get_channel(user, uuid.uuid4())
        assert shape(post_err.value) == (NotFoundError, "post not found", "not_found", "post_id")
        assert shape(channel_err.value) == (NotFoundError, "channel not found", "not_found", "channel_id")

    async def test_state_conflict_says_why_in_the_domains_words(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
        await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=60)
        with pytest.raises(ConflictError) as err:
            await harness.store.update_post(user, post.id, PostChanges(status=PostStatus.DRAFT),
                                            allowed_from=ALLOWED_FROM["unschedule"], action="unschedule")
        assert shape(err.value) == (ConflictError, conflict_message("unschedule", "publishing"), "invalid_state", None)
        with pytest.raises(ConflictError) as err:
            await harness.store.delete_post(user, post.id, allowed_from=ALLOWED_FROM["delete"])
        assert shape(err.value) == (ConflictError, conflict_message("delete", "publishing"), "invalid_state", None)

    async def test_duplicate_account_conflict_names_the_account(self, harness):
        user = harness.new_user()
        await make_channel(harness.store, user, platform="webhook")
        with pytest.raises(ConflictError) as err:
            await make_channel(harness.store, user, platform="webhook")
        assert shape(err.value) == (ConflictError, "this webhook account is already connected", "channel_exists",
                                    "account_id")

    async def test_unknown_channel_is_a_validation_error_on_channel_ids(self, harness):
        user = harness.new_user()
        missing = uuid.uuid4()
        with pytest.raises(ValidationError) as err:
            await harness.store.create_post(user, new_post([type("C", (), {"id": missing})()]))
        assert shape(err.value) == (ValidationError, f"channel {missing} not found", "unknown_channel", "channel_ids")

    async def test_channel_in_use_conflict_counts_the_posts(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        for hours in (1, 2):
            await make_post(harness.store, user, [channel], at=NOW + timedelta(hours=hours))
        with pytest.raises(ConflictError) as err:
            await harness.store.delete_channel(user, channel.id, force=False)
        assert shape(err.value) == (
            ConflictError, "2 scheduled post(s) still target this channel; unschedule them or pass force=true",
            "channel_in_use", None)


class TestBulkAndIdempotency:
    async def test_bulk_create_stores_all_or_nothing_and_names_the_item(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        stranger = type("C", (), {"id": uuid.uuid4()})()
        with pytest.raises(ValidationError) as err:
            await harness.store.create_posts(user, [new_post([channel]), new_post([stranger])])
        assert err.value.field == "posts.1.channel_ids" and err.value.code == "unknown_channel"
        assert (await harness.store.list_posts(user, PostFilter())).total == 0
        posts, replayed = await harness.store.create_posts(user, [new_post([channel], text="a"),
                                                                  new_post([channel], text="b")])
        assert not replayed and [p.content.text for p in posts] == ["a", "b"]

    async def test_an_idempotency_key_replays_and_refuses_a_different_request(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        first, replayed = await harness.store.create_posts(user, [new_post([channel])], idempotency_key="k1",
                                                           request_hash="h1")
        again, replayed_again = await harness.store.create_posts(user, [new_post([channel])], idempotency_key="k1",
                                                                 request_hash="h1")
        assert (replayed, replayed_again) == (False, True) and again == first
        assert (await harness.store.list_posts(user, PostFilter())).total == 1
        with pytest.raises(ConflictError) as err:
            await harness.store.create_posts(user, [new_post([channel])], idempotency_key="k1", request_hash="h2")
        assert (err.value.code, err.value.field) == ("idempotency_key_reused", "Idempotency-Key")
        # keys are per user
        other = harness.new_user()
        theirs, replayed = await harness.store.create_posts(
            other, [new_post([await make_channel(harness.store, other)])], idempotency_key="k1", request_hash="h1")
        assert not replayed and theirs[0].user_id == other.id


class TestRunSupport:
    async def test_list_due_and_cron_health_see_what_a_claim_would_take(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        older = await make_post(harness.store, user, [channel], at=NOW - timedelta(minutes=5))
        newer = await make_post(harness.store, user, [channel], at=NOW - timedelta(minutes=1))
        await make_post(harness.store, user, [channel], at=NOW + timedelta(minutes=5))
        assert [p.id for p in await harness.store.list_due(now=NOW, limit=10)] == [older.id, newer.id]
        health = await harness.store.cron_health(now=NOW)
        assert (health.last_run, health.due_now, health.oldest_due_at, health.stuck) == (None, 2, older.scheduled_at, 0)
        await harness.store.claim_due_posts(now=NOW, limit=10, lease_seconds=30)
        later = await harness.store.cron_health(now=NOW + timedelta(seconds=31))
        assert (later.due_now, later.stuck) == (0, 2)

    async def test_refreshed_credentials_and_reconnect_flags_are_saved(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        await harness.store.mark_channel_needs_reconnect(channel.id, reason="token revoked")
        assert (await harness.store.get_channel(user, channel.id)).status == "needs_reconnect"
        events = [a.event for a in await harness.store.list_activity(user)]
        assert events[0] == "channel.needs_reconnect"
        await harness.store.save_channel_credentials(channel.id, "gAAAA-new", token_expires_at=NOW)
        after = await harness.store.get_channel(user, channel.id)
        assert after.status == "active" and after.token_expires_at == NOW
        await make_post(harness.store, user, [channel])
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        assert claimed.channels[channel.id].credentials_encrypted == "gAAAA-new"

    async def test_progress_is_saved_mid_call_only_under_the_runs_lease_for_a_target_marked_sending(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        [target] = claimed.post.targets
        session = {"session_uri": "https://www.googleapis.com/upload/youtube/v3/videos?upload_id=xa298", "size": 10}
        assert await harness.store.save_progress(claimed.lease_id, target.id, session) is False  # not marked sending
        await harness.store.mark_sending([target.id], now=NOW)
        assert await harness.store.save_progress(uuid.uuid4(), target.id, session) is False  # another run's lease
        assert await harness.store.save_progress(claimed.lease_id, target.id, session) is True
        # the run dies; the claim after its lease expired hands the session back with the target
        again = (await harness.store.claim_due_posts(now=NOW + timedelta(seconds=31), limit=1, lease_seconds=30)).posts[0]
        assert again.post.id == post.id and target.id in again.maybe_sent
        assert again.post.targets[0].resume == session
        assert await harness.store.save_progress(claimed.lease_id, target.id, {"stale": True}) is False

    async def test_a_channel_connected_without_a_token_belongs_to_the_proven_user(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, User(id=user.id))  # the OAuth callback's caller
        assert channel.user_id == user.id
        assert [c.id for c in await harness.store.list_channels(user)] == [channel.id]

    async def test_a_finished_occurrence_creates_its_successor_once(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        series = await harness.store.create_post(user, new_post([channel], rrule="FREQ=DAILY"))
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        result = PostResult(**{**published(claimed).__dict__, "next_occurrence_at": NOW + timedelta(days=1)})
        run = CronRun(id=uuid.uuid4(), trigger="cron", started_at=NOW, finished_at=NOW, claimed=1, published=1,
                      failed=0, remaining_due=0, duration_ms=5)
        assert await harness.store.record_results([result], now=NOW, cron_run=run) == 0
        await harness.store.record_results([result], now=NOW)  # a replay: the lease is gone, nothing happens
        page = await harness.store.list_posts(user, PostFilter(recurring=True))
        child = next(p for p in page.items if p.id != series.id)
        assert page.total == 2
        assert (child.parent_post_id, child.series_id) == (series.id, series.id)
        assert child.series_start_at == NOW - timedelta(minutes=1)
        assert child.status is PostStatus.SCHEDULED and child.scheduled_at == NOW + timedelta(days=1)
        assert [(t.channel_id, t.status) for t in child.targets] == [(channel.id, TargetStatus.PENDING)]
        assert (await harness.store.last_cron_run()).id == run.id

    async def test_an_unknown_target_is_resolved_by_hand(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        target = claimed.post.targets[0]
        with pytest.raises(ConflictError) as err:
            await harness.store.resolve_target(user, post.id, target.id, published=True, url=None)
        assert (err.value.code, err.value.field) == ("invalid_state", "target_id")
        await harness.store.record_results([PostResult(
            post_id=post.id, lease_id=claimed.lease_id, status=PostStatus.NEEDS_REVIEW, error="may be live",
            targets=(TargetResult(target_id=target.id, outcome=Outcome.UNKNOWN, status=TargetStatus.UNKNOWN, attempt=1,
                                  started_at=NOW, finished_at=NOW, error_code="maybe_sent"),))], now=NOW)
        with pytest.raises(NotFoundError) as err:
            await harness.store.resolve_target(harness.new_user(), post.id, target.id, published=True, url=None)
        resolved = await harness.store.resolve_target(user, post.id, target.id, published=True, url="https://x.test/1")
        assert resolved.status is PostStatus.PUBLISHED and resolved.error is None
        assert (resolved.targets[0].status, resolved.targets[0].platform_post_url) == (
            TargetStatus.PUBLISHED, "https://x.test/1")
        assert (await harness.store.list_activity(user, post_id=post.id, limit=1))[0].event == "target.resolved"

    async def test_claim_and_results_leave_the_same_activity_trail(self, harness):
        user = harness.new_user()
        post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
        claimed = (await harness.store.claim_due_posts(now=NOW, limit=1, lease_seconds=30)).posts[0]
        await harness.store.record_results([published(claimed)], now=NOW)
        trail = [(a.event, a.details) for a in reversed(await harness.store.list_activity(user, post_id=post.id))]
        target = claimed.post.targets[0]
        assert trail == [
            ("post.created", {"status": "scheduled"}),
            ("post.claimed", {"attempt": 1}),
            ("target.published", {"target_id": str(target.id), "outcome": "published", "attempt": 1,
                                  "error_code": None}),
            ("post.published", {"error": None}),
        ]

    async def test_update_logs_the_fields_it_changed(self, harness):
        user = harness.new_user()
        channel = await make_channel(harness.store, user)
        post = await make_post(harness.store, user, [channel], status=PostStatus.DRAFT)
        await harness.store.update_post(user, post.id, PostChanges(content=Content(text="x"), channel_ids=(channel.id,),
                                                                   timezone="UTC"),
                                        allowed_from=ALLOWED_FROM["edit"], action="edit")
        [entry] = await harness.store.list_activity(user, post_id=post.id, limit=1)
        assert (entry.event, entry.details) == ("post.edit", {"fields": ["channel_ids", "content", "timezone"],
                                                              "status": "draft"})
