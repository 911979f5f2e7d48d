"""The caller's activity log: what happened to their posts and channels, newest first."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import CurrentUser, RuntimeDep
from api.schemas.common import Instant
from api.schemas.errors import error_responses

router = APIRouter(tags=["activity"], redirect_slashes=False)

ERRORS = error_responses({401: "missing, expired or invalid access token"})


class ActivityOut(BaseModel):
    id: int
    post_id: UUID | None
    event: str
    details: dict[str, Any]
    created_at: Instant


class ActivityListOut(BaseModel):
    items: list[ActivityOut]


class OutboxItemOut(BaseModel):
    id: UUID
    channel_id: UUID | None
    target_id: UUID
    text: str
    media: list[dict[str, Any]]
    published_at: Instant


class OutboxListOut(BaseModel):
    items: list[OutboxItemOut]


@router.get("/activity", response_model=ActivityListOut, responses=ERRORS)
async def list_activity(
    user: CurrentUser, rt: RuntimeDep, post_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ActivityListOut:
    found = await rt.store.list_activity(user, post_id=post_id, limit=limit)
    return ActivityListOut(items=[ActivityOut(**a.__dict__) for a in found])


@router.get("/sandbox/outbox", response_model=OutboxListOut, responses=ERRORS)
async def sandbox_outbox(user: CurrentUser, rt: RuntimeDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> OutboxListOut:
    """What the sandbox platform has 'published' for the caller, newest first."""
    found = await rt.store.list_outbox(user, limit=limit)
    return OutboxListOut(items=[
        OutboxItemOut(id=e.id, channel_id=e.channel_id, target_id=e.target_id, text=e.text,
                      media=[{"type": m.type, "url": m.url, **({"alt": m.alt} if m.alt else {})} for m in e.media],
                      published_at=e.published_at)
        for e in found
    ])


