"""Unit fixtures: none does I/O."""

from __future__ import annotations

from collections import Counter

import pytest
from dateutil import rrule as dateutil_rrule


@pytest.fixture
def walked(monkeypatch) -> Counter:
    """Counts the instances dateutil generates (``walked["instances"]``), whichever rule generates them."""
    counter: Counter = Counter()
    iterate = dateutil_rrule.rrule._iter

    def counted(self):
        for wall in iterate(self):
            counter["instances"] += 1
            yield wall

    monkeypatch.setattr(dateutil_rrule.rrule, "_iter", counted)
    return counter
