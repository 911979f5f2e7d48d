"""GET /api/v1/metrics: a user's or the service's operations figures."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import Instant
from services.domain.operations import OperationsFigures, OutcomeCounts, WindowFigures


class OutcomeCountsOut(BaseModel):
    finished: int
    published: int
    failed: int
    unknown: int

    @classmethod
    def of(cls, counts: OutcomeCounts) -> OutcomeCountsOut:
        return cls(finished=counts.finished, published=counts.published, failed=counts.failed, unknown=counts.unknown)


class LagOut(BaseModel):
    count: int = Field(description="published targets in the window with a lag")
    p50_ms: int | None
    p95_ms: int | None
    max_ms: int | None


class WindowOut(BaseModel):
    since: Instant
    until: Instant
    finished: int = Field(description="targets now published, failed or unknown whose last attempt ended in (since, until]")
    published: int
    failed: int
    unknown: int = Field(description="sent, no answer: held for review")
    retried: int = Field(description="finished targets that took more than one attempt")
    success_ratio: float | None = Field(description="published / finished; null when nothing finished")
    failure_ratio: float | None = Field(description="(failed + unknown) / finished")
    retry_ratio: float | None = Field(description="retried / finished")
    publish_lag: LagOut = Field(description="end of the publishing attempt minus when the target was due")
    by_platform: dict[str, OutcomeCountsOut]

    @classmethod
    def of(cls, w: WindowFigures) -> WindowOut:
        lag = w.publish_lag
        return cls(since=w.since, until=w.until, finished=w.finished, published=w.published, failed=w.failed,
                   unknown=w.unknown, retried=w.retried, success_ratio=w.success_ratio, failure_ratio=w.failure_ratio,
                   retry_ratio=w.retry_ratio,
                   publish_lag=LagOut(count=lag.count, p50_ms=lag.p50_ms, p95_ms=lag.p95_ms, max_ms=lag.max_ms),
                   by_platform={p: OutcomeCountsOut.of(c) for p, c in w.by_platform.items()})


class StuckOut(BaseModel):
    count: int = Field(description="posts still publishing whose lease has expired")
    oldest_lease_expires_at: Instant | None


class DueOut(BaseModel):
    count: int = Field(description="scheduled posts due now")
    oldest_due_at: Instant | None


class OperationsOut(BaseModel):
    scope: Literal["user", "service"]
    now: Instant
    windows: dict[str, WindowOut] = Field(description='"24h" and "7d"')
    stuck: StuckOut
    due_backlog: DueOut
    last_run_at: Instant | None = Field(None, description="service scope only: when the latest cron run started")

    @classmethod
    def of(cls, figures: OperationsFigures) -> OperationsOut:
        return cls(
            scope="service" if figures.is_service else "user", now=figures.now,
            windows={name: WindowOut.of(w) for name, w in figures.windows.items()},
            stuck=StuckOut(count=figures.stuck, oldest_lease_expires_at=figures.oldest_stuck_lease_expires_at),
            due_backlog=DueOut(count=figures.due_backlog, oldest_due_at=figures.oldest_due_at),
            last_run_at=figures.last_run_at,
        )
