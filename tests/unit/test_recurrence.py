"""Wall-clock times in a zone, and RRULE instances that keep local time across DST."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.errors import ValidationError
from services.scheduling.recurrence import next_occurrence, parse_rule, to_utc, zone

UTC = timezone.utc


@pytest.mark.parametrize(
    ("wall", "tz", "expected"),
    [
        (datetime(2030, 1, 15, 10, 0), "Europe/Berlin", datetime(2030, 1, 15, 9, 0, tzinfo=UTC)),  # CET +1
        (datetime(2030, 7, 15, 10, 0), "Europe/Berlin", datetime(2030, 7, 15, 8, 0, tzinfo=UTC)),  # CEST +2
        (datetime(2026, 3, 29, 2, 30), "Europe/Berlin", datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),  # gap: 03:30 CEST
        (datetime(2026, 10, 25, 2, 30), "Europe/Berlin", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),  # ambiguous: first
        (datetime(2030, 1, 15, 10, 0, tzinfo=UTC), "Asia/Tokyo", datetime(2030, 1, 15, 10, 0, tzinfo=UTC)),  # aware
    ],
)
def test_to_utc_reads_naive_times_in_the_zone(wall, tz, expected):
    assert to_utc(wall, tz) == expected


@pytest.mark.parametrize("name", ["Mars/Olympus", "", " UTC", "../etc/passwd", "Europe/"])
def test_unknown_zones_are_rejected_with_the_field(name):
    with pytest.raises(ValidationError) as err:
        zone(name)
    assert err.value.field == "timezone"


def test_daily_rule_keeps_local_time_across_spring_forward():
    start = to_utc(datetime(2026, 3, 28, 10, 0), "Europe/Berlin")  # Saturday, CET
    nxt = next_occurrence("FREQ=DAILY", start=start, tz_name="Europe/Berlin", after=start)
    assert nxt == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # 10:00 CEST


def test_an_hourly_rule_loses_no_hour_on_a_day_the_zone_skipped():
    # Samoa skipped 30 December 2011 (24 hours): that day's wall-clock hours land on the 31st's.
    # Looking back only 3 hours from the 31st's 00:00, the next instance found was 22:00.
    start = to_utc(datetime(2011, 12, 29, 0, 0), "Pacific/Apia")
    midnight = to_utc(datetime(2011, 12, 31, 0, 0), "Pacific/Apia")
    nxt = next_occurrence("FREQ=HOURLY", start=start, tz_name="Pacific/Apia", after=midnight)
    assert nxt == to_utc(datetime(2011, 12, 31, 1, 0), "Pacific/Apia")


def test_count_ends_the_series():
    start = to_utc(datetime(2030, 1, 1, 9, 0), "UTC")
    assert next_occurrence("FREQ=DAILY;COUNT=2", start=start, tz_name="UTC", after=start) is not None
    second = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)
    assert next_occurrence("FREQ=DAILY;COUNT=2", start=start, tz_name="UTC", after=second) is None


@pytest.mark.parametrize(
    "rule",
    ["", "FREQ=SOMETIMES", "BYDAY=MO", "FREQ=DAILY;UNTIL=20000101T000000Z", "FREQ=DAILY\nFREQ=WEEKLY", "X" * 600],
)
def test_invalid_rules_are_rejected(rule):
    with pytest.raises(ValidationError) as err:
        parse_rule(rule, start=datetime(2030, 1, 1, tzinfo=UTC), tz_name="UTC")
    assert err.value.field == "rrule"


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL"),  # dateutil would search for ever
        ("FREQ=WEEKLY;INTERVAL=-1", "INTERVAL"),
        ("FREQ=MINUTELY", "FREQ"),
        ("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30", "FREQ"),
        ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", "February 30"),  # a day no month has, scanned to the year 9999
        ("FREQ=DAILY;BYMONTH=4,6;BYMONTHDAY=31,-31", "February 30"),
        ("FREQ=HOURLY;BYSETPOS=2", "BYSETPOS"),  # took minutes to find nothing
        ("FREQ=DAILY;BYYEARDAY=400", "BYYEARDAY"),
    ],
)
def test_rules_that_would_search_for_ever_are_refused_at_once(rule, says):
    with pytest.raises(ValidationError) as err:
        parse_rule(rule, start=datetime(2030, 1, 1, tzinfo=UTC), tz_name="UTC")
    assert err.value.field == "rrule" and says in err.value.message


@pytest.mark.parametrize(("rule", "minutes"), [
    ("FREQ=HOURLY;BYMINUTE=0,30", 30),
    ("FREQ=HOURLY;BYMINUTE=" + ",".join(str(m) for m in range(60)), 1),  # FREQ=MINUTELY in disguise
    ("FREQ=DAILY;BYHOUR=9;BYMINUTE=0,15", 15),
    ("FREQ=WEEKLY;BYDAY=MO;BYHOUR=9,10;BYMINUTE=0,45", 15),
])
def test_a_rule_is_limited_by_how_often_it_recurs_not_by_its_freq(rule, minutes):
    with pytest.raises(ValidationError) as err:
        parse_rule(rule, start=datetime(2030, 1, 1, tzinfo=UTC), tz_name="UTC")
    assert err.value.field == "rrule" and f"{minutes} minutes apart" in err.value.message


@pytest.mark.parametrize("rule", ["FREQ=HOURLY", "FREQ=DAILY;BYHOUR=9,10,17", "FREQ=HOURLY;BYMINUTE=15"])
def test_once_an_hour_or_less_often_is_fine(rule):
    parse_rule(rule, start=datetime(2030, 1, 1, tzinfo=UTC), tz_name="UTC")


@pytest.mark.parametrize("rule", ["FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29", "FREQ=MONTHLY;BYDAY=FR;BYSETPOS=-1",
                                  "FREQ=MONTHLY;BYMONTH=2,4;BYMONTHDAY=30", "FREQ=HOURLY;INTERVAL=6"])
def test_rare_but_real_rules_are_kept(rule):
    parse_rule(rule, start=datetime(2030, 1, 1, tzinfo=UTC), tz_name="UTC")


@pytest.mark.parametrize(("moment", "tz"), [
    (datetime(9999, 12, 31, 23, 59), "America/Los_Angeles"),  # overflows datetime on the way to UTC
    (datetime(2999, 12, 31, 20, 0), "America/Los_Angeles"),  # in range as written, 3000 in UTC
    (datetime(2000, 1, 1, 5, 0), "Pacific/Kiritimati"),  # 1999 in UTC
    (datetime(3000, 1, 1, tzinfo=UTC), "UTC"),
])
def test_instants_outside_the_years_2000_to_2999_are_refused_naming_the_field(moment, tz):
    with pytest.raises(ValidationError) as err:
        to_utc(moment, tz, field="posts.0.scheduled_at")
    assert err.value.field == "posts.0.scheduled_at" and "2000-01-01" in err.value.message
