"""The sandbox platform: 'publishes' into the local outbox, so Herald runs with no accounts.

A channel's ``metadata.fail`` (``"permanent"``, ``"transient"``, ``"rate_limited"``, ``"auth"``,
``"unknown"``) makes every publish fail with that outcome: a way to watch failures and retries locally.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

import httpx

from services import clock
from services.domain.models import Content, OutboxEntry, Outcome
from services.platforms.base import AccountInfo, Feature, PlatformError, Problem, Published, PublishRequest

MAX_TEXT = 10_000
MAX_MEDIA = 10
MEDIA_TYPES = ("image", "video")
#: the outcomes ``metadata.fail`` can ask for
FAILURES = tuple(o.value for o in Outcome if o is not Outcome.PUBLISHED)


class Outbox(Protocol):
    async def deliver_to_outbox(self, entry: OutboxEntry) -> None: ...


class SandboxPlatform:
    name = "sandbox"
    features = frozenset({Feature.VERIFY})
    required_credentials: tuple[str, ...] = ()

    def __init__(self, outbox: Outbox, *, public_url: str = "http://127.0.0.1:8000"):
        self._outbox = outbox
        self._public_url = public_url.rstrip("/")

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        problems = []
        if not content.text.strip() and not content.media:
            problems.append(Problem("content.text", "sandbox: a post needs text or media"))
        if len(content.text) > MAX_TEXT:
            problems.append(Problem("content.text", f"sandbox: text is {len(content.text)} characters; the limit is {MAX_TEXT}"))
        if len(content.media) > MAX_MEDIA:
            problems.append(Problem("content.media", f"sandbox: {len(content.media)} media items; the limit is {MAX_MEDIA}"))
        return problems

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        """Nothing to ask a platform; a ``metadata.fail`` typo is refused now, not met as a puzzling failure later."""
        failure = metadata.get("fail")
        if failure is not None and failure not in FAILURES:
            raise PlatformError(Outcome.PERMANENT, "bad_metadata", f"metadata.fail must be one of {', '.join(FAILURES)}",
                                details={"field": "metadata.fail"})
        return AccountInfo(account_id="", name="")  # keep what the user typed

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        failure = request.metadata.get("fail")
        if failure:
            raise PlatformError(
                outcome=Outcome(failure), code=f"sandbox_{failure}",
                message=f"sandbox channel is set to fail with {failure!r}",
                retry_after_seconds=60 if failure == "rate_limited" else None,
            )
        entry = OutboxEntry(
            id=uuid.uuid4(), channel_id=request.channel_id, target_id=request.target_id, text=request.content.text,
            media=request.content.media, published_at=clock.utcnow(),
        )
        await self._outbox.deliver_to_outbox(entry)
        return Published(platform_post_id=str(entry.id), url=f"{self._public_url}/api/v1/sandbox/outbox#{entry.id}")
