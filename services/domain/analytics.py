"""Engagement analytics values: what a refresh run claims and records, and what a user reads back.

A target's figures are read from its platform on a decaying schedule the store keeps (hourly in the
first day after it was published, daily until day 30, then never) and kept as snapshots. A figure
the platform does not give is None, never 0. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from services.domain.models import Channel


@dataclass(frozen=True)
class Figures:
    """One reading's counts, as the platform gave them (None: not given)."""

    likes: int | None = None  #: likes, favourites, reactions
    comments: int | None = None  #: comments, replies
    shares: int | None = None  #: shares, reposts, boosts, quotes
    impressions: int | None = None  #: impressions or views, whichever the platform counts
    clicks: int | None = None
    saves: int | None = None  #: saves, bookmarks

    @property
    def engagement(self) -> int:
        """likes + comments + shares, each counted 0 where the platform gives none."""
        return (self.likes or 0) + (self.comments or 0) + (self.shares or 0)


@dataclass(frozen=True)
class Snapshot:
    """One reading of one target at ``recorded_at``."""

    recorded_at: datetime
    figures: Figures
    #: the platform's own figures as it named them (what ``figures`` does not hold)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MeasuredTarget:
    """A published target a refresh run holds a lease on: what its platform needs to find the post."""

    target_id: UUID
    post_id: UUID
    user_id: UUID
    channel_id: UUID | None  #: None: the channel was deleted
    platform: str
    platform_post_id: str | None
    platform_post_url: str | None
    published_at: datetime | None
    #: when its read was due (given back when the run does not read it)
    due_at: datetime | None


@dataclass(frozen=True)
class AnalyticsClaim:
    """What one claim returned: the leased targets, due order, and their channels (credentials
    still encrypted)."""

    lease_id: UUID
    targets: tuple[MeasuredTarget, ...] = ()
    channels: dict[UUID, Channel] = field(default_factory=dict)
    #: channels whose stored row cannot be read: id -> what is wrong (never a stored value)
    unreadable_channels: dict[UUID, str] = field(default_factory=dict)


class ReadingOutcome(str, enum.Enum):
    """What a refresh run did with one claimed target (the store decides the next read from it)."""

    MEASURED = "measured"  #: figures read: a snapshot, the next slot after it
    FAILED = "failed"  #: no figures this time (a 5xx, a timeout, a refused token): the next slot
    STOPPED = "stopped"  #: never read again (the post is gone, the channel deleted, no metrics there)
    RELEASED = "released"  #: not read in this run (budget, or its account paused): due again as before


@dataclass(frozen=True)
class Reading:
    target_id: UUID
    outcome: ReadingOutcome
    #: when the answer arrived (MEASURED: the snapshot's time; FAILED: the next slot counts from it)
    at: datetime | None = None
    snapshot: Snapshot | None = None  #: with MEASURED
    error: str | None = None  #: with FAILED and STOPPED: why, for the user
    due_at: datetime | None = None  #: with RELEASED: when it is due again
    #: with STOPPED: the platform said the post is gone (or unreadable): the owner's activity log says so
    is_reported: bool = False


@dataclass(frozen=True)
class AnalyticsRecorded:
    stored: int  #: snapshots written
    ignored: int  #: readings whose lease had ended (another run holds the target now)
    remaining_due: int  #: targets a claim would take right now


@dataclass(frozen=True)
class Totals:
    """Counts over a set of targets, each by its latest reading. A figure is None when no target's
    platform gives it. ``engagement_rate`` is engagement / impressions over the targets whose
    impressions are known (and above 0) only; None without any."""

    targets: int
    measured: int  #: targets with at least one reading
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    impressions: int | None = None
    clicks: int | None = None
    saves: int | None = None
    engagement: int | None = None
    engagement_rate: float | None = None
    posts: int | None = None  #: distinct posts (in a summary)


@dataclass(frozen=True)
class TargetAnalytics:
    target_id: UUID
    channel_id: UUID | None
    platform: str
    status: str
    platform_post_url: str | None
    published_at: datetime | None
    next_refresh_at: datetime | None  #: None: not scheduled (not published, past day 30, or stopped)
    refresh_error: str | None  #: why the last read failed, or why reading stopped
    latest: Snapshot | None
    series: tuple[Snapshot, ...]  #: oldest first


@dataclass(frozen=True)
class PostAnalytics:
    post_id: UUID
    totals: Totals  #: the sum of each target's latest reading
    targets: tuple[TargetAnalytics, ...]


@dataclass(frozen=True)
class TopPost:
    post_id: UUID
    text: str | None  #: the first 280 characters
    published_at: datetime | None
    platforms: tuple[str, ...]
    engagement: int
    impressions: int | None
    engagement_rate: float | None


@dataclass(frozen=True)
class AnalyticsSummary:
    """The user's targets published in [start, end) (filtered), each by its latest reading."""

    start: datetime
    end: datetime
    platform: str | None
    channel_id: UUID | None
    totals: Totals
    by_platform: dict[str, Totals]
    top_posts: tuple[TopPost, ...]
