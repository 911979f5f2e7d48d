"""Retry decisions: backoff with jitter for transient failures, rate limits spend no retry."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from services.domain.models import Outcome
from services.publishing.retry import RATE_LIMIT_ALLOWANCE, decide

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("outcome", "attempt", "retry_after", "expected"),
    [
        (Outcome.TRANSIENT, 1, None, (240, 360)),  # first retry: 300 s +-20%
        (Outcome.TRANSIENT, 2, None, (480, 720)),  # doubles
        (Outcome.TRANSIENT, 3, None, (960, 1440)),  # third and last retry
        (Outcome.TRANSIENT, 4, None, None),  # retries spent
        (Outcome.TRANSIENT, 1, 900, (720, 1080)),  # the platform asked for longer
        (Outcome.RATE_LIMITED, 9, 120, (120, 120)),  # the 9th rate limit: waits exactly Retry-After
        (Outcome.RATE_LIMITED, 1, 10 * 86400, (86400, 86400)),  # but never more than a day at once
        (Outcome.RATE_LIMITED, RATE_LIMIT_ALLOWANCE + 1, 60, None),  # and not forever
        (Outcome.PERMANENT, 1, None, None),  # content rejected: final
        (Outcome.AUTH, 1, None, None),  # needs a reconnect: final
        (Outcome.UNKNOWN, 1, None, None),  # may be live: never retried blindly
    ],
)
def test_decide(outcome, attempt, retry_after, expected):
    """``attempt`` is the count that matters for the outcome: retries spent, or rate limits met."""
    counts = {"attempt": 1, "rate_limited": attempt} if outcome is Outcome.RATE_LIMITED else {"attempt": attempt}
    decision = decide(outcome, **counts, now=NOW, max_retries=3, base_seconds=300,
                      retry_after_seconds=retry_after, rng=random.Random(7))
    if expected is None:
        assert not decision.retry and decision.at is None
    else:
        low, high = expected
        assert decision.retry and timedelta(seconds=low) <= decision.at - NOW <= timedelta(seconds=high)


def test_rate_limits_met_before_leave_every_retry_for_transient_failures():
    decision = decide(Outcome.TRANSIENT, attempt=1, rate_limited=5, now=NOW, max_retries=1, base_seconds=300,
                      rng=random.Random(7))
    assert decision.retry
