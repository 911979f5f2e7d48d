"""The platform adapter contract: validate content, publish it, refresh tokens, classify failures.

An adapter knows HTTP (httpx) and its platform; it knows nothing of stores. Every failure leaves
an adapter as a ``PlatformError`` carrying an ``Outcome``, so the publish run can decide what to
do without knowing the platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import httpx

from services.domain.models import Content, Outcome


@dataclass(frozen=True)
class Problem:
    """One reason a platform would reject content: ``field`` is a path in the post body."""

    field: str
    message: str


@dataclass(frozen=True)
class PublishRequest:
    post_id: UUID
    target_id: UUID
    content: Content  #: already resolved for this platform (overrides applied)
    scheduled_at: datetime | None
    timezone: str
    channel_id: UUID
    account_id: str
    metadata: dict[str, Any]
    credentials: dict[str, Any]  #: decrypted; never log
    #: stable per target across retries; adapters send it where the platform honours one
    idempotency_key: str


@dataclass(frozen=True)
class Published:
    platform_post_id: str
    url: str | None = None
    http_status: int | None = None


@dataclass
class PlatformError(Exception):
    """A publish that did not succeed, classified."""

    outcome: Outcome
    code: str
    message: str
    http_status: int | None = None
    retry_after_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)


class Platform(Protocol):
    name: str
    #: credential fields a channel of this platform must provide
    required_credentials: tuple[str, ...]

    def validate(self, content: Content) -> list[Problem]:
        """What this platform would reject in ``content``; empty when it would accept it."""

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        """Publish, or raise PlatformError with the outcome class."""
