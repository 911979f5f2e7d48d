"""The calendar: series listed from the window on, capped per series and in all, and what is left out named."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from services.domain.models import Content, Post, PostStatus
from services.scheduling import calendar, occurrences
from services.scheduling.calendar import MAX_ITEMS, MAX_PER_SERIES, calendar_days

UTC = timezone.utc
#: 09:00 in Europe/Berlin, a Sunday
START = datetime(2030, 1, 6, 8, 0, tzinfo=UTC)


def series(rule: str, *, at: datetime = START, series_start: datetime | None = None) -> Post:
    """A series' scheduled head at ``at`` (its first occurrence unless ``series_start`` says otherwise)."""
    return Post(id=uuid.uuid4(), user_id=uuid.uuid4(), content=Content(text=rule), scheduled_at=at,
                timezone="Europe/Berlin", rrule=rule, status=PostStatus.SCHEDULED, attempts=0, error=None,
                created_at=START, updated_at=START, series_start_at=series_start or at)


def items(listing: calendar.Calendar) -> list[dict]:
    return [item for day in listing.days for item in day["items"]]


@pytest.mark.parametrize("days_in", [
    7,  # stepping from the start walked 75,946 instances for this day
    365,  # a year: stepping took over ten minutes
    365 * 20,  # twenty years
])
def test_a_series_is_listed_from_the_window_not_walked_from_its_start(walked, days_in):
    day = START + timedelta(days=days_in) - timedelta(hours=9)  # midnight in Berlin (CET)
    listing = calendar_days([series("FREQ=HOURLY")], start=day, end=day + timedelta(hours=23), tz_name="Europe/Berlin")
    local = [item["local_time"][11:16] for item in items(listing)]
    assert local == [f"{hour:02}:00" for hour in range(24)]
    assert [d["date"] for d in listing.days] == [(day + timedelta(hours=1)).date().isoformat()]
    assert not listing.is_truncated
    assert walked["instances"] < 200  # the day's 24 and the margins either side


def test_a_series_with_more_occurrences_than_max_per_series_is_capped_and_named():
    head = series("FREQ=HOURLY")
    listing = calendar_days([head], start=START, end=START + timedelta(days=30), tz_name="UTC")
    listed = items(listing)
    assert len(listed) == MAX_PER_SERIES + 1  # the head itself, and MAX_PER_SERIES occurrences after it
    assert listing.is_truncated and listing.next_from is None
    assert listing.capped_series == [{"post_id": str(head.id), "reason": "max_per_series",
                                      "next_at": START + timedelta(hours=MAX_PER_SERIES + 1)}]


def test_more_items_than_max_items_stop_at_next_from_and_asking_from_there_lists_the_rest():
    heads = [series("FREQ=HOURLY", at=START + timedelta(minutes=10 * n)) for n in range(6)]  # 6 an hour
    end = START + timedelta(days=20)
    first = calendar_days(heads, start=START, end=end, tz_name="UTC")
    assert len(items(first)) == MAX_ITEMS and first.is_truncated and first.capped_series == []
    assert first.next_from == START + timedelta(minutes=10 * MAX_ITEMS)  # one every ten minutes
    rest = calendar_days(heads, start=first.next_from, end=end, tz_name="UTC")
    assert rest.next_from is None and not rest.is_truncated
    times = [item["occurrence_at"] for item in items(first) + items(rest)]
    assert times == sorted(set(times)) and len(times) == 6 * 24 * 20 + 1  # every one, once: 08:00 to 08:00


def test_a_count_too_costly_to_apply_names_the_series_and_lists_none_of_it(monkeypatch):
    # Ten years of months ending on the 31st: 70 instances walked to count them, for each series.
    monkeypatch.setattr(occurrences, "MAX_COUNT_WALK", 100)
    costly = [series("FREQ=MONTHLY;BYMONTHDAY=31;COUNT=200", at=START + timedelta(minutes=n)) for n in range(3)]
    endless = series("FREQ=MONTHLY;BYMONTHDAY=31")
    window = START + timedelta(days=3652)
    listing = calendar_days([*costly, endless], start=window, end=window + timedelta(days=62), tz_name="UTC")
    unresolved = [entry["post_id"] for entry in listing.capped_series if entry["reason"] == "count_unresolved"]
    assert len(unresolved) == 2  # the walk budget is the whole calendar's: one of the three was counted
    listed = {item["post_id"] for item in items(listing)}
    assert str(endless.id) in listed and not listed & set(unresolved) and len(listed) == 2
    assert listing.is_truncated and listing.next_from is None


def test_a_series_waiting_for_approval_shows_what_approving_it_would_schedule():
    waiting = replace(series("FREQ=DAILY"), status=PostStatus.PENDING_APPROVAL)
    listing = calendar_days([waiting, series("FREQ=DAILY;BYHOUR=12")], start=START, end=START + timedelta(days=2),
                            tz_name="Europe/Berlin")
    by_series = {}
    for item in items(listing):
        by_series.setdefault(item["post_id"], []).append((item["status"], item["virtual"]))
    assert by_series[str(waiting.id)] == [("pending_approval", False), ("pending_approval", True),
                                          ("pending_approval", True)]
    assert {status for entries in by_series.values() for status, _ in entries} == {"pending_approval", "scheduled"}
