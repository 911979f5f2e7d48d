"""herald_private.metrics_next_at, the analytics schedule: a grid anchored at published_at, hourly in
the first day, daily until day 30, then none; the same in every session time zone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

PUBLISHED = datetime(2030, 3, 30, 12, 0, tzinfo=timezone.utc)  # Europe/Berlin moves its clocks on the 31st
H, D = timedelta(hours=1), timedelta(hours=24)


@pytest.mark.parametrize(("age", "expected"), [
    (timedelta(0), H),  # published: first read an hour later
    (-H, H),  # a clock behind the publish time: still an hour after it
    (H, 2 * H),  # on a slot: the next one
    (H + timedelta(minutes=59), 2 * H),  # between slots: the following slot, never a catch-up
    (23 * H + timedelta(minutes=30), 24 * H),  # the last hourly slot is day 1
    (24 * H, 2 * D),  # day 1 read: daily from here
    (2 * D + timedelta(minutes=1), 3 * D),
    (29 * D + timedelta(hours=23), 30 * D),  # the last read, on day 30
    (30 * D, None),  # then never
    (400 * D, None),
])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_the_next_read_is_the_first_slot_after_now(pg_catalog, zone, age, expected):
    pg_catalog.execute("select set_config('timezone', %s, false)", [zone])
    found = pg_catalog.execute("select herald_private.metrics_next_at(%s, %s)", [PUBLISHED, PUBLISHED + age]).fetchone()[0]
    assert found == (None if expected is None else PUBLISHED + expected)


def test_an_unpublished_target_has_no_next_read(pg_catalog):
    assert pg_catalog.execute("select herald_private.metrics_next_at(null, now())").fetchone()[0] is None
