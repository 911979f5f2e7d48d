"""Analytics response bodies: a post's readings, and a summary over a range."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from api.schemas.common import Instant
from services.domain.analytics import AnalyticsSummary, PostAnalytics, Snapshot, TargetAnalytics, TopPost, Totals

ENGAGEMENT = "likes + comments + shares, each counted 0 where the platform gives none"
ENGAGEMENT_RATE = ("engagement / impressions, over the targets whose impressions are known (and above 0) only; "
                   "null when none are")


class SnapshotOut(BaseModel):
    recorded_at: Instant
    likes: int | None = Field(description="likes, favourites, reactions; null: the platform does not give it")
    comments: int | None
    shares: int | None = Field(description="shares, reposts, boosts, quotes")
    impressions: int | None = Field(description="impressions or views, whichever the platform counts")
    clicks: int | None
    saves: int | None = Field(description="saves, bookmarks")
    engagement: int = Field(description=ENGAGEMENT)
    raw: dict[str, Any] = Field(description="the platform's own figures as it named them")

    @classmethod
    def of(cls, snapshot: Snapshot) -> SnapshotOut:
        f = snapshot.figures
        return cls(recorded_at=snapshot.recorded_at, likes=f.likes, comments=f.comments, shares=f.shares,
                   impressions=f.impressions, clicks=f.clicks, saves=f.saves, engagement=f.engagement, raw=snapshot.raw)


class TotalsOut(BaseModel):
    targets: int
    measured: int = Field(description="targets with at least one reading")
    likes: int | None
    comments: int | None
    shares: int | None
    impressions: int | None
    clicks: int | None
    saves: int | None
    engagement: int | None = Field(description=ENGAGEMENT)
    engagement_rate: float | None = Field(description=ENGAGEMENT_RATE)

    @classmethod
    def of(cls, totals: Totals) -> TotalsOut:
        return cls(**{name: getattr(totals, name) for name in cls.model_fields})


class SummaryTotalsOut(TotalsOut):
    posts: int

    @classmethod
    def of(cls, totals: Totals) -> SummaryTotalsOut:
        return cls(**{name: getattr(totals, name) for name in TotalsOut.model_fields}, posts=totals.posts or 0)


class TargetAnalyticsOut(BaseModel):
    target_id: UUID
    channel_id: UUID | None
    platform: str
    status: str
    platform_post_url: str | None
    published_at: Instant | None
    next_refresh_at: Instant | None = Field(
        description="when its figures are read next: hourly in the first day, daily until day 30, then null")
    refresh_error: str | None = Field(description="why the last read failed, or why reading stopped")
    latest: SnapshotOut | None
    series: list[SnapshotOut] = Field(description="every reading, oldest first")

    @classmethod
    def of(cls, target: TargetAnalytics) -> TargetAnalyticsOut:
        return cls(target_id=target.target_id, channel_id=target.channel_id, platform=target.platform,
                   status=target.status, platform_post_url=target.platform_post_url, published_at=target.published_at,
                   next_refresh_at=target.next_refresh_at, refresh_error=target.refresh_error,
                   latest=SnapshotOut.of(target.latest) if target.latest else None,
                   series=[SnapshotOut.of(s) for s in target.series])


class PostAnalyticsOut(BaseModel):
    post_id: UUID
    totals: TotalsOut = Field(description="the sum of each target's latest reading")
    targets: list[TargetAnalyticsOut]

    @classmethod
    def of(cls, found: PostAnalytics) -> PostAnalyticsOut:
        return cls(post_id=found.post_id, totals=TotalsOut.of(found.totals),
                   targets=[TargetAnalyticsOut.of(t) for t in found.targets])


class TopPostOut(BaseModel):
    post_id: UUID
    text: str | None = Field(description="its first 280 characters")
    published_at: Instant | None
    platforms: list[str]
    engagement: int
    impressions: int | None
    engagement_rate: float | None

    @classmethod
    def of(cls, post: TopPost) -> TopPostOut:
        return cls(post_id=post.post_id, text=post.text, published_at=post.published_at, platforms=list(post.platforms),
                   engagement=post.engagement, impressions=post.impressions, engagement_rate=post.engagement_rate)


class AnalyticsSummaryOut(BaseModel):
    from_: Instant = Field(serialization_alias="from")
    to: Instant
    platform: str | None
    channel_id: UUID | None
    totals: SummaryTotalsOut = Field(description="the targets published in [from, to), each by its latest reading")
    by_platform: dict[str, SummaryTotalsOut]
    top_posts: list[TopPostOut] = Field(description="by engagement, highest first")

    @classmethod
    def of(cls, summary: AnalyticsSummary) -> AnalyticsSummaryOut:
        return cls(from_=summary.start, to=summary.end, platform=summary.platform, channel_id=summary.channel_id,
                   totals=SummaryTotalsOut.of(summary.totals),
                   by_platform={p: SummaryTotalsOut.of(t) for p, t in summary.by_platform.items()},
                   top_posts=[TopPostOut.of(p) for p in summary.top_posts])
