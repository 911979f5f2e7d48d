"""Webhook endpoint request and response bodies. The signing secret comes out once, on creation."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Instant
from services.domain.events import EVENT_TYPES, DeliveryAttempt, DeliveryLogEntry, WebhookEndpoint

_EVENTS_DOC = f"event types to receive: {', '.join(EVENT_TYPES)}, or \"*\" for all"


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="https, on a public address; redirects are not followed")
    events: list[str] = Field(min_length=1, max_length=20, description=_EVENTS_DOC)
    description: str | None = Field(default=None, max_length=500)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[str] | None = Field(default=None, min_length=1, max_length=20, description=_EVENTS_DOC)
    description: str | None = Field(default=None, max_length=500)
    status: Literal["active", "disabled"] | None = Field(
        default=None, description="active re-enables an endpoint disabled after a day of failures; disabled pauses it")


class WebhookOut(BaseModel):
    id: UUID
    url: str
    events: list[str]
    description: str | None
    status: str = Field(description="active, or disabled (see disabled_reason)")
    disabled_reason: str | None
    failing_since: Instant | None = Field(description="the first failed delivery since the last success")
    created_at: Instant
    updated_at: Instant

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookOut:
        return cls(id=endpoint.id, url=endpoint.url, events=list(endpoint.events), description=endpoint.description,
                   status=endpoint.status, disabled_reason=endpoint.disabled_reason,
                   failing_since=endpoint.failing_since, created_at=endpoint.created_at,
                   updated_at=endpoint.updated_at)


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="the signing secret (Standard Webhooks, whsec_...): shown only now; keep it")


class WebhookListOut(BaseModel):
    items: list[WebhookOut]
    total: int


class DeliveryOut(BaseModel):
    id: int
    delivery_id: UUID
    event_id: UUID = Field(description="the webhook-id header: the same on every attempt at the event")
    event_type: str
    attempt: int
    succeeded: bool
    http_status: int | None
    duration_ms: int | None
    error: str | None
    attempted_at: Instant
    delivery_status: str = Field(description="pending (retried at next_attempt_at), delivered, or failed (given up)")
    next_attempt_at: Instant | None

    @classmethod
    def of(cls, entry: DeliveryLogEntry) -> DeliveryOut:
        return cls(**entry.__dict__)


class DeliveryPageOut(BaseModel):
    items: list[DeliveryOut]
    total: int


class TestDeliveryOut(BaseModel):
    event_id: UUID
    delivered: bool
    http_status: int | None
    duration_ms: int
    error: str | None

    @classmethod
    def of(cls, event_id: UUID, attempt: DeliveryAttempt) -> TestDeliveryOut:
        return cls(event_id=event_id, delivered=attempt.succeeded, http_status=attempt.http_status,
                   duration_ms=attempt.duration_ms, error=attempt.error)
