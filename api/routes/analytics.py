"""Engagement analytics over a range: totals, per platform, and the top posts."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import CurrentUser, RuntimeDep
from api.schemas.analytics import ENGAGEMENT, ENGAGEMENT_RATE, AnalyticsSummaryOut
from api.schemas.common import InstantIn
from api.schemas.errors import error_responses
from services import clock
from services.errors import ValidationError
from services.store.base import AnalyticsQuery

router = APIRouter(prefix="/analytics", tags=["analytics"], redirect_slashes=False)

#: the longest range a summary covers, and the one it covers by default (ending now)
MAX_RANGE = timedelta(days=366)
DEFAULT_RANGE = timedelta(days=30)
ERRORS = error_responses({401: "missing, expired or invalid access token", 422: "invalid input, naming the field"})


@router.get("/summary", response_model=AnalyticsSummaryOut, responses=ERRORS,
            description=f"Engagement is {ENGAGEMENT}. The engagement rate is {ENGAGEMENT_RATE}.")
async def analytics_summary(
    user: CurrentUser,
    rt: RuntimeDep,
    from_: Annotated[InstantIn | None, Query(alias="from", description="published at or after (default: to - 30 days)")] = None,
    to: Annotated[InstantIn | None, Query(description="published before (default: now)")] = None,
    platform: Annotated[str | None, Query(max_length=40)] = None,
    channel_id: UUID | None = None,
    top: Annotated[int, Query(ge=1, le=50, description="how many top posts")] = 10,
) -> AnalyticsSummaryOut:
    """The caller's targets published in [from, to), each counted by its latest reading: totals, per
    platform, and the top posts by engagement (at most 366 days)."""
    for name, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(f"{name} needs a UTC offset, e.g. 2026-01-01T00:00:00Z", field=name)
    end = to or clock.utcnow()
    start = from_ or end - DEFAULT_RANGE
    if end <= start or end - start > MAX_RANGE:
        raise ValidationError("to must be after from, and the range at most 366 days", field="to")
    if platform is not None and platform not in rt.platforms:
        raise ValidationError(f"platform must be one of: {', '.join(sorted(rt.platforms))}", field="platform")
    summary = await rt.store.analytics_summary(user, AnalyticsQuery(start=start, end=end, platform=platform,
                                                                    channel_id=channel_id, top=top))
    return AnalyticsSummaryOut.of(summary)
