"""A run killed at each step leaves every post recoverable: nothing lost, nothing sent twice.

The run is "killed" by an exception no handler catches (like a function timeout or SIGKILL would
stop it), at: after the claim, after marking a wave as sending but before the call, during the
call (the request reached the platform, no answer came back), and after the call but before the
results were written. A later run, once the lease has expired, recovers the post.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from cryptography.fernet import Fernet

from services.domain.models import Content, PostStatus, TargetStatus
from services.platforms.base import Feature, Published
from services.platforms.sandbox import SandboxPlatform
from services.platforms.webhook import WebhookPlatform
from services.publishing.run import RunLimits, publish_due
from services.security.crypto import TokenCipher
from services.store.base import NewChannel, NewPost
from tests.support.simulator import Simulator

CIPHER = TokenCipher([Fernet.generate_key().decode()])
LIMITS = RunLimits(lease_seconds=90, request_timeout=5, budget_seconds=30)
NOW = datetime.now(timezone.utc).replace(microsecond=0)
LATER = NOW + timedelta(seconds=LIMITS.lease_seconds + 1)


class Killed(BaseException):
    """Stands for the process dying: nothing in the run may catch it."""


class KillingStore:
    """The store, except that one method dies when called."""

    def __init__(self, inner, dies_in: str | None):
        self._inner, self._dies_in = inner, dies_in

    def __getattr__(self, name):
        if name == self._dies_in:
            async def die(*args, **kwargs):
                raise Killed(name)
            return die
        return getattr(self._inner, name)


class KillingPlatform:
    """Wraps an adapter; dies before sending, or after the platform applied the request."""

    def __init__(self, inner, when: str | None):
        self._inner, self._when = inner, when
        self.name, self.required_credentials = inner.name, inner.required_credentials
        self.features = inner.features - {Feature.LOOKUP, Feature.REFRESH}  # only publish is wrapped

    def validate(self, content, metadata=None):
        return self._inner.validate(content, metadata)

    async def publish(self, request, http):
        if self._when == "before_call":
            raise Killed("before the call")
        published = await self._inner.publish(request, http)
        if self._when == "during_call":
            raise Killed("the answer never came back")
        return published


class Ledger:
    """A platform whose posts can be looked up: the reconciliation path."""

    name = "ledger"
    required_credentials: tuple[str, ...] = ()
    features = frozenset({Feature.LOOKUP})

    def __init__(self):
        self.posts: dict[str, int] = {}

    def validate(self, content, metadata=None):
        return []

    async def publish(self, request, http):
        self.posts[request.idempotency_key] = self.posts.get(request.idempotency_key, 0) + 1
        return Published(platform_post_id=request.idempotency_key, url=f"https://ledger.test/{request.target_id}")

    async def lookup(self, request, http):
        if request.idempotency_key in self.posts:
            return Published(platform_post_id=request.idempotency_key, url="https://ledger.test/found")
        return None


async def seed(harness, platform: str, metadata: dict):
    user = harness.new_user()
    channel = await harness.store.create_channel(user, NewChannel(
        platform=platform, account_id="acct", name="c", credentials_encrypted=CIPHER.encrypt({}), metadata=metadata))
    post = await harness.store.create_post(user, NewPost(content=Content(text="once"), channel_ids=(channel.id,),
                                                         status=PostStatus.SCHEDULED, scheduled_at=NOW))
    return user, post


async def run(store, platforms, now):
    async with httpx.AsyncClient(timeout=5) as http:
        return await publish_due(store, platforms, CIPHER, http, LIMITS, trigger="manual", now=now)


async def crash_then_recover(harness, platform, *, dies_in=None, when=None):
    store = KillingStore(harness.store, dies_in)
    with pytest.raises(Killed):
        await run(store, {platform.name: KillingPlatform(platform, when)}, NOW)
    assert await run(harness.store, {platform.name: platform}, NOW + timedelta(seconds=10)) is not None  # lease held
    return await run(harness.store, {platform.name: platform}, LATER)


STEPS = [
    pytest.param({"dies_in": "mark_sending"}, id="after-claim-before-marking"),
    pytest.param({"when": "before_call"}, id="marked-before-the-call"),
    pytest.param({"when": "during_call"}, id="during-the-call"),
    pytest.param({"dies_in": "record_results"}, id="after-the-call-before-the-write"),
]


@pytest.mark.parametrize("step", STEPS)
async def test_idempotent_platform_is_resent_with_the_same_key(harness, step):
    with Simulator() as receiver:
        user, post = await seed(harness, "webhook", {"url": f"{receiver.url}/hook"})
        summary = await crash_then_recover(harness, WebhookPlatform(allow_private=True), **step)
        assert summary.published == 1, summary
        keys = {r.headers["idempotency-key"] for r in receiver.received("/hook")}
        assert keys == {f"herald-{post.targets[0].id}"}  # however many requests, one key: the receiver dedupes
    after = await harness.store.get_post(user, post.id)
    assert after.status is PostStatus.PUBLISHED and after.targets[0].status is TargetStatus.PUBLISHED
    assert events_of(harness, post.id) == ["post.published"]  # the dead run recorded nothing: no event of its own


def events_of(harness, post_id) -> list[str]:
    """The outcome events stored for a post (the outbox), oldest first."""
    found = harness.sql("select e.type from herald.events e where e.subject -> 'post' ->> 'id' = %s"
                        " order by e.created_at, e.id", [str(post_id)])
    return [row[0] for row in found]


@pytest.mark.parametrize("step", STEPS)
async def test_reconcilable_platform_is_looked_up_not_resent(harness, step):
    ledger = Ledger()
    user, post = await seed(harness, "ledger", {})
    summary = await crash_then_recover(harness, ledger, **step)
    assert summary.published == 1, summary
    assert list(ledger.posts.values()) == [1]  # published exactly once
    assert (await harness.store.get_post(user, post.id)).status is PostStatus.PUBLISHED
    assert events_of(harness, post.id) == ["post.published"]


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (STEPS[0], PostStatus.PUBLISHED),  # never marked: certainly not sent, so published normally
        (STEPS[1], PostStatus.NEEDS_REVIEW),  # marked: from outside, "maybe sent"
        (STEPS[2], PostStatus.NEEDS_REVIEW),
        (STEPS[3], PostStatus.NEEDS_REVIEW),
    ],
)
async def test_platform_without_key_or_lookup_is_held_for_review_never_resent(harness, step, expected):
    user, post = await seed(harness, "sandbox", {})
    summary = await crash_then_recover(harness, SandboxPlatform(harness.store), **step.values[0])
    outbox = await harness.store.list_outbox(user)
    assert len(outbox) <= 1
    after = await harness.store.get_post(user, post.id)
    assert after.status is expected, summary
    if expected is PostStatus.NEEDS_REVIEW:
        assert after.targets[0].status is TargetStatus.UNKNOWN and summary.needs_review == 1
    else:
        assert len(outbox) == 1
    assert events_of(harness, post.id) == [f"post.{expected.value}"]


async def test_a_recovered_post_is_never_lost(harness):
    user, post = await seed(harness, "sandbox", {})
    with pytest.raises(Killed):
        await run(KillingStore(harness.store, "record_results"), {"sandbox": SandboxPlatform(harness.store)}, NOW)
    health = await harness.store.cron_health(now=LATER)
    assert health.stuck == 1  # visible while it waits for recovery
    await run(harness.store, {"sandbox": SandboxPlatform(harness.store)}, LATER)
    assert (await harness.store.cron_health(now=LATER)).stuck == 0
    assert (await harness.store.get_post(user, post.id)).status is not PostStatus.PUBLISHING
    assert uuid.UUID(str(post.id))
