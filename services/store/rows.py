"""Rows <-> domain values, shared by both stores.

Both stores speak the same JSON shapes: the SQL functions in ``supabase/migrations`` return them
and ``SqliteStore`` builds them, so one set of converters (and one contract suite) covers both.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from services.domain.health import ServiceHealth
from services.domain.models import (
    Activity,
    Channel,
    Claim,
    ClaimedPost,
    Content,
    CronHealth,
    CronRun,
    Media,
    MediaCheckClaim,
    OutboxEntry,
    Outcome,
    Post,
    PostResult,
    PostStatus,
    RateLimitPause,
    Run,
    Target,
    TargetState,
    TargetStatus,
    ThreadPart,
    UnreadablePost,
)
from services.domain.operations import WINDOWS, LagFigures, OperationsFigures, OutcomeCounts, WindowFigures
from services.errors import HeraldError
from services.logs import log_event
from services.scheduling import recurrence


def required_time(value: str | datetime) -> datetime:
    """A timestamp column that is never null; TypeError (an unreadable row) if it is."""
    moment = parse_time(value)
    if moment is None:
        raise TypeError("a required timestamp is null")
    return moment


def parse_time(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def format_time(value: datetime | None) -> str | None:
    """UTC, fixed width, so that text comparison is time comparison (SQLite relies on it)."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def content_to_dict(content: Content) -> dict[str, Any]:
    data: dict[str, Any] = {
        "text": content.text,
        "media": [media_to_dict(m) for m in content.media],
        "platforms": content.platforms,
    }
    if content.thread:
        data["thread"] = [{"text": p.text, "media": [media_to_dict(m) for m in p.media]} for p in content.thread]
    if content.first_comment is not None:
        data["first_comment"] = content.first_comment
    return data


def media_to_dict(media: Media) -> dict[str, Any]:
    item = {"type": media.type, "url": media.url}
    if media.alt is not None:
        item["alt"] = media.alt
    return item


def _media_from_list(items: Any) -> tuple[Media, ...]:
    return tuple(Media(type=m["type"], url=m["url"], alt=m.get("alt")) for m in items or ())


def content_from_dict(data: dict[str, Any]) -> Content:
    return Content(
        text=data.get("text") or "",
        media=_media_from_list(data.get("media")),
        platforms=data.get("platforms") or {},
        thread=tuple(ThreadPart(text=p.get("text") or "", media=_media_from_list(p.get("media")))
                     for p in data.get("thread") or ()),
        first_comment=data.get("first_comment"),
    )


def target_from_row(row: dict[str, Any]) -> Target:
    return Target(
        id=UUID(str(row["id"])),
        post_id=UUID(str(row["post_id"])),
        channel_id=_uuid(row.get("channel_id")),
        platform=row["platform"],
        status=TargetStatus(row["status"]),
        platform_post_id=row.get("platform_post_id"),
        platform_post_url=row.get("platform_post_url"),
        error=row.get("error"),
        attempts=int(row.get("attempts") or 0),
        rate_limited=int(row.get("rate_limited") or 0),
        published_at=parse_time(row.get("published_at")),
        error_code=row.get("error_code"),
        publish_lag_ms=_int_or_none(row.get("publish_lag_ms")),
        resume=_json_object(row.get("resume")),
        first_attempt_at=parse_time(row.get("first_attempt_at")),
        steps=_steps(row.get("steps")),
        first_comment_error=row.get("first_comment_error"),
    )


def _steps(value: Any) -> tuple[dict[str, Any], ...]:
    """A target's ``steps`` column: a JSON array of objects (text from SQLite), empty when unset."""
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(step for step in value if isinstance(step, dict)) if isinstance(value, list) else ()


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _json_object(value: Any) -> dict[str, Any]:
    """A JSON object column: a dict from Postgres, text from SQLite, empty when unset."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def post_from_row(row: dict[str, Any]) -> Post:
    targets = sorted((target_from_row(t) for t in row.get("targets") or ()), key=lambda t: (t.platform, str(t.id)))
    return Post(
        id=UUID(str(row["id"])),
        user_id=UUID(str(row["user_id"])),
        content=content_from_dict(row["content"]),
        scheduled_at=parse_time(row.get("scheduled_at")),
        timezone=row["timezone"],
        rrule=row.get("rrule"),
        status=PostStatus(row["status"]),
        attempts=int(row.get("attempts") or 0),
        error=row.get("error"),
        created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
        targets=tuple(targets),
        next_attempt_at=parse_time(row.get("next_attempt_at")),
        series_id=_uuid(row.get("series_id")),
        parent_post_id=_uuid(row.get("parent_post_id")),
        published_at=parse_time(row.get("published_at")),
        series_start_at=parse_time(row.get("series_start_at")),
        workspace_id=_uuid(row.get("workspace_id")),
        approved_by=_uuid(row.get("approved_by")),
        approved_at=parse_time(row.get("approved_at")),
        media_warnings=tuple(w for w in row.get("media_warnings") or () if isinstance(w, dict)),
        media_checked_at=parse_time(row.get("media_checked_at")),
    )


def media_check_claims_from_rows(found: list[dict[str, Any]]) -> list[MediaCheckClaim]:
    """A media-check claim's posts; one whose row cannot be read (written around the API) is left
    out: its check is only a warning, and the claim must not fail for the others."""
    claims = []
    for item in found or ():
        try:
            claims.append(MediaCheckClaim(
                post=post_from_row(item["post"]), checked_for=required_time(item["checked_for"]),
                targets=tuple((str(t["platform"]), _json_object(t.get("metadata"))) for t in item.get("targets") or ()),
            ))
        except (KeyError, TypeError, ValueError, HeraldError) as exc:
            log_event("media.unreadable_post", post_id=str((item.get("post") or {}).get("id")), error=type(exc).__name__)
    return claims


def channel_from_row(row: dict[str, Any]) -> Channel:
    return Channel(
        id=UUID(str(row["id"])),
        user_id=UUID(str(row["user_id"])),
        platform=row["platform"],
        account_id=row["account_id"],
        name=row["name"],
        metadata=row.get("metadata") or {},
        status=row["status"],
        token_expires_at=parse_time(row.get("token_expires_at")),
        created_at=required_time(row["created_at"]),
        updated_at=required_time(row["updated_at"]),
        credentials_encrypted=row.get("credentials_encrypted"),
        rate_limited_until=parse_time(row.get("rate_limited_until")),
        typical_call_ms=_int_or_none(row.get("typical_call_ms")),
        active=row.get("active") is not False,
        workspace_id=_uuid(row.get("workspace_id")),
    )


def run_from_row(row: dict[str, Any]) -> Run:
    return Run(
        id=UUID(str(row["id"])),
        post_id=UUID(str(row["post_id"])),
        target_id=UUID(str(row["target_id"])),
        attempt=int(row["attempt"]),
        outcome=Outcome(row["outcome"]),
        http_status=row.get("http_status"),
        error_code=row.get("error_code"),
        error_message=row.get("error_message"),
        started_at=required_time(row["started_at"]),
        finished_at=required_time(row["finished_at"]),
        duration_ms=int(row["duration_ms"]),
    )


def activity_from_row(row: dict[str, Any]) -> Activity:
    return Activity(
        id=int(row["id"]),
        post_id=_uuid(row.get("post_id")),
        event=row["event"],
        details=row.get("details") or {},
        created_at=required_time(row["created_at"]),
    )


def claim_from_row(row: dict[str, Any]) -> Claim:
    """A claim's leased posts, each read on its own.

    Rows written around the API (direct SQL, an old version) can hold anything, and the database
    has leased the batch by now: raising here would strand every post in it, run after run. So a
    post whose content, schedule or targets cannot be read becomes an ``UnreadablePost`` (the run
    records it as failed, which releases its lease), and a channel whose row cannot be read fails
    only the targets on it (``ClaimedPost.unreadable_channels``).
    """
    posts: list[ClaimedPost] = []
    unreadable: list[UnreadablePost] = []
    for item in row.get("posts") or ():
        entry = _claimed_entry(item)
        if isinstance(entry, ClaimedPost):
            posts.append(entry)
        elif entry is not None:
            unreadable.append(entry)
    posts.sort(key=lambda c: (c.post.next_attempt_at or c.post.scheduled_at or _EPOCH, str(c.post.id)))
    pauses = {}
    for platform, until in (row.get("platform_pauses") or {}).items():
        try:
            pauses[str(platform)] = required_time(until)
        except (TypeError, ValueError):
            continue  # a pause that cannot be read holds nothing back
    return Claim(posts=tuple(posts), recovered=_uuids(row.get("recovered")), unreadable=tuple(unreadable),
                 platform_pauses=pauses)


def pauses_to_rows(pauses: tuple[RateLimitPause, ...]) -> list[dict[str, Any]]:
    return [{**({"channel_id": str(p.channel_id)} if p.channel_id else {"platform": p.platform}),
             "until": format_time(p.until), "reason": p.reason} for p in pauses]


_EPOCH = datetime.min.replace(tzinfo=timezone.utc)
_TARGET_STATUSES = {s.value for s in TargetStatus}


class _Unreadable(Exception):
    """A part of a claimed row that cannot be read; the message names the part, never a stored secret."""


def _claimed_entry(item: Any) -> ClaimedPost | UnreadablePost | None:
    try:
        raw = item["post"]
        post_id, lease_id = UUID(str(raw["id"])), UUID(str(item["lease_id"]))
    except (KeyError, TypeError, ValueError):
        # Nothing to record a result against (both are uuid columns our function returns).
        log_event("publish.claim_unidentified", level=logging.ERROR)
        return None
    maybe_sent = frozenset(_uuids(item.get("maybe_sent")))
    try:
        post = _read_post(raw)
        channels, broken = _read_channels(item.get("channels"))
    except _Unreadable as exc:
        return UnreadablePost(post_id=post_id, lease_id=lease_id, reason=str(exc),
                              targets=_target_states(raw.get("targets")), maybe_sent=maybe_sent)
    return ClaimedPost(post=post, lease_id=lease_id, channels=channels, maybe_sent=maybe_sent,
                       unreadable_channels=broken)


def _read_post(raw: dict[str, Any]) -> Post:
    content = _read_content(raw.get("content"))
    try:
        post = replace(post_from_row({**raw, "content": {}}), content=content)
    except Exception as exc:  # any column: name it, never fail the claim
        raise _Unreadable(f"the post's row cannot be read ({_why(exc)})") from None
    try:  # the run computes the next occurrence from these
        recurrence.zone(post.timezone)
        if post.rrule is not None and post.scheduled_at is not None:
            recurrence.parse_rule(post.rrule, start=post.series_start_at or post.scheduled_at, tz_name=post.timezone)
    except HeraldError as exc:
        raise _Unreadable(exc.message) from None
    except Exception as exc:
        raise _Unreadable(f"the post's time zone or rrule cannot be read ({_why(exc)})") from None
    return post


def _read_content(data: Any) -> Content:
    """Content as the run uses it, checked part by part (the API's own shapes; extra keys ignored, but
    an override's other keys are its platform's options and kept for its adapter)."""
    if not isinstance(data, dict):
        raise _Unreadable("content is not a JSON object")
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise _Unreadable("content.text is not text")
    overrides = data.get("platforms")
    if overrides is not None and not isinstance(overrides, dict):
        raise _Unreadable("content.platforms is not an object")
    thread = data.get("thread")
    if thread is not None and not isinstance(thread, list):
        raise _Unreadable("content.thread is not a list")
    first_comment = data.get("first_comment")
    if first_comment is not None and not isinstance(first_comment, str):
        raise _Unreadable("content.first_comment is not text")
    return Content(
        text=text or "", media=_read_media(data.get("media"), "content.media"),
        platforms={name: _read_override(o, f"content.platforms.{name}") for name, o in (overrides or {}).items()},
        thread=tuple(_read_part(part, f"content.thread[{i}]") for i, part in enumerate(thread or ())),
        first_comment=first_comment,
    )


def _read_part(data: Any, where: str) -> ThreadPart:
    if not isinstance(data, dict):
        raise _Unreadable(f"{where} is not an object")
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise _Unreadable(f"{where}.text is not text")
    return ThreadPart(text=text or "", media=_read_media(data.get("media"), f"{where}.media"))


def _read_override(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Unreadable(f"{where} is not an object")
    override: dict[str, Any] = {}
    if data.get("text") is not None:
        if not isinstance(data["text"], str):
            raise _Unreadable(f"{where}.text is not text")
        override["text"] = data["text"]
    if data.get("media") is not None:
        override["media"] = [media_to_dict(m) for m in _read_media(data["media"], f"{where}.media")]
    # a platform's own options (TikTok's privacy_level, YouTube's title and tags, ...): JSON scalars and
    # lists of strings, checked by its adapter
    override.update({k: v for k, v in data.items() if k not in ("text", "media") and (
        isinstance(v, (str, bool, int)) or (isinstance(v, list) and all(isinstance(i, str) for i in v)))})
    return override


def _read_media(items: Any, where: str) -> tuple[Media, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise _Unreadable(f"{where} is not a list")
    media = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise _Unreadable(f"{at} is not an object")
        for key in ("type", "url"):
            if key not in item:
                raise _Unreadable(f"{at} has no {key}")
            if not isinstance(item[key], str):
                raise _Unreadable(f"{at}.{key} is not text")
        if item.get("alt") is not None and not isinstance(item["alt"], str):
            raise _Unreadable(f"{at}.alt is not text")
        media.append(Media(type=item["type"], url=item["url"], alt=item.get("alt")))
    return tuple(media)


def _read_channels(items: Any) -> tuple[dict[UUID, Channel], dict[UUID, str]]:
    """The channels that can be read, and why each other one cannot (by id: its targets fail alone)."""
    if items is not None and not isinstance(items, list):
        raise _Unreadable("its channels cannot be read")
    channels: dict[UUID, Channel] = {}
    unreadable: dict[UUID, str] = {}
    for raw in items or ():
        try:
            channel_id = UUID(str(raw["id"]))
        except (KeyError, TypeError, ValueError):
            raise _Unreadable("one of its channels has no readable id") from None
        try:
            channels[channel_id] = _read_channel(raw)
        except _Unreadable as exc:
            unreadable[channel_id] = str(exc)
    return channels, unreadable


def _read_channel(raw: dict[str, Any]) -> Channel:
    metadata = raw.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _Unreadable("the channel's metadata is not a JSON object")
    credentials = raw.get("credentials_encrypted")
    if credentials is not None and not isinstance(credentials, str):
        raise _Unreadable("the channel's stored credentials are not text")
    try:
        return channel_from_row(raw)
    except Exception as exc:  # credentials cannot be in the message: channel_from_row only copies them
        raise _Unreadable(f"the channel's row cannot be read ({_why(exc)})") from None


def _target_states(items: Any) -> tuple[TargetState, ...]:
    """What can be read of an unreadable post's targets; one without a readable id stays as it is."""
    states = []
    for raw in items if isinstance(items, list) else ():
        try:
            target_id = UUID(str(raw["id"]))
        except (KeyError, TypeError, ValueError):
            continue
        status, attempts = raw.get("status"), raw.get("attempts")
        states.append(TargetState(
            id=target_id, platform=str(raw.get("platform") or "unknown"),
            # an unreadable status counts as open: failing it is safe, a published target is never overwritten
            status=TargetStatus(status) if status in _TARGET_STATUSES else TargetStatus.PENDING,
            attempts=attempts if isinstance(attempts, int) and attempts >= 0 else 0,
        ))
    return tuple(states)


def _uuids(values: Any) -> tuple[UUID, ...]:
    """The ids in ``values`` that parse: claim bookkeeping, where one bad id must not sink the rest."""
    found = []
    for value in values if isinstance(values, list) else ():
        try:
            found.append(UUID(str(value)))
        except ValueError:
            continue
    return tuple(found)


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"{exc.args[0]} is missing"
    return f"{type(exc).__name__}: {exc}"[:160]


def cron_run_to_dict(run: CronRun) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "trigger": run.trigger,
        "started_at": format_time(run.started_at),
        "finished_at": format_time(run.finished_at),
        "claimed": run.claimed,
        "published": run.published,
        "failed": run.failed,
        "remaining_due": run.remaining_due,
        "duration_ms": run.duration_ms,
        "error": run.error,
        "parent_run_id": str(run.parent_run_id) if run.parent_run_id else None,
    }


def cron_run_from_row(row: dict[str, Any]) -> CronRun:
    return CronRun(
        id=UUID(str(row["id"])),
        trigger=row["trigger"],
        started_at=required_time(row["started_at"]),
        finished_at=required_time(row["finished_at"]),
        claimed=int(row["claimed"]),
        published=int(row["published"]),
        failed=int(row["failed"]),
        remaining_due=int(row["remaining_due"]),
        duration_ms=int(row["duration_ms"]),
        error=row.get("error"),
        parent_run_id=_uuid(row.get("parent_run_id")),
    )


def results_to_rows(results: list[PostResult]) -> list[dict[str, Any]]:
    return [
        {
            "post_id": str(r.post_id),
            "lease_id": str(r.lease_id),
            "status": r.status.value,
            "error": r.error,
            "next_attempt_at": format_time(r.next_attempt_at),
            "next_occurrence_at": format_time(r.next_occurrence_at),
            "released": [str(t) for t in r.released],
            "lookup_at": format_time(r.lookup_at),
            "targets": [
                {
                    "target_id": str(t.target_id),
                    "outcome": t.outcome.value,
                    "status": t.status.value,
                    "attempt": t.attempt,
                    "started_at": format_time(t.started_at),
                    "finished_at": format_time(t.finished_at),
                    "duration_ms": max(0, round((t.finished_at - t.started_at).total_seconds() * 1000)),
                    "platform_post_id": t.platform_post_id,
                    "platform_post_url": t.platform_post_url,
                    "http_status": t.http_status,
                    "error_code": t.error_code,
                    "error_class": t.error_class,
                    "lag_ms": t.lag_ms,
                    "error_message": t.error_message,
                    "idempotency_key": t.idempotency_key,
                    "resume": t.resume,
                    "steps": list(t.steps) if t.steps is not None else None,
                    "first_comment_error": t.first_comment_error,
                }
                for t in r.targets
            ],
        }
        for r in results
    ]


def outbox_from_row(row: dict[str, Any]) -> OutboxEntry:
    return OutboxEntry(
        id=UUID(str(row["id"])),
        channel_id=_uuid(row.get("channel_id")),
        target_id=UUID(str(row["target_id"])),
        text=row["text"],
        media=tuple(Media(type=m["type"], url=m["url"], alt=m.get("alt")) for m in row.get("media") or ()),
        published_at=required_time(row["published_at"]),
    )


def _ratio(value: Any) -> float | None:
    return None if value is None else float(value)


def window_from_row(name: str, row: dict[str, Any]) -> WindowFigures:
    """A window's outcomes as ``herald_private.window_outcomes`` gives them."""
    lag = row["publish_lag"]
    return WindowFigures(
        name=name, since=required_time(row["since"]), until=required_time(row["until"]),
        finished=int(row["finished"]), published=int(row["published"]), failed=int(row["failed"]),
        unknown=int(row["unknown"]), retried=int(row["retried"]), success_ratio=_ratio(row["success_ratio"]),
        failure_ratio=_ratio(row["failure_ratio"]), retry_ratio=_ratio(row["retry_ratio"]),
        publish_lag=LagFigures(count=int(lag["count"]), p50_ms=_int_or_none(lag["p50_ms"]),
                               p95_ms=_int_or_none(lag["p95_ms"]), max_ms=_int_or_none(lag["max_ms"])),
        by_platform={platform: OutcomeCounts(finished=int(c["finished"]), published=int(c["published"]),
                                             failed=int(c["failed"]), unknown=int(c["unknown"]))
                     for platform, c in sorted(row["by_platform"].items())},
    )


def operations_from_row(row: dict[str, Any], *, is_service: bool) -> OperationsFigures:
    """``herald_operations_v1``'s or ``herald_service_operations_v1``'s answer."""
    return OperationsFigures(
        now=required_time(row["now"]),
        windows={name: window_from_row(name, row["windows"][name]) for name in WINDOWS},
        stuck=int(row["stuck"]["count"]),
        oldest_stuck_lease_expires_at=parse_time(row["stuck"]["oldest_lease_expires_at"]),
        due_backlog=int(row["due"]["count"]),
        oldest_due_at=parse_time(row["due"]["oldest_due_at"]),
        is_service=is_service,
        last_run_at=parse_time(row.get("last_run_at")),
    )


def service_health_from_row(row: dict[str, Any]) -> ServiceHealth:
    """``herald_cron_health_v2``'s answer."""
    last = row.get("last_run")
    return ServiceHealth(
        cron=CronHealth(last_run=cron_run_from_row(last) if last else None, due_now=int(row["due_now"]),
                        oldest_due_at=parse_time(row.get("oldest_due_at")), stuck=int(row["stuck"])),
        stuck_since=parse_time(row.get("stuck_since")),
        last_24h=window_from_row("24h", row["last_24h"]),
    )
