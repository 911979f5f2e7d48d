"""The Store contract for a post's comments and history (what a reviewer reads), on both transports."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from services.domain.models import Content, PostStatus
from services.errors import NotFoundError, ValidationError
from services.store.base import PostChanges, PostFilter
from services.store.rows import required_time
from tests.contract.test_store_contract import NOW, make_channel, make_post, published


async def test_history_records_create_edit_schedule_and_a_runs_publish_in_order(harness):
    user = harness.new_user()
    channel = await make_channel(harness.store, user)
    draft = await make_post(harness.store, user, [channel], status=PostStatus.DRAFT, text="first words")
    await harness.store.update_post(user, draft.id, PostChanges(content=Content(text="better words")),
                                    allowed_from=frozenset({PostStatus.DRAFT}), action="edit")
    at = NOW - timedelta(minutes=1)
    await harness.store.update_post(user, draft.id, PostChanges(status=PostStatus.SCHEDULED, scheduled_at=at,
                                                                timezone="UTC"),
                                    allowed_from=frozenset({PostStatus.DRAFT}), action="schedule")
    [claimed] = (await harness.store.claim_due_posts(now=NOW, limit=5, lease_seconds=60)).posts
    await harness.store.record_results([published(claimed)], now=NOW)

    entries, total = await harness.store.post_history(user, draft.id)

    assert total == len(entries) == 6
    seen = [(e.change, e.actor_id, e.before, e.after) for e in entries]
    assert seen[0] == ("created", user.id, None, {"status": "draft", "timezone": "Europe/Berlin"})
    assert seen[1][:2] == ("content", user.id)  # only the changed field, before and after
    assert (seen[1][2]["content"]["text"], seen[1][3]["content"]["text"]) == ("first words", "better words")
    change, actor, before, after = seen[2]
    assert (change, actor, before) == ("schedule", user.id, {"scheduled_at": None, "timezone": "Europe/Berlin"})
    assert (set(after), required_time(after["scheduled_at"]), after["timezone"]) == ({"scheduled_at", "timezone"}, at, "UTC")
    assert seen[3:] == [("status", user.id, {"status": "draft"}, {"status": "scheduled"}),
                        ("status", None, {"status": "scheduled"}, {"status": "publishing"}),  # the run: Herald
                        ("status", None, {"status": "publishing"}, {"status": "published"})]
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    assert all(a.at <= b.at for a, b in zip(entries, entries[1:], strict=False))

    page, total = await harness.store.post_history(user, draft.id, limit=2, offset=3)
    assert total == 6 and [e.id for e in page] == [e.id for e in entries[3:5]]


async def test_a_series_next_occurrence_is_created_by_herald(harness):
    user = harness.new_user()
    channel = await make_channel(harness.store, user)
    post = await make_post(harness.store, user, [channel])
    await harness.store.update_post(user, post.id, PostChanges(rrule="FREQ=DAILY"),
                                    allowed_from=frozenset({PostStatus.SCHEDULED}), action="edit")
    [claimed] = (await harness.store.claim_due_posts(now=NOW, limit=5, lease_seconds=60)).posts
    await harness.store.record_results([replace(published(claimed), next_occurrence_at=NOW + timedelta(days=1))],
                                       now=NOW)
    page = await harness.store.list_posts(user, PostFilter(recurring=True))
    successor = next(p for p in page.items if p.parent_post_id == post.id)
    [created], total = await harness.store.post_history(user, successor.id)
    assert total == 1 and (created.change, created.actor_id, created.before) == ("created", None, None)
    assert created.after["parent_post_id"] == str(post.id) and created.after["rrule"] == "FREQ=DAILY"


async def test_comments_are_listed_oldest_first_with_paging_and_logged(harness):
    user = harness.new_user()
    post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
    added = [await harness.store.add_comment(user, post.id, f"note {i}") for i in range(3)]
    assert [(c.post_id, c.author_id, c.body) for c in added] == [(post.id, user.id, f"note {i}") for i in range(3)]

    first, total = await harness.store.list_comments(user, post.id, limit=2)
    rest, _ = await harness.store.list_comments(user, post.id, limit=2, offset=2)
    assert total == 3
    assert [c.id for c in first + rest] == [c.id for c in added]
    assert [c.body for c in first + rest] == ["note 0", "note 1", "note 2"]

    logged = [a for a in await harness.store.list_activity(user, post_id=post.id) if a.event == "post.commented"]
    assert sorted(a.details["comment_id"] for a in logged) == sorted(str(c.id) for c in added)


@pytest.mark.parametrize("body", ["", "  \n\t ", "x" * 10_001])
async def test_a_blank_or_over_long_comment_is_refused(harness, body):
    user = harness.new_user()
    post = await make_post(harness.store, user, [await make_channel(harness.store, user)])
    with pytest.raises(ValidationError) as err:
        await harness.store.add_comment(user, post.id, body)
    assert err.value.field == "body"
    assert (await harness.store.list_comments(user, post.id))[1] == 0


async def test_another_user_gets_not_found_and_sees_nothing(harness):
    owner, other = harness.new_user(), harness.new_user()
    post = await make_post(harness.store, owner, [await make_channel(harness.store, owner)])
    await harness.store.add_comment(owner, post.id, "owner's note")
    for missing in (post.id, uuid.uuid4()):
        with pytest.raises(NotFoundError):
            await harness.store.add_comment(other, missing, "let me in")
        with pytest.raises(NotFoundError):
            await harness.store.list_comments(other, missing)
        with pytest.raises(NotFoundError):
            await harness.store.post_history(other, missing)
    assert (await harness.store.list_comments(owner, post.id))[1] == 1
    assert await harness.store.list_activity(other) == []
