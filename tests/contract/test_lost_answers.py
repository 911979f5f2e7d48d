"""A lost answer is settled by a later run, not sent to review: on a platform that can look its
posts up (or dedupes on the idempotency key), the post stays publishing until the platform would
list it, then a run looks it up and publishes at most once. Only a lookup that cannot decide
leaves the target ``unknown`` for a person. Run on both transports.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from cryptography.fernet import Fernet

from services.domain.models import Content, Outcome, PostStatus, TargetStatus
from services.domain.transitions import ALLOWED_FROM
from services.errors import ConflictError
from services.platforms.base import Feature, PlatformError, Published
from services.publishing.run import LOOKUP_DELAY, RunLimits, publish_due
from services.security.crypto import TokenCipher
from services.store.base import NewChannel, NewPost, PostChanges

CIPHER = TokenCipher([Fernet.generate_key().decode()])
LIMITS = RunLimits(lease_seconds=90, request_timeout=5, budget_seconds=30, max_retries=3)
NOW = datetime.now(timezone.utc).replace(microsecond=0)
#: when a run may look a lost answer up (the delay, and a margin for the run's own time)
LOOK = LOOKUP_DELAY + timedelta(seconds=30)


class Lookable:
    """A platform whose posts can be looked up. ``lose``: how many publishes lose their answer;
    ``applied``: whether such a publish went out anyway. ``lookups``: errors the next lookups raise."""

    name = "lookable"
    required_credentials: tuple[str, ...] = ()
    features = frozenset({Feature.LOOKUP})

    def __init__(self, *, lose: int = 1, applied: bool = True, lookups: tuple[PlatformError, ...] = ()):
        self.lose, self.applied, self.lookup_errors = lose, applied, list(lookups)
        self.live: dict[str, int] = {}  #: idempotency key -> posts that went out
        self.sends = self.looked_up = 0

    def validate(self, content, metadata=None):
        return []

    async def publish(self, request, http):
        self.sends += 1
        if self.lose > 0:
            self.lose -= 1
            if self.applied:
                self.live[request.idempotency_key] = self.live.get(request.idempotency_key, 0) + 1
            raise PlatformError(Outcome.UNKNOWN, "http_timeout", "lookable: the answer never came")
        self.live[request.idempotency_key] = self.live.get(request.idempotency_key, 0) + 1
        return Published(platform_post_id=request.idempotency_key)

    async def lookup(self, request, http):
        self.looked_up += 1
        if self.lookup_errors:
            raise self.lookup_errors.pop(0)
        return Published(platform_post_id=request.idempotency_key) if request.idempotency_key in self.live else None


async def seed(harness, platform: str):
    user = harness.new_user()
    channel = await harness.store.create_channel(user, NewChannel(
        platform=platform, account_id="acct", name="c", credentials_encrypted=CIPHER.encrypt({})))
    post = await harness.store.create_post(user, NewPost(content=Content(text="once"), channel_ids=(channel.id,),
                                                         status=PostStatus.SCHEDULED, scheduled_at=NOW))
    return user, post


async def run(harness, platform, now, limits: RunLimits = LIMITS):
    async with httpx.AsyncClient() as http:
        return await publish_due(harness.store, {platform.name: platform}, CIPHER, http, limits, trigger="manual", now=now)


async def test_a_lost_answer_is_looked_up_later_and_the_post_counted_once(harness):
    platform = Lookable()
    user, post = await seed(harness, "lookable")
    first = await run(harness, platform, NOW)
    assert (first.awaiting_lookup, first.needs_review) == (1, 0)
    waiting = await harness.store.get_post(user, post.id)
    assert waiting.status is PostStatus.PUBLISHING
    assert waiting.targets[0].status is TargetStatus.PUBLISHING
    assert "a later run checks whether it went out" in waiting.targets[0].error
    assert (await harness.store.cron_health(now=NOW + timedelta(seconds=30))).stuck == 0  # waiting, not stuck

    early = await run(harness, platform, NOW + timedelta(seconds=30))  # before the platform would list it
    assert early.claimed == 0 and platform.looked_up == 0

    later = await run(harness, platform, NOW + LOOK)
    assert (later.published, later.reconciled) == (1, 1)
    assert platform.live == {f"herald-{post.targets[0].id}": 1} and platform.sends == 1  # never sent again
    done = await harness.store.get_post(user, post.id)
    assert done.status is PostStatus.PUBLISHED and done.targets[0].platform_post_id == f"herald-{post.targets[0].id}"


async def test_a_lost_answer_that_never_went_out_is_sent_once_more(harness):
    platform = Lookable(applied=False)
    user, post = await seed(harness, "lookable")
    await run(harness, platform, NOW)
    later = await run(harness, platform, NOW + LOOK)
    assert later.published == 1 and platform.looked_up == 1 and platform.sends == 2
    assert sum(platform.live.values()) == 1
    assert (await harness.store.get_post(user, post.id)).status is PostStatus.PUBLISHED


async def test_a_lookup_that_cannot_decide_leaves_it_for_review(harness):
    cannot = PlatformError(Outcome.UNKNOWN, "no_container_recorded", "lookable: nothing to look up by")
    platform = Lookable(lookups=(cannot,))
    user, post = await seed(harness, "lookable")
    await run(harness, platform, NOW)
    later = await run(harness, platform, NOW + LOOK)
    assert later.needs_review == 1 and platform.sends == 1
    after = await harness.store.get_post(user, post.id)
    assert after.status is PostStatus.NEEDS_REVIEW and after.targets[0].status is TargetStatus.UNKNOWN
    assert "nothing to look up by" in after.targets[0].error


async def test_a_lookup_that_fails_for_now_is_tried_again_later(harness):
    busy = PlatformError(Outcome.TRANSIENT, "http_503", "lookable: unavailable", http_status=503)
    platform = Lookable(lookups=(busy,))
    user, post = await seed(harness, "lookable")
    await run(harness, platform, NOW)
    second = await run(harness, platform, NOW + LOOK)
    assert second.awaiting_lookup == 1 and platform.sends == 1  # still maybe sent: never re-sent blindly
    assert (await harness.store.get_post(user, post.id)).status is PostStatus.PUBLISHING
    third = await run(harness, platform, NOW + 2 * LOOK + LOOK)
    assert third.published == 1 and platform.sends == 1 and platform.looked_up == 2


async def test_answers_lost_again_and_again_end_in_review_after_the_retries(harness):
    platform = Lookable(lose=99, applied=False)
    user, post = await seed(harness, "lookable")
    at = NOW
    for _ in range(LIMITS.max_retries + 1):
        summary = await run(harness, platform, at)
        assert summary.awaiting_lookup == 1
        at += LOOK
    final = await run(harness, platform, at)
    assert final.needs_review == 1
    after = await harness.store.get_post(user, post.id)
    assert after.status is PostStatus.NEEDS_REVIEW and after.targets[0].attempts == LIMITS.max_retries + 2
    assert platform.sends == LIMITS.max_retries + 2  # each re-send only after a lookup said "not there"


async def test_a_post_awaiting_its_lookup_cannot_be_edited_or_deleted(harness):
    user, post = await seed(harness, "lookable")
    await run(harness, Lookable(), NOW)
    with pytest.raises(ConflictError):
        await harness.store.update_post(user, post.id, PostChanges(content=Content(text="changed")),
                                        allowed_from=ALLOWED_FROM["edit"], action="edit")
    with pytest.raises(ConflictError):
        await harness.store.delete_post(user, post.id, allowed_from=ALLOWED_FROM["delete"])


class Keyed(Lookable):
    """A platform that dedupes on the idempotency key (no lookup): a lost answer is repeated."""

    name = "keyed"
    features = frozenset({Feature.IDEMPOTENCY_KEY})

    async def publish(self, request, http):
        self.sends += 1
        self.live[request.idempotency_key] = 1  # the platform dedupes: one post per key
        if self.lose > 0:
            self.lose -= 1
            raise PlatformError(Outcome.UNKNOWN, "http_timeout", "keyed: the answer never came")
        return Published(platform_post_id=request.idempotency_key)


async def test_a_lost_answer_on_an_idempotent_platform_is_repeated_with_the_same_key(harness):
    platform = Keyed()
    user, post = await seed(harness, "keyed")
    assert (await run(harness, platform, NOW)).awaiting_lookup == 1
    later = await run(harness, platform, NOW + LOOK)
    assert later.published == 1 and platform.sends == 2 and platform.live == {f"herald-{post.targets[0].id}": 1}
    assert (await harness.store.get_post(user, post.id)).status is PostStatus.PUBLISHED


class Processing(Lookable):
    """Like a Meta container still processing when the run must stop the call: the adapter has
    reported its container in ``progress`` and is cut off mid-poll."""

    name = "processing"
    features = frozenset({Feature.LOOKUP})

    def __init__(self):
        super().__init__(lose=0)
        self.deadlines: list[float] = []
        self.resumes: list[dict | None] = []

    async def publish(self, request, http):
        self.deadlines.append(request.deadline - time.monotonic())
        self.resumes.append(request.resume)
        if request.resume is None:
            request.progress["container_id"] = "c1"
            await asyncio.sleep(60)  # still polling when the run stops the call
        return await super().publish(request, http)

    async def lookup(self, request, http):
        self.resumes.append(request.resume)
        return None  # the container never went live


async def test_a_call_cut_off_at_its_deadline_keeps_its_progress_for_the_next_run(harness):
    platform = Processing()
    user, post = await seed(harness, "processing")
    limits = RunLimits(lease_seconds=90, request_timeout=0.3, budget_seconds=30)
    first = await run(harness, platform, NOW, limits)
    assert first.awaiting_lookup == 1
    # one deadline per call: the call's timeout, not the run's whole budget
    assert 0 < platform.deadlines[0] <= limits.request_timeout
    later = await run(harness, platform, NOW + LOOK, limits)
    assert later.published == 1
    # the lookup and the publish both got the container back: it is polled, not made again
    assert platform.resumes == [None, {"container_id": "c1"}, {"container_id": "c1"}]
    assert (await harness.store.get_post(user, post.id)).status is PostStatus.PUBLISHED
