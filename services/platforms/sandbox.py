"""The sandbox platform: 'publishes' into the local outbox, so Herald runs with no accounts.

A channel's ``metadata.fail`` (``"permanent"``, ``"transient"``, ``"rate_limited"``, ``"auth"``,
``"unknown"``) makes every publish fail with that outcome: a way to watch failures and retries locally.
``metrics`` makes up engagement figures for a published post, so analytics can be tried with no account.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Protocol

import httpx

from services import clock
from services.domain.models import Content, OutboxEntry, Outcome
from services.platforms.base import (
    AccountInfo,
    Feature,
    Metrics,
    MetricsRequest,
    PlatformError,
    Problem,
    Published,
    PublishRequest,
)
from services.platforms.medialimits import MediaLimits

MAX_TEXT = 10_000
MAX_MEDIA = 10
MEDIA_TYPES = ("image", "video")
#: the outcomes ``metadata.fail`` can ask for
FAILURES = tuple(o.value for o in Outcome if o is not Outcome.PUBLISHED)
#: the made-up figures grow like a real post's: half of what a post will ever get arrives in its first
#: 12 hours, three quarters in a day
GROWTH_HALF_LIFE_HOURS = 12.0


#: keeps the URL: no limit
_MEDIA_LIMITS = MediaLimits("Sandbox")


class Outbox(Protocol):
    async def deliver_to_outbox(self, entry: OutboxEntry) -> None: ...


class SandboxPlatform:
    name = "sandbox"
    features = frozenset({Feature.VERIFY, Feature.METRICS})
    required_credentials: tuple[str, ...] = ()

    def __init__(self, outbox: Outbox, *, public_url: str = "http://127.0.0.1:8000"):
        self._outbox = outbox
        self._public_url = public_url.rstrip("/")

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return _MEDIA_LIMITS

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

    async def metrics(self, request: MetricsRequest, http: httpx.AsyncClient) -> Metrics:
        """Made-up figures, always the same for the same post at the same moment; no I/O.

        The post id fixes how far the post will reach (200 to 4,999 views) and how engaging it is (the
        rates below); its age, ``published_at`` to ``clock.utcnow()``, how much of that it has got so
        far. Every figure starts at 0 and only grows. No ``published_at``: age 0, all zeros.
        """
        digest = hashlib.sha256(request.platform_post_id.encode()).digest()

        def rate(byte: int, low: float, high: float) -> float:
            return low + (high - low) * digest[byte] / 255

        age_hours = 0.0
        if request.published_at is not None:
            age_hours = max(0.0, (clock.utcnow() - request.published_at).total_seconds() / 3600)
        reach = 200 + int.from_bytes(digest[:2], "big") % 4800
        impressions = int(reach * (1 - 0.5 ** (age_hours / GROWTH_HALF_LIFE_HOURS)))
        likes = int(impressions * rate(2, 0.01, 0.08))
        return Metrics(likes=likes, comments=int(likes * rate(3, 0.05, 0.25)), shares=int(likes * rate(4, 0.02, 0.15)),
                       impressions=impressions, clicks=int(impressions * rate(5, 0.005, 0.03)),
                       saves=int(likes * rate(6, 0.02, 0.10)), raw={"made_up": True, "age_hours": round(age_hours, 2)})
