"""Events: what happened to a post or a channel, delivered to the user's webhook endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

#: every event type a user can subscribe to ("*" subscribes to all of them)
EVENT_TYPES = (
    "post.published",
    "post.partial",
    "post.failed",
    "post.needs_review",
    "post.retry_scheduled",
    "post.media_warning",
    "channel.needs_reconnect",
    "channel.rate_limited",
)


@dataclass(frozen=True)
class WebhookEndpoint:
    id: UUID
    user_id: UUID
    url: str
    events: tuple[str, ...]
    description: str | None
    status: str  #: "active" or "disabled"
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Event:
    id: UUID
    type: str
    created_at: datetime
    #: {"post": <post row>} or {"channel": <channel row>, ...} as the store keeps it; the API's
    #: shape is made from it at delivery
    subject: dict[str, Any]


@dataclass(frozen=True)
class ClaimedDelivery:
    """One event to one endpoint, leased to this run."""

    id: UUID
    attempts: int  #: made before this one
    endpoint_id: UUID
    url: str
    secret_encrypted: str
    failing_since: datetime | None
    event: Event


@dataclass(frozen=True)
class DeliveryAttempt:
    """How one attempt went, and what happens next (decided in pure code, recorded in one call)."""

    delivery_id: UUID
    succeeded: bool
    attempted_at: datetime
    duration_ms: int
    http_status: int | None = None
    error: str | None = None
    #: None: no further attempt (delivered, or given up)
    next_attempt_at: datetime | None = None
    #: set: the endpoint has failed for a day and is disabled, for this reason
    disable_reason: str | None = None


@dataclass(frozen=True)
class DeliveryLogEntry:
    id: int
    delivery_id: UUID
    event_id: UUID
    event_type: str
    attempt: int
    succeeded: bool
    http_status: int | None
    duration_ms: int | None
    error: str | None
    attempted_at: datetime
    delivery_status: str  #: pending (will be retried), delivered, failed (given up)
    next_attempt_at: datetime | None
