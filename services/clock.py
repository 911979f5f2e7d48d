"""The only place Herald reads the wall clock; everything else is handed ``now``."""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
