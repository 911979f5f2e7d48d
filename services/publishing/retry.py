"""Retry policy: given how an attempt ended, retry when, or stop. Pure: no clock, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.domain.models import Outcome

JITTER = 0.2
#: a rate limit spends no retry, but a post is never deferred by more than this in one step
MAX_RATE_LIMIT_WAIT = timedelta(hours=24)
#: rate-limited attempts allowed beyond max_retries before the target fails for good
RATE_LIMIT_ALLOWANCE = 10


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    at: datetime | None = None


def decide(
    outcome: Outcome,
    *,
    attempt: int,
    rate_limited: int = 0,
    now: datetime,
    max_retries: int,
    base_seconds: float,
    retry_after_seconds: float | None = None,
    rng: random.Random | None = None,
) -> RetryDecision:
    """Whether an attempt that ended in ``outcome`` is retried, and when.

    ``attempt`` counts the target's attempts that were not rate limited, this one included
    (1-based); ``rate_limited`` its rate-limited ones, this one included. Transient failures back
    off ``base_seconds * 2**(attempt-1)`` with +-20% jitter, for at most ``max_retries`` retries
    after the first attempt. Rate limits wait for ``retry_after_seconds`` (or one base step, at most
    a day) without spending a retry, at most RATE_LIMIT_ALLOWANCE times so that no post is
    deferred forever. Everything else is final.
    """
    if outcome is Outcome.RATE_LIMITED and rate_limited <= RATE_LIMIT_ALLOWANCE:
        wait = timedelta(seconds=retry_after_seconds if retry_after_seconds is not None else base_seconds)
        return RetryDecision(True, now + min(wait, MAX_RATE_LIMIT_WAIT))
    if outcome is Outcome.TRANSIENT and attempt <= max_retries:
        delay = base_seconds * 2 ** (attempt - 1)
        if retry_after_seconds is not None:
            delay = max(delay, retry_after_seconds)
        factor = 1 + (rng or random).uniform(-JITTER, JITTER)
        return RetryDecision(True, now + timedelta(seconds=delay * factor))
    return RetryDecision(False)
