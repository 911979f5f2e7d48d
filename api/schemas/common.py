"""Shared schema pieces: instants rendered as ISO 8601 with an explicit offset, and taken only as
written in one exact form, in years 2000-2999, which the OpenAPI states as a pattern."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

from services.scheduling.recurrence import FIRST_YEAR, LAST_YEAR

Instant = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json")]

# A day that exists: months of 31 and 30 days, February to the 28th, and the 29th in leap years
# (every 4th, but of the centuries only 2000, 2400 and 2800).
_DAY = (r"(?:2[0-9]{3}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        r"|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:2[0-9](?:0[48]|[2468][048]|[13579][26])|2[048]00)-02-29)")
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{1,6})?)?"
_OFFSET = r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
#: an instant as a request may write it: seconds, fraction and offset optional
INSTANT_PATTERN = f"^{_DAY}T{_TIME}{_OFFSET}?$"
_INSTANT = re.compile(INSTANT_PATTERN)
_ANY_YEAR = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T")

RANGE_MESSAGE = f"must be between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31"
FORM_MESSAGE = ("must be a date and time in ISO 8601, such as 2030-01-31T09:00:00Z (seconds, fraction and "
                "offset may be left out)")


def _as_written(value: Any) -> Any:
    """Only what INSTANT_PATTERN matches is parsed (pydantic would also take timestamps, dates, spaces)."""
    if isinstance(value, str) and _INSTANT.match(value):
        return value
    if isinstance(value, str) and _ANY_YEAR.match(value) and not FIRST_YEAR <= int(value[:4]) <= LAST_YEAR:
        raise ValueError(RANGE_MESSAGE)
    raise ValueError(FORM_MESSAGE)


#: an instant in a request (body field or query parameter); without an offset, wall-clock time
#: (where it is read is the services' business, and they check it again in UTC, see ``recurrence.to_utc``)
InstantIn = Annotated[datetime, BeforeValidator(_as_written), WithJsonSchema({
    "type": "string", "pattern": INSTANT_PATTERN,
    "description": "ISO 8601 date and time from 2000 to 2999, e.g. 2030-01-31T09:00:00Z; seconds, fraction and "
                   "offset may be left out",
})]
