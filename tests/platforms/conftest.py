"""What the adapter tests share: a frozen clock for the moment a platform's answer arrives."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from services import clock
from services.domain.models import Outcome
from services.platforms.base import MeasuringPlatform, MetricsRequest, PlatformError

#: when the frozen clock says a platform's answer arrived
ANSWERED_AT = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def answered_at(monkeypatch) -> datetime:
    """Freeze the clock the adapters read when an answer arrives, so a wait is exact: reset - ANSWERED_AT.

    ``services.clock`` is the only place Herald reads the wall clock, so freezing it freezes them all.
    """
    monkeypatch.setattr(clock, "utcnow", lambda: ANSWERED_AT)
    return ANSWERED_AT


async def assert_metrics_call_nothing_past_the_deadline(platform: MeasuringPlatform, request: MetricsRequest) -> None:
    """A metrics read whose deadline has passed raises TRANSIENT ``deadline_reached`` and makes no
    call (the caller's ``respx.mock`` refuses any request it did not mock)."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(request, http)
    assert (err.value.outcome, err.value.code) == (Outcome.TRANSIENT, "deadline_reached")
