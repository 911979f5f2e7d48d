"""The service's health as ``/cron/health`` reports it: ``ok``, ``degraded`` or ``stale``, with reasons.

Pure: given what the store says (``ServiceHealth``) and ``now``, return the verdict. ``stale``
(the external cron stopped calling while posts wait) wins over ``degraded`` (publishing works
badly: too many targets fail, or a post is stuck past its lease).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.domain.models import CronHealth
from services.domain.operations import WindowFigures

#: no run for this long while posts are due means the external cron has stopped calling
STALE_AFTER = timedelta(seconds=180)
#: a post still publishing this long after its lease expired: no run recovers it
STUCK_AFTER = timedelta(minutes=10)
#: degraded when more than this share (percent) of the last 24 hours' finished targets did not publish...
FAILURE_PERCENT = 5
#: ...counted over at least this many targets: on a quiet day the missing ones count as published, so
#: one failure among 3 does not raise an alarm, and two among 3 (2 of 20 = 10%) do
MIN_SAMPLE = 20


@dataclass(frozen=True)
class ServiceHealth:
    """What the store says about the service at a moment (Store.service_health)."""

    cron: CronHealth
    #: the oldest expired lease of a post still publishing (None when none is stuck)
    stuck_since: datetime | None
    #: the targets that finished in the last 24 hours
    last_24h: WindowFigures


@dataclass(frozen=True)
class HealthReason:
    code: str  #: cron_stale, failure_rate or stuck_posts
    message: str


@dataclass(frozen=True)
class HealthVerdict:
    status: str  #: ok, degraded or stale
    reasons: tuple[HealthReason, ...]


def is_failure_rate_high(not_published: int, finished: int) -> bool:
    """More than FAILURE_PERCENT of ``finished`` did not publish, over at least MIN_SAMPLE targets
    (integers only: exactly 5% is not more than 5%)."""
    return not_published * 100 > FAILURE_PERCENT * max(finished, MIN_SAMPLE)


def judge(health: ServiceHealth, *, now: datetime) -> HealthVerdict:
    """The verdict at ``now``: every reason that holds, the cron's first; the status of the worst."""
    reasons = []
    cron = health.cron
    last = cron.last_run.started_at if cron.last_run else None
    if cron.due_now > 0 and (last is None or now - last > STALE_AFTER):
        since = "no run has ever come" if last is None else f"no run for {round((now - last).total_seconds())} s"
        reasons.append(HealthReason("cron_stale", f"{cron.due_now} post(s) due and {since}: is the external cron calling?"))
    window = health.last_24h
    if is_failure_rate_high(window.not_published, window.finished):
        reasons.append(HealthReason("failure_rate", (
            f"{window.not_published} of the {window.finished} targets that finished in the last 24 h failed or have an"
            f" unknown outcome: more than {FAILURE_PERCENT}% (counted over at least {MIN_SAMPLE} targets)")))
    if health.stuck_since is not None and now - health.stuck_since > STUCK_AFTER:
        minutes = int((now - health.stuck_since).total_seconds() // 60)
        reasons.append(HealthReason("stuck_posts", (
            f"{cron.stuck} post(s) stuck in publishing; the oldest {minutes} min past its lease"
            f" (more than {int(STUCK_AFTER.total_seconds() // 60)}): no run recovers it")))
    if reasons and reasons[0].code == "cron_stale":
        return HealthVerdict("stale", tuple(reasons))
    return HealthVerdict("degraded" if reasons else "ok", tuple(reasons))
