"""One analytics refresh (one call of the refresh cron): read the engagement of the published
targets that are due, on the schedule the store keeps (hourly in the first day after publishing,
daily until day 30, then never).

1. claim due targets under a short lease (``store.claim_analytics_due``): overlapping calls never
   read one target twice, and a run that dies gives its targets back when the lease ends; the claim
   leaves alone the channels that need reconnecting or are paused (publishing's rate limit, their
   analytics pause, their platform's app-wide pause);
2. read them continuously: up to PUBLISH_CONCURRENCY calls in flight, one at a time per channel, no
   call started unless it can finish inside RUN_BUDGET_SECONDS; what is not started is given back,
   due as before;
3. classify each answer: figures -> a snapshot; RATE_LIMITED -> that account's *analytics* pause
   (or, for an app-wide limit, every account of the platform in this run), its unread targets given
   back; AUTH -> this slot skipped and the account's analytics paused for AUTH_PAUSE; PERMANENT (the
   post is gone, or the app may not read its figures) -> never read again; anything else (a 5xx, a
   timeout, an adapter bug) -> this slot skipped;
4. record every reading, the next times and the pauses in one store call, and answer a summary.

It reads only: a post's attempts, status, runs and its channel's publish pause are never touched,
so a metrics read never spends a post's publish quota.

A refused token (AUTH) neither refreshes the token nor marks the channel ``needs_reconnect``. A
refresh here could race the publish run's own refresh of the same account and lose a rotated
refresh token (the account would be lost to both), and a metrics read may need a scope or API tier
that publishing does not (Instagram insights, LinkedIn organization statistics, X's non-public
metrics): its 401/403 says nothing about whether the account can still publish. The publish run
refreshes tokens when it publishes; analytics use whatever token it left.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

import httpx

from services.domain.analytics import (
    AnalyticsClaim,
    Figures,
    MeasuredTarget,
    Reading,
    ReadingOutcome,
    Snapshot,
)
from services.domain.models import Channel, Outcome, RateLimitPause
from services.errors import HeraldError
from services.logs import log_event
from services.platforms.base import (
    APP,
    Feature,
    MeasuringPlatform,
    Metrics,
    MetricsRequest,
    Platform,
    PlatformError,
    supports,
)
from services.publishing import deadline, unreadable
from services.security.crypto import TokenCipher
from services.store.base import Store

#: a rate limit that names no reset time pauses the account's analytics this long
RATE_LIMIT_PAUSE = timedelta(minutes=15)
#: a refused token pauses the account's analytics this long (the publish run may refresh it meanwhile)
AUTH_PAUSE = timedelta(hours=1)
#: the largest figure the store keeps (bigint); a larger or negative one is "not given"
_MAX_FIGURE = 2**63 - 1
#: failures listed in the summary, at most (cron-job.org reads 64 KB of an answer)
_MAX_LISTED = 20


@dataclass(frozen=True)
class RefreshLimits:
    max_targets: int = 200
    concurrency: int = 16
    request_timeout: float = 30.0
    budget_seconds: float = 50.0

    @property
    def lease_seconds(self) -> int:
        """A lease that outlives the run (no call starts after the budget, none runs past its
        timeout) by half a minute, and no more: a run that died gives its targets back soon."""
        return math.ceil(self.budget_seconds + self.request_timeout + deadline.CALL_GRACE_SECONDS) + 30


@dataclass
class RefreshSummary:
    run_id: UUID
    trigger: str
    claimed: int = 0
    measured: int = 0
    #: no figures this time (their next slot reads them again)
    failed: int = 0
    #: never read again (the post is gone, the channel deleted, the platform reports no metrics)
    stopped: int = 0
    rate_limited: int = 0
    #: left for later because their account was paused in this run
    held: int = 0
    #: left for later because the run's budget was spent
    not_started: int = 0
    #: readings the store ignored: the run outlived its lease and another run took the target
    ignored: int = 0
    remaining_due: int = 0
    duration_ms: int = 0
    paused: list[dict[str, Any]] = field(default_factory=list)
    #: the first failures and stops: target, platform, outcome, error
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": str(self.run_id), **{k: v for k, v in self.__dict__.items() if k != "run_id"}}


@dataclass(frozen=True)
class _Answer:
    reading: Reading
    #: with a rate limit or a refused token: until when the account (or platform) pauses, and why
    pause_until: datetime | None = None
    pause_reason: str = ""
    scope: str = "account"


async def refresh_due(
    store: Store,
    platforms: dict[str, Platform],
    cipher: TokenCipher,
    http: httpx.AsyncClient,
    limits: RefreshLimits,
    *,
    now: datetime,
    trigger: str = "manual",
    monotonic: Callable[[], float] = time.monotonic,
    run_id: UUID | None = None,
) -> RefreshSummary:
    """Read the figures of the targets due at ``now`` and record them. Never raises for a
    platform's sake; a store failure propagates (the leases then end on their own)."""
    started = monotonic()
    summary = RefreshSummary(run_id=run_id or uuid.uuid4(), trigger=trigger)
    claim = await store.claim_analytics_due(now=now, limit=limits.max_targets, lease_seconds=limits.lease_seconds)
    summary.claimed = len(claim.targets)
    if claim.targets:
        reader = _Reader(platforms, cipher, http, limits, claim, now=now, started=started, monotonic=monotonic)
        readings = await reader.run()
        elapsed = monotonic() - started
        recorded = await store.record_analytics(claim.lease_id, readings, now=now + timedelta(seconds=elapsed),
                                                pauses=tuple(reader.pauses))
        summary.ignored, summary.remaining_due = recorded.ignored, recorded.remaining_due
        _count(summary, readings, reader)
    summary.duration_ms = round((monotonic() - started) * 1000)
    log_event("analytics.run_finished", run_id=str(summary.run_id), trigger=trigger, claimed=summary.claimed,
              measured=summary.measured, failed=summary.failed, stopped=summary.stopped,
              rate_limited=summary.rate_limited, remaining_due=summary.remaining_due, duration_ms=summary.duration_ms)
    return summary


class _Reader:
    """Reads the claimed targets continuously; owns the run's decrypted credentials and its pauses.

    One lane per channel (one call at a time per account), lanes in due order, up to
    ``limits.concurrency`` calls in flight. A paused lane (or platform) starts nothing more: its
    targets are given back, due as before.
    """

    def __init__(self, platforms: dict[str, Platform], cipher: TokenCipher, http: httpx.AsyncClient,
                 limits: RefreshLimits, claim: AnalyticsClaim, *, now: datetime, started: float,
                 monotonic: Callable[[], float]):
        self.platforms, self.cipher, self.http, self.limits, self.claim = platforms, cipher, http, limits, claim
        self.now, self.started, self.monotonic = now, started, monotonic
        self.deadline = started + limits.budget_seconds
        self._credentials: dict[UUID, dict[str, Any] | str] = {}  #: decrypted, or why they cannot be
        self._paused: dict[object, datetime] = {}  #: channel id or platform name -> until (met in this run)
        self.pauses: list[RateLimitPause] = []  #: to be recorded: channel analytics pauses
        self.readings: dict[UUID, Reading] = {}
        self._order = {t.target_id: i for i, t in enumerate(claim.targets)}  #: due order
        self.held: set[UUID] = set()  #: given back because their account paused in this run
        self.unstarted: set[UUID] = set()  #: given back because the budget was spent
        self.rate_limited = 0

    def clock(self) -> datetime:
        """The run's clock: ``now`` plus the time elapsed since the run started."""
        return self.now + timedelta(seconds=self.monotonic() - self.started)

    def _can_start(self) -> bool:
        return self.monotonic() + self.limits.request_timeout <= self.deadline

    async def run(self) -> list[Reading]:
        lanes: dict[UUID, deque[MeasuredTarget]] = {}
        for target in self.claim.targets:  # in due order, so every lane is too
            early = self._settle_without_a_call(target)
            if early is not None:
                self.readings[target.target_id] = early
            else:
                lanes.setdefault(cast(UUID, target.channel_id), deque()).append(target)
        await self._dispatch(lanes)
        for lane in lanes.values():  # the budget is spent: given back untouched
            for target in lane:
                self.readings[target.target_id] = _released(target)
                self.unstarted.add(target.target_id)
        return [self.readings[t.target_id] for t in self.claim.targets]

    def _settle_without_a_call(self, target: MeasuredTarget) -> Reading | None:
        """A reading for a target no platform call can measure, or None when one may."""
        at = self.clock()
        if target.channel_id is not None and target.channel_id in self.claim.unreadable_channels:
            return _failed(target, at, self.claim.unreadable_channels[target.channel_id])
        channel = self.claim.channels.get(target.channel_id) if target.channel_id is not None else None
        if channel is None:
            return _stopped(target, at, "the channel was deleted")
        platform = self.platforms.get(target.platform)
        if platform is None or not supports(platform, Feature.METRICS):
            return _stopped(target, at, f"{target.platform} does not report metrics to Herald")
        if not target.platform_post_id:
            return _stopped(target, at, "the platform gave no post id to read figures for")
        credentials = self._read_credentials(channel)
        if isinstance(credentials, str):
            return _failed(target, at, credentials)
        return None

    def _read_credentials(self, channel: Channel) -> dict[str, Any] | str:
        if channel.id not in self._credentials:
            try:
                self._credentials[channel.id] = unreadable.read_credentials(self.cipher, channel)
            except HeraldError as exc:  # the message never quotes what was stored
                self._credentials[channel.id] = exc.message
        return self._credentials[channel.id]

    async def _dispatch(self, lanes: dict[UUID, deque[MeasuredTarget]]) -> None:
        concurrency = max(1, self.limits.concurrency)
        running: dict[asyncio.Task, MeasuredTarget] = {}
        busy: set[UUID] = set()
        while True:
            while len(running) < concurrency and self._can_start():
                target = self._next(lanes, busy)
                if target is None:
                    break
                busy.add(cast(UUID, target.channel_id))
                running[asyncio.create_task(self._read(target))] = target
            if not running:
                return  # done, or out of budget: what is left is given back
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                target = running.pop(task)
                busy.discard(cast(UUID, target.channel_id))
                answer = task.result()
                self.readings[target.target_id] = answer.reading
                if answer.pause_until is not None:
                    self._pause(target, answer)

    def _next(self, lanes: dict[UUID, deque[MeasuredTarget]], busy: set[UUID]) -> MeasuredTarget | None:
        """The earliest due head of an idle lane; a paused lane is given back whole."""
        best: UUID | None = None
        for lane, targets in list(lanes.items()):
            if lane in busy:
                continue
            if self._paused_until(targets[0]) is not None:
                for target in targets:
                    self.readings[target.target_id] = _released(target)
                    self.held.add(target.target_id)
                del lanes[lane]
                continue
            if best is None or self._order[targets[0].target_id] < self._order[lanes[best][0].target_id]:
                best = lane
        if best is None:
            return None
        target = lanes[best].popleft()
        if not lanes[best]:
            del lanes[best]
        return target

    def _paused_until(self, target: MeasuredTarget) -> datetime | None:
        until = max((u for u in (self._paused.get(target.channel_id), self._paused.get(target.platform))
                     if u is not None), default=None)
        return until if until is not None and until > self.clock() else None

    def _pause(self, target: MeasuredTarget, answer: _Answer) -> None:
        """Pause the account's analytics (or, for an app-wide limit, every account of the platform in
        this run) until ``answer.pause_until``; the store keeps each account's pause."""
        until = cast(datetime, answer.pause_until)
        key: object = target.platform if answer.scope == APP else target.channel_id
        if key in self._paused and self._paused[key] >= until:
            return
        self._paused[key] = until
        channels = {t.channel_id for t in self.claim.targets if t.platform == target.platform and t.channel_id} \
            if answer.scope == APP else {target.channel_id}
        for channel_id in sorted(c for c in channels if c is not None):
            self.pauses.append(RateLimitPause(until=until, reason=answer.pause_reason, channel_id=channel_id))
        log_event("analytics.pause", platform=target.platform, scope=answer.scope, channel_id=str(target.channel_id),
                  until=until.isoformat(), reason=answer.pause_reason)

    async def _read(self, target: MeasuredTarget) -> _Answer:
        channel = self.claim.channels[cast(UUID, target.channel_id)]
        platform = cast(MeasuringPlatform, self.platforms[target.platform])
        until = deadline.call_deadline(self.monotonic, self.limits.request_timeout, self.deadline)
        request = MetricsRequest(
            platform_post_id=cast(str, target.platform_post_id), platform_post_url=target.platform_post_url,
            published_at=target.published_at, channel_id=channel.id, account_id=channel.account_id,
            metadata=channel.metadata, credentials=cast(dict, self._credentials[channel.id]), deadline=until)
        try:
            metrics = await deadline.within(platform.metrics(request, self.http), until, self.monotonic)
            at = self.clock()
            answer = _Answer(Reading(target.target_id, ReadingOutcome.MEASURED, at=at, snapshot=_snapshot(metrics, at)))
        except PlatformError as exc:
            answer = self._classify(target, exc)
        except TimeoutError:
            answer = _Answer(_failed(target, self.clock(), "no answer within REQUEST_TIMEOUT"))
        except Exception as exc:  # an adapter bug: this slot is lost, the next one tries again
            answer = _Answer(_failed(target, self.clock(), f"the {target.platform} adapter failed ({type(exc).__name__})"))
        log_event("analytics.read", target_id=str(target.target_id), post_id=str(target.post_id),
                  platform=target.platform, outcome=answer.reading.outcome.value, error=answer.reading.error)
        return answer

    def _classify(self, target: MeasuredTarget, exc: PlatformError) -> _Answer:
        at = self.clock()
        if exc.outcome is Outcome.RATE_LIMITED:
            self.rate_limited += 1
            wait = timedelta(seconds=exc.retry_after_seconds) if exc.retry_after_seconds else RATE_LIMIT_PAUSE
            return _Answer(_released(target), pause_until=at + wait, scope=exc.limit_scope,
                           pause_reason=f"metrics read rate limited: {exc.message}")
        if exc.outcome is Outcome.AUTH:
            return _Answer(_failed(target, at, f"the platform refused the token for metrics: {exc.message}"),
                           pause_until=at + AUTH_PAUSE, pause_reason=f"token refused for metrics: {exc.message}")
        if exc.outcome is Outcome.PERMANENT:
            return _Answer(replace(_stopped(target, at, exc.message), is_reported=True))
        return _Answer(_failed(target, at, exc.message))


def _released(target: MeasuredTarget) -> Reading:
    return Reading(target.target_id, ReadingOutcome.RELEASED, due_at=target.due_at)


def _failed(target: MeasuredTarget, at: datetime, error: str) -> Reading:
    return Reading(target.target_id, ReadingOutcome.FAILED, at=at, error=error)


def _stopped(target: MeasuredTarget, at: datetime, error: str) -> Reading:
    return Reading(target.target_id, ReadingOutcome.STOPPED, at=at, error=error)


def _figure(value: Any) -> int | None:
    """A count as the store keeps it: a non-negative integer, else "not given"."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_FIGURE:
        return None
    return value


def _raw(value: Any) -> dict[str, Any]:
    """The platform's own figures as a JSON object (what cannot be written as JSON is dropped)."""
    try:
        found = json.loads(json.dumps(value, default=str, allow_nan=False))
    except (TypeError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _snapshot(metrics: Metrics, at: datetime) -> Snapshot:
    return Snapshot(recorded_at=at, raw=_raw(metrics.raw), figures=Figures(
        likes=_figure(metrics.likes), comments=_figure(metrics.comments), shares=_figure(metrics.shares),
        impressions=_figure(metrics.impressions), clicks=_figure(metrics.clicks), saves=_figure(metrics.saves)))


def _count(summary: RefreshSummary, readings: list[Reading], reader: _Reader) -> None:
    summary.rate_limited, summary.held, summary.not_started = reader.rate_limited, len(reader.held), len(reader.unstarted)
    summary.paused = [{"channel_id": str(p.channel_id), "until": p.until.isoformat(), "reason": p.reason}
                      for p in reader.pauses]
    platforms = {t.target_id: t.platform for t in reader.claim.targets}
    for reading in readings:
        summary.measured += reading.outcome is ReadingOutcome.MEASURED
        summary.failed += reading.outcome is ReadingOutcome.FAILED
        summary.stopped += reading.outcome is ReadingOutcome.STOPPED
        if reading.outcome in (ReadingOutcome.FAILED, ReadingOutcome.STOPPED) and len(summary.failures) < _MAX_LISTED:
            summary.failures.append({"target_id": str(reading.target_id), "platform": platforms[reading.target_id],
                                     "outcome": reading.outcome.value, "error": reading.error})
