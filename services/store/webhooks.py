"""The store's webhook calls (endpoints, the delivery outbox, the delivery log) over the SQL
functions of ``20261201000400_events.sql``; mixed into ``RpcStore``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.domain.events import ClaimedDelivery, DeliveryAttempt, DeliveryLogEntry, Event, WebhookEndpoint
from services.domain.models import User
from services.store.rows import format_time, parse_time, required_time


class WebhookCalls:
    """Store methods for event webhooks; the class using it supplies ``_as_user`` and ``_as_service``."""

    async def _as_user(self, user: User, fn: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    async def _as_service(self, fn: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    async def create_webhook(self, user: User, *, url: str, events: tuple[str, ...], description: str | None,
                             secret_encrypted: str) -> WebhookEndpoint:
        return endpoint_from_row(await self._as_user(user, "herald_create_webhook_v1", {
            "p_url": url, "p_events": list(events), "p_description": description,
            "p_secret_encrypted": secret_encrypted}))

    async def list_webhooks(self, user: User) -> list[WebhookEndpoint]:
        return [endpoint_from_row(r) for r in await self._as_user(user, "herald_list_webhooks_v1")]

    async def get_webhook(self, user: User, endpoint_id: UUID) -> WebhookEndpoint:
        return endpoint_from_row(await self._as_user(user, "herald_get_webhook_v1", {"p_endpoint_id": str(endpoint_id)}))

    async def update_webhook(self, user: User, endpoint_id: UUID, *, events: tuple[str, ...] | None = None,
                             description: str | None = None, status: str | None = None) -> WebhookEndpoint:
        return endpoint_from_row(await self._as_user(user, "herald_update_webhook_v1", {
            "p_endpoint_id": str(endpoint_id), "p_events": list(events) if events is not None else None,
            "p_description": description, "p_status": status}))

    async def delete_webhook(self, user: User, endpoint_id: UUID) -> None:
        await self._as_user(user, "herald_delete_webhook_v1", {"p_endpoint_id": str(endpoint_id)})

    async def test_webhook(self, user: User, endpoint_id: UUID) -> ClaimedDelivery:
        """A test event for the endpoint, its delivery leased to the caller to send at once. The
        user's call makes it; the service reads it back, secret included (never the user's role)."""
        made = await self._as_user(user, "herald_test_webhook_v1", {"p_endpoint_id": str(endpoint_id)})
        return delivery_from_row(await self._as_service("herald_delivery_v1", {"p_delivery_id": str(made["delivery_id"])}))

    async def list_deliveries(self, user: User, endpoint_id: UUID, *, limit: int = 50,
                              offset: int = 0) -> tuple[list[DeliveryLogEntry], int]:
        page = await self._as_user(user, "herald_list_deliveries_v1", {
            "p_endpoint_id": str(endpoint_id), "p_limit": limit, "p_offset": offset})
        return [log_entry_from_row(r) for r in page["items"]], int(page["total"])

    async def claim_deliveries(self, *, now: datetime, limit: int, lease_seconds: int,
                               per_endpoint: int = 10) -> list[ClaimedDelivery]:
        found = await self._as_service("herald_claim_deliveries_v1", {
            "p_now": format_time(now), "p_limit": limit, "p_lease_seconds": lease_seconds,
            "p_per_endpoint": per_endpoint})
        return [delivery_from_row(r) for r in found]

    async def record_deliveries(self, attempts: list[DeliveryAttempt], *, now: datetime) -> None:
        if not attempts:
            return
        await self._as_service("herald_record_deliveries_v1", {
            "p_attempts": [{
                "delivery_id": str(a.delivery_id), "succeeded": a.succeeded, "http_status": a.http_status,
                "duration_ms": a.duration_ms, "error": a.error, "attempted_at": format_time(a.attempted_at),
                "next_attempt_at": format_time(a.next_attempt_at), "disable_reason": a.disable_reason,
            } for a in attempts],
            "p_now": format_time(now),
        })


def endpoint_from_row(row: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=UUID(str(row["id"])), user_id=UUID(str(row["user_id"])), url=row["url"], events=tuple(row["events"]),
        description=row.get("description"), status=row["status"], disabled_reason=row.get("disabled_reason"),
        failing_since=parse_time(row.get("failing_since")), created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
    )


def delivery_from_row(row: dict[str, Any]) -> ClaimedDelivery:
    endpoint, event = row["endpoint"], row["event"]
    return ClaimedDelivery(
        id=UUID(str(row["id"])), attempts=int(row["attempts"]), endpoint_id=UUID(str(endpoint["id"])),
        url=endpoint["url"], secret_encrypted=endpoint["secret_encrypted"],
        failing_since=parse_time(endpoint.get("failing_since")),
        event=Event(id=UUID(str(event["id"])), type=event["type"], created_at=required_time(event["created_at"]),
                    subject=event["subject"]),
    )


def log_entry_from_row(row: dict[str, Any]) -> DeliveryLogEntry:
    return DeliveryLogEntry(
        id=int(row["id"]), delivery_id=UUID(str(row["delivery_id"])), event_id=UUID(str(row["event_id"])),
        event_type=row["event_type"], attempt=int(row["attempt"]), succeeded=bool(row["succeeded"]),
        http_status=row.get("http_status"), duration_ms=row.get("duration_ms"), error=row.get("error"),
        attempted_at=required_time(row["attempted_at"]), delivery_status=row["delivery_status"],
        next_attempt_at=parse_time(row.get("next_attempt_at")) if row["delivery_status"] == "pending" else None,
    )
