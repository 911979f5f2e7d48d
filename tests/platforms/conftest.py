"""What the adapter tests share: a frozen clock for the moment a platform's answer arrives."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services import clock

#: when the frozen clock says a platform's answer arrived
ANSWERED_AT = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def answered_at(monkeypatch) -> datetime:
    """Freeze the clock the adapters read when an answer arrives, so a wait is exact: reset - ANSWERED_AT.

    ``services.clock`` is the only place Herald reads the wall clock, so freezing it freezes them all.
    """
    monkeypatch.setattr(clock, "utcnow", lambda: ANSWERED_AT)
    return ANSWERED_AT
