"""Posts: create, list, read, edit, delete, schedule, unschedule, runs and statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentUser, RuntimeDep
from api.schemas.posts import (
    PostCreate,
    PostOut,
    PostPageOut,
    PostPatch,
    RunListOut,
    RunOut,
    ScheduleIn,
    StatisticsOut,
)
from services import clock, posts
from services.domain.models import PostStatus
from services.errors import ValidationError
from services.store.base import PostFilter

router = APIRouter(prefix="/posts", tags=["posts"])

ERRORS = {401: {"description": "missing or invalid token"}, 404: {"description": "no such post"},
          409: {"description": "the post's state forbids this"}, 422: {"description": "invalid input"}}


def _statuses(raw: str | None) -> tuple[PostStatus, ...]:
    if not raw:
        return ()
    try:
        return tuple(PostStatus(s.strip()) for s in raw.split(",") if s.strip())
    except ValueError:
        allowed = ", ".join(s.value for s in PostStatus)
        raise ValidationError(f"status must be one or more of: {allowed}", field="status") from None


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PostOut, responses=ERRORS)
async def create_post(body: PostCreate, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """Create a draft (no `scheduled_at`) or a scheduled post, with one target per channel."""
    data = posts.PostInput(content=body.content.to_domain(), channel_ids=tuple(body.channel_ids),
                           scheduled_at=body.scheduled_at, timezone=body.timezone, rrule=body.rrule)
    return PostOut.of(await posts.create_post(rt.store, rt.platforms, user, data, now=clock.utcnow()))


@router.get("", response_model=PostPageOut, responses=ERRORS)
async def list_posts(
    user: CurrentUser,
    rt: RuntimeDep,
    status_: Annotated[str | None, Query(alias="status", description="one status, or several comma-separated")] = None,
    platform: str | None = None,
    channel_id: UUID | None = None,
    from_: Annotated[datetime | None, Query(alias="from", description="scheduled at or after")] = None,
    to: Annotated[datetime | None, Query(description="scheduled at or before")] = None,
    updated_since: Annotated[datetime | None, Query(description="changed at or after (cheap polling)")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> PostPageOut:
    """The caller's posts, newest first, with the total that match."""
    for name, value in (("from", from_), ("to", to), ("updated_since", updated_since)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(f"{name} needs a UTC offset, e.g. 2026-01-01T00:00:00Z", field=name)
    query = PostFilter(statuses=_statuses(status_), platform=platform, channel_id=channel_id, scheduled_from=from_,
                       scheduled_to=to, updated_since=updated_since, limit=limit, offset=offset)
    page = await rt.store.list_posts(user, query)
    return PostPageOut(items=[PostOut.of(p) for p in page.items], total=page.total, limit=limit, offset=offset)


@router.get("/statistics", response_model=StatisticsOut, responses=ERRORS)
async def post_statistics(user: CurrentUser, rt: RuntimeDep) -> StatisticsOut:
    """Counts of the caller's posts by status, and of targets by platform and status."""
    stats = await rt.store.post_statistics(user)
    return StatisticsOut(total=stats.total, by_status=stats.by_status, by_platform=stats.by_platform)


@router.get("/{post_id}", response_model=PostOut, responses=ERRORS)
async def get_post(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """One post with its targets."""
    return PostOut.of(await rt.store.get_post(user, post_id))


@router.patch("/{post_id}", response_model=PostOut, responses=ERRORS)
@router.put("/{post_id}", response_model=PostOut, responses=ERRORS, include_in_schema=False)
async def update_post(post_id: UUID, body: PostPatch, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """Edit content, channels, time, time zone or rule; 409 once publishing has begun."""
    post = await posts.update_post(rt.store, rt.platforms, user, post_id, body.changes(), now=clock.utcnow())
    return PostOut.of(post)


@router.delete("/{post_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def delete_post(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> Response:
    """Delete a post that is not being or has not been published."""
    await posts.delete_post(rt.store, user, post_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{post_id}/schedule", response_model=PostOut, responses=ERRORS)
async def schedule_post(post_id: UUID, user: CurrentUser, rt: RuntimeDep, body: ScheduleIn | None = None) -> PostOut:
    """Schedule a draft, or move a scheduled, failed or cancelled post to a (new) future time."""
    body = body or ScheduleIn()
    post = await posts.schedule_post(rt.store, rt.platforms, user, post_id, scheduled_at=body.scheduled_at,
                                     timezone=body.timezone, now=clock.utcnow())
    return PostOut.of(post)


@router.post("/{post_id}/unschedule", response_model=PostOut, responses=ERRORS)
async def unschedule_post(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """Turn a scheduled post back into a draft."""
    return PostOut.of(await posts.unschedule_post(rt.store, user, post_id))


@router.get("/{post_id}/runs", response_model=RunListOut, responses=ERRORS)
async def list_runs(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> RunListOut:
    """Every publish attempt of this post, per target, oldest first."""
    return RunListOut(items=[RunOut.of(r) for r in await rt.store.list_runs(user, post_id)])
