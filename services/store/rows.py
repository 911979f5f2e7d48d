"""Rows <-> domain values, shared by both stores.

Both stores speak the same JSON shapes: the SQL functions in ``supabase/migrations`` return them
and ``SqliteStore`` builds them, so one set of converters (and one contract suite) covers both.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from services.domain.models import (
    Activity,
    Channel,
    Claim,
    ClaimedPost,
    Content,
    CronRun,
    Media,
    OutboxEntry,
    Outcome,
    Post,
    PostResult,
    PostStatus,
    Run,
    Target,
    TargetStatus,
)


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
    return {
        "text": content.text,
        "media": [media_to_dict(m) for m in content.media],
        "platforms": content.platforms,
    }


def media_to_dict(media: Media) -> dict[str, Any]:
    item = {"type": media.type, "url": media.url}
    if media.alt is not None:
        item["alt"] = media.alt
    return item


def content_from_dict(data: dict[str, Any]) -> Content:
    return Content(
        text=data.get("text") or "",
        media=tuple(Media(type=m["type"], url=m["url"], alt=m.get("alt")) for m in data.get("media") or ()),
        platforms=data.get("platforms") or {},
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
        resume=_json_object(row.get("resume")),
    )


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
        created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
        targets=tuple(targets),
        next_attempt_at=parse_time(row.get("next_attempt_at")),
        series_id=_uuid(row.get("series_id")),
        parent_post_id=_uuid(row.get("parent_post_id")),
        published_at=parse_time(row.get("published_at")),
        series_start_at=parse_time(row.get("series_start_at")),
    )


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
        created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
        credentials_encrypted=row.get("credentials_encrypted"),
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
        started_at=parse_time(row["started_at"]),
        finished_at=parse_time(row["finished_at"]),
        duration_ms=int(row["duration_ms"]),
    )


def activity_from_row(row: dict[str, Any]) -> Activity:
    return Activity(
        id=int(row["id"]),
        post_id=_uuid(row.get("post_id")),
        event=row["event"],
        details=row.get("details") or {},
        created_at=parse_time(row["created_at"]),
    )


def claim_from_row(row: dict[str, Any]) -> Claim:
    posts = []
    for item in row.get("posts") or ():
        channels = {c.id: c for c in (channel_from_row(ch) for ch in item.get("channels") or ())}
        posts.append(ClaimedPost(
            post=post_from_row(item["post"]), lease_id=UUID(str(item["lease_id"])), channels=channels,
            maybe_sent=frozenset(UUID(str(t)) for t in item.get("maybe_sent") or ()),
        ))
    posts.sort(key=lambda c: (c.post.next_attempt_at or c.post.scheduled_at, str(c.post.id)))
    return Claim(posts=tuple(posts), recovered=tuple(UUID(str(i)) for i in row.get("recovered") or ()))


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
    }


def cron_run_from_row(row: dict[str, Any]) -> CronRun:
    return CronRun(
        id=UUID(str(row["id"])),
        trigger=row["trigger"],
        started_at=parse_time(row["started_at"]),
        finished_at=parse_time(row["finished_at"]),
        claimed=int(row["claimed"]),
        published=int(row["published"]),
        failed=int(row["failed"]),
        remaining_due=int(row["remaining_due"]),
        duration_ms=int(row["duration_ms"]),
        error=row.get("error"),
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
                    "error_message": t.error_message,
                    "idempotency_key": t.idempotency_key,
                    "resume": t.resume,
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
        published_at=parse_time(row["published_at"]),
    )
