"""One publish run (one cron call), DESIGN.md "The publish run", top to bottom.

claim due posts (recovering dead runs) -> publish each target through its adapter, concurrently,
one call at a time per channel, inside the run's budget -> decide each target's fate (published,
retry later, failed, unknown) in pure code -> record everything in one store call -> summary.
A target whose call was never started goes back to ``pending`` untouched; a call that may have
been sent but whose answer was lost becomes ``unknown``, never re-sent blindly.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable
from uuid import UUID

import httpx

from services import clock
from services.domain.models import (
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
from services.platforms.base import Platform, PlatformError, PublishRequest
from services.publishing import retry
from services.security.crypto import TokenCipher
from services.store.base import Store


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
    needs_review: int = 0
    not_started: int = 0
    remaining_due: int = 0
    duration_ms: int = 0
    posts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": str(self.run_id),
            "trigger": self.trigger,
            "processed": self.claimed,
            "claimed": self.claimed,
            "published": self.published,
            "partial": self.partial,
            "failed": self.failed,
            "retry_scheduled": self.retry_scheduled,
            "rate_limited": self.rate_limited,
            "recovered": self.recovered,
            "needs_review": self.needs_review,
            "not_started": self.not_started,
            "remaining_due": self.remaining_due,
            "duration_ms": self.duration_ms,
            "posts": self.posts,
        }


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
) -> RunSummary:
    """Run one publish cycle at ``now``; see the module docstring. Never raises for a platform's sake."""
    started = monotonic()
    deadline = started + limits.budget_seconds
    summary = RunSummary(run_id=uuid.uuid4(), trigger=trigger)
    claim = await store.claim_due_posts(now=now, limit=limits.max_posts, lease_seconds=limits.lease_seconds)
    summary.claimed, summary.recovered = len(claim.posts), len(claim.recovered)
    for post_id in claim.recovered:
        log_event("publish.recovered_for_review", post_id=str(post_id), run_id=str(summary.run_id))

    attempts = await _publish_all(claim.posts, platforms, cipher, http, limits, deadline, monotonic)
    results = [_post_result(c, attempts, limits, now) for c in claim.posts]

    finished = now + timedelta(seconds=monotonic() - started)
    for result, claimed in zip(results, claim.posts):
        _count(summary, result, claimed, attempts)
    summary.duration_ms = round((monotonic() - started) * 1000)
    cron_run = CronRun(
        id=summary.run_id, trigger=trigger, started_at=now, finished_at=finished, claimed=summary.claimed,
        published=summary.published, failed=summary.failed, remaining_due=0, duration_ms=summary.duration_ms,
    )
    summary.remaining_due = await store.record_results(results, now=finished, cron_run=cron_run)
    summary.duration_ms = round((monotonic() - started) * 1000)
    log_event("publish.run_finished", run_id=str(summary.run_id), trigger=trigger, claimed=summary.claimed,
              published=summary.published, failed=summary.failed, remaining_due=summary.remaining_due,
              duration_ms=summary.duration_ms)
    return summary


@dataclass(frozen=True)
class _Attempt:
    result: TargetResult
    retry_after_seconds: float | None = None


async def _publish_all(
    claimed: tuple[ClaimedPost, ...],
    platforms: dict[str, Platform],
    cipher: TokenCipher,
    http: httpx.AsyncClient,
    limits: RunLimits,
    deadline: float,
    monotonic: Callable[[], float],
) -> dict[UUID, _Attempt]:
    """Publish every claimed target; return what was attempted, by target id (unstarted ones absent)."""
    gate = asyncio.Semaphore(limits.concurrency)
    by_channel: dict[object, list[tuple[ClaimedPost, Target]]] = defaultdict(list)
    for c in claimed:  # claimed posts are in due order, so each channel's queue is too
        for target in c.post.targets:
            if target.status is TargetStatus.PUBLISHING:
                by_channel[target.channel_id or target.id].append((c, target))
    attempts: dict[UUID, _Attempt] = {}

    async def drain(queue: list[tuple[ClaimedPost, Target]]) -> None:
        for c, target in queue:
            async with gate:
                if monotonic() + limits.request_timeout > deadline:
                    return  # cannot finish inside the budget: leave it (and the rest of this channel) for the next run
                attempts[target.id] = await _publish_one(c, target, platforms, cipher, http, limits, deadline)

    await asyncio.gather(*(drain(queue) for queue in by_channel.values()))
    return attempts


async def _publish_one(
    claimed: ClaimedPost,
    target: Target,
    platforms: dict[str, Platform],
    cipher: TokenCipher,
    http: httpx.AsyncClient,
    limits: RunLimits,
    deadline: float,
) -> _Attempt:
    post = claimed.post
    started = clock.utcnow()
    attempt = target.attempts + 1
    retry_after = None
    try:
        channel = claimed.channels.get(target.channel_id) if target.channel_id else None
        if channel is None:
            raise PlatformError(Outcome.PERMANENT, "channel_deleted", "the channel was deleted")
        platform = platforms.get(target.platform)
        if platform is None:
            raise PlatformError(Outcome.PERMANENT, "platform_unavailable", f"platform {target.platform!r} is not available")
        request = PublishRequest(
            post_id=post.id, target_id=target.id, content=post.content.for_platform(target.platform),
            scheduled_at=post.scheduled_at, timezone=post.timezone, channel_id=channel.id,
            account_id=channel.account_id, metadata=channel.metadata,
            credentials=cipher.decrypt(channel.credentials_encrypted) if channel.credentials_encrypted else {},
            idempotency_key=f"herald-{target.id}", deadline=deadline,
        )
        # A hard stop a little past the adapter's own timeouts: whatever it sent, we cannot tell.
        done = await asyncio.wait_for(platform.publish(request, http), timeout=limits.request_timeout + 1)
        result = TargetResult(
            target_id=target.id, outcome=Outcome.PUBLISHED, status=TargetStatus.PUBLISHED, attempt=attempt,
            started_at=started, finished_at=clock.utcnow(), platform_post_id=done.platform_post_id,
            platform_post_url=done.url, http_status=done.http_status,
        )
    except PlatformError as exc:
        retry_after = exc.retry_after_seconds
        result = _failure(target, attempt, started, exc.outcome, exc.code, exc.message, exc.http_status)
    except HeraldError as exc:
        result = _failure(target, attempt, started, Outcome.PERMANENT, exc.code, exc.message, None)
    except asyncio.TimeoutError:
        result = _failure(target, attempt, started, Outcome.UNKNOWN, "timeout",
                          "no answer within REQUEST_TIMEOUT; the post may or may not be live", None)
    except Exception as exc:  # an adapter bug: it may have sent the post, so do not resend blindly
        result = _failure(target, attempt, started, Outcome.UNKNOWN, "adapter_error", type(exc).__name__, None)
    log_event("publish.target", post_id=str(post.id), target_id=str(target.id), platform=target.platform,
              outcome=result.outcome.value, attempt=attempt, error_code=result.error_code)
    return _Attempt(result, retry_after)


def _failure(target: Target, attempt: int, started: datetime, outcome: Outcome, code: str, message: str,
             http_status: int | None) -> TargetResult:
    return TargetResult(
        target_id=target.id, outcome=outcome, status=TargetStatus.FAILED, attempt=attempt, started_at=started,
        finished_at=clock.utcnow(), http_status=http_status, error_code=code, error_message=message,
    )


def _post_result(claimed: ClaimedPost, attempts: dict[UUID, _Attempt], limits: RunLimits, now: datetime) -> PostResult:
    """Decide each target's new status and derive the post's: pure, given the attempts."""
    results, statuses, retry_times, errors = [], [], [], []
    has_unstarted = False
    for target in claimed.post.targets:
        if target.status is not TargetStatus.PUBLISHING:
            statuses.append(target.status)
            continue
        attempt = attempts.get(target.id)
        if attempt is None:
            has_unstarted = True
            statuses.append(TargetStatus.PENDING)
            continue
        result = attempt.result
        if result.outcome is Outcome.PUBLISHED:
            status = TargetStatus.PUBLISHED
        elif result.outcome is Outcome.UNKNOWN:
            status = TargetStatus.UNKNOWN
        else:
            decision = retry.decide(result.outcome, attempt=result.attempt, now=now, max_retries=limits.max_retries,
                                    base_seconds=limits.retry_base_seconds,
                                    retry_after_seconds=attempt.retry_after_seconds)
            status = TargetStatus.PENDING if decision.retry else TargetStatus.FAILED
            if decision.retry:
                retry_times.append(decision.at)
        if result.error_message:
            errors.append(f"{target.platform}: {result.error_message}")
        results.append(TargetResult(**{**result.__dict__, "status": status}))
        statuses.append(status)
    post_status = derive_post_status(statuses)
    next_attempt_at = None
    if post_status is PostStatus.SCHEDULED and retry_times and not has_unstarted:
        next_attempt_at = min(retry_times)
    return PostResult(
        post_id=claimed.post.id, lease_id=claimed.lease_id, status=post_status,
        error="; ".join(errors) or None, targets=tuple(results), next_attempt_at=next_attempt_at,
    )


def _count(summary: RunSummary, result: PostResult, claimed: ClaimedPost, attempts: dict[UUID, _Attempt]) -> None:
    status = result.status
    if status is PostStatus.PUBLISHED:
        summary.published += 1
    elif status is PostStatus.PARTIAL:
        summary.partial += 1
    elif status is PostStatus.FAILED:
        summary.failed += 1
    elif status is PostStatus.NEEDS_REVIEW:
        summary.needs_review += 1
    if any(t.status is TargetStatus.PENDING and t.outcome is not Outcome.PUBLISHED for t in result.targets):
        summary.retry_scheduled += 1
    summary.rate_limited += sum(t.outcome is Outcome.RATE_LIMITED for t in result.targets)
    started = {t.target_id for t in result.targets}
    unstarted = [t for t in claimed.post.targets if t.status is TargetStatus.PUBLISHING and t.id not in started]
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
