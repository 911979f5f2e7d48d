"""Operations figures: how publishing went over a window (the last 24 hours, the last 7 days) and
what waits now, for one user or for the whole service.

The store computes them in SQL (``supabase/migrations/20261201000500_operations.sql`` defines each
figure; the README's "Operations figures" repeats the definitions); these are the values it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: the windows every figure set carries, shortest first
WINDOWS = ("24h", "7d")


@dataclass(frozen=True)
class OutcomeCounts:
    """Targets that finished in a window, by final state."""

    finished: int
    published: int
    failed: int
    unknown: int  #: sent, no answer: held for review


@dataclass(frozen=True)
class LagFigures:
    """``publish_lag_ms`` of the targets published in a window (None without any)."""

    count: int
    p50_ms: int | None
    p95_ms: int | None
    max_ms: int | None


@dataclass(frozen=True)
class WindowFigures:
    """The targets that finished in ``(since, until]``: in a final state, their last attempt ended then."""

    name: str  #: "24h" or "7d"
    since: datetime
    until: datetime
    finished: int
    published: int
    failed: int
    unknown: int
    retried: int  #: finished targets that took more than one attempt
    success_ratio: float | None  #: published / finished (None when nothing finished)
    failure_ratio: float | None  #: (failed + unknown) / finished
    retry_ratio: float | None  #: retried / finished
    publish_lag: LagFigures
    by_platform: dict[str, OutcomeCounts] = field(default_factory=dict)

    @property
    def not_published(self) -> int:
        """Finished without being published: failed or unknown."""
        return self.failed + self.unknown


@dataclass(frozen=True)
class OperationsFigures:
    """A user's figures, or the service's (``is_service``) at ``now``."""

    now: datetime
    windows: dict[str, WindowFigures]  #: by name, as WINDOWS lists them
    stuck: int  #: posts still publishing whose lease expired before ``now``
    oldest_stuck_lease_expires_at: datetime | None
    due_backlog: int  #: scheduled posts due at ``now``
    oldest_due_at: datetime | None
    is_service: bool = False
    #: the service's figures only: when the latest cron run started
    last_run_at: datetime | None = None
