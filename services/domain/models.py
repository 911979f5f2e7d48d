"""Herald's domain values: posts, their targets, channels, runs and the records of a cron run.

Values are frozen; stores build them from rows (``services/store/rows.py``) and the API renders
them. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


class PostStatus(str, enum.Enum):
    DRAFT = "draft"
    #: scheduled by a member who may not approve, in a workspace that asks for approval
    PENDING_APPROVAL = "pending_approval"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"
    NEEDS_REVIEW = "needs_review"


class TargetStatus(str, enum.Enum):
    PENDING = "pending"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class Outcome(str, enum.Enum):
    """How one platform call ended (DESIGN.md, "The publish run", step 5)."""

    PUBLISHED = "published"
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Media:
    type: str  #: "image", "video" or "document" (a PDF, PPT(X) or DOC(X); LinkedIn only)
    url: str
    alt: str | None = None


@dataclass(frozen=True)
class ThreadPart:
    """One post of a thread after the first (the first is the content's own text and media)."""

    text: str = ""
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class Content:
    text: str = ""
    media: tuple[Media, ...] = ()
    #: per-platform overrides, e.g. {"x": {"text": "shorter"}}
    platforms: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the thread's further posts, published in order as a reply chain under the first
    thread: tuple[ThreadPart, ...] = ()
    #: posted under the post right after it, as a separate step (a reply on X and Threads)
    first_comment: str | None = None

    def for_platform(self, platform: str) -> Content:
        """The content as sent to ``platform``: its override's text/media replace the defaults, its
        override stays in ``platforms`` (the only one), for the options only that platform reads
        (TikTok's privacy level, YouTube's title, ...), other platforms' overrides are dropped, and the
        thread and first comment are the same on every platform."""
        override = self.platforms.get(platform) or {}
        if not override:
            return dataclasses.replace(self, platforms={}) if self.platforms else self
        media = override.get("media")
        return Content(
            text=override.get("text", self.text),
            media=tuple(Media(**m) for m in media) if media is not None else self.media,
            platforms={platform: override},
            thread=self.thread, first_comment=self.first_comment,
        )


@dataclass(frozen=True)
class User:
    """The caller of a user endpoint: the JWT's ``sub``, the token itself (for RLS) and the workspace
    the request names (``X-Workspace-Id``; None: the caller's personal workspace)."""

    id: UUID
    token: str | None = None
    workspace_id: UUID | None = None


@dataclass(frozen=True)
class Channel:
    id: UUID
    user_id: UUID
    platform: str
    account_id: str
    name: str
    metadata: dict[str, Any]
    status: str  #: "active" or "needs_reconnect"
    token_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    workspace_id: UUID | None = None
    #: Fernet token of the credentials JSON; only set on channels handed to the publish run.
    credentials_encrypted: str | None = None
    #: the account hit its platform limit: runs leave its targets alone until then
    rate_limited_until: datetime | None = None
    #: how long its platform calls typically take (recent attempts), in ms; None before the first
    typical_call_ms: int | None = None
    #: False: its owner paused publishing to it; runs hold its targets until it is active again
    active: bool = True


@dataclass(frozen=True)
class Target:
    id: UUID
    post_id: UUID
    channel_id: UUID | None
    platform: str
    status: TargetStatus
    platform_post_id: str | None
    platform_post_url: str | None
    error: str | None
    attempts: int
    published_at: datetime | None = None
    #: how many of ``attempts`` were rate limited: those spend no retry
    rate_limited: int = 0
    #: the outcome class of the last failed attempt (``error_class``); None once published
    error_code: str | None = None
    #: published_at minus when it was due, in milliseconds (published targets only)
    publish_lag_ms: int | None = None
    #: where the last failed attempt stopped, as its adapter said (``PlatformError.details``: an
    #: Instagram container id, the WhatsApp recipients already sent to); given back to the adapter
    #: on the next attempt so nothing already done is done twice. Internal: never in the API.
    resume: dict[str, Any] = field(default_factory=dict)
    #: when a run first marked it sending (the same on every retry); None until then
    first_attempt_at: datetime | None = None
    #: a post in several steps (a thread, a first comment): each step done, in order, with its
    #: platform id: ``{"kind": "post" | "thread" | "first_comment", "index"?, "id", "url"}``
    steps: tuple[dict[str, Any], ...] = ()
    #: the post is live but its first comment could not be posted: why
    first_comment_error: str | None = None


@dataclass(frozen=True)
class Post:
    id: UUID
    user_id: UUID
    content: Content
    scheduled_at: datetime | None
    timezone: str
    rrule: str | None
    status: PostStatus
    attempts: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    targets: tuple[Target, ...] = ()
    next_attempt_at: datetime | None = None
    series_id: UUID | None = None
    parent_post_id: UUID | None = None
    published_at: datetime | None = None
    #: when the series' first occurrence was due: the rule's anchor (COUNT counts from it)
    series_start_at: datetime | None = None
    workspace_id: UUID | None = None
    #: who approved it and when, in a workspace that asks for approval
    approved_by: UUID | None = None
    approved_at: datetime | None = None
    #: what the last media check before the post's time found ({field, code, message, platform});
    #: a warning informs, it never holds the post back
    media_warnings: tuple[dict[str, Any], ...] = ()
    media_checked_at: datetime | None = None  #: when that check ran; None: not since the last edit


@dataclass(frozen=True)
class MediaCheckClaim:
    """A scheduled post whose media are to be checked again before it is due."""

    post: Post
    checked_for: datetime  #: the scheduled time the check is for (an edit since makes it stale)
    #: (platform, channel metadata) of each target still to publish: whose limits apply
    targets: tuple[tuple[str, dict[str, Any]], ...] = ()


@dataclass(frozen=True)
class Run:
    """One attempt at one target (a ``post_runs`` row)."""

    id: UUID
    post_id: UUID
    target_id: UUID
    attempt: int
    outcome: Outcome
    http_status: int | None
    error_code: str | None
    error_message: str | None
    started_at: datetime
    finished_at: datetime
    duration_ms: int


@dataclass(frozen=True)
class Activity:
    id: int
    post_id: UUID | None
    event: str
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ClaimedPost:
    """A post the run holds a lease on, with its targets' channels (credentials still encrypted)."""

    post: Post
    lease_id: UUID
    channels: dict[UUID, Channel]
    #: targets whose platform call may have been sent by a run that died (recovered lease)
    maybe_sent: frozenset[UUID] = frozenset()
    #: channels of its targets whose stored row cannot be read: channel id -> what is wrong (never
    #: a stored value); only the targets on them fail, with UNREADABLE_POST
    unreadable_channels: dict[UUID, str] = field(default_factory=dict)


#: the error code of a post or target whose stored row Herald cannot read (written around the API)
UNREADABLE_POST = "unreadable_post"
#: error codes a target keeps as its ``error_code`` instead of the outcome class: each asks the
#: user for something different (reconnect the account, check the post by hand, ...)
SPECIFIC_ERROR_CODES = frozenset({"reconnect_required", "timeout", "channel_deleted", "maybe_sent",
                                  "platform_unavailable", UNREADABLE_POST})


@dataclass(frozen=True)
class TargetState:
    """What could be read of one target of an unreadable post: enough to record its failure."""

    id: UUID
    platform: str
    status: TargetStatus
    attempts: int


@dataclass(frozen=True)
class UnreadablePost:
    """A claimed post whose stored row cannot be read (content, schedule or targets).

    Rows written around the API (direct SQL, an old version) can hold anything. Such a post is
    leased like any other, never sent, and recorded as failed with UNREADABLE_POST, which releases
    its lease, so it neither blocks the batch it came in nor is claimed again.
    """

    post_id: UUID
    lease_id: UUID
    #: what could not be read, e.g. "content.media[0] has no type": names the part, never a stored secret
    reason: str
    targets: tuple[TargetState, ...] = ()
    #: targets a run that died had marked sending: their call may have gone out
    maybe_sent: frozenset[UUID] = frozenset()


@dataclass(frozen=True)
class Claim:
    """What one claim returned: the leased posts and what the claim recovered from dead runs."""

    posts: tuple[ClaimedPost, ...]
    recovered: tuple[UUID, ...] = ()  #: posts whose lease had expired, re-leased to this run
    #: leased posts whose row cannot be read: the run fails them on their own
    unreadable: tuple[UnreadablePost, ...] = ()
    #: platforms whose whole app is rate limited: platform -> until when (in force at the claim)
    platform_pauses: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class RateLimitPause:
    """A platform limit the run met: one account (``channel_id``) or the whole app on ``platform``."""

    until: datetime
    reason: str
    channel_id: UUID | None = None
    platform: str | None = None


@dataclass(frozen=True)
class TargetResult:
    """What happened to one target in a run, ready to be recorded."""

    target_id: UUID
    outcome: Outcome
    status: TargetStatus  #: the target's new status, decided by the run
    attempt: int
    started_at: datetime
    finished_at: datetime
    platform_post_id: str | None = None
    platform_post_url: str | None = None
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    idempotency_key: str | None = None
    #: the adapter's resume details after a failure (None: keep what the target had)
    resume: dict[str, Any] | None = None
    #: published: finished_at minus when the target was due, in milliseconds
    lag_ms: int | None = None
    #: the steps done so far (Target.steps); None: keep what the target had
    steps: tuple[dict[str, Any], ...] | None = None
    #: published without its first comment: why
    first_comment_error: str | None = None

    @property
    def error_class(self) -> str | None:
        """What a dashboard shows for a failure, without parsing text: the outcome class, or the
        specific cause where the user's fix differs (reconnect, a timeout, a deleted channel)."""
        if self.outcome is Outcome.PUBLISHED:
            return None
        if self.error_code in SPECIFIC_ERROR_CODES:
            return self.error_code
        if self.outcome is Outcome.AUTH:
            return "reconnect_required"
        return self.outcome.value


@dataclass(frozen=True)
class PostResult:
    """A claimed post's new state after a run: target results and the derived post status."""

    post_id: UUID
    lease_id: UUID
    status: PostStatus
    error: str | None
    targets: tuple[TargetResult, ...]
    next_attempt_at: datetime | None = None
    #: for a finished occurrence of a series: when the next one is due (None: the series ended)
    next_occurrence_at: datetime | None = None
    #: targets marked sending whose call was never started: back to pending, untouched
    released: tuple[UUID, ...] = ()
    #: with status PUBLISHING: an answer was lost, and the post stays leased until then, when a
    #: later run looks it up (targets still marked sending)
    lookup_at: datetime | None = None


@dataclass(frozen=True)
class CronRun:
    id: UUID
    trigger: str
    started_at: datetime
    finished_at: datetime
    claimed: int
    published: int
    failed: int
    remaining_due: int
    duration_ms: int
    error: str | None = None
    #: the run whose tick started this one to drain a burst (None: started by the cron itself)
    parent_run_id: UUID | None = None


@dataclass(frozen=True)
class OutboxEntry:
    """A message the sandbox platform 'published'."""

    id: UUID
    channel_id: UUID | None
    target_id: UUID
    text: str
    media: tuple[Media, ...]
    published_at: datetime


@dataclass(frozen=True)
class CronHealth:
    last_run: CronRun | None
    due_now: int
    oldest_due_at: datetime | None
    stuck: int  #: publishing posts whose lease expired (a run died; the next run recovers them)
