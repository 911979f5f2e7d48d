"""A series' occurrences in a window of time, found without walking from the series' start.

dateutil iterates a rule from its DTSTART, so the instances a year into an hourly series cost 8,760
steps. Here the rule gets a new DTSTART just before the window, in a period (FREQ times INTERVAL)
of the original's, with every BY* part the old DTSTART implied written out, and COUNT reduced by
the instances before it. Instances are the ones ``recurrence.next_occurrence`` steps through:
wall-clock times in the post's zone, made instants by ``localize``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol, cast
from zoneinfo import ZoneInfo

from dateutil import rrule as dateutil_rrule
from dateutil.rrule import DAILY, HOURLY, MONTHLY, WEEKLY, YEARLY

from services.scheduling import recurrence

#: instances walked at most, over all the series one request expands, to count those before a
#: window: for a rule with COUNT whose periods do not all hold as many instances (such as
#: FREQ=MONTHLY;BYMONTHDAY=31) and which could run out inside the window (about 0.15 s)
MAX_COUNT_WALK = 50_000
#: the most days a period of each FREQ has
_PERIOD_DAYS = {HOURLY: 1, DAILY: 1, WEEKLY: 7, MONTHLY: 31, YEARLY: 366}

class _Rule(Protocol):
    """What this module reads of a dateutil ``rrule``: its instances, and its parts as dateutil
    resolved them, which it keeps in private attributes (python-dateutil 2.9; the equivalence
    table of tests/unit/test_occurrences.py fails if a release renames them)."""

    _dtstart: datetime
    _freq: Literal[0, 1, 2, 3, 4, 5, 6]  #: YEARLY .. SECONDLY
    _interval: int
    _wkst: int
    _count: int | None
    _until: datetime | None
    _bymonth: tuple[int, ...] | None
    _bymonthday: tuple[int, ...]
    _bynmonthday: tuple[int, ...]
    _byweekday: tuple[int, ...] | None
    _bynweekday: tuple[tuple[int, int], ...] | None
    _byeaster: tuple[int, ...] | None
    _bysetpos: tuple[int, ...] | None
    _byhour: set[int] | None
    _byminute: set[int]
    _bysecond: set[int]
    _timeset: tuple[Any, ...]

    def __iter__(self) -> Iterator[datetime]: ...



class CountUnresolved(Exception):
    """The rule's COUNT may end the series before the window, and counting the instances before it
    would walk more than the WalkBudget has left."""


class WalkBudget:
    """The instances COUNT walks may still take: one budget for every series a request expands."""

    def __init__(self, steps: int | None = None) -> None:
        self.steps = MAX_COUNT_WALK if steps is None else steps


def occurrences_between(rule: str, *, start: datetime, tz_name: str, after: datetime, until: datetime,
                        budget: WalkBudget | None = None) -> Iterator[datetime]:
    """The series' instants (UTC) in (``after``, ``until``], in time order, lazily.

    ``start`` is the series' first occurrence, where the rule is anchored and COUNT counts from.
    The work does not grow with the distance from ``start`` to ``after``: the rule's new anchor is
    worked out at once (ValidationError if the rule is unreadable; CountUnresolved when counting
    would overspend ``budget``, by default a fresh one), and each instant taken costs a few steps.
    """
    tz = recurrence.zone(tz_name)
    parsed = cast(_Rule, recurrence.read_rule(rule, start=start, tz_name=tz_name))
    # dateutil drops microseconds from a DTSTART: start on a whole second, where no instance is lost
    low = (_wall(after, tz) - recurrence.MAX_CLOCK_JUMP).replace(microsecond=0)
    high = _wall(until, tz) + recurrence.MAX_CLOCK_JUMP
    return _instants(_anchored(parsed, low, high, budget or WalkBudget()), tz, after, until)


#: later than any instant Herald accepts (recurrence.LAST_YEAR): "no end" for a window
_END_OF_TIME = datetime(recurrence.LAST_YEAR, 12, 31, 23, 59, tzinfo=timezone.utc)


def next_after(rule: str, *, start: datetime, tz_name: str, after: datetime) -> datetime | None:
    """The series' first instant strictly after ``after`` (UTC), or None when it has ended: what
    ``recurrence.next_occurrence`` answers, at the cost of a window instead of a walk from
    ``start`` (the publish run asks it once per finished occurrence of a series). A COUNT that
    only a walk can apply falls back to that walk."""
    try:
        return next(occurrences_between(rule, start=start, tz_name=tz_name, after=after, until=_END_OF_TIME), None)
    except CountUnresolved:
        return recurrence.next_occurrence(rule, start=start, tz_name=tz_name, after=after)


def _wall(moment: datetime, tz: ZoneInfo) -> datetime:
    return moment.astimezone(tz).replace(tzinfo=None)


def _instants(parsed: _Rule | None, tz: ZoneInfo, after: datetime,
              until: datetime) -> Iterator[datetime]:
    # An instance counts when its instant is later than every earlier one: next_occurrence steps
    # from instant to instant, so one moved forward by a DST gap hides those it passed.
    latest = after
    for wall in parsed or ():
        instant = recurrence.localize(wall, tz).astimezone(timezone.utc)
        if instant <= latest:
            continue
        if instant > until:
            return
        latest = instant
        yield instant


def _anchored(parsed: _Rule, low: datetime, high: datetime,
              budget: WalkBudget) -> _Rule | None:
    """The rule from ``low`` on (or from its first period after ``low``), with the same instances
    from there through ``high`` at least; None when COUNT ends the series before."""
    dtstart, freq, interval, wkst = parsed._dtstart, parsed._freq, parsed._interval, parsed._wkst
    if low <= dtstart:
        return parsed
    first, current = _period(dtstart, freq, wkst), _period(low, freq, wkst)
    whole = -((first - current) // interval)  # the rule's periods that end before low's begins
    anchor = low if (current - first) % interval == 0 else _period_start(first + whole * interval, freq, wkst)
    count = parsed._count
    if count is not None and count <= _most_instances(parsed, high):
        count -= _count_before(parsed, anchor, whole, budget)
        if count <= 0:
            return None
    else:
        count = None  # the series cannot run out before the window ends
    return _rule_from(parsed, anchor, count)


def _rule_from(parsed: _Rule, dtstart: datetime, count: int | None) -> _Rule:
    return cast(_Rule, dateutil_rrule.rrule(parsed._freq, dtstart=dtstart, interval=parsed._interval,
                                            wkst=parsed._wkst, count=count, until=parsed._until, **_pinned(parsed)))


def _pinned(parsed: _Rule) -> dict:
    """The rule's BY* parts as dateutil resolved them, DTSTART's defaults included (a MONTHLY rule
    without BYMONTHDAY or BYDAY falls on DTSTART's day): a new DTSTART must not change them."""
    weekdays = [dateutil_rrule.weekday(day) for day in parsed._byweekday or ()]
    weekdays += [dateutil_rrule.weekday(day, n) for day, n in parsed._bynweekday or ()]
    monthdays = tuple(parsed._bymonthday) + tuple(parsed._bynmonthday)
    return {
        "bymonth": parsed._bymonth, "bymonthday": monthdays or None, "byweekday": weekdays or None,
        "byeaster": parsed._byeaster, "bysetpos": parsed._bysetpos,
        "byhour": _sorted(parsed._byhour), "byminute": _sorted(parsed._byminute),
        "bysecond": _sorted(parsed._bysecond),
    }


def _sorted(values) -> tuple[int, ...] | None:
    return tuple(sorted(values)) if values else None


def _period(moment: datetime, freq: int, wkst: int) -> int:
    """The number of the FREQ period (hour, day, week starting on ``wkst``, month, year) holding ``moment``."""
    if freq == YEARLY:
        return moment.year
    if freq == MONTHLY:
        return moment.year * 12 + moment.month - 1
    day = moment.toordinal()
    if freq == WEEKLY:
        return (day - (moment.weekday() - wkst) % 7) // 7
    return day if freq == DAILY else day * 24 + moment.hour


def _period_start(number: int, freq: int, wkst: int) -> datetime:
    if freq == YEARLY:
        return datetime(number, 1, 1)
    if freq == MONTHLY:
        return datetime(number // 12, number % 12 + 1, 1)
    if freq == WEEKLY:
        # ordinal 1 is a Monday, so the weeks starting on wkst begin on ordinals wkst + 1 (mod 7)
        return datetime.fromordinal(number * 7 + (wkst + 1) % 7)
    if freq == DAILY:
        return datetime.fromordinal(number)
    return datetime.fromordinal(number // 24) + timedelta(hours=number % 24)


def _times(parsed: _Rule) -> int:
    """How many instances each day of a period holds when it holds any (each hour, for HOURLY)."""
    if parsed._freq == HOURLY:
        return len(parsed._byminute) * len(parsed._bysecond)  # in each hour
    return len(parsed._timeset)


def _most_instances(parsed: _Rule, high: datetime) -> int:
    """At least as many instances as the rule has from DTSTART through ``high``."""
    freq, interval = parsed._freq, parsed._interval
    periods = (_period(high, freq, parsed._wkst) - _period(parsed._dtstart, freq, parsed._wkst)) // interval + 1
    per_period = _PERIOD_DAYS[freq] * _times(parsed)
    if parsed._bysetpos:
        per_period = min(per_period, len(parsed._bysetpos))
    return periods * per_period


def _count_before(parsed: _Rule, anchor: datetime, whole: int, budget: WalkBudget) -> int:
    """How many instances precede ``anchor`` (at most the rule's COUNT), when ``whole`` of the rule's
    periods end before the one ``anchor`` is in. CountUnresolved if walking overspends ``budget``."""
    per_period = _fixed_per_period(parsed)
    if per_period is None or whole == 0:
        return _walked(parsed, anchor, budget)
    freq, interval, wkst = parsed._freq, parsed._interval, parsed._wkst
    first = _period(parsed._dtstart, freq, wkst)
    # DTSTART's own period may hold fewer (none before DTSTART counts); the others hold per_period
    in_first = _walked(parsed, _period_start(first + interval, freq, wkst), budget)
    anchor_period = _period_start(first + whole * interval, freq, wkst)
    return in_first + (whole - 1) * per_period + _walked(_rule_from(parsed, anchor_period, None), anchor, budget)


def _walked(parsed: _Rule, before: datetime, budget: WalkBudget) -> int:
    """How many of the rule's instances precede ``before``, each spent from ``budget``."""
    walked = 0
    for wall in parsed:
        if wall >= before:
            break
        walked += 1
        budget.steps -= 1
        if budget.steps < 0:
            raise CountUnresolved
    return walked


def _fixed_per_period(parsed: _Rule) -> int | None:
    """How many instances every period holds, when that does not depend on the calendar; else None.

    A filter on the month or the day makes hours, days and weeks differ; within a month or year,
    days 1-28 and the first to fourth weekdays exist every time, counted from one end only (the
    1st and the 28th-from-last are one day in February).
    """
    freq = parsed._freq
    times = _times(parsed)
    days, last_days = parsed._bymonthday, parsed._bynmonthday
    weekdays, nth_weekdays = parsed._byweekday or (), parsed._bynweekday or ()
    if parsed._byeaster or parsed._bysetpos:
        return None
    if freq in (HOURLY, DAILY, WEEKLY):
        if parsed._bymonth or days or last_days or (freq != WEEKLY and weekdays):
            return None
        if freq == HOURLY and parsed._byhour:
            return None
        return times * (len(weekdays) if freq == WEEKLY else 1)
    if weekdays or (freq == MONTHLY and parsed._bymonth) or (freq == YEARLY and not parsed._bymonth):
        return None
    by_month = parsed._bymonth or ()
    months = len(by_month) if freq == YEARLY else 1
    if nth_weekdays and not (days or last_days) and _one_sided([n for _, n in nth_weekdays], 4):
        return months * len(nth_weekdays) * times
    if not nth_weekdays and (days or last_days) and _one_sided(days + last_days, 28):
        return months * len(days + last_days) * times
    if freq == YEARLY and not nth_weekdays and 2 not in by_month and _one_sided(days + last_days, 31):
        # a day that a month lacks (31 April) is missing every year alike
        return times * sum(1 for month in by_month for day in days + last_days if abs(day) <= _month_days(month))
    return None


def _one_sided(numbers, most: int) -> bool:
    return bool(numbers) and (all(0 < n <= most for n in numbers) or all(-most <= n < 0 for n in numbers))


def _month_days(month: int) -> int:
    return 30 if month in (4, 6, 9, 11) else 31
