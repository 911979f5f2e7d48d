"""Posts: create, list, read, edit, delete, schedule, unschedule, runs and statistics."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentUser, RuntimeDep, media_prober, run_limits
from api.schemas.analytics import PostAnalyticsOut
from api.schemas.common import InstantIn
from api.schemas.discussion import CommentIn, CommentOut, CommentPageOut, HistoryEntryOut, HistoryPageOut
from api.schemas.errors import error_responses
from api.schemas.posts import (
    ApproveIn,
    BulkCreate,
    CalendarOut,
    PostCreate,
    PostListOut,
    PostOut,
    PostPageOut,
    PostPatch,
    PostReplace,
    PublishLagOut,
    RejectIn,
    ResolveIn,
    RunListOut,
    RunOut,
    ScheduleIn,
    StatisticsOut,
)
from services import clock, posts
from services.domain.models import PostStatus
from services.errors import ValidationError
from services.publishing.run import publish_due
from services.scheduling import recurrence
from services.scheduling.calendar import calendar_days
from services.store.base import PostFilter

#: the store's integer range (herald_list_posts_v1 takes an integer offset): beyond it, a 422 naming
#: the field rather than a database error
MAX_OFFSET = 2**31 - 1

router = APIRouter(prefix="/posts", tags=["posts"], redirect_slashes=False)

AUTH = {401: "missing, expired or invalid access token",
        403: "your role in this workspace does not allow this (the message names the role it needs)"}
ERRORS = error_responses({**AUTH, 404: "no such post", 409: "the post's state forbids this"})
LIST_ERRORS = error_responses(AUTH)
COMMENT_ERRORS = error_responses({**AUTH, 404: "no such post"})
CREATE_ERRORS = error_responses({**AUTH, 409: "the Idempotency-Key was used before with another body"})


_STATUS = "|".join(s.value for s in PostStatus)
#: one status or several, comma-separated, or empty for any (the OpenAPI states it; nothing else is taken)
STATUSES = f"^(({_STATUS})(,({_STATUS}))*)?$"


def _statuses(raw: str | None) -> tuple[PostStatus, ...]:
    return tuple(PostStatus(s) for s in raw.split(",")) if raw else ()


def _input(body: PostCreate) -> posts.PostInput:
    return posts.PostInput(content=body.content.to_domain(), channel_ids=tuple(body.channel_ids),
                           scheduled_at=body.scheduled_at, timezone=body.timezone, rrule=body.rrule)


def _request_hash(body: BaseModel) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                              description="a retried request with the same key returns the first answer")]


async def _create(rt: RuntimeDep, user: CurrentUser, items: list[posts.PostInput], body: BaseModel, response: Response,
                  idempotency_key: str | None) -> list:
    created, replayed = await posts.create_posts(rt.store, rt.platforms, user, items, now=clock.utcnow(),
                                                 idempotency_key=idempotency_key, request_hash=_request_hash(body),
                                                 allow_private=rt.settings.herald_allow_private_hosts,
                                                 prober=media_prober(rt))
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return created


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PostOut, responses=CREATE_ERRORS)
async def create_post(body: PostCreate, user: CurrentUser, rt: RuntimeDep, response: Response,
                      idempotency_key: IdempotencyKey = None) -> PostOut:
    """Create a draft (no `scheduled_at`) or a scheduled post, with one target per channel."""
    created = await _create(rt, user, [_input(body)], body, response, idempotency_key)
    return PostOut.of(created[0])


@router.post("/bulk", status_code=status.HTTP_201_CREATED, response_model=PostListOut, responses=CREATE_ERRORS)
async def create_posts_in_bulk(body: BulkCreate, user: CurrentUser, rt: RuntimeDep, response: Response,
                               idempotency_key: IdempotencyKey = None) -> PostListOut:
    """Create up to 100 posts, all or nothing; a 422 lists every invalid item under `items`."""
    items = [_input(p) for p in body.posts]
    created = await _create(rt, user, items, body, response, idempotency_key)
    return PostListOut(items=[PostOut.of(p) for p in created])


@router.get("/calendar", response_model=CalendarOut, responses=LIST_ERRORS)
async def calendar(
    user: CurrentUser,
    rt: RuntimeDep,
    from_: Annotated[InstantIn, Query(alias="from")],
    to: InstantIn,
    timezone: Annotated[str, Query(max_length=64)] = "UTC",
) -> CalendarOut:
    """Posts in [from, to] by local day in `timezone`, with future occurrences of series (virtual).

    Occurrences per series and items in all are capped: `truncated` says when some were left
    out, and `next_from` and `capped_series` which.
    """
    start, end = recurrence.to_utc(from_, timezone, field="from"), recurrence.to_utc(to, timezone, field="to")
    if end < start or end - start > timedelta(days=366):
        raise ValidationError("to must be after from, and the range at most 366 days", field="to")
    found = await _all_posts(rt, user, PostFilter(scheduled_from=start, scheduled_to=end, limit=100))
    found += await _all_posts(rt, user, PostFilter(statuses=(PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL),
                                                   recurring=True, scheduled_to=end, limit=100))
    # CPU work (bounded, but up to a second for thousands of series): in a worker thread, so that
    # the event loop keeps serving other requests meanwhile
    listing = await run_in_threadpool(calendar_days, found, start=start, end=end, tz_name=timezone)
    return CalendarOut.of(timezone, listing)


async def _all_posts(rt: RuntimeDep, user: CurrentUser, query: PostFilter, *, cap: int = 2000) -> list:
    found: list = []
    while len(found) < cap:
        page = await rt.store.list_posts(user, replace(query, offset=len(found)))
        found += page.items
        if len(found) >= page.total or not page.items:
            break
    return found


@router.get("", response_model=PostPageOut, responses=LIST_ERRORS)
async def list_posts(
    user: CurrentUser,
    rt: RuntimeDep,
    status_: Annotated[str | None, Query(alias="status", pattern=STATUSES,
                                         description="one status, or several comma-separated")] = None,
    platform: str | None = None,
    channel_id: UUID | None = None,
    from_: Annotated[InstantIn | None, Query(alias="from", description="scheduled at or after")] = None,
    to: Annotated[InstantIn | None, Query(description="scheduled at or before")] = None,
    updated_since: Annotated[InstantIn | None, Query(description="changed at or after (cheap polling)")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="posts to skip (at most 2^31 - 1)")] = 0,
) -> PostPageOut:
    """The caller's posts, newest first, with the total that match."""
    for name, value in (("from", from_), ("to", to), ("updated_since", updated_since)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(f"{name} needs a UTC offset, e.g. 2026-01-01T00:00:00Z", field=name)
    query = PostFilter(statuses=_statuses(status_), platform=platform, channel_id=channel_id, scheduled_from=from_,
                       scheduled_to=to, updated_since=updated_since, limit=limit, offset=offset)
    page = await rt.store.list_posts(user, query)
    return PostPageOut(items=[PostOut.of(p) for p in page.items], total=page.total, limit=limit, offset=offset)


@router.get("/statistics", response_model=StatisticsOut, responses=LIST_ERRORS)
async def post_statistics(
    user: CurrentUser, rt: RuntimeDep,
    window_hours: Annotated[int, Query(ge=1, le=24 * 90, description="publish lag over the last N hours")] = 24,
) -> StatisticsOut:
    """Counts of the caller's posts by status and of targets by platform and status, and the
    publish lag (p50, p95, max) of targets published in the window."""
    stats = await rt.store.post_statistics(user, lag_since=clock.utcnow() - timedelta(hours=window_hours))
    lag = stats.publish_lag
    return StatisticsOut(total=stats.total, by_status=stats.by_status, by_platform=stats.by_platform,
                         publish_lag=PublishLagOut(since=lag.since, count=lag.count, p50_ms=lag.p50_ms,
                                                   p95_ms=lag.p95_ms, max_ms=lag.max_ms))


@router.get("/{post_id:uuid}", response_model=PostOut, responses=ERRORS)
async def get_post(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """One post with its targets."""
    return PostOut.of(await rt.store.get_post(user, post_id))


@router.patch("/{post_id:uuid}", response_model=PostOut, responses=ERRORS)
async def update_post(
    post_id: UUID, body: PostPatch, user: CurrentUser, rt: RuntimeDep,
    scope: Annotated[Literal["series", "occurrence"], Query(
        description="for a recurring post: change the whole series (default) or this occurrence only")] = "series",
) -> PostOut:
    """Edit content, channels, time, time zone or rule; 409 once publishing has begun."""
    post = await posts.update_post(rt.store, rt.platforms, user, post_id, body.changes(), now=clock.utcnow(),
                                   occurrence_only=scope == "occurrence",
                                   allow_private=rt.settings.herald_allow_private_hosts, prober=media_prober(rt))
    return PostOut.of(post)


@router.put("/{post_id:uuid}", response_model=PostOut, responses=ERRORS)
async def replace_post(post_id: UUID, body: PostReplace, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """Replace content, channels, time, time zone and rule with the body (a field left out takes its
    default, as in `POST /posts`); for a recurring post, the whole series. The rules are PATCH's: the
    status stays (a scheduled post without a time becomes a draft), and 409 once publishing has begun.
    Aliases: the whole post as `GET` answers it is accepted (its read-only fields are ignored), and
    `status: "scheduled"` schedules it at its time, `"draft"` unschedules it."""
    fields = {"content": body.content.to_domain(), "channel_ids": tuple(body.channel_ids),
              "scheduled_at": body.scheduled_at, "timezone": body.timezone, "rrule": body.rrule,
              "status": body.status}
    return PostOut.of(await posts.update_post(rt.store, rt.platforms, user, post_id, fields, now=clock.utcnow(),
                                              allow_private=rt.settings.herald_allow_private_hosts,
                                              prober=media_prober(rt)))


@router.delete("/{post_id:uuid}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def delete_post(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> Response:
    """Delete a post that is not being or has not been published."""
    await posts.delete_post(rt.store, user, post_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{post_id:uuid}/schedule", response_model=PostOut, responses=ERRORS)
async def schedule_post(post_id: UUID, user: CurrentUser, rt: RuntimeDep, body: ScheduleIn | None = None) -> PostOut:
    """Schedule a draft, or move a scheduled, failed or cancelled post to a (new) future time."""
    body = body or ScheduleIn()
    post = await posts.schedule_post(rt.store, rt.platforms, user, post_id, scheduled_at=body.scheduled_at,
                                     timezone=body.timezone, now=clock.utcnow(), prober=media_prober(rt))
    return PostOut.of(post)


@router.post("/{post_id:uuid}/unschedule", response_model=PostOut, responses=ERRORS)
async def unschedule_post(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """Turn a scheduled post back into a draft."""
    return PostOut.of(await posts.unschedule_post(rt.store, user, post_id))


@router.post("/{post_id:uuid}/publish", response_model=PostOut, responses=ERRORS)
async def publish_now(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """Publish a draft or scheduled post now, through the same engine and guarantees as the cron."""
    now = clock.utcnow()
    await posts.make_due_now(rt.store, rt.platforms, user, post_id, now=now)
    await publish_due(rt.store, rt.platforms, rt.cipher, rt.http, run_limits(rt.settings), trigger="manual",
                      now=now, post_ids=(post_id,))
    return PostOut.of(await rt.store.get_post(user, post_id))


@router.post("/{post_id:uuid}/retry", response_model=PostOut, responses=ERRORS)
async def retry_post(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """A failed or partial post's unpublished targets become due now (the next run publishes them)."""
    return PostOut.of(await posts.retry_post(rt.store, user, post_id))


@router.post("/{post_id:uuid}/approve", response_model=PostOut, responses=ERRORS)
async def approve_post(post_id: UUID, user: CurrentUser, rt: RuntimeDep, body: ApproveIn | None = None) -> PostOut:
    """Approve a post waiting for approval (owners, admins, members with the approver flag): it is
    scheduled at its time, or with `publish_now` published at once, through the same engine and
    guarantees as the cron (as `POST /posts/{id}/publish`). A post whose time has passed needs
    `publish_now: true` (else 409 `time_passed`), so a stale post never goes out by surprise."""
    publish_now = body.publish_now if body is not None else False
    approved = await posts.approve_post(rt.store, user, post_id, publish_now=publish_now)
    if not publish_now:
        return PostOut.of(approved)
    await publish_due(rt.store, rt.platforms, rt.cipher, rt.http, run_limits(rt.settings), trigger="manual",
                      now=clock.utcnow(), post_ids=(post_id,))
    return PostOut.of(await rt.store.get_post(user, post_id))


@router.post("/{post_id:uuid}/reject", response_model=PostOut, responses=ERRORS)
async def reject_post(post_id: UUID, body: RejectIn, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """Send a post waiting for approval back to draft, with a comment saying why (it joins the post's comments)."""
    return PostOut.of(await posts.reject_post(rt.store, user, post_id, comment=body.comment))


@router.post("/{post_id:uuid}/resolve", response_model=PostOut, responses=ERRORS)
async def resolve_target(post_id: UUID, body: ResolveIn, user: CurrentUser, rt: RuntimeDep) -> PostOut:
    """Settle a target whose outcome is unknown, after checking the platform by hand."""
    return PostOut.of(await rt.store.resolve_target(user, post_id, body.target_id, published=body.outcome == "published",
                                                    url=body.platform_post_url))


@router.get("/{post_id:uuid}/runs", response_model=RunListOut, responses=ERRORS)
async def list_runs(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> RunListOut:
    """Every publish attempt of this post, per target, oldest first."""
    return RunListOut(items=[RunOut.of(r) for r in await rt.store.list_runs(user, post_id)])


@router.get("/{post_id}/analytics", response_model=PostAnalyticsOut, responses=ERRORS)
async def post_analytics(post_id: UUID, user: CurrentUser, rt: RuntimeDep) -> PostAnalyticsOut:
    """Engagement per target: the latest reading and every reading (hourly in the first day after
    publishing, daily until day 30), and the totals of the latest ones."""
    return PostAnalyticsOut.of(await rt.store.get_post_analytics(user, post_id))


Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="entries to skip (at most 2^31 - 1)")]


@router.post("/{post_id:uuid}/comments", status_code=status.HTTP_201_CREATED, response_model=CommentOut,
             responses=COMMENT_ERRORS)
async def add_comment(post_id: UUID, body: CommentIn, user: CurrentUser, rt: RuntimeDep) -> CommentOut:
    """Comment on the post (for a reviewer); the activity log records it."""
    return CommentOut.of(await rt.store.add_comment(user, post_id, body.body))


@router.get("/{post_id:uuid}/comments", response_model=CommentPageOut, responses=COMMENT_ERRORS)
async def list_comments(post_id: UUID, user: CurrentUser, rt: RuntimeDep, limit: Limit = 50,
                        offset: Offset = 0) -> CommentPageOut:
    """The post's comments, oldest first, with how many there are."""
    items, total = await rt.store.list_comments(user, post_id, limit=limit, offset=offset)
    return CommentPageOut(items=[CommentOut.of(c) for c in items], total=total)


@router.get("/{post_id:uuid}/history", response_model=HistoryPageOut, responses=COMMENT_ERRORS)
async def post_history(post_id: UUID, user: CurrentUser, rt: RuntimeDep, limit: Limit = 50,
                       offset: Offset = 0) -> HistoryPageOut:
    """Every change of the post's content, time (scheduled_at, timezone, rrule) and status, oldest first,
    with who made it (null: Herald's publish run); `before` and `after` hold only the fields that changed."""
    items, total = await rt.store.post_history(user, post_id, limit=limit, offset=offset)
    return HistoryPageOut(items=[HistoryEntryOut.of(e) for e in items], total=total)
