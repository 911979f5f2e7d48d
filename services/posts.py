"""Post use cases: validate a user's request completely, then make one store call.

Validation happens before anything is written: time zone, time, recurrence rule, channels, the
content against every targeted platform's own rules, every media URL against the rule Herald
applies before fetching one (https, public address), and (with a ``Prober``) every media file
against the targeted platforms' limits (``services.media``). The store's compare-and-set settles races.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from services.domain.models import Channel, Content, Post, PostStatus, User
from services.domain.transitions import ALLOWED_FROM, conflict_message
from services.errors import ConflictError, ValidationError
from services.media import Prober, Target, media_problems, refusal
from services.platforms.base import Feature, Platform, supports
from services.platforms.registry import platform_named
from services.platforms.urls import check_given_url, shared_resolver
from services.scheduling import recurrence
from services.store.base import UNSET, NewPost, PostChanges, Store

#: how far in the past a "scheduled" time may be (clock skew between dashboard and server)
PAST_GRACE = timedelta(seconds=30)


@dataclass(frozen=True)
class PostInput:
    """A post as the API received it; ``scheduled_at`` may be naive (then read in ``timezone``)."""

    content: Content
    channel_ids: tuple[UUID, ...] = ()
    scheduled_at: datetime | None = None
    timezone: str = "UTC"
    rrule: str | None = None


async def create_posts(
    store: Store, platforms: dict[str, Platform], user: User, items: list[PostInput], *, now: datetime,
    idempotency_key: str | None = None, request_hash: str | None = None, allow_private: bool = False,
    prober: Prober | None = None,
) -> tuple[list[Post], bool]:
    """Validate every post, then store them all or none. Returns (posts, replayed).

    Raises ValidationError for the first invalid post (``field`` prefixed ``posts.<i>.`` when more
    than one), with every item's problem listed under ``items`` for a bulk request.
    ``allow_private`` (HERALD_ALLOW_PRIVATE_HOSTS) lets media URLs be http or private addresses.
    With a ``prober`` (HERALD_MEDIA_CHECKS) each media file is also looked at and compared with the
    limits of every platform the post targets (``services.media``).
    """
    mine = {c.id: c for c in await store.list_channels(user)}
    news, problems = [], []
    for index, item in enumerate(items):
        try:
            news.append(validate_new_post(mine, platforms, item, now=now))
        except ValidationError as exc:
            problems.append((index, exc))
    refused = {i for i, _ in problems}
    checked = [i for i in range(len(items)) if i not in refused]
    media = await _media_url_problems([items[i].content for i in checked], allow_private=allow_private)
    problems += [(i, exc) for i, exc in zip(checked, media, strict=True) if exc is not None]
    if prober is not None:
        refused = {i for i, _ in problems}
        looked = [i for i in checked if i not in refused]
        files = await asyncio.gather(*(
            _media_file_problem(prober, platforms, items[i].content, [mine[c] for c in _unique(items[i].channel_ids)])
            for i in looked))
        problems += [(i, exc) for i, exc in zip(looked, files, strict=True) if exc is not None]
    problems.sort(key=lambda p: p[0])
    if problems:
        index, first = problems[0]
        if len(items) == 1:
            raise first
        raise ValidationError(
            f"post {index}: {first.message}", code=first.code, field=f"posts.{index}.{first.field}",
            details={"items": [{"index": i, "field": e.field, "code": e.code, "message": e.message} for i, e in problems]},
        )
    return await store.create_posts(user, news, idempotency_key=idempotency_key, request_hash=request_hash)


async def create_post(store: Store, platforms: dict[str, Platform], user: User, data: PostInput, *, now: datetime,
                      allow_private: bool = False, prober: Prober | None = None) -> Post:
    posts, _ = await create_posts(store, platforms, user, [data], now=now, allow_private=allow_private, prober=prober)
    return posts[0]


async def update_post(
    store: Store, platforms: dict[str, Platform], user: User, post_id: UUID, fields: dict[str, Any], *, now: datetime,
    occurrence_only: bool = False, allow_private: bool = False, prober: Prober | None = None,
) -> Post:
    """Edit the fields present in ``fields`` (content, channel_ids, scheduled_at, timezone, rrule,
    and for PUT's alias ``status``: "scheduled" schedules at the post's time, "draft" unschedules;
    its current status changes nothing).

    A null ``scheduled_at`` turns a scheduled post back into a draft. Changing only ``timezone``
    keeps the instant. 409 for a post that is publishing, published, partial or in review. With
    ``occurrence_only`` a recurring post's edit stays with this occurrence: later ones keep the
    series' content and timing (the rule itself can only change for the whole series). New content
    has its media URLs checked as at creation (``allow_private`` and ``prober`` as there), and so has
    the content of a post whose channels change or that becomes scheduled.
    """
    current = await store.get_post(user, post_id)
    if occurrence_only and "rrule" in fields:
        raise ValidationError("the rule belongs to the series: change it with scope=series", field="rrule")
    if current.status not in ALLOWED_FROM["edit"]:
        raise ConflictError(conflict_message("edit", current.status), code="invalid_state")
    tz_name = fields.get("timezone", current.timezone)
    recurrence.zone(tz_name)
    changes: dict[str, Any] = {}
    if "timezone" in fields:
        changes["timezone"] = tz_name
    scheduled_at = current.scheduled_at
    if "scheduled_at" in fields:
        scheduled_at = _instant(fields["scheduled_at"], tz_name)
        changes["scheduled_at"] = scheduled_at
        if scheduled_at is None and current.status in _WAITING:
            changes["status"] = PostStatus.DRAFT
        elif scheduled_at is not None and current.status in _WAITING:
            _check_future(scheduled_at, now)
    if fields.get("status") not in (None, current.status.value):
        changes["status"] = _wanted_status(fields["status"], scheduled_at, now)
    status = changes.get("status", current.status)
    if "rrule" in fields or "scheduled_at" in fields or "timezone" in fields:
        rule = fields.get("rrule", current.rrule)
        checked = _check_rule(rule, scheduled_at or now, tz_name)
        if "rrule" in fields:
            changes["rrule"] = checked
    channel_ids = _unique(fields["channel_ids"]) if "channel_ids" in fields else tuple(
        t.channel_id for t in current.targets if t.channel_id is not None and t.status.value != "cancelled"
    )
    if "channel_ids" in fields:
        changes["channel_ids"] = channel_ids
    content = fields.get("content", current.content)
    if "content" in fields:
        changes["content"] = content
    channels: list[Channel] | None = None
    if "content" in fields or "channel_ids" in fields:
        channels = await _owned_channels(store, user, channel_ids, required=status in _WAITING)
        _check_content(platforms, content, channels)
    if "content" in fields:
        [problem] = await _media_url_problems([content], allow_private=allow_private)
        if problem is not None:
            raise problem
    if prober is not None and _media_urls(content) and (channels is not None or status is not current.status):
        if channels is None:
            channels = await _owned_channels(store, user, channel_ids, required=False)
        problem = await _media_file_problem(prober, platforms, content, channels)
        if problem is not None:
            raise problem
    if not changes:
        return current
    if occurrence_only and current.rrule:
        changes["occurrence_only"] = True
    return await store.update_post(user, post_id, PostChanges(**changes), allowed_from=ALLOWED_FROM["edit"], action="edit")


#: a post with a time that waits to be published (approved or not yet)
_WAITING = (PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL)


def _wanted_status(wanted: str, scheduled_at: datetime | None, now: datetime) -> PostStatus:
    """The status an edit asks for (PUT's ``status``): draft, or scheduled at a future time."""
    if wanted == PostStatus.DRAFT.value:
        return PostStatus.DRAFT
    if wanted != PostStatus.SCHEDULED.value:
        raise ValidationError(f'status can be set to "draft" or "scheduled" here, not {wanted!r}', field="status")
    if scheduled_at is None:
        raise ValidationError("scheduled_at is required to schedule the post", field="scheduled_at")
    _check_future(scheduled_at, now)
    return PostStatus.SCHEDULED


async def schedule_post(
    store: Store, platforms: dict[str, Platform], user: User, post_id: UUID,
    *, scheduled_at: datetime | None, timezone: str | None, now: datetime, prober: Prober | None = None,
) -> Post:
    """Schedule a draft (or reschedule a scheduled, failed or cancelled post) at a future time; with
    a ``prober``, its media files are looked at first (as at creation)."""
    current = await store.get_post(user, post_id)
    if current.status not in ALLOWED_FROM["schedule"]:
        raise ConflictError(conflict_message("schedule", current.status), code="invalid_state")
    tz_name = timezone or current.timezone
    recurrence.zone(tz_name)
    at = _instant(scheduled_at, tz_name) if scheduled_at is not None else current.scheduled_at
    if at is None:
        raise ValidationError("scheduled_at is required: this post has no time yet", field="scheduled_at")
    _check_future(at, now)
    _check_rule(current.rrule, at, tz_name)
    live = tuple(t.channel_id for t in current.targets if t.channel_id is not None)
    channels = await _owned_channels(store, user, live, required=True)
    _check_content(platforms, current.content, channels)
    if prober is not None:
        problem = await _media_file_problem(prober, platforms, current.content, channels)
        if problem is not None:
            raise problem
    return await store.update_post(
        user, post_id, PostChanges(status=PostStatus.SCHEDULED, scheduled_at=at, timezone=tz_name),
        allowed_from=ALLOWED_FROM["schedule"], action="schedule",
    )


async def unschedule_post(store: Store, user: User, post_id: UUID) -> Post:
    """Turn a scheduled post back into a draft (its time is kept)."""
    return await store.update_post(user, post_id, PostChanges(status=PostStatus.DRAFT),
                                   allowed_from=ALLOWED_FROM["unschedule"], action="unschedule")


async def delete_post(store: Store, user: User, post_id: UUID) -> None:
    await store.delete_post(user, post_id, allowed_from=ALLOWED_FROM["delete"])


def _unique(ids: tuple[UUID, ...] | list[UUID]) -> tuple[UUID, ...]:
    return tuple(dict.fromkeys(ids))


def _instant(moment: datetime | None, tz_name: str) -> datetime | None:
    recurrence.zone(tz_name)
    return None if moment is None else recurrence.to_utc(moment, tz_name)


def _check_future(at: datetime | None, now: datetime) -> None:
    if at is not None and at < now - PAST_GRACE:
        raise ValidationError(
            f"scheduled_at {at.isoformat()} is in the past; schedule a future time (or publish now)",
            code="in_the_past", field="scheduled_at",
        )


def _check_rule(rule: str | None, start: datetime, tz_name: str) -> str | None:
    if rule is None or rule is UNSET:
        return None
    recurrence.parse_rule(rule, start=start, tz_name=tz_name)
    return recurrence.normalize_rule(rule)


async def _owned_channels(store: Store, user: User, ids: tuple[UUID, ...], *, required: bool) -> list[Channel]:
    if required and not ids:
        raise ValidationError("a scheduled post needs at least one channel", field="channel_ids")
    if not ids:
        return []
    mine = {c.id: c for c in await store.list_channels(user)}
    for channel_id in ids:
        if channel_id not in mine:
            raise ValidationError(f"channel {channel_id} not found", code="unknown_channel", field="channel_ids")
    return [mine[i] for i in ids]


def _check_content(platforms: dict[str, Platform], content: Content, channels: list[Channel]) -> None:
    _refuse_nul(content)
    for name in content.platforms:
        platform_named(platforms, name, field=f"content.platforms.{name}")
    for channel in channels:
        platform = platform_named(platforms, channel.platform, field="channel_ids")
        problems = platform.validate(content.for_platform(channel.platform), channel.metadata)
        if problems:
            first = problems[0]
            raise ValidationError(first.message, code="content_rejected",
                                  field=_request_field(first.field, content.platforms.get(channel.platform) or {},
                                                       channel.platform))
        _check_steps(platform, content, channel)


def _check_steps(platform: Platform, content: Content, channel: Channel) -> None:
    """A thread and a first comment: taken by this platform, and every part within its limits (each
    part is checked as a post of its own: text length, media count and types)."""
    name = channel.platform
    if content.thread and not supports(platform, Feature.THREAD):
        raise ValidationError(f"{name}: threads cannot be published there (x, threads, bluesky and mastodon take "
                              "them); remove content.thread or this channel", code="content_rejected",
                              field="content.thread")
    if content.first_comment is not None and not supports(platform, Feature.FIRST_COMMENT):
        raise ValidationError(f"{name}: a first comment cannot be posted there (instagram, facebook, linkedin, x and "
                              "threads take one); remove content.first_comment or this channel",
                              code="content_rejected", field="content.first_comment")
    parts = [(f"content.thread[{i}]", Content(text=p.text, media=p.media)) for i, p in enumerate(content.thread)]
    if content.first_comment is not None and supports(platform, Feature.THREAD):  # a reply: a post's limits
        parts.append(("content.first_comment", Content(text=content.first_comment)))
    for where, part in parts:
        problems = [p for p in platform.validate(part, channel.metadata) if p.field.startswith("content.")]
        if problems:
            first = problems[0]
            field = where if where == "content.first_comment" else where + first.field.removeprefix("content")
            raise ValidationError(f"{first.message} ({where})", code="content_rejected", field=field)


def _refuse_nul(content: Content) -> None:
    """No platform takes a NUL character, and Postgres cannot store one in JSON."""
    texts = [("content.text", content.text)]
    texts += [(f"content.media[{i}].{k}", getattr(m, k) or "") for i, m in enumerate(content.media) for k in ("url", "alt")]
    for name, override in content.platforms.items():  # its text and options (TikTok's title, YouTube's tags)
        texts += [(f"content.platforms.{name}.{key}", value) for key, value in override.items() if isinstance(value, str)]
        texts += [(f"content.platforms.{name}.tags[{i}]", str(tag)) for i, tag in enumerate(override.get("tags") or ())]
    texts += [(f"content.thread[{i}].text", part.text) for i, part in enumerate(content.thread)]
    texts += [(f"content.thread[{i}].media[{j}].{k}", getattr(m, k) or "")
              for i, part in enumerate(content.thread) for j, m in enumerate(part.media) for k in ("url", "alt")]
    texts += [("content.first_comment", content.first_comment or "")]
    for field, text in texts:
        if "\x00" in text:
            raise ValidationError("text cannot contain a NUL character (\\u0000)", field=field)


def _media_urls(content: Content) -> list[tuple[str, str]]:
    """(field, url) of every media item in the request: the shared ones, then each override's."""
    found = [(f"content.media[{i}].url", m.url) for i, m in enumerate(content.media)]
    found += [(f"content.thread[{i}].media[{j}].url", m.url)
              for i, part in enumerate(content.thread) for j, m in enumerate(part.media)]
    for name, override in content.platforms.items():
        found += [(f"content.platforms.{name}.media[{i}].url", str(m.get("url") or ""))
                  for i, m in enumerate(override.get("media") or ())]
    return found


async def _media_url_problems(contents: list[Content], *, allow_private: bool) -> list[ValidationError | None]:
    """For each content, its first media URL that Herald would refuse to fetch, as a ValidationError; else None.

    The rule is the publish path's own (check_public_url): https, and a host whose every address is
    public. Every URL is checked at once, each host looked up once (off the event loop, bounded by
    DNS_TIMEOUT_SECONDS). A host that does not resolve, or not in time, is not refused: it may not
    exist yet (a bucket set up before the post goes out) or the resolver may be down for a moment;
    at publish time Herald checks the URL again before each fetch of its own, and a platform that
    fetches it itself fails the post if it is still unreachable.
    """
    resolver = shared_resolver()
    fields = [_media_urls(content) for content in contents]
    answers = await asyncio.gather(*(
        check_given_url(url, allow_private=allow_private, field=field, resolver=resolver)
        for found in fields for field, url in found
    ), return_exceptions=True)
    in_order = iter(answers)
    problems: list[ValidationError | None] = []
    for found in fields:
        refusals = [_media_refusal(next(in_order)) for _ in found]
        problems.append(next((r for r in refusals if r is not None), None))
    return problems


async def _media_file_problem(prober: Prober, platforms: dict[str, Platform], content: Content,
                              channels: list[Channel]) -> ValidationError | None:
    """The first definite problem with ``content``'s media files (unreachable for good, not the kind
    it says, over a targeted platform's limit), as a 422; a file that could not be reached just then
    is let through (checked again an hour before the post is due)."""
    targets = [Target(c.platform, c.metadata) for c in channels]
    return refusal(await media_problems(prober, platforms, content, targets))


def _media_refusal(answer: object) -> ValidationError | None:
    """check_given_url's answer: its refusal, or None for a URL it let through."""
    if isinstance(answer, ValidationError):
        return answer
    if isinstance(answer, BaseException):  # not a verdict on the URL (cancelled, a bug): not ours to hide
        raise answer
    return None


def _request_field(field: str, override: dict, platform: str) -> str:
    """Where in the request a problem lies: in the platform's override when it supplied that part
    (``content.media[2].url`` -> ``content.platforms.x.media[2].url``), else in the shared content."""
    part = field.removeprefix("content.")
    if field.startswith("content.") and part.split(".")[0].split("[")[0] in override:
        return f"content.platforms.{platform}.{part}"
    return field


async def make_due_now(store: Store, platforms: dict[str, Platform], user: User, post_id: UUID, *, now: datetime) -> Post:
    """Publish now: a draft or scheduled post becomes due at ``now`` (the caller then runs it)."""
    current = await store.get_post(user, post_id)
    if current.status not in ALLOWED_FROM["publish"]:
        raise ConflictError(conflict_message("publish", current.status), code="invalid_state")
    live = tuple(t.channel_id for t in current.targets if t.channel_id is not None)
    channels = await _owned_channels(store, user, live, required=True)
    _check_content(platforms, current.content, channels)
    # Due now without moving its slot: a series keeps counting from the time it was scheduled for.
    changes = PostChanges(status=PostStatus.SCHEDULED, next_attempt_at=now)
    if current.scheduled_at is None:
        changes = PostChanges(status=PostStatus.SCHEDULED, next_attempt_at=now, scheduled_at=now)
    return await store.update_post(user, post_id, changes, allowed_from=ALLOWED_FROM["publish"], action="publish")


async def approve_post(store: Store, user: User, post_id: UUID, *, publish_now: bool) -> Post:
    """An approver lets a post waiting for approval be published: scheduled at its time, or (``publish_now``)
    at once; a post whose time has passed is a 409 unless ``publish_now``."""
    return await store.approve_post(user, post_id, publish_now=publish_now)


async def reject_post(store: Store, user: User, post_id: UUID, *, comment: str) -> Post:
    """An approver sends a post waiting for approval back to draft, with a comment saying why."""
    return await store.reject_post(user, post_id, comment=comment)


async def retry_post(store: Store, user: User, post_id: UUID) -> Post:
    """A failed or partial post's unpublished targets become due now; published ones are never touched."""
    return await store.update_post(user, post_id, PostChanges(status=PostStatus.SCHEDULED),
                                   allowed_from=ALLOWED_FROM["retry"], action="retry")


def validate_new_post(store_channels: dict[UUID, Channel], platforms: dict[str, Platform], data: PostInput,
                            *, now: datetime) -> NewPost:
    """Everything create_post checks, against channels already loaded: for bulk creation."""
    status = PostStatus.SCHEDULED if data.scheduled_at is not None else PostStatus.DRAFT
    scheduled_at = _instant(data.scheduled_at, data.timezone)
    channel_ids = _unique(data.channel_ids)
    if status is PostStatus.SCHEDULED:
        _check_future(scheduled_at, now)
        if not channel_ids:
            raise ValidationError("a scheduled post needs at least one channel", field="channel_ids")
    rrule = _check_rule(data.rrule, scheduled_at or now, data.timezone)
    for channel_id in channel_ids:
        if channel_id not in store_channels:
            raise ValidationError(f"channel {channel_id} not found", code="unknown_channel", field="channel_ids")
    _check_content(platforms, data.content, [store_channels[i] for i in channel_ids])
    return NewPost(content=data.content, channel_ids=channel_ids, status=status, scheduled_at=scheduled_at,
                   timezone=data.timezone, rrule=rrule)
