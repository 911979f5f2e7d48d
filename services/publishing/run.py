"""One publish run (one cron call), DESIGN.md "The publish run", top to bottom.

1. claim due posts (and, with LOOKAHEAD_SECONDS, those due within that many seconds), and
   re-lease those a dead run left behind (``store.claim_due_posts``);
2. dispatch their targets continuously: up to PUBLISH_CONCURRENCY calls in flight, one at a time
   per channel in due order, so a slow call holds only its own channel; each call is marked
   sending before it starts (``mark_sending``, batched); no call starts unless it can finish
   inside RUN_BUDGET_SECONDS, and what is not started goes back to ``pending`` untouched;
3. a rate limit pauses the account (or the whole platform, where the platform says the limit is
   the app's) until it resets: that channel's other targets are held back, spending no retry; a
   channel its owner paused (``active`` false) is held the same way, re-checked after
   INACTIVE_RECHECK (resuming it makes its posts due at once: herald_update_channel_v1);
4. a target a dead run may have sent is re-sent only with the same idempotency key on a platform
   that honours one, reconciled where the adapter can look the post up, else held as ``unknown``;
   a call whose answer is lost on such a platform is decided the same way by a later run, once
   the platform would list the post (LOOKUP_DELAY): the post stays leased until then;
5. decide each target's fate in pure code (published, retry later, failed, unknown) and derive the
   post's status; a finished occurrence of a series gets its next occurrence; a post or channel
   whose stored data cannot be read fails on its own, never sent (``unreadable.py``);
6. record everything, pauses included, in one store call, and answer with a summary (with the
   run's publish lag).

Store round trips per run: 2 + about targets / concurrency marks (+1 per token refresh, rare).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, cast
from uuid import UUID

import httpx

from services import clock
from services.domain.models import (
    UNREADABLE_POST,
    Channel,
    ClaimedPost,
    CronRun,
    Outcome,
    PostResult,
    PostStatus,
    RateLimitPause,
    Target,
    TargetResult,
    TargetStatus,
)
from services.domain.transitions import derive_post_status
from services.errors import HeraldError
from services.logs import log_event
from services.platforms import steps
from services.platforms.base import (
    ACCOUNT,
    APP,
    Feature,
    Platform,
    PlatformError,
    Published,
    PublishRequest,
    QuotaSpend,
    ReconcilingPlatform,
    RefreshablePlatform,
    supports,
)
from services.publishing import deadline, retry, unreadable
from services.scheduling import occurrences
from services.security.crypto import TokenCipher
from services.store.base import Store

#: refresh a token this close to its expiry before publishing, not after a failure
REFRESH_MARGIN = timedelta(minutes=5)
#: after a lost answer, how long until the platform would list the post if it went out (X's
#: timeline and search lag behind a create by seconds): a later run looks it up then
LOOKUP_DELAY = timedelta(seconds=60)
#: a post held only by a paused channel is claimed again after this (a safety net: resuming the
#: channel makes it due at once), so it does not come back every minute
INACTIVE_RECHECK = timedelta(minutes=15)
PAUSED_CHANNEL = "the channel is paused: its posts wait until it is active again"
_SERIES_GOES_ON = (PostStatus.PUBLISHED, PostStatus.PARTIAL, PostStatus.FAILED, PostStatus.NEEDS_REVIEW)


@dataclass(frozen=True)
class RunLimits:
    max_posts: int = 50
    lease_seconds: int = 300
    concurrency: int = 16
    request_timeout: float = 30.0
    budget_seconds: float = 50.0
    max_retries: int = 3
    retry_base_seconds: float = 300.0
    #: also claim posts due within this many seconds, and send each at its own time
    lookahead_seconds: float = 0.0
    #: Herald's own count of a platform's daily API quota (units per day, platform -> quota): the
    #: adapter spends from it before a costly call (``PublishRequest.spend_quota``); a platform not
    #: named keeps no count. YouTube's (YOUTUBE_DAILY_QUOTA_UNITS) is counted per Pacific day
    daily_quotas: Mapping[str, int] = field(default_factory=lambda: {"youtube": 100})


@dataclass
class RunSummary:
    run_id: UUID
    trigger: str
    claimed: int = 0
    published: int = 0
    partial: int = 0
    failed: int = 0
    retry_scheduled: int = 0
    rate_limited: int = 0
    recovered: int = 0
    reconciled: int = 0
    needs_review: int = 0
    not_started: int = 0
    next_occurrences: int = 0
    #: targets left for later because their account or platform is rate limited
    held: int = 0
    #: targets whose answer was lost: a later run looks them up (their posts stay publishing)
    awaiting_lookup: int = 0
    remaining_due: int = 0
    duration_ms: int = 0
    #: this run's published targets: how late they went out (count, p50_ms, p95_ms, max_ms)
    publish_lag: dict[str, Any] = field(default_factory=dict)
    #: rate-limit pauses met in this run
    paused: list[dict[str, Any]] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": str(self.run_id), "trigger": self.trigger, "processed": self.claimed,
                **{k: v for k, v in self.__dict__.items() if k not in ("run_id", "trigger")}}


@dataclass(frozen=True)
class _Job:
    claimed: ClaimedPost
    target: Target
    sequence: int = 0  #: position in due order across the run
    due: datetime = datetime.min.replace(tzinfo=timezone.utc)  #: not started before (lookahead)
    paused_until: datetime | None = None  #: the channel's rate limit, as the claim read it
    expected_ms: int = 0  #: how long the channel's calls typically take (0: not known yet)

    @property
    def maybe_sent(self) -> bool:
        return self.target.id in self.claimed.maybe_sent

    @property
    def lane(self) -> object:
        """One call at a time per lane: the channel (a target without one is its own lane)."""
        return self.target.channel_id or self.target.id


@dataclass(frozen=True)
class _Attempt:
    result: TargetResult
    retry_after_seconds: float | None = None
    #: when the answer arrived, on the run's clock: a wait the platform asks for counts from here
    answered_at: datetime | None = None
    limit_scope: str = ACCOUNT
    #: an UNKNOWN outcome a later run can decide: the platform can look the post up, or dedupes
    #: on the idempotency key, and the lookup itself did not say "cannot tell"
    decidable_later: bool = False


async def publish_due(
    store: Store,
    platforms: dict[str, Platform],
    cipher: TokenCipher,
    http: httpx.AsyncClient,
    limits: RunLimits,
    *,
    trigger: str,
    now: datetime,
    monotonic: Callable[[], float] = time.monotonic,
    post_ids: tuple[UUID, ...] | None = None,
    run_id: UUID | None = None,
    parent_run_id: UUID | None = None,
    after_claim: Callable[[int], Awaitable[None]] | None = None,
) -> RunSummary:
    """Run one publish cycle at ``now`` (only ``post_ids`` if given). Never raises for a platform's sake.

    ``after_claim`` is awaited with the number of posts claimed, before any is sent (the cron
    route starts parallel runs from there when the claim came back full).
    """
    started = monotonic()
    summary = RunSummary(run_id=run_id or uuid.uuid4(), trigger=trigger)
    due_by = now + timedelta(seconds=limits.lookahead_seconds) if limits.lookahead_seconds > 0 else None
    claim = await store.claim_due_posts(now=now, limit=limits.max_posts, lease_seconds=limits.lease_seconds,
                                        post_ids=post_ids, due_by=due_by)
    summary.claimed, summary.recovered = len(claim.posts) + len(claim.unreadable), len(claim.recovered)
    for post_id in claim.recovered:
        log_event("publish.recovered", post_id=str(post_id), run_id=str(summary.run_id))
    if after_claim is not None:
        await after_claim(summary.claimed)
    for entry in claim.unreadable:
        log_event("publish.unreadable_post", post_id=str(entry.post_id), run_id=str(summary.run_id),
                  error_code=UNREADABLE_POST, reason=entry.reason)

    sender = _Sender(store, platforms, cipher, http, limits, started=started, deadline=started + limits.budget_seconds,
                     monotonic=monotonic, now=now, platform_pauses=claim.platform_pauses)
    attempts = await sender.run(claim.posts)
    results = [_post_result(c, attempts, sender.held, limits, now) for c in claim.posts]
    for result, claimed in zip(results, claim.posts, strict=True):
        _count(summary, result, claimed, sender.held)
    for entry in claim.unreadable:
        results.append(unreadable.post_result(entry, now=now))
        _count(summary, results[-1], None)

    elapsed = monotonic() - started
    summary.duration_ms = round(elapsed * 1000)
    summary.publish_lag = _lag_summary(results)
    summary.held = len(sender.held)
    summary.paused = [_pause_dict(p) for p in sender.pauses]
    cron_run = CronRun(
        id=summary.run_id, trigger=trigger, started_at=now, finished_at=now + timedelta(seconds=elapsed),
        claimed=summary.claimed, published=summary.published, failed=summary.failed, remaining_due=0,
        duration_ms=summary.duration_ms, parent_run_id=parent_run_id,
        error=f"the store failed mid-run ({type(sender.store_error).__name__}); nothing more was started"
        if sender.store_error is not None else None,
    )
    summary.remaining_due = await store.record_results(results, now=now + timedelta(seconds=elapsed), cron_run=cron_run,
                                                       pauses=tuple(sender.pauses))
    summary.duration_ms = round((monotonic() - started) * 1000)
    log_event("publish.run_finished", run_id=str(summary.run_id), trigger=trigger, claimed=summary.claimed,
              published=summary.published, failed=summary.failed, remaining_due=summary.remaining_due,
              duration_ms=summary.duration_ms)
    return summary


class _Sender:
    """Dispatches the claimed targets continuously; owns the run's per-channel credentials.

    Up to PUBLISH_CONCURRENCY calls are in flight at all times, one per channel (a lane), each
    lane in due order, so a slow call holds only its own channel. Calls are marked sending
    before they start (write-ahead), in batches: a mark for the next jobs goes out while calls
    are in flight, so store round trips stay about targets / concurrency. Among the due lanes,
    accounts whose calls took longest in earlier runs start first (``typical_call_ms``), so a
    slow call does not start last and end the run late. A rate limit pauses
    its account (or, where the platform says the limit is the app's, the whole platform): the
    paused lanes' remaining jobs are held, not started, until the pause ends.
    """

    def __init__(self, store: Store, platforms: dict[str, Platform], cipher: TokenCipher, http: httpx.AsyncClient,
                 limits: RunLimits, *, started: float, deadline: float, monotonic: Callable[[], float], now: datetime,
                 platform_pauses: dict[str, datetime] | None = None):
        self.store, self.platforms, self.cipher, self.http, self.limits = store, platforms, cipher, http, limits
        self.started, self.deadline, self.monotonic, self.now = started, deadline, monotonic, now
        self._stored: dict[UUID, dict[str, Any]] = {}  #: decrypted as stored, per channel
        self._unusable: dict[UUID, str] = {}  #: why a channel's credentials cannot be read
        self._credentials: dict[UUID, dict[str, Any]] = {}  #: in use (refreshed if they were expiring)
        #: lane key or platform name -> paused until (from the claim, or met in this run)
        self._paused: dict[object, datetime] = {
            platform: until for platform, until in (platform_pauses or {}).items() if until > now}
        self.held: dict[UUID, datetime] = {}  #: targets not started because their account is paused: until when
        self.pauses: list[RateLimitPause] = []  #: pauses met in this run, to be recorded
        self.store_error: Exception | None = None  #: a mark_sending that failed: nothing more was started

    def clock(self) -> datetime:
        """The run's clock: ``now`` plus the time elapsed since the run started."""
        return self.now + timedelta(seconds=self.monotonic() - self.started)

    def _can_start(self) -> bool:
        return self.monotonic() + self.limits.request_timeout <= self.deadline

    async def run(self, claimed: tuple[ClaimedPost, ...]) -> dict[UUID, _Attempt]:
        lanes: dict[object, deque[_Job]] = {}
        attempts: dict[UUID, _Attempt] = {}
        sequence = 0
        for c in claimed:  # claimed posts come in due order, so every lane is in due order too
            due = _due_at(c.post)
            for target in c.post.targets:
                if target.status is TargetStatus.PENDING or target.id in c.maybe_sent:
                    problem = self._unreadable_channel(c, target)
                    if problem is not None:  # failed before any mark or call: nothing is sent
                        attempts[target.id] = _unreadable_attempt(target, problem, target.id in c.maybe_sent)
                        continue
                    channel = c.channels.get(target.channel_id) if target.channel_id else None
                    lanes.setdefault(target.channel_id or target.id, deque()).append(
                        _Job(c, target, sequence, due, self._channel_pause(c, target),
                             (channel.typical_call_ms or 0) if channel is not None else 0))
                    sequence += 1
        await self._dispatch(lanes, attempts)
        return attempts

    async def _dispatch(self, lanes: dict[object, deque[_Job]], attempts: dict[UUID, _Attempt]) -> None:
        concurrency = max(1, self.limits.concurrency)
        ready: deque[_Job] = deque()  #: marked sending, not started yet (at most one per lane)
        busy: set[object] = set()  #: lanes with a job in ``ready`` or in flight
        running: dict[asyncio.Task, _Job] = {}
        marking: asyncio.Task | None = None
        marked: list[_Job] = []
        while True:
            can_start = self._can_start() and self.store_error is None
            while ready and len(running) < concurrency and can_start:
                job = ready.popleft()
                until = self._pause_of(job)
                if until is not None:  # paused while it waited: it goes back untouched
                    self.held[job.target.id] = until
                    busy.discard(job.lane)
                    continue
                running[asyncio.create_task(self._attempt(job))] = job
            wake_at = None
            if marking is None and can_start and len(ready) < max(1, concurrency // 2):
                picks, wake_at = self._pick(lanes, busy, concurrency - len(ready))
                if picks:
                    busy.update(job.lane for job in picks)
                    to_mark = [job.target.id for job in picks if not job.maybe_sent]
                    if not to_mark:  # all maybe-sent: already marked by the run that died
                        ready.extend(picks)
                        continue
                    marking, marked = asyncio.create_task(self.store.mark_sending(to_mark, now=self.now)), picks
            waiting = set(running) | ({marking} if marking is not None else set())
            timeout = None if wake_at is None else max(0.0, (wake_at - self.clock()).total_seconds())
            if not waiting:
                if ready and can_start:
                    continue
                if timeout is None or not can_start:
                    break  # done, or out of budget: what is left goes back untouched
                await asyncio.sleep(min(timeout, max(0.0, self.deadline - self.monotonic())))
                continue
            done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is marking:
                    marking = None
                    try:
                        task.result()
                    except Exception as exc:  # the store is unreachable: start nothing more
                        self.store_error = exc
                        log_event("publish.mark_sending_failed", level=logging.ERROR, error=type(exc).__name__)
                        busy.difference_update(job.lane for job in marked)
                    else:
                        ready.extend(marked)
                    marked = []
                    continue
                job = running.pop(task)
                attempt = attempts[job.target.id] = task.result()
                busy.discard(job.lane)
                if attempt.result.outcome is Outcome.RATE_LIMITED:
                    self._pause(job, attempt)

    def _pick(self, lanes: dict[object, deque[_Job]], busy: set[object], limit: int) -> tuple[list[_Job], datetime | None]:
        """The next jobs to mark: the heads of idle lanes that are due (lookahead), slowest
        account first, then earliest due; and, when none is due yet, when the earliest will be.

        All of them are due, so the order across channels only decides how long the run takes:
        a slow account's call started last would end the run late (longest first).
        """
        now = self.clock()
        heads, wake_at = [], None
        for lane, jobs in list(lanes.items()):
            if lane in busy:
                continue
            head = jobs[0]
            until = self._pause_of(head)
            if until is not None:  # the account or platform is paused: the whole lane waits
                for job in jobs:
                    self.held[job.target.id] = until
                del lanes[lane]
                continue
            if head.due > now:
                wake_at = head.due if wake_at is None else min(wake_at, head.due)
                continue
            heads.append(head)
        heads.sort(key=lambda job: (-_slowness(job.expected_ms), job.sequence))
        picks = heads[:max(0, limit)]
        for job in picks:
            lanes[job.lane].popleft()
            if not lanes[job.lane]:
                del lanes[job.lane]
        return picks, (wake_at if not picks else None)

    def _channel_pause(self, claimed: ClaimedPost, target: Target) -> datetime | None:
        channel = claimed.channels.get(target.channel_id) if target.channel_id else None
        if channel is not None and not channel.active:  # paused by its owner: held like a rate limit
            return self.now + INACTIVE_RECHECK
        until = channel.rate_limited_until if channel is not None else None
        return until if until is not None and until > self.now else None

    def _pause_of(self, job: _Job) -> datetime | None:
        """Until when ``job`` must wait: its account's pause or its platform's, if either holds."""
        pauses = [until for until in (job.paused_until, self._paused.get(job.lane),
                                      self._paused.get(job.target.platform)) if until is not None]
        until = max(pauses, default=None)
        return until if until is not None and until > self.clock() else None

    def _pause(self, job: _Job, attempt: _Attempt) -> None:
        """A rate limit: pause the account (or the platform, for an app-wide limit) until it resets."""
        until = _retry_at(attempt, self.limits)
        scope = attempt.limit_scope
        key: object = job.target.platform if scope == APP else job.lane
        if self._paused.get(key) is not None and self._paused[key] >= until:
            return
        self._paused[key] = until
        reason = attempt.result.error_message or "rate limited"
        if scope == APP:
            self.pauses.append(RateLimitPause(until=until, reason=reason, platform=job.target.platform))
        elif job.target.channel_id is not None:
            self.pauses.append(RateLimitPause(until=until, reason=reason, channel_id=job.target.channel_id))
        log_event("publish.rate_limit_pause", platform=job.target.platform, scope=scope,
                  channel_id=str(job.target.channel_id), until=until.isoformat())

    async def _attempt(self, job: _Job) -> _Attempt:
        started = clock.utcnow()
        target = job.target
        attempt_no = target.attempts + 1
        key = f"herald-{target.id}"
        progress: dict[str, Any] = {}  #: what the adapter has done so far (a call cut off still keeps it)
        platform: Platform | None = None
        try:
            channel, platform, request = await self._prepare(job, key, progress)
            published = await self._send(job, channel, platform, request)
            finished = clock.utcnow()
            result = TargetResult(
                target_id=target.id, outcome=Outcome.PUBLISHED, status=TargetStatus.PUBLISHED, attempt=attempt_no,
                started_at=started, finished_at=finished, platform_post_id=published.platform_post_id,
                platform_post_url=published.url, http_status=published.http_status, idempotency_key=key,
                lag_ms=round((finished - job.due).total_seconds() * 1000),
                steps=published.steps or None, first_comment_error=published.first_comment_error,
            )
            attempt = _Attempt(result)
        except _Undecided as exc:  # a maybe-sent call's lookup gave no verdict
            attempt = _Attempt(_failure(target, attempt_no, started, Outcome.UNKNOWN, exc.code, exc.message, None, key),
                               decidable_later=exc.try_later)
        except PlatformError as exc:
            failure = _failure(target, attempt_no, started, exc.outcome, exc.code, exc.message, exc.http_status, key)
            resume = {**progress, **exc.details} or None  # what the adapter did, and what it said of it
            attempt = _Attempt(replace(failure, resume=resume, steps=_steps_of(resume)), exc.retry_after_seconds,
                               limit_scope=exc.limit_scope,
                               decidable_later=exc.outcome is Outcome.UNKNOWN and _decidable(platform))
        except HeraldError as exc:  # e.g. the store refused to save refreshed credentials
            attempt = _Attempt(_failure(target, attempt_no, started, Outcome.PERMANENT, exc.code, exc.message, None, key))
        except TimeoutError:  # the run stopped the call: keep what the adapter had done
            failure = _failure(target, attempt_no, started, Outcome.UNKNOWN, "timeout",
                               "no answer within REQUEST_TIMEOUT; the post may or may not be live", None, key)
            attempt = _Attempt(replace(failure, resume=progress or None, steps=_steps_of(progress)),
                               decidable_later=_decidable(platform))
        except Exception as exc:  # an adapter bug: it may have sent the post, so do not resend blindly
            failure = _failure(target, attempt_no, started, Outcome.UNKNOWN, "adapter_error", type(exc).__name__,
                               None, key)
            attempt = _Attempt(replace(failure, resume=progress or None, steps=_steps_of(progress)),
                               decidable_later=_decidable(platform))
        attempt = replace(attempt, answered_at=self.clock())
        log_event("publish.target", post_id=str(target.post_id), target_id=str(target.id), platform=target.platform,
                  outcome=attempt.result.outcome.value, attempt=attempt_no, error_code=attempt.result.error_code)
        return attempt

    async def _prepare(self, job: _Job, key: str, progress: dict[str, Any]) -> tuple[Channel, Platform, PublishRequest]:
        post, target = job.claimed.post, job.target
        channel = job.claimed.channels.get(target.channel_id) if target.channel_id else None
        if channel is None:
            raise PlatformError(Outcome.PERMANENT, "channel_deleted", "the channel was deleted")
        if channel.status == "needs_reconnect":
            raise PlatformError(Outcome.PERMANENT, "reconnect_required", "reconnect this account to publish to it")
        platform = self.platforms.get(target.platform)
        if platform is None:
            raise PlatformError(Outcome.PERMANENT, "platform_unavailable", f"platform {target.platform!r} is not available")
        credentials = self._credentials.get(channel.id)
        if credentials is None:
            credentials = self._stored[channel.id]  # read before the wave (``_unreadable_channel``)
            expiring = channel.token_expires_at is not None and channel.token_expires_at - self.now < REFRESH_MARGIN
            if expiring and supports(platform, Feature.REFRESH):
                credentials = await self._refresh(channel, platform, credentials)
            self._credentials[channel.id] = credentials
        request = PublishRequest(
            post_id=post.id, target_id=target.id, content=post.content.for_platform(target.platform),
            scheduled_at=post.scheduled_at, timezone=post.timezone, channel_id=channel.id,
            account_id=channel.account_id, metadata=channel.metadata, credentials=credentials,
            idempotency_key=key, resume=target.resume or None, progress=progress, checkpoint=self._checkpoint(job),
            spend_quota=self._spend_quota(target.platform, platform),
            # a target marked in this run was marked at ``now`` (``mark_sending`` keeps the first mark)
            first_attempt_at=target.first_attempt_at or (None if job.maybe_sent else self.now),
        )
        return channel, platform, request

    def _checkpoint(self, job: _Job) -> Callable[[dict[str, Any]], Awaitable[None]]:
        """``PublishRequest.checkpoint``: save the target's resume details now, under this run's lease.

        A save that fails, or finds the lease gone, stops the call before it goes on (TRANSIENT, the
        details kept in the error): going on would leave a step a killed run could not resume.
        """
        async def save(resume: dict[str, Any]) -> None:
            try:
                saved = await self.store.save_progress(job.claimed.lease_id, job.target.id, resume)
            except Exception as exc:
                raise PlatformError(Outcome.TRANSIENT, "progress_not_saved",
                                    f"the store could not save where the upload stands ({type(exc).__name__})",
                                    details=dict(resume)) from exc
            if not saved:
                raise PlatformError(Outcome.TRANSIENT, "lease_lost",
                                    "this run no longer holds the post; it stopped before sending more",
                                    details=dict(resume))
        return save

    def _spend_quota(self, name: str, platform: Platform) -> Callable[[int], Awaitable[QuotaSpend]] | None:
        """``PublishRequest.spend_quota``: count units of ``name``'s daily quota (``limits.daily_quotas``)
        against today as the platform counts days (its ``quota_zone``, UTC if it names none), at the
        moment of the call on the run's clock. None when the run keeps no count for the platform.

        A store that cannot count stops the call before it is made (TRANSIENT): nothing was sent.
        """
        limit = self.limits.daily_quotas.get(name)
        if limit is None:
            return None
        zone: tzinfo = getattr(platform, "quota_zone", None) or timezone.utc

        async def spend(units: int) -> QuotaSpend:
            day = self.clock().astimezone(zone).date()
            try:
                spent, used = await self.store.spend_quota(name, day, units, limit)
            except Exception as exc:
                raise PlatformError(Outcome.TRANSIENT, "quota_not_counted",
                                    f"the store could not count the call's quota ({type(exc).__name__})") from exc
            log_event("publish.quota", platform=name, day=day.isoformat(), units=units, used=used, limit=limit,
                      spent=spent)
            return QuotaSpend(spent, used, limit)
        return spend

    def _unreadable_channel(self, claimed: ClaimedPost, target: Target) -> str | None:
        """Why the target's channel cannot be used as stored (its row, or its credentials), or None."""
        if target.channel_id in claimed.unreadable_channels:
            return claimed.unreadable_channels[target.channel_id]
        channel = claimed.channels.get(target.channel_id) if target.channel_id else None
        if channel is not None and channel.id not in self._stored and channel.id not in self._unusable:
            try:
                self._stored[channel.id] = unreadable.read_credentials(self.cipher, channel)
            except HeraldError as exc:
                self._unusable[channel.id] = exc.message
        return self._unusable.get(target.channel_id) if target.channel_id is not None else None

    async def _send(self, job: _Job, channel: Channel, platform: Platform, request: PublishRequest) -> Published:
        if job.maybe_sent and not supports(platform, Feature.IDEMPOTENCY_KEY):
            multi = steps.is_multi_step(platform, request.content)
            if multi and steps.recorded(request.resume) and not supports(platform, Feature.REPEATABLE_STEPS):
                # the post is live already; the step in doubt is a later one, which no lookup can tell
                try:
                    settled = steps.settle_lost(platform, request, None)
                except PlatformError as exc:
                    raise _Undecided(exc.code, exc.message, try_later=False) from exc
                if settled is not None:
                    return settled
            elif not (multi and supports(platform, Feature.REPEATABLE_STEPS)):
                if not supports(platform, Feature.LOOKUP):
                    raise PlatformError(Outcome.UNKNOWN, "maybe_sent",
                                        "the run publishing it stopped mid-call; check whether it is live, then resolve it")
                found = await self._look_up(cast(ReconcilingPlatform, platform), request)
                if found is not None:  # it did go out: reconciled, never sent twice
                    try:
                        return steps.settle_lost(platform, request, found) or found
                    except PlatformError as exc:
                        raise _Undecided(exc.code, exc.message, try_later=False) from exc
        try:
            return await self._publish(platform, request)
        except PlatformError as exc:
            if exc.outcome is not Outcome.AUTH or not supports(platform, Feature.REFRESH):
                if exc.outcome is Outcome.AUTH:
                    await self._needs_reconnect(channel, exc.message)
                raise
        # The token was refused: refresh once, then try again with the new one (from the steps done).
        credentials = await self._refresh(channel, platform, request.credentials)
        self._credentials[channel.id] = credentials
        resume = request.resume
        if "steps" in request.progress:  # a post in steps: carry on from the first step not done
            resume = {**request.progress, "steps": list(request.progress["steps"])}
        return await self._publish(platform, replace(request, credentials=credentials, resume=resume))

    def _call_deadline(self) -> float:
        return deadline.call_deadline(self.monotonic, self.limits.request_timeout, self.deadline)

    async def _publish(self, platform: Platform, request: PublishRequest) -> Published:
        # Stopped a little past its deadline: whatever it sent, we cannot tell (what it reported in
        # ``progress`` is kept).
        until = self._call_deadline()
        return await deadline.within(steps.publish(platform, replace(request, deadline=until), self.http), until,
                                     self.monotonic)

    async def _look_up(self, platform: ReconcilingPlatform, request: PublishRequest) -> Published | None:
        """Whether a maybe-sent call went out: Published, None (certainly not), or _Undecided."""
        until = self._call_deadline()
        try:
            return await deadline.within(platform.lookup(replace(request, deadline=until), self.http), until, self.monotonic)
        except PlatformError as exc:  # a passing failure (a 5xx, a rate limit) may answer later; others cannot
            raise _Undecided(exc.code, f"it may have been sent, and looking it up failed: {exc.message}",
                             try_later=exc.outcome in (Outcome.TRANSIENT, Outcome.RATE_LIMITED)) from exc
        except TimeoutError:
            raise _Undecided("timeout", "it may have been sent, and looking it up got no answer in time",
                             try_later=True) from None

    async def _refresh(self, channel: Channel, platform: Platform, credentials: dict[str, Any]) -> dict[str, Any]:
        try:
            tokens = await cast(RefreshablePlatform, platform).refresh(credentials, channel.metadata, self.http)
        except PlatformError as exc:
            await self._needs_reconnect(channel, exc.message)
            raise PlatformError(Outcome.AUTH, "reconnect_required",
                                f"the account's token was refused and could not be refreshed: {exc.message}") from exc
        # Persist before use: a rotated refresh token that is lost disconnects the account.
        await self.store.save_channel_credentials(channel.id, self.cipher.encrypt(tokens.credentials),
                                                  token_expires_at=tokens.expires_at)
        log_event("channel.token_refreshed", channel_id=str(channel.id), platform=channel.platform)
        return tokens.credentials

    async def _needs_reconnect(self, channel: Channel, reason: str) -> None:
        await self.store.mark_channel_needs_reconnect(channel.id, reason=reason)
        log_event("channel.needs_reconnect", channel_id=str(channel.id), platform=channel.platform)


class _Undecided(Exception):
    """Looking up a maybe-sent call gave no verdict; ``try_later``: a later lookup may."""

    def __init__(self, code: str, message: str, *, try_later: bool):
        super().__init__(message)
        self.code, self.message, self.try_later = code, message, try_later


def _decidable(platform: Platform | None) -> bool:
    """Whether a later run can settle a lost answer: by looking the post up, or by repeating the
    call under the same idempotency key."""
    return platform is not None and (supports(platform, Feature.LOOKUP) or supports(platform, Feature.IDEMPOTENCY_KEY))


def _steps_of(resume: dict[str, Any] | None) -> tuple[dict[str, Any], ...] | None:
    """The steps a failed attempt left live (a thread's first parts), to show on the target; None: none."""
    return tuple(steps.recorded(resume)) or None


def _unreadable_attempt(target: Target, problem: str, maybe_sent: bool) -> _Attempt:
    """A target whose channel cannot be read: failed, or unknown if a dead run may have sent it."""
    started = clock.utcnow()
    if maybe_sent:
        return _Attempt(_failure(target, target.attempts + 1, started, Outcome.UNKNOWN, UNREADABLE_POST,
                                 f"{problem}; {unreadable.MAYBE_SENT}", None, None))
    return _Attempt(_failure(target, target.attempts + 1, started, Outcome.PERMANENT, UNREADABLE_POST, problem,
                             None, None))


def _failure(target: Target, attempt: int, started: datetime, outcome: Outcome, code: str, message: str,
             http_status: int | None, key: str | None) -> TargetResult:
    return TargetResult(
        target_id=target.id, outcome=outcome, status=TargetStatus.FAILED, attempt=attempt, started_at=started,
        finished_at=clock.utcnow(), http_status=http_status, error_code=code, error_message=message,
        idempotency_key=key,
    )


def _post_result(claimed: ClaimedPost, attempts: dict[UUID, _Attempt], held: dict[UUID, datetime],
                 limits: RunLimits, now: datetime) -> PostResult:
    """Decide each target's new status and derive the post's: pure, given the attempts and the
    targets held back by a rate-limit pause (until when)."""
    post = claimed.post
    results, statuses, retry_times, errors, released, lookups = [], [], [], [], [], []
    has_unstarted = False
    for target in post.targets:
        attempt = attempts.get(target.id)
        if attempt is None:
            if target.status is TargetStatus.PENDING or target.id in claimed.maybe_sent:
                # not started: pending again (a maybe-sent target keeps its mark for the next run);
                # due again at once, or when its account's pause ends
                if target.id in held:
                    retry_times.append(held[target.id])
                    if _is_paused_channel(claimed, target):
                        errors.append(f"{target.platform}: {PAUSED_CHANNEL}")
                else:
                    has_unstarted = True
                statuses.append(TargetStatus.PENDING)
                if target.id not in claimed.maybe_sent:
                    released.append(target.id)
            else:
                statuses.append(target.status)
            continue
        result = attempt.result
        if result.outcome is Outcome.PUBLISHED:
            status = TargetStatus.PUBLISHED
        elif result.outcome is Outcome.UNKNOWN and attempt.decidable_later and result.attempt <= limits.max_retries + 1:
            # answer lost: still marked sending; a run looks it up once the platform would list it
            status = TargetStatus.PUBLISHING
            lookups.append((attempt.answered_at or now) + LOOKUP_DELAY)
            result = replace(result, error_message=f"{result.error_message}; a later run checks whether it went out")
        elif result.outcome is Outcome.UNKNOWN:
            status = TargetStatus.UNKNOWN
        else:
            rate_limited = target.rate_limited + (result.outcome is Outcome.RATE_LIMITED)
            # a wait counts from when the answer arrived, not from the run's start
            decision = retry.decide(result.outcome, attempt=result.attempt - rate_limited, rate_limited=rate_limited,
                                    now=attempt.answered_at or now, max_retries=limits.max_retries,
                                    base_seconds=limits.retry_base_seconds,
                                    retry_after_seconds=attempt.retry_after_seconds)
            status = TargetStatus.PENDING if decision.retry else TargetStatus.FAILED
            if decision.at is not None:
                retry_times.append(decision.at)
        if result.error_message:
            errors.append(f"{target.platform}: {result.error_message}")
        results.append(replace(result, status=status))
        statuses.append(status)
    if lookups:  # the post stays publishing, leased until its lost answers can be looked up
        return PostResult(post_id=post.id, lease_id=claimed.lease_id, status=PostStatus.PUBLISHING,
                          error="; ".join(errors) or None, targets=tuple(results), released=tuple(released),
                          lookup_at=max(lookups))
    post_status = derive_post_status(statuses)
    next_attempt_at = min(retry_times) if post_status is PostStatus.SCHEDULED and retry_times and not has_unstarted else None
    return PostResult(
        post_id=post.id, lease_id=claimed.lease_id, status=post_status, error="; ".join(errors) or None,
        targets=tuple(results), next_attempt_at=next_attempt_at, released=tuple(released),
        next_occurrence_at=_next_occurrence(post, post_status, now),
    )


def _is_paused_channel(claimed: ClaimedPost, target: Target) -> bool:
    channel = claimed.channels.get(target.channel_id) if target.channel_id else None
    return channel is not None and not channel.active


def _slowness(expected_ms: int) -> int:
    """A coarse class of how slow an account is (0 under 200 ms, then one class per doubling), so
    that a few milliseconds of noise never reorder accounts that are equally fast."""
    return max(0, (expected_ms // 100).bit_length() - 1)


def _due_at(post: Any) -> datetime:
    """When a post was due: its scheduled time, or earlier if the user said "publish now"; a retry
    later than the schedule still counts from the schedule, so its lag shows the delay."""
    times = [t for t in (post.scheduled_at, post.next_attempt_at) if t is not None]
    return min(times) if times else datetime.min.replace(tzinfo=timezone.utc)


def _retry_at(attempt: _Attempt, limits: RunLimits) -> datetime:
    """When a rate limit ends: the platform's wait (or one backoff step), from the answer's arrival."""
    answered = attempt.answered_at or clock.utcnow()
    decision = retry.decide(Outcome.RATE_LIMITED, attempt=1, rate_limited=1, now=answered,
                            max_retries=limits.max_retries, base_seconds=limits.retry_base_seconds,
                            retry_after_seconds=attempt.retry_after_seconds)
    return decision.at or answered


def _lag_summary(results: list[PostResult]) -> dict[str, Any]:
    lags = sorted(t.lag_ms for r in results for t in r.targets if t.lag_ms is not None)
    if not lags:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    return {"count": len(lags), "p50_ms": _percentile(lags, 0.50), "p95_ms": _percentile(lags, 0.95),
            "max_ms": lags[-1]}


def _percentile(ordered: list[int], fraction: float) -> int:
    """Linear interpolation between the closest ranks (what Postgres' percentile_cont does)."""
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _pause_dict(pause: RateLimitPause) -> dict[str, Any]:
    scope = {"channel_id": str(pause.channel_id)} if pause.channel_id else {"platform": pause.platform}
    return {**scope, "until": pause.until.isoformat(), "reason": pause.reason}


def _next_occurrence(post: Any, status: PostStatus, now: datetime) -> datetime | None:
    """When a finished occurrence's series is due next: the first instance after now (missed ones skipped)."""
    if not post.rrule or status not in _SERIES_GOES_ON or post.scheduled_at is None:
        return None
    try:
        return occurrences.next_after(post.rrule, start=post.series_start_at or post.scheduled_at,
                                      tz_name=post.timezone, after=max(now, post.scheduled_at))
    except Exception:  # the claim read the rule and zone; whatever else goes wrong ends the series, not the run
        log_event("publish.rrule_unusable", post_id=str(post.id))
        return None


def _unstarted_outcome(claimed: ClaimedPost | None, target: Target, held: dict[UUID, datetime] | None) -> str:
    if target.id not in (held or {}):
        return "not_started"
    return "channel_paused" if claimed is not None and _is_paused_channel(claimed, target) else "rate_limit_pause"


def _count(summary: RunSummary, result: PostResult, claimed: ClaimedPost | None,
           held: dict[UUID, datetime] | None = None) -> None:
    """Add one post's result to the summary (``claimed`` None: an unreadable post, nothing started)."""
    status = result.status
    if status is PostStatus.PUBLISHED:
        summary.published += 1
    elif status is PostStatus.PARTIAL:
        summary.partial += 1
    elif status is PostStatus.FAILED:
        summary.failed += 1
    elif status is PostStatus.NEEDS_REVIEW:
        summary.needs_review += 1
    if any(t.status is TargetStatus.PENDING for t in result.targets):
        summary.retry_scheduled += 1
    summary.rate_limited += sum(t.outcome is Outcome.RATE_LIMITED for t in result.targets)
    summary.awaiting_lookup += sum(t.status is TargetStatus.PUBLISHING for t in result.targets)
    summary.next_occurrences += result.next_occurrence_at is not None
    unstarted = []
    if claimed is not None:
        summary.reconciled += sum(t.target_id in claimed.maybe_sent and t.outcome is Outcome.PUBLISHED
                                  for t in result.targets)
        started = {t.target_id for t in result.targets}
        unstarted = [t for t in claimed.post.targets
                     if (t.status is TargetStatus.PENDING or t.id in claimed.maybe_sent) and t.id not in started]
    summary.not_started += sum(t.id not in (held or {}) for t in unstarted)
    summary.posts.append({
        "id": str(result.post_id),
        "outcome": status.value,
        "next_attempt_at": result.next_attempt_at.isoformat() if result.next_attempt_at else None,
        "targets": [
            {"id": str(t.target_id), "outcome": t.outcome.value, "status": t.status.value, "error": t.error_message}
            for t in result.targets
        ] + [{"id": str(t.id), "outcome": _unstarted_outcome(claimed, t, held), "status": "pending",
              "error": PAUSED_CHANNEL if claimed is not None and _is_paused_channel(claimed, t) else None}
             for t in unstarted],
    })
