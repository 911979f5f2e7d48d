"""The calendar: posts and future occurrences of their series, grouped by local day. Pure.

Its work is bounded whatever the range and however old the series: each series is expanded from
the window on (``occurrences.occurrences_between``), at most MAX_PER_SERIES occurrences of a
series and MAX_ITEMS items in all are listed, and what is left out is named.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.domain.models import Post, PostStatus
from services.scheduling import occurrences, recurrence

#: virtual occurrences listed per series at most (an hourly series over a year would be absurd)
MAX_PER_SERIES = 500
#: items listed per calendar at most; the rest are named by ``Calendar.next_from``
MAX_ITEMS = 2000


@dataclass(frozen=True)
class Calendar:
    """What a calendar lists, by local day, and what it leaves out."""

    days: list[dict[str, Any]]
    #: when MAX_ITEMS cut the list: the instant of the first item left out (asking again from it
    #: lists the rest, and again any item at that very instant)
    next_from: datetime | None
    #: the series whose occurrences in the range were not all listed: ``{post_id, reason, next_at}``
    #: with reason ``max_per_series`` (next_at: the first left out) or ``count_unresolved`` (none
    #: listed: see occurrences.CountUnresolved; the walk budget is the whole calendar's)
    capped_series: list[dict[str, Any]]

    @property
    def is_truncated(self) -> bool:
        return self.next_from is not None or bool(self.capped_series)


def calendar_days(posts: list[Post], *, start: datetime, end: datetime, tz_name: str) -> Calendar:
    """Every post scheduled in [start, end], plus the occurrences its series will create after it.

    ``posts`` holds the posts scheduled in the range and the scheduled heads of series (recurring
    posts), which may start before it. Items are in time order within each local day.
    """
    tz = recurrence.zone(tz_name)
    unique: dict[Any, Post] = {}
    for post in posts:
        if post.scheduled_at is not None:
            unique.setdefault(post.id, post)
    posts = list(unique.values())
    scheduled = sorted(((at, post, False) for post in posts
                        if (at := post.scheduled_at) is not None and start <= at <= end), key=_order)
    capped: list[dict[str, Any]] = []
    budget = occurrences.WalkBudget()
    series = [_future(post, start=start, end=end, budget=budget, capped=capped) for post in posts
              if post.rrule and post.status in _SERIES_TO_COME]
    listed = list(itertools.islice(heapq.merge(scheduled, *series, key=_order), MAX_ITEMS + 1))
    next_from = listed.pop()[0] if len(listed) > MAX_ITEMS else None
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for at, post, virtual in listed:
        days[at.astimezone(tz).date().isoformat()].append(_item(post, at, tz, virtual=virtual))
    return Calendar(days=[{"date": day, "items": days[day]} for day in sorted(days)], next_from=next_from,
                    capped_series=sorted(capped, key=lambda entry: entry["post_id"]))


#: a series whose occurrences are still to come: scheduled, or waiting for approval (its occurrences
#: are listed with that status, so a reviewer sees what approving it would schedule)
_SERIES_TO_COME = (PostStatus.SCHEDULED, PostStatus.PENDING_APPROVAL)


def _order(entry: tuple[datetime, Post, bool]) -> tuple[datetime, str]:
    return entry[0], str(entry[1].id)


def _future(post: Post, *, start: datetime, end: datetime, budget: occurrences.WalkBudget,
            capped: list[dict[str, Any]]) -> Iterator[tuple[datetime, Post, bool]]:
    """The series' occurrences after the post and in [start, end], lazily; noted in ``capped`` when cut."""
    # an instant later than start less a microsecond (the smallest step) is one at or after start
    if post.rrule is None or post.scheduled_at is None:
        return
    after = max(post.scheduled_at, start - timedelta(microseconds=1))
    try:
        found = occurrences.occurrences_between(post.rrule, start=post.series_start_at or post.scheduled_at,
                                                tz_name=post.timezone, after=after, until=end, budget=budget)
    except occurrences.CountUnresolved:
        capped.append({"post_id": str(post.id), "reason": "count_unresolved", "next_at": None})
        return
    for number, at in enumerate(found):
        if number == MAX_PER_SERIES:
            capped.append({"post_id": str(post.id), "reason": "max_per_series", "next_at": at})
            return
        yield at, post, True


def _item(post: Post, at: datetime, tz: Any, *, virtual: bool) -> dict[str, Any]:
    return {
        "post_id": str(post.id),
        "occurrence_at": at.isoformat(),
        "local_time": at.astimezone(tz).isoformat(),
        "status": post.status.value,  #: an occurrence to come has its series' status
        "virtual": virtual,
        "text": post.content.text[:280],
    }
