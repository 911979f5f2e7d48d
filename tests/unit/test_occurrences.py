"""A series' occurrences in a window: the same as stepping from its start, at the cost of the window."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from services.scheduling.occurrences import CountUnresolved, WalkBudget, next_after, occurrences_between
from services.scheduling.recurrence import localize, next_occurrence, parse_rule

UTC = timezone.utc
#: a Thursday, the last day of a month
START = datetime(2030, 1, 31, 1, 30, tzinfo=UTC)
#: occurrences compared per window: stepping from the start costs that many walks from it
TAKEN = 12


def clock_change(tz_name: str, after: datetime) -> datetime | None:
    """The first instant after ``after`` at which the zone's UTC offset changes, within a year."""
    tz = ZoneInfo(tz_name)
    offset = after.astimezone(tz).utcoffset()
    for half_hours in range(1, 2 * 24 * 366):
        moment = after + timedelta(minutes=30 * half_hours)
        if moment.astimezone(tz).utcoffset() != offset:
            return moment
    return None


def windows(rule: str, tz_name: str) -> list[tuple[datetime, datetime]]:
    """(after, until): from the start, a month in, over a year in from just before each of two clock
    changes (DST starting and ending; or a year and a half in), and around the series' end if it has one."""
    far = START + timedelta(days=400)
    first = clock_change(tz_name, far) or far
    second = clock_change(tz_name, first) or far + timedelta(days=180)
    found = [(START - timedelta(microseconds=1), START + timedelta(days=3)),
             (START + timedelta(days=37), START + timedelta(days=77))]
    found += [(change - timedelta(hours=6), change + timedelta(days=60)) for change in (first, second)]
    if "COUNT" in rule or "UNTIL" in rule:
        last = localize(list(parse_rule(rule, start=START, tz_name=tz_name))[-1], ZoneInfo(tz_name))
        found.append((last - timedelta(hours=6), last + timedelta(days=400)))
    return found


def stepped(rule: str, start: datetime, tz_name: str, after: datetime, until: datetime) -> list[datetime]:
    """What the calendar listed before it jumped: next_occurrence, one occurrence after another."""
    found: list[datetime] = []
    while len(found) < TAKEN:
        after = next_occurrence(rule, start=start, tz_name=tz_name, after=after)
        if after is None or after > until:
            break
        found.append(after)
    return found


def jumped(rule: str, start: datetime, tz_name: str, after: datetime, until: datetime, **kw) -> list[datetime]:
    return list(itertools.islice(occurrences_between(rule, start=start, tz_name=tz_name, after=after,
                                                     until=until, **kw), TAKEN))


@pytest.mark.parametrize(("rule", "tz_name"), [
    ("FREQ=HOURLY", "Europe/Berlin"),  # through spring forward: 02:00 does not exist
    ("FREQ=HOURLY;INTERVAL=5", "America/New_York"),  # a phase of 5 hours, carried across days
    ("FREQ=HOURLY;INTERVAL=7;BYHOUR=1,9,15", "UTC"),  # BYHOUR limited to the hours the phase reaches
    ("FREQ=HOURLY;COUNT=9700", "Asia/Kolkata"),  # ends in the far window: closed form, 1 an hour
    ("FREQ=HOURLY;BYDAY=MO,FR;COUNT=2750", "Europe/Berlin"),  # ends in the far window: counted by walking
    ("FREQ=DAILY", "Australia/Lord_Howe"),  # a 30-minute DST shift
    ("FREQ=DAILY;INTERVAL=3;COUNT=140", "America/New_York"),  # ends in the far window: every third day
    ("FREQ=DAILY;BYHOUR=2,14;BYMINUTE=30", "Europe/Berlin"),  # 02:30 does not exist one day a year
    ("FREQ=DAILY;BYMONTH=3,4;COUNT=100", "UTC"),  # months filtered: a walk, ends before the far window
    ("FREQ=DAILY;UNTIL=20310301T000000", "Asia/Tokyo"),  # UNTIL inside the far window
    ("FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=185", "Europe/Berlin"),  # ends in the far window, 3 a week
    ("FREQ=WEEKLY;INTERVAL=2;BYDAY=SU,TU;WKST=SU", "America/Sao_Paulo"),  # weeks from Sunday, every other
    ("FREQ=WEEKLY;INTERVAL=3", "Pacific/Auckland"),  # DTSTART's weekday, every third week
    ("FREQ=MONTHLY", "Europe/Berlin"),  # DTSTART's day: the 31st, so only long months
    ("FREQ=MONTHLY;COUNT=14", "UTC"),  # over before the far window (months without a 31st skipped)
    ("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=9", "Europe/London"),  # ends in the far window: counted by walking
    ("FREQ=MONTHLY;BYMONTHDAY=15;COUNT=14", "Europe/Berlin"),  # ends in the far window: closed form
    ("FREQ=MONTHLY;BYDAY=FR;BYSETPOS=-1;COUNT=15", "America/New_York"),  # last Friday, ends in the far window
    ("FREQ=MONTHLY;BYDAY=2TU,3TH;COUNT=30", "Asia/Kolkata"),  # nth weekdays: closed form
    ("FREQ=MONTHLY;BYMONTHDAY=1,-1;COUNT=29", "Europe/Berlin"),  # first and last day: counted by walking
    ("FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=-3", "UTC"),  # third-last day, every fifth month
    ("FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "Europe/Berlin"),  # last weekday of the month
    ("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", "America/Chicago"),  # Friday the 13th
    ("FREQ=YEARLY", "Europe/Berlin"),  # 31 January each year
    ("FREQ=YEARLY;COUNT=2", "UTC"),  # over before the far window
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "UTC"),  # leap days only (2032)
    ("FREQ=YEARLY;BYMONTH=3,4;BYDAY=-1SU;COUNT=3", "Europe/Berlin"),  # closed form: nth weekday in months
    ("FREQ=YEARLY;BYMONTH=1,4,6;BYMONTHDAY=31,15;COUNT=8", "America/New_York"),  # 30 June lacks a 31st
    ("FREQ=YEARLY;INTERVAL=2;BYMONTH=3;BYDAY=-1SU;BYHOUR=2;BYMINUTE=30", "Europe/Berlin"),  # in the DST gap
    ("FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "America/New_York"),  # fall back: 01:30 twice, the first taken
    ("FREQ=HOURLY;INTERVAL=2", "Australia/Lord_Howe"),  # a 30-minute fall back
])
def test_a_window_lists_what_stepping_from_the_start_finds(rule, tz_name):
    for after, until in windows(rule, tz_name):
        assert jumped(rule, START, tz_name, after, until) == stepped(rule, START, tz_name, after, until), after


@pytest.mark.parametrize("rule", ["FREQ=HOURLY", "FREQ=DAILY;BYHOUR=0,1,2,3,22,23"])
def test_a_day_the_zone_skipped_moves_its_occurrences_forward_without_losing_any(rule):
    # Samoa skipped 30 December 2011: its wall-clock times land on the 31st, and none is lost there
    start = datetime(2011, 12, 29, 10, tzinfo=UTC)  # 00:00 on the 29th in Pacific/Apia
    after, until = start, start + timedelta(days=4)
    assert jumped(rule, start, "Pacific/Apia", after, until) == stepped(rule, start, "Pacific/Apia", after, until)
    if rule == "FREQ=HOURLY":
        assert jumped(rule, start, "Pacific/Apia", after, until)[:TAKEN] == [
            start + timedelta(hours=hours) for hours in range(1, TAKEN + 1)]


@pytest.mark.parametrize("days_in", [
    1,  # the next day
    365,  # a year in
    365 * 900,  # nine centuries in (the year 2930)
])
def test_a_window_far_from_the_start_costs_what_a_near_one_does(walked, days_in):
    after = START + timedelta(days=days_in)
    found = list(occurrences_between("FREQ=HOURLY", start=START, tz_name="Europe/Berlin", after=after,
                                     until=after + timedelta(days=1)))
    assert len(found) == 24 and found[0] == after + timedelta(hours=1)
    # a day's 24, the margin either side of it (26 hours each way, for zones' clock jumps), no more
    assert walked["instances"] <= 24 + 2 * 26 + 2


@pytest.mark.parametrize(("rule", "walks"), [
    ("FREQ=HOURLY;COUNT=90000", False),  # one an hour: counted in closed form
    ("FREQ=MONTHLY;BYDAY=1MO;COUNT=900", False),  # the first Monday: one a month, closed form
    ("FREQ=HOURLY;COUNT=20000000", False),  # more than the window's end can reach: COUNT cannot apply
    ("FREQ=HOURLY;BYDAY=MO,TU,WE,TH,FR;COUNT=20000", True),  # weekdays only: walked, 6,264 a year
])
def test_count_is_worked_out_without_walking_where_it_can_be(walked, rule, walks):
    after = START + timedelta(days=3 * 365)
    found = list(occurrences_between(rule, start=START, tz_name="UTC", after=after, until=after + timedelta(days=40)))
    assert found
    assert (walked["instances"] > 3 * 5000) is walks


def test_a_count_too_costly_to_work_out_is_reported_not_guessed():
    rule = "FREQ=HOURLY;BYDAY=MO,TU,WE,TH,FR;COUNT=20000"  # some 18,800 occurrences before the window
    after = START + timedelta(days=3 * 365)
    with pytest.raises(CountUnresolved):
        occurrences_between(rule, start=START, tz_name="UTC", after=after, until=after + timedelta(days=1),
                            budget=WalkBudget(5000))
    budget = WalkBudget(30000)
    assert list(occurrences_between(rule, start=START, tz_name="UTC", after=after, until=after + timedelta(days=1),
                                    budget=budget))
    assert 0 <= budget.steps < 30000 - 3 * 5000  # the walk is spent from the budget the caller gave


@pytest.mark.parametrize(("rule", "tz_name"), [
    ("FREQ=HOURLY", "Europe/Berlin"), ("FREQ=DAILY;BYHOUR=2,14;BYMINUTE=30", "Europe/Berlin"),
    ("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=9", "Europe/London"), ("FREQ=WEEKLY;INTERVAL=3", "Pacific/Auckland"),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "UTC"), ("FREQ=DAILY;UNTIL=20310301T000000", "Asia/Tokyo"),
])
def test_the_next_occurrence_is_what_stepping_finds(rule, tz_name):
    for after, _ in windows(rule, tz_name):
        assert next_after(rule, start=START, tz_name=tz_name, after=after) == next_occurrence(
            rule, start=START, tz_name=tz_name, after=after), after


def test_the_next_occurrence_of_a_long_series_costs_a_window_not_its_history(walked):
    """The publish run asks for a series' next occurrence each time one is published: an hourly
    series nine centuries old is not walked from its start."""
    after = START + timedelta(days=365 * 900)
    assert next_after("FREQ=HOURLY", start=START, tz_name="Europe/Berlin", after=after) == after + timedelta(hours=1)
    assert walked["instances"] < 100
