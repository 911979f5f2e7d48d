"""Time zones and RRULEs: read a wall-clock time in a zone, validate a rule, find the next instance.

Instances are computed on local wall-clock times in the post's zone, so 10:00 Europe/Berlin stays
10:00 across DST; a local time that does not exist (spring forward) moves forward by the gap, and
an ambiguous one (fall back) takes its first occurrence.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule as dateutil_rrule

from services.errors import ValidationError

MAX_RRULE_LENGTH = 500


def zone(name: str, *, field: str = "timezone") -> ZoneInfo:
    """The IANA zone called ``name``, or a ValidationError naming ``field``."""
    try:
        if not name or name != name.strip() or len(name) > 64:
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin", field=field) from None


def to_utc(moment: datetime, tz_name: str) -> datetime:
    """An instant in UTC: a naive ``moment`` is wall-clock time in ``tz_name``."""
    if moment.tzinfo is None:
        moment = localize(moment, zone(tz_name))
    return moment.astimezone(timezone.utc)


def localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """Attach ``tz`` to a naive wall-clock time: a skipped time moves forward, an ambiguous one is the first."""
    aware = wall.replace(tzinfo=tz, fold=0)
    round_trip = aware.astimezone(timezone.utc).astimezone(tz)
    if round_trip.replace(tzinfo=None) != wall:  # inside a DST gap: shift by the gap
        gap = wall.replace(tzinfo=tz, fold=1).utcoffset() - wall.replace(tzinfo=tz, fold=0).utcoffset()
        aware = (wall + abs(gap)).replace(tzinfo=tz, fold=0)
    return aware


def local_time(moment: datetime, tz_name: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz_name))


def parse_rule(rule: str, *, start: datetime, tz_name: str, field: str = "rrule") -> dateutil_rrule.rrule:
    """The rule anchored at ``start``'s wall-clock time in ``tz_name``; ValidationError if invalid."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text or len(text) > MAX_RRULE_LENGTH or "\n" in text:
        raise ValidationError("rrule must be one RFC 5545 RRULE line, such as FREQ=WEEKLY;BYDAY=MO", field=field)
    if "FREQ=" not in text.upper():
        raise ValidationError("rrule needs a FREQ, such as FREQ=DAILY", field=field)
    wall = start.astimezone(zone(tz_name)).replace(tzinfo=None)
    try:
        parsed = dateutil_rrule.rrulestr(text, dtstart=wall, ignoretz=True)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"invalid rrule: {exc}", field=field) from None
    if not isinstance(parsed, dateutil_rrule.rrule):
        raise ValidationError("rrule must be a single rule", field=field)
    if parsed.after(wall, inc=True) is None:
        raise ValidationError("rrule has no occurrence at or after scheduled_at", field=field)
    return parsed


def normalize_rule(rule: str) -> str:
    text = rule.strip()
    return text[6:] if text.upper().startswith("RRULE:") else text


def next_occurrence(rule: str, *, start: datetime, tz_name: str, after: datetime) -> datetime | None:
    """The rule's first instance strictly after ``after`` (UTC), or None when the series has ended."""
    tz = zone(tz_name)
    parsed = parse_rule(rule, start=start, tz_name=tz_name)
    # Compare in wall-clock time; step past instances that localize to an instant not after ``after``.
    cursor = after.astimezone(tz).replace(tzinfo=None) - timedelta(hours=3)
    while True:
        wall = parsed.after(cursor, inc=False)
        if wall is None:
            return None
        instant = localize(wall, tz).astimezone(timezone.utc)
        if instant > after:
            return instant
        cursor = wall
