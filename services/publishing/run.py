"""One publish run (one cron call), DESIGN.md "The publish run", top to bottom.

1. claim due posts, and re-lease those a dead run left behind (``store.claim_due_posts``);
2. publish their targets in waves: each wave takes the next target of up to PUBLISH_CONCURRENCY
   channels (so one call at a time per account, in due order), is recorded as sending in one store
   call (``mark_sending``), then sent concurrently; no wave starts unless its calls can finish inside
   RUN_BUDGET_SECONDS, and what is not started goes back to ``pending`` untouched;
3. a target a dead run may have sent is re-sent only with the same idempotency key on a platform
   that honours one, reconciled where the adapter can look the post up, else held as ``unknown``;
4. decide each target's fate in pure code (published, retry later, failed, unknown) and derive the
   post's status; a finished occurrence of a series gets its next occurrence; a post or channel
   whose stored data cannot be read fails on its own, never sent (``unreadable.py``);
5. record everything in one store call, and answer with a summary.

Store round trips per run: 2 + one per wave (+1 per token refresh, which is rare).
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Callable
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
    Target,
    TargetResult,
    TargetStatus,
)
from services.domain.transitions import derive_post_status
from services.errors import HeraldError
from services.logs import log_event
from services.platforms.base import Platform, PlatformError, Published, PublishRequest
from services.publishing import retry, unreadable
from services.scheduling import recurrence
from services.security.crypto import TokenCipher
from services.store.base import Store

#: refresh a token this close to its expiry before publishing, not after a failure
REFRESH_MARGIN = timedelta(minutes=5)
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
    remaining_due: int = 0
    duration_ms: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": str(self.run_id), "trigger": self.trigger, "processed": self.claimed,
                **{k: v for k, v in self.__dict__.items() if k not in ("run_id", "trigger")}}


@dataclass(frozen=True)
class _Job:
    claimed: ClaimedPost
    target: Target

    @property
    def maybe_sent(self) -> bool:
        return self.target.id in self.claimed.maybe_sent


@dataclass(frozen=True)
class _Attempt:
    result: TargetResult
    retry_after_seconds: float | None = None


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
) -> RunSummary:
    """Run one publish cycle at ``now`` (only ``post_ids`` if given). Never raises for a platform's sake."""
    started = monotonic()
    summary = RunSummary(run_id=uuid.uuid4(), trigger=trigger)
    claim = await store.claim_due_posts(now=now, limit=limits.max_posts, lease_seconds=limits.lease_seconds,
                                        post_ids=post_ids)
    summary.claimed, summary.recovered = len(claim.posts) + len(claim.unreadable), len(claim.recovered)
    for post_id in claim.recovered:
        log_event("publish.recovered", post_id=str(post_id), run_id=str(summary.run_id))
    for entry in claim.unreadable:
        log_event("publish.unreadable_post", post_id=str(entry.post_id), run_id=str(summary.run_id),
                  error_code=UNREADABLE_POST, reason=entry.reason)

    sender = _Sender(store, platforms, cipher, http, limits, deadline=started + limits.budget_seconds,
                     monotonic=monotonic, now=now)
    attempts = await sender.run(claim.posts)
    results = [_post_result(c, attempts, limits, now) for c in claim.posts]
    for result, claimed in zip(results, claim.posts):
        _count(summary, result, claimed)
    for entry in claim.unreadable:
        results.append(unreadable.post_result(entry, now=now))
        _count(summary, results[-1], None)

    elapsed = monotonic() - started
    summary.duration_ms = round(elapsed * 1000)
    cron_run = CronRun(
        id=summary.run_id, trigger=trigger, started_at=now, finished_at=now + timedelta(seconds=elapsed),
        claimed=summary.claimed, published=summary.published, failed=summary.failed, remaining_due=0,
        duration_ms=summary.duration_ms,
    )
    summary.remaining_due = await store.record_results(results, now=now + timedelta(seconds=elapsed), cron_run=cron_run)
    summary.duration_ms = round((monotonic() - started) * 1000)
    log_event("publish.run_finished", run_id=str(summary.run_id), trigger=trigger, claimed=summary.claimed,
              published=summary.published, failed=summary.failed, remaining_due=summary.remaining_due,
              duration_ms=summary.duration_ms)
    return summary


class _Sender:
    """Sends the claimed targets in waves; owns the run's per-channel credentials."""

    def __init__(self, store: Store, platforms: dict[str, Platform], cipher: TokenCipher, http: httpx.AsyncClient,
                 limits: RunLimits, *, deadline: float, monotonic: Callable[[], float], now: datetime):
        self.store, self.platforms, self.cipher, self.http, self.limits = store, platforms, cipher, http, limits
        self.deadline, self.monotonic, self.now = deadline, monotonic, now
        self._stored: dict[UUID, dict[str, Any]] = {}  #: decrypted as stored, per channel
        self._unusable: dict[UUID, str] = {}  #: why a channel's credentials cannot be read
        self._credentials: dict[UUID, dict[str, Any]] = {}  #: in use (refreshed if they were expiring)

    async def run(self, claimed: tuple[ClaimedPost, ...]) -> dict[UUID, _Attempt]:
        lanes: dict[object, deque[_Job]] = {}
        attempts: dict[UUID, _Attempt] = {}
        for c in claimed:  # claimed posts come in due order, so every lane is in due order too
            for target in c.post.targets:
                if target.status is TargetStatus.PENDING or target.id in c.maybe_sent:
                    problem = self._unreadable_channel(c, target)
                    if problem is not None:  # failed before any mark or call: nothing is sent
                        attempts[target.id] = _unreadable_attempt(target, problem, target.id in c.maybe_sent)
                        continue
                    lanes.setdefault(target.channel_id or target.id, deque()).append(_Job(c, target))
        while lanes:
            if self.monotonic() + self.limits.request_timeout > self.deadline:
                break  # a call started now might not finish inside the budget: leave the rest
            wave = [lane.popleft() for lane in list(lanes.values())[: self.limits.concurrency]]
            lanes = {key: lane for key, lane in lanes.items() if lane}
            await self.store.mark_sending([j.target.id for j in wave if not j.maybe_sent], now=self.now)
            for job, attempt in zip(wave, await asyncio.gather(*(self._attempt(j) for j in wave))):
                attempts[job.target.id] = attempt
        return attempts

    async def _attempt(self, job: _Job) -> _Attempt:
        started = clock.utcnow()
        target = job.target
        attempt_no = target.attempts + 1
        key = f"herald-{target.id}"
        try:
            channel, platform, request = await self._prepare(job, key)
            published = await self._send(job, channel, platform, request)
            result = TargetResult(
                target_id=target.id, outcome=Outcome.PUBLISHED, status=TargetStatus.PUBLISHED, attempt=attempt_no,
                started_at=started, finished_at=clock.utcnow(), platform_post_id=published.platform_post_id,
                platform_post_url=published.url, http_status=published.http_status, idempotency_key=key,
            )
            attempt = _Attempt(result)
        except PlatformError as exc:
            failure = _failure(target, attempt_no, started, exc.outcome, exc.code, exc.message, exc.http_status, key)
            attempt = _Attempt(replace(failure, resume=exc.details or None), exc.retry_after_seconds)
        except HeraldError as exc:  # e.g. the store refused to save refreshed credentials
            attempt = _Attempt(_failure(target, attempt_no, started, Outcome.PERMANENT, exc.code, exc.message, None, key))
        except asyncio.TimeoutError:
            attempt = _Attempt(_failure(target, attempt_no, started, Outcome.UNKNOWN, "timeout",
                                        "no answer within REQUEST_TIMEOUT; the post may or may not be live", None, key))
        except Exception as exc:  # an adapter bug: it may have sent the post, so do not resend blindly
            attempt = _Attempt(_failure(target, attempt_no, started, Outcome.UNKNOWN, "adapter_error",
                                        type(exc).__name__, None, key))
        log_event("publish.target", post_id=str(target.post_id), target_id=str(target.id), platform=target.platform,
                  outcome=attempt.result.outcome.value, attempt=attempt_no, error_code=attempt.result.error_code)
        return attempt

    async def _prepare(self, job: _Job, key: str) -> tuple[Channel, Platform, PublishRequest]:
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
            if expiring and hasattr(platform, "refresh"):
                credentials = await self._refresh(channel, platform, credentials)
            self._credentials[channel.id] = credentials
        request = PublishRequest(
            post_id=post.id, target_id=target.id, content=post.content.for_platform(target.platform),
            scheduled_at=post.scheduled_at, timezone=post.timezone, channel_id=channel.id,
            account_id=channel.account_id, metadata=channel.metadata, credentials=credentials,
            idempotency_key=key, deadline=self.deadline,
        )
        return channel, platform, request

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
        return self._unusable.get(target.channel_id)

    async def _send(self, job: _Job, channel: Channel, platform: Platform, request: PublishRequest) -> Published:
        if job.maybe_sent and not getattr(platform, "honours_idempotency_key", False):
            lookup = getattr(platform, "lookup", None)
            if lookup is None:
                raise PlatformError(Outcome.UNKNOWN, "maybe_sent",
                                    "the run publishing it stopped mid-call; check whether it is live, then resolve it")
            found = await asyncio.wait_for(lookup(request, self.http, **_resume(lookup, job.target)),
                                           timeout=self.limits.request_timeout + 1)
            if found is not None:
                return found  # it did go out: reconciled, never sent twice
        try:
            return await self._publish(platform, request, job.target)
        except PlatformError as exc:
            if exc.outcome is not Outcome.AUTH or not hasattr(platform, "refresh"):
                if exc.outcome is Outcome.AUTH:
                    await self._needs_reconnect(channel, exc.message)
                raise
        # The token was refused: refresh once, then try again with the new one.
        credentials = await self._refresh(channel, platform, request.credentials)
        self._credentials[channel.id] = credentials
        return await self._publish(platform, replace(request, credentials=credentials), job.target)

    async def _publish(self, platform: Platform, request: PublishRequest, target: Target) -> Published:
        # A hard stop a little past the adapter's own timeouts: whatever it sent, we cannot tell.
        return await asyncio.wait_for(platform.publish(request, self.http, **_resume(platform.publish, target)),
                                      timeout=self.limits.request_timeout + 1)

    async def _refresh(self, channel: Channel, platform: Any, credentials: dict[str, Any]) -> dict[str, Any]:
        try:
            tokens = await platform.refresh(credentials, channel.metadata, self.http)
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


def _resume(method: Callable[..., Any], target: Target) -> dict[str, Any]:
    """``resume=`` for adapters that can pick up where the target's last failed attempt stopped."""
    return {"resume": target.resume or None} if "resume" in inspect.signature(method).parameters else {}


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


def _post_result(claimed: ClaimedPost, attempts: dict[UUID, _Attempt], limits: RunLimits, now: datetime) -> PostResult:
    """Decide each target's new status and derive the post's: pure, given the attempts."""
    post = claimed.post
    results, statuses, retry_times, errors, released = [], [], [], [], []
    has_unstarted = False
    for target in post.targets:
        attempt = attempts.get(target.id)
        if attempt is None:
            if target.status is TargetStatus.PENDING or target.id in claimed.maybe_sent:
                # not started: pending again (a maybe-sent target keeps its mark for the next run)
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
        elif result.outcome is Outcome.UNKNOWN:
            status = TargetStatus.UNKNOWN
        else:
            rate_limited = target.rate_limited + (result.outcome is Outcome.RATE_LIMITED)
            decision = retry.decide(result.outcome, attempt=result.attempt - rate_limited, rate_limited=rate_limited,
                                    now=now, max_retries=limits.max_retries,
                                    base_seconds=limits.retry_base_seconds,
                                    retry_after_seconds=attempt.retry_after_seconds)
            status = TargetStatus.PENDING if decision.retry else TargetStatus.FAILED
            if decision.retry:
                retry_times.append(decision.at)
        if result.error_message:
            errors.append(f"{target.platform}: {result.error_message}")
        results.append(replace(result, status=status))
        statuses.append(status)
    post_status = derive_post_status(statuses)
    next_attempt_at = min(retry_times) if post_status is PostStatus.SCHEDULED and retry_times and not has_unstarted else None
    return PostResult(
        post_id=post.id, lease_id=claimed.lease_id, status=post_status, error="; ".join(errors) or None,
        targets=tuple(results), next_attempt_at=next_attempt_at, released=tuple(released),
        next_occurrence_at=_next_occurrence(post, post_status, now),
    )


def _next_occurrence(post: Any, status: PostStatus, now: datetime) -> datetime | None:
    """When a finished occurrence's series is due next: the first instance after now (missed ones skipped)."""
    if not post.rrule or status not in _SERIES_GOES_ON or post.scheduled_at is None:
        return None
    try:
        return recurrence.next_occurrence(post.rrule, start=post.series_start_at or post.scheduled_at,
                                          tz_name=post.timezone, after=max(now, post.scheduled_at))
    except Exception:  # the claim read the rule and zone; whatever else goes wrong ends the series, not the run
        log_event("publish.rrule_unusable", post_id=str(post.id))
        return None


def _count(summary: RunSummary, result: PostResult, claimed: ClaimedPost | None) -> None:
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
    summary.next_occurrences += result.next_occurrence_at is not None
    unstarted = []
    if claimed is not None:
        summary.reconciled += sum(t.target_id in claimed.maybe_sent and t.outcome is Outcome.PUBLISHED
                                  for t in result.targets)
        started = {t.target_id for t in result.targets}
        unstarted = [t for t in claimed.post.targets
                     if (t.status is TargetStatus.PENDING or t.id in claimed.maybe_sent) and t.id not in started]
    summary.not_started += len(unstarted)
    summary.posts.append({
        "id": str(result.post_id),
        "outcome": status.value,
        "next_attempt_at": result.next_attempt_at.isoformat() if result.next_attempt_at else None,
        "targets": [
            {"id": str(t.target_id), "outcome": t.outcome.value, "status": t.status.value, "error": t.error_message}
            for t in result.targets
        ] + [{"id": str(t.id), "outcome": "not_started", "status": "pending", "error": None} for t in unstarted],
    })
