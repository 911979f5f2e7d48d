"""What the adapter tests share: a frozen clock for the moment a platform's answer arrives."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.platforms import httpcall, linkedin

#: when the frozen clock says a platform's answer arrived
ANSWERED_AT = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def answered_at(monkeypatch) -> datetime:
    """Freeze the clock the adapters read when an answer arrives, so a wait is exact: reset - ANSWERED_AT."""

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return ANSWERED_AT.astimezone(tz) if tz else ANSWERED_AT.replace(tzinfo=None)

    for module in (httpcall, linkedin):  # the modules that turn a reset time into a wait
        monkeypatch.setattr(module, "datetime", Frozen)
    return ANSWERED_AT
