"""Which post states each action may start from, and a post's status derived from its targets."""

from __future__ import annotations

from collections.abc import Iterable

from services.domain.models import PostStatus, TargetStatus

P = PostStatus

#: action -> statuses the post may be in for it to happen
ALLOWED_FROM: dict[str, frozenset[PostStatus]] = {
    "edit": frozenset({P.DRAFT, P.PENDING_APPROVAL, P.SCHEDULED, P.FAILED, P.CANCELLED}),
    "delete": frozenset({P.DRAFT, P.PENDING_APPROVAL, P.SCHEDULED, P.FAILED, P.CANCELLED}),
    "schedule": frozenset({P.DRAFT, P.PENDING_APPROVAL, P.SCHEDULED, P.FAILED, P.CANCELLED}),
    "unschedule": frozenset({P.SCHEDULED, P.PENDING_APPROVAL}),
    "publish": frozenset({P.DRAFT, P.PENDING_APPROVAL, P.SCHEDULED}),
    "retry": frozenset({P.FAILED, P.PARTIAL}),
}

#: actions refused while any target is live or may be (published or unknown), whatever the post's
#: status: a post waiting to retry one channel is ``scheduled`` yet already public on another
BLOCKED_WHEN_LIVE = frozenset({"edit", "schedule", "unschedule", "delete"})
#: the pseudo-status ``conflict_message`` takes for such a refusal
LIVE = "live"

_WHY = {
    LIVE: "it is already live on some of its channels; the others are retried on their own",
    P.PUBLISHING: "it is being published right now; try again in a minute",
    P.PUBLISHED: "it has been published; published posts cannot be changed",
    P.PARTIAL: "it is already live on some channels; retry its failed targets instead",
    P.NEEDS_REVIEW: "the outcome of its last attempt is unknown; resolve it first",
    P.DRAFT: "it is a draft",
    P.PENDING_APPROVAL: "it is waiting for approval",
    P.FAILED: "it has failed; retry it instead",
    P.CANCELLED: "it is cancelled",
    P.SCHEDULED: "it is scheduled",
}


def conflict_message(action: str, status: PostStatus | str) -> str:
    """The 409 message for ``action`` refused on a post in ``status`` (or LIVE)."""
    return f"cannot {action} this post: {_WHY[status if status == LIVE else PostStatus(status)]}"


def derive_post_status(statuses: Iterable[TargetStatus]) -> PostStatus:
    """A post's status once its run is over, from its targets' statuses.

    Cancelled targets do not count. Any target still pending (waiting for a retry) keeps the post
    scheduled; any unknown target means someone must look; otherwise published / partial / failed.
    """
    live = [s for s in statuses if s is not TargetStatus.CANCELLED]
    if not live:
        return PostStatus.CANCELLED
    if any(s in (TargetStatus.PENDING, TargetStatus.PUBLISHING) for s in live):
        return PostStatus.SCHEDULED
    if any(s is TargetStatus.UNKNOWN for s in live):
        return PostStatus.NEEDS_REVIEW
    published = sum(s is TargetStatus.PUBLISHED for s in live)
    if published == len(live):
        return PostStatus.PUBLISHED
    if published:
        return PostStatus.PARTIAL
    return PostStatus.FAILED
