"""A platform's engagement figures read into ``Metrics``: a count is an int, or None when the
platform did not give it. Nothing is guessed: a missing or malformed figure stays None, never 0."""

from __future__ import annotations

from typing import Any


def count(value: Any) -> int | None:
    """``value`` as a count: a non-negative int (a bool is not one), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def total(*values: Any) -> int | None:
    """The sum of the counts among ``values`` (e.g. reposts and quotes); None when none is a count."""
    counts = [c for c in map(count, values) if c is not None]
    return sum(counts) if counts else None
