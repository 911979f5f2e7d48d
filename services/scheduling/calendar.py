"""The calendar: posts and future occurrences of their series, grouped by local day. Pure."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from services.domain.models import Post, PostStatus
from services.scheduling import recurrence

#: virtual occurrences listed per series at most (a minutely rule over a year would be absurd)
MAX_PER_SERIES = 500


def calendar_days(posts: list[Post], *, start: datetime, end: datetime, tz_name: str) -> list[dict[str, Any]]:
    """Every post scheduled in [start, end], plus the occurrences its series will create after it.

    ``posts`` holds the posts scheduled in the range and the scheduled heads of series (recurring
    posts), which may start before it. Items are in time order within each local day.
    """
    tz = recurrence.zone(tz_name)
    items: list[tuple[datetime, dict[str, Any]]] = []
    seen = set()
    for post in posts:
        if post.scheduled_at is None or post.id in seen:
            continue
        seen.add(post.id)
        if start <= post.scheduled_at <= end:
            items.append((post.scheduled_at, _item(post, post.scheduled_at, tz, virtual=False)))
        if post.rrule and post.status is PostStatus.SCHEDULED:
            for at in _future(post, start=start, end=end):
                items.append((at, _item(post, at, tz, virtual=True)))
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for at, item in sorted(items, key=lambda pair: (pair[0], pair[1]["post_id"])):
        days[at.astimezone(tz).date().isoformat()].append(item)
    return [{"date": day, "items": days[day]} for day in sorted(days)]


def _future(post: Post, *, start: datetime, end: datetime) -> list[datetime]:
    found: list[datetime] = []
    cursor = post.scheduled_at
    anchor = post.series_start_at or post.scheduled_at
    while len(found) < MAX_PER_SERIES:
        nxt = recurrence.next_occurrence(post.rrule, start=anchor, tz_name=post.timezone, after=cursor)
        if nxt is None or nxt > end:
            break
        if nxt >= start:
            found.append(nxt)
        cursor = nxt
    return found


def _item(post: Post, at: datetime, tz: Any, *, virtual: bool) -> dict[str, Any]:
    return {
        "post_id": str(post.id),
        "occurrence_at": at.isoformat(),
        "local_time": at.astimezone(tz).isoformat(),
        "status": "scheduled" if virtual else post.status.value,
        "virtual": virtual,
        "text": post.content.text[:280],
    }
