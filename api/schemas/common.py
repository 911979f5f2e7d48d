"""Shared schema pieces: instants rendered as ISO 8601 with an explicit offset, and accepted only in a sane range."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer

from services.scheduling.recurrence import FIRST_YEAR, LAST_YEAR, RANGE_MESSAGE

Instant = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json")]


def in_range(moment: datetime) -> bool:
    """An aware instant within the range in UTC; a naive (wall-clock) time within the range as written
    (the services read it in its zone and check it again there, see ``recurrence.to_utc``)."""
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(timezone.utc)
        except OverflowError:  # e.g. 9999-12-31T23:00:00-14:00
            return False
    return FIRST_YEAR <= moment.year <= LAST_YEAR


def _check_range(moment: datetime) -> datetime:
    if not in_range(moment):
        raise ValueError(RANGE_MESSAGE)
    return moment


#: an instant in a request (body field or query parameter)
InstantIn = Annotated[datetime, AfterValidator(_check_range)]
