"""Event webhooks: the caller's endpoints, their delivery log, and a test delivery."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentUser, RuntimeDep
from api.events import render_event
from api.schemas.errors import error_responses
from api.schemas.webhooks import (
    DeliveryOut,
    DeliveryPageOut,
    TestDeliveryOut,
    WebhookCreate,
    WebhookCreatedOut,
    WebhookListOut,
    WebhookOut,
    WebhookUpdate,
)
from services import clock
from services.events import delivery, endpoints

router = APIRouter(prefix="/webhooks", tags=["webhooks"], redirect_slashes=False)

AUTH = {401: "missing, expired or invalid access token",
        403: "your role in this workspace does not allow this (the message names the role it needs)"}
ERRORS = error_responses({**AUTH, 404: "no such webhook endpoint"})
LIST_ERRORS = error_responses(AUTH)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreatedOut, responses=LIST_ERRORS)
async def create_webhook(body: WebhookCreate, user: CurrentUser, rt: RuntimeDep) -> WebhookCreatedOut:
    """Register an endpoint; the answer carries its signing secret, the only time it is shown."""
    endpoint, secret = await endpoints.create_endpoint(
        rt.store, rt.cipher, user, url=body.url, events=body.events, description=body.description,
        allow_private=rt.settings.herald_allow_private_hosts)
    return WebhookCreatedOut(**WebhookOut.of(endpoint).model_dump(), secret=secret)


@router.get("", response_model=WebhookListOut, responses=LIST_ERRORS)
async def list_webhooks(user: CurrentUser, rt: RuntimeDep) -> WebhookListOut:
    found = await rt.store.list_webhooks(user)
    return WebhookListOut(items=[WebhookOut.of(w) for w in found], total=len(found))


@router.get("/{webhook_id}", response_model=WebhookOut, responses=ERRORS)
async def get_webhook(webhook_id: UUID, user: CurrentUser, rt: RuntimeDep) -> WebhookOut:
    return WebhookOut.of(await rt.store.get_webhook(user, webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=ERRORS)
async def update_webhook(webhook_id: UUID, body: WebhookUpdate, user: CurrentUser, rt: RuntimeDep) -> WebhookOut:
    """Change what it receives; `status: "active"` re-enables an endpoint disabled after a day of failures."""
    events = endpoints.check_events(body.events) if body.events is not None else None
    return WebhookOut.of(await rt.store.update_webhook(user, webhook_id, events=events, description=body.description,
                                                       status=body.status))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def delete_webhook(webhook_id: UUID, user: CurrentUser, rt: RuntimeDep) -> Response:
    await rt.store.delete_webhook(user, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/test", response_model=TestDeliveryOut, responses=ERRORS)
async def test_webhook(webhook_id: UUID, user: CurrentUser, rt: RuntimeDep) -> TestDeliveryOut:
    """Send a `webhook.test` event to this endpoint now, signed like every event; a failure is retried by runs."""
    claimed = await rt.store.test_webhook(user, webhook_id)
    attempt = await delivery.attempt(claimed, rt.cipher, rt.http, render_event,
                                     timeout=delivery.DeliveryLimits().timeout_seconds,
                                     allow_private=rt.settings.herald_allow_private_hosts)
    await rt.store.record_deliveries([attempt], now=clock.utcnow())
    return TestDeliveryOut.of(claimed.event.id, attempt)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPageOut, responses=ERRORS)
async def list_deliveries(
    webhook_id: UUID, user: CurrentUser, rt: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50, offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> DeliveryPageOut:
    """Every delivery attempt to this endpoint, newest first: status, HTTP code, duration, attempt."""
    items, total = await rt.store.list_deliveries(user, webhook_id, limit=limit, offset=offset)
    return DeliveryPageOut(items=[DeliveryOut.of(i) for i in items], total=total)
