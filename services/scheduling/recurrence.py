"""Time zones and RRULEs: read a wall-clock time in a zone, validate a rule, find the next instance.

Instances are computed on local wall-clock times in the post's zone, so 10:00 Europe/Berlin stays
10:00 across DST; a local time that does not exist (spring forward) moves forward by the gap, and
an ambiguous one (fall back) takes its first occurrence.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule as dateutil_rrule

from services.errors import ValidationError

#: every instant Herald accepts lies in these years (UTC): far enough for any schedule, and far
#: from datetime's limits, so showing one in any time zone (±14 h) can never overflow
FIRST_YEAR, LAST_YEAR = 2000, 2999
RANGE_MESSAGE = f"must be between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31 (UTC)"

MAX_RRULE_LENGTH = 500
MAX_INTERVAL = 1000
#: no platform takes a post every second or minute, and rules that fine make every search slow
FREQUENCIES = ("HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")
#: the closest two occurrences of a rule may be, and how many of its first occurrences are measured
MIN_GAP = timedelta(hours=1)
PACE_SAMPLE = 48
#: more than the largest jump of a zone's clock since 2000 (Samoa and Tokelau skipped 30 December
#: 2011, 24 h): a wall-clock instance further than this before an instant falls before it
MAX_CLOCK_JUMP = timedelta(hours=26)
#: the longest each month can be (February: leap years)
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def zone(name: str, *, field: str = "timezone") -> ZoneInfo:
    """The IANA zone called ``name``, or a ValidationError naming ``field``."""
    try:
        if not name or name != name.strip() or len(name) > 64:
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin", field=field) from None


def to_utc(moment: datetime, tz_name: str, *, field: str = "scheduled_at") -> datetime:
    """An instant in UTC: a naive ``moment`` is wall-clock time in ``tz_name``.

    ValidationError naming ``field`` unless it falls in FIRST_YEAR..LAST_YEAR in UTC.
    """
    tz = zone(tz_name) if moment.tzinfo is None else None
    try:
        utc = (localize(moment, tz) if tz else moment).astimezone(timezone.utc)
    except OverflowError:  # e.g. 9999-12-31T23:59:59 in America/Los_Angeles
        utc = None
    if utc is None or not FIRST_YEAR <= utc.year <= LAST_YEAR:
        shown = f"{utc:%Y-%m-%d %H:%M} UTC" if utc else "out of range"
        written = f"{moment.isoformat()} in {tz_name}" if tz else moment.isoformat()
        raise ValidationError(f"{field} {RANGE_MESSAGE}; {written} is {shown}", field=field)
    return utc


def localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """Attach ``tz`` to a naive wall-clock time: a skipped time moves forward, an ambiguous one is the first."""
    aware = wall.replace(tzinfo=tz, fold=0)
    round_trip = aware.astimezone(timezone.utc).astimezone(tz)
    if round_trip.replace(tzinfo=None) != wall:  # inside a DST gap: shift by the gap
        zero = timedelta(0)  # a ZoneInfo always has an offset; utcoffset() is typed Optional for tzinfo at large
        gap = (wall.replace(tzinfo=tz, fold=1).utcoffset() or zero) - (wall.replace(tzinfo=tz, fold=0).utcoffset() or zero)
        aware = (wall + abs(gap)).replace(tzinfo=tz, fold=0)
    return aware


def local_time(moment: datetime, tz_name: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz_name))


def parse_rule(rule: str, *, start: datetime, tz_name: str, field: str = "rrule") -> dateutil_rrule.rrule:
    """The rule anchored at ``start``'s wall-clock time in ``tz_name``; ValidationError if invalid."""
    parsed = read_rule(rule, start=start, tz_name=tz_name, field=field)
    if parsed.after(start.astimezone(zone(tz_name)).replace(tzinfo=None), inc=True) is None:
        raise ValidationError("rrule has no occurrence at or after scheduled_at", field=field)
    _check_pace(parsed, field)
    return parsed


def read_rule(rule: str, *, start: datetime, tz_name: str, field: str = "rrule") -> dateutil_rrule.rrule:
    """``parse_rule`` without the checks that iterate the rule (it has an occurrence, at most one an
    hour): for a rule that passed them when it was saved. ValidationError if it is unreadable."""
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if not text or len(text) > MAX_RRULE_LENGTH or "\n" in text:
        raise ValidationError("rrule must be one RFC 5545 RRULE line, such as FREQ=WEEKLY;BYDAY=MO", field=field)
    _check_parts(text, field)
    wall = start.astimezone(zone(tz_name)).replace(tzinfo=None)
    try:
        parsed = dateutil_rrule.rrulestr(text, dtstart=wall, ignoretz=True)
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"invalid rrule: {exc}", field=field) from None
    if not isinstance(parsed, dateutil_rrule.rrule):
        raise ValidationError("rrule must be a single rule", field=field)
    return parsed


def _check_pace(parsed: dateutil_rrule.rrule, field: str) -> None:
    """At most one occurrence an hour, whatever the FREQ says: FREQ=HOURLY;BYMINUTE=0,30 is as
    frequent as the FREQ=MINUTELY that is refused, so the rule's first occurrences are measured."""
    first = list(itertools.islice(parsed, PACE_SAMPLE))
    gaps = [b - a for a, b in zip(first, first[1:], strict=False)]
    if gaps and min(gaps) < MIN_GAP:
        minutes = round(min(gaps).total_seconds() / 60)
        raise ValidationError(f"rrule repeats {minutes} minutes apart; a post recurs at most once an hour",
                              field=field)


def _check_parts(text: str, field: str) -> None:
    """Refuse, before dateutil iterates, what would make it search for ever (INTERVAL=0) or for
    seconds (a day that never comes, such as February 30, scanned day by day to the year 9999)."""
    parts: dict[str, str] = {}
    for part in text.upper().split(";"):
        key, _, value = part.partition("=")
        parts[key.strip()] = value.strip()
    if parts.get("FREQ") not in FREQUENCIES:
        raise ValidationError(f"rrule needs a FREQ of {', '.join(FREQUENCIES)}, such as FREQ=DAILY", field=field)
    interval = parts.get("INTERVAL", "1")
    if not interval.isdigit() or not 1 <= int(interval) <= MAX_INTERVAL:
        raise ValidationError(f"rrule INTERVAL must be a whole number from 1 to {MAX_INTERVAL}", field=field)
    for unsupported in ("BYYEARDAY", "BYWEEKNO", "BYSECOND"):
        if unsupported in parts:
            raise ValidationError(f"rrule {unsupported} is not supported; use BYMONTH, BYMONTHDAY, BYDAY or BYSETPOS",
                                  field=field)
    if "BYSETPOS" in parts and parts["FREQ"] not in ("MONTHLY", "YEARLY"):
        raise ValidationError("rrule BYSETPOS goes with FREQ=MONTHLY or YEARLY (e.g. the last Friday of each month: "
                              "FREQ=MONTHLY;BYDAY=FR;BYSETPOS=-1)", field=field)
    months, days = _numbers(parts.get("BYMONTH")), _numbers(parts.get("BYMONTHDAY"))
    if months and days and not any(abs(day) <= _MONTH_DAYS[month - 1] for month in months if 1 <= month <= 12
                                   for day in days):
        raise ValidationError("rrule asks for a day that none of its months has (such as February 30)", field=field)


def _numbers(value: str | None) -> list[int]:
    try:
        return [int(v) for v in value.split(",")] if value else []
    except ValueError:
        return []  # dateutil names what is wrong with it


def normalize_rule(rule: str) -> str:
    text = rule.strip()
    return text[6:] if text.upper().startswith("RRULE:") else text


def next_occurrence(rule: str, *, start: datetime, tz_name: str, after: datetime) -> datetime | None:
    """The rule's first instance strictly after ``after`` (UTC), or None when the series has ended."""
    tz = zone(tz_name)
    parsed = parse_rule(rule, start=start, tz_name=tz_name)
    # Compare in wall-clock time; step past instances that localize to an instant not after ``after``.
    cursor = after.astimezone(tz).replace(tzinfo=None) - MAX_CLOCK_JUMP
    for wall in parsed.xafter(cursor, inc=False):
        instant = localize(wall, tz).astimezone(timezone.utc)
        if instant > after:
            return instant
    return None
