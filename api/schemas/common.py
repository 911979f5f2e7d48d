"""Shared schema pieces: instants rendered as ISO 8601 with an explicit offset, and accepted only in a sane range."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer

from services.errors import ValidationError
from services.scheduling import recurrence

Instant = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json")]

#: every instant the API accepts lies in these years (UTC): far enough for any schedule, and far
#: from datetime's limits, so converting to any time zone (±14 h) can never overflow
FIRST_YEAR, LAST_YEAR = 2000, 2999
RANGE_MESSAGE = f"must be between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31 (UTC)"


def in_range(moment: datetime) -> bool:
    """An aware instant within the range in UTC; a naive (wall-clock) time within the range as written."""
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


#: an instant in a request (body field or query parameter); naive times are read in a zone later
InstantIn = Annotated[datetime, AfterValidator(_check_range)]


def check_local(moment: datetime | None, tz_name: str | None, field: str) -> None:
    """A naive ``moment`` read in ``tz_name`` must still be in range once in UTC (an unknown zone is left
    to the service, which names the `timezone` field)."""
    if moment is None or moment.tzinfo is not None or not tz_name:
        return
    try:
        utc = recurrence.to_utc(moment, tz_name)
    except ValidationError:
        return
    except (OverflowError, ValueError):
        utc = None
    if utc is None or not in_range(utc):
        shown = f"{utc:%Y-%m-%d %H:%M} UTC" if utc else "out of range"
        raise ValidationError(f"{field} {RANGE_MESSAGE}; {moment.isoformat()} in {tz_name} is {shown}", field=field)
