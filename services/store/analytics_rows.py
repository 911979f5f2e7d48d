"""Analytics rows <-> domain values: the JSON the analytics SQL functions take and return
(``supabase/migrations/20261201000600_analytics.sql``), for both transports."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.domain.analytics import (
    AnalyticsClaim,
    AnalyticsSummary,
    Figures,
    MeasuredTarget,
    PostAnalytics,
    Reading,
    ReadingOutcome,
    Snapshot,
    TargetAnalytics,
    TopPost,
    Totals,
)
from services.domain.models import Channel
from services.store.rows import channel_from_row, format_time, parse_time, required_time

_FIGURES = ("likes", "comments", "shares", "impressions", "clicks", "saves")


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def claim_from_row(row: dict[str, Any]) -> AnalyticsClaim:
    channels: dict[UUID, Channel] = {}
    unreadable: dict[UUID, str] = {}
    for raw in row.get("channels") or ():
        channel_id = UUID(str(raw["id"]))
        try:
            channels[channel_id] = channel_from_row(raw)
        except Exception as exc:  # the message names the problem's kind, never a stored value
            unreadable[channel_id] = f"the channel's row cannot be read ({type(exc).__name__})"
    targets = tuple(MeasuredTarget(
        target_id=UUID(str(t["target_id"])),
        post_id=UUID(str(t["post_id"])),
        user_id=UUID(str(t["user_id"])),
        channel_id=_uuid(t.get("channel_id")),
        platform=t["platform"],
        platform_post_id=t.get("platform_post_id"),
        platform_post_url=t.get("platform_post_url"),
        published_at=parse_time(t.get("published_at")),
        due_at=parse_time(t.get("due_at")),
    ) for t in row.get("targets") or ())
    return AnalyticsClaim(lease_id=UUID(str(row["lease_id"])), targets=targets, channels=channels,
                          unreadable_channels=unreadable)


def reading_to_row(reading: Reading) -> dict[str, Any]:
    row: dict[str, Any] = {"target_id": str(reading.target_id), "outcome": reading.outcome.value}
    if reading.outcome is ReadingOutcome.MEASURED and reading.snapshot is not None:
        row["recorded_at"] = format_time(reading.snapshot.recorded_at)
        row.update({name: getattr(reading.snapshot.figures, name) for name in _FIGURES})
        row["raw"] = reading.snapshot.raw
    elif reading.at is not None:
        row["recorded_at"] = format_time(reading.at)
    if reading.error is not None:
        row["error"] = reading.error
    if reading.due_at is not None:
        row["due_at"] = format_time(reading.due_at)
    if reading.is_reported:
        row["report"] = True
    return row


def snapshot_from_row(row: dict[str, Any]) -> Snapshot:
    return Snapshot(recorded_at=required_time(row["recorded_at"]),
                    figures=Figures(**{name: _int(row.get(name)) for name in _FIGURES}),
                    raw=row.get("raw") or {})


def totals_from_row(row: dict[str, Any]) -> Totals:
    return Totals(targets=int(row.get("targets") or 0), measured=int(row.get("measured") or 0),
                  **{name: _int(row.get(name)) for name in (*_FIGURES, "engagement", "posts")},
                  engagement_rate=_float(row.get("engagement_rate")))


def post_analytics_from_row(row: dict[str, Any]) -> PostAnalytics:
    return PostAnalytics(
        post_id=UUID(str(row["post_id"])),
        totals=totals_from_row(row["totals"]),
        targets=tuple(TargetAnalytics(
            target_id=UUID(str(t["target_id"])),
            channel_id=_uuid(t.get("channel_id")),
            platform=t["platform"],
            status=t["status"],
            platform_post_url=t.get("platform_post_url"),
            published_at=parse_time(t.get("published_at")),
            next_refresh_at=parse_time(t.get("next_refresh_at")),
            refresh_error=t.get("refresh_error"),
            latest=snapshot_from_row(t["latest"]) if t.get("latest") else None,
            series=tuple(snapshot_from_row(s) for s in t.get("series") or ()),
        ) for t in row.get("targets") or ()),
    )


def summary_from_row(row: dict[str, Any]) -> AnalyticsSummary:
    return AnalyticsSummary(
        start=required_time(row["from"]),
        end=required_time(row["to"]),
        platform=row.get("platform"),
        channel_id=_uuid(row.get("channel_id")),
        totals=totals_from_row(row["totals"]),
        by_platform={p: totals_from_row(t) for p, t in (row.get("by_platform") or {}).items()},
        top_posts=tuple(TopPost(
            post_id=UUID(str(p["post_id"])),
            text=p.get("text"),
            published_at=parse_time(p.get("published_at")),
            platforms=tuple(p.get("platforms") or ()),
            engagement=int(p.get("engagement") or 0),
            impressions=_int(p.get("impressions")),
            engagement_rate=_float(p.get("engagement_rate")),
        ) for p in row.get("top_posts") or ()),
    )
