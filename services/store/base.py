"""The Store protocol: every read and write Herald makes, in domain verbs.

One implementation, ``RpcStore`` (one SQL function per method), over two transports held to one
contract suite (``tests/contract``): ``PostgresStore`` (psycopg: the embedded default and any
PostgreSQL URL) and ``SupabaseStore`` (production). User-facing methods take
the calling ``User``: its token (the functions read its id) and the workspace it names
(``User.workspace_id``, else its personal workspace); the functions scope every read and write to that
workspace and check the user's role there (ForbiddenError naming the role it needs). Methods that the
publish run calls take no user: they run with the service role.

Errors: ``NotFoundError`` for a missing or foreign row, ``ConflictError`` when a compare-and-set
transition finds the row in a state it may not leave, ``ValidationError`` (field ``channel_ids``)
when a post names a channel the user does not own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from services.domain.analytics import AnalyticsClaim, AnalyticsRecorded, AnalyticsSummary, PostAnalytics, Reading
from services.domain.discussion import Comment, HistoryEntry
from services.domain.events import ClaimedDelivery, DeliveryAttempt, DeliveryLogEntry, WebhookEndpoint
from services.domain.health import ServiceHealth
from services.domain.models import (
    Activity,
    Channel,
    Claim,
    Content,
    CronHealth,
    CronRun,
    MediaCheckClaim,
    OutboxEntry,
    Post,
    PostResult,
    PostStatus,
    RateLimitPause,
    Run,
    User,
)
from services.domain.operations import OperationsFigures
from services.domain.workspaces import Invite, Member, Workspace


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: Marks a PostChanges field the caller did not send.
UNSET: Any = _Unset()


@dataclass(frozen=True)
class NewChannel:
    platform: str
    account_id: str
    name: str
    credentials_encrypted: str
    metadata: dict[str, Any] = field(default_factory=dict)
    token_expires_at: datetime | None = None
    #: an account the user already connected is reconnected (new credentials, status active,
    #: metadata merged, same id: its posts keep it) instead of refused; for verified credentials
    reconnect: bool = False


@dataclass(frozen=True)
class ChannelChanges:
    """An edit of a channel: None keeps a field. ``metadata`` is merged into the stored metadata
    (top-level keys; a key whose value is None is removed); ``active`` False pauses publishing."""

    name: str | None = None
    metadata: dict[str, Any] | None = None
    active: bool | None = None


@dataclass(frozen=True)
class NewPost:
    content: Content
    channel_ids: tuple[UUID, ...]
    status: PostStatus  #: draft or scheduled
    scheduled_at: datetime | None
    timezone: str = "UTC"
    rrule: str | None = None


@dataclass(frozen=True)
class PostChanges:
    """A compare-and-set edit: fields left UNSET keep their value.

    ``status`` moves the post; moving to ``scheduled`` revives its failed or cancelled targets
    whose channel still exists (back to ``pending``); moving to ``cancelled`` cancels its
    pending targets. ``channel_ids`` replaces the post's targets with one per channel.
    """

    content: Content = UNSET
    channel_ids: tuple[UUID, ...] = UNSET
    scheduled_at: datetime | None = UNSET
    timezone: str = UNSET
    rrule: str | None = UNSET
    status: PostStatus = UNSET
    #: with status scheduled: due at this time instead of scheduled_at (publish now, retry now)
    next_attempt_at: datetime | None = UNSET
    #: the content edit is for this occurrence only: later occurrences keep the series' content
    occurrence_only: bool = UNSET

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not UNSET}


@dataclass(frozen=True)
class PostFilter:
    statuses: tuple[PostStatus, ...] = ()
    platform: str | None = None
    channel_id: UUID | None = None
    scheduled_from: datetime | None = None
    scheduled_to: datetime | None = None
    updated_since: datetime | None = None
    recurring: bool | None = None  #: only posts with (True) or without (False) an rrule
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class PostPage:
    items: list[Post]
    total: int


@dataclass(frozen=True)
class Statistics:
    total: int
    by_status: dict[str, int]
    #: platform -> {"targets": n, "<target status>": n, ...}
    by_platform: dict[str, dict[str, int]]
    #: the lag of targets published since ``since``: count, p50_ms, p95_ms, max_ms (None without any)
    publish_lag: PublishLag | None = None


@dataclass(frozen=True)
class PublishLag:
    since: datetime
    count: int
    p50_ms: int | None
    p95_ms: int | None
    max_ms: int | None


@dataclass(frozen=True)
class AnalyticsQuery:
    """The user's targets published in [start, end), on ``platform`` / ``channel_id`` when given."""

    start: datetime
    end: datetime
    platform: str | None = None
    channel_id: UUID | None = None
    top: int = 10  #: how many top posts (1-50)


class WebhookStore(Protocol):
    """Event webhooks: the user's endpoints, and the delivery outbox the runs drain."""

    async def create_webhook(self, user: User, *, url: str, events: tuple[str, ...], description: str | None,
                             secret_encrypted: str) -> WebhookEndpoint: ...

    async def list_webhooks(self, user: User) -> list[WebhookEndpoint]: ...

    async def get_webhook(self, user: User, endpoint_id: UUID) -> WebhookEndpoint: ...

    async def update_webhook(self, user: User, endpoint_id: UUID, *, events: tuple[str, ...] | None = None,
                             description: str | None = None, status: str | None = None) -> WebhookEndpoint:
        """Change what it receives or its status ("active" re-enables, clearing the failure clock)."""

    async def delete_webhook(self, user: User, endpoint_id: UUID) -> None: ...

    async def test_webhook(self, user: User, endpoint_id: UUID) -> ClaimedDelivery:
        """A ``webhook.test`` event for this endpoint only, its delivery leased to the caller."""

    async def list_deliveries(self, user: User, endpoint_id: UUID, *, limit: int = 50,
                              offset: int = 0) -> tuple[list[DeliveryLogEntry], int]:
        """The endpoint's attempts, newest first, and how many there are."""

    async def claim_deliveries(self, *, now: datetime, limit: int, lease_seconds: int,
                               per_endpoint: int = 10) -> list[ClaimedDelivery]:
        """Due deliveries to active endpoints (at most ``per_endpoint`` to one), leased so that
        overlapping runs never send one twice at once."""

    async def record_deliveries(self, attempts: list[DeliveryAttempt], *, now: datetime) -> None:
        """Each attempt, its delivery's new state, and the endpoint's failure clock (or its disabling)."""


class CommentStore(Protocol):
    """A post's comments and history (what a reviewer reads); NotFoundError for a foreign or missing post."""

    async def add_comment(self, user: User, post_id: UUID, body: str) -> Comment:
        """Add the user's comment (also to the activity log); ValidationError (field ``body``) for a
        blank body or one over 10000 characters."""

    async def list_comments(self, user: User, post_id: UUID, *, limit: int = 50,
                            offset: int = 0) -> tuple[list[Comment], int]:
        """The post's comments, oldest first, and how many there are."""

    async def post_history(self, user: User, post_id: UUID, *, limit: int = 50,
                           offset: int = 0) -> tuple[list[HistoryEntry], int]:
        """Every change of the post's content, time (scheduled_at, timezone, rrule) and status, oldest
        first, with who made it, and how many there are."""


class WorkspaceStore(Protocol):
    """Workspaces, their members and invites. Every call that names a workspace answers NotFoundError
    (code ``workspace_not_found``) when the caller is not a member of it, and ForbiddenError (naming
    the role it needs) when the caller's role is too low: viewer reads; admin changes settings,
    members but owners and invites; only an owner grants, changes or removes ``owner`` and deletes."""

    async def list_workspaces(self, user: User) -> list[Workspace]:
        """Every workspace the user belongs to, their personal one (made on first use) first, then by name."""

    async def create_workspace(self, user: User, name: str) -> Workspace:
        """A new workspace, the user its owner; ValidationError (field ``name``) for a blank name or one
        over 100 characters."""

    async def get_workspace(self, user: User, workspace_id: UUID) -> Workspace: ...

    async def update_workspace(self, user: User, workspace_id: UUID, *, name: str | None = None,
                               approval_required: bool | None = None,
                               editors_connect_channels: bool | None = None) -> Workspace:
        """Rename it or change its settings (admin); None keeps a field."""

    async def delete_workspace(self, user: User, workspace_id: UUID) -> None:
        """Delete it with everything in it (owner). ConflictError ``personal_workspace`` for a personal
        one, ``workspace_publishing`` while one of its posts is being published."""

    async def list_members(self, user: User, workspace_id: UUID) -> list[Member]:
        """Owners first, then admins, editors, viewers, each by when they joined."""

    async def update_member(self, user: User, workspace_id: UUID, member_id: UUID, *, role: str | None = None,
                            approver: bool | None = None) -> Member:
        """Change a member's role or approver flag (admin; owner where ``owner`` is given or taken).
        ConflictError ``last_owner`` for demoting the last owner, ``personal_workspace`` for the user
        whose personal workspace it is; NotFoundError ``member_not_found``."""

    async def remove_member(self, user: User, workspace_id: UUID, member_id: UUID) -> None:
        """Remove a member (admin; owner for an owner), or leave (``member_id`` the user: any member).
        ConflictError ``last_owner`` or ``personal_workspace`` as for ``update_member``."""

    async def create_invite(self, user: User, workspace_id: UUID, *, role: str, approver: bool, email: str | None,
                            token: str, expires_at: datetime) -> Invite:
        """An invite anyone holding ``token`` may accept once before ``expires_at`` (admin; owner to
        invite an owner). Only the token's hash is stored."""

    async def list_invites(self, user: User, workspace_id: UUID) -> list[Invite]:
        """The pending invites (admin): not accepted, revoked or expired; oldest first."""

    async def revoke_invite(self, user: User, workspace_id: UUID, invite_id: UUID) -> None:
        """(admin) NotFoundError ``invite_not_found``, ConflictError ``invite_used`` once accepted."""

    async def accept_invite(self, user: User, token: str) -> Workspace:
        """Join the invite's workspace with its role. NotFoundError ``invite_not_found`` (unknown or
        revoked); ConflictError ``invite_used``, ``invite_expired`` or ``already_member`` (the invite
        stays unused). Of two accepts of one invite, one wins."""


class Store(WebhookStore, CommentStore, WorkspaceStore, Protocol):
    # --- health -------------------------------------------------------------------------------
    async def ping(self) -> None:
        """Raise if the store cannot be reached."""

    # --- channels -----------------------------------------------------------------------------
    async def create_channel(self, user: User, new: NewChannel) -> Channel:
        """Store a channel for ``user``; ConflictError if that account is connected, unless
        ``new.reconnect``. A ``User`` without a token comes from an OAuth callback whose signed
        state proved the user; it is created with the service role."""

    async def list_channels(self, user: User) -> list[Channel]:
        """The user's channels, oldest first."""

    async def get_channel(self, user: User, channel_id: UUID) -> Channel:
        """Raise NotFoundError unless the user owns it."""

    async def update_channel(self, user: User, channel_id: UUID, changes: ChannelChanges) -> Channel:
        """Apply ``changes``; NotFoundError unless the user owns it. Pausing marks its pending targets
        (error_code ``channel_paused``); resuming clears that and makes the posts it held due again."""

    async def delete_channel(self, user: User, channel_id: UUID, *, force: bool) -> None:
        """Delete the channel; its published targets keep their record (channel_id becomes null).

        Raise ConflictError while a scheduled (or publishing) post targets it, unless ``force``:
        then those pending targets are cancelled, and a post left with no live target is
        cancelled. Pending targets of drafts are removed.
        """

    # --- posts --------------------------------------------------------------------------------
    async def create_post(self, user: User, new: NewPost) -> Post:
        """Store the post and one pending target per channel, atomically."""

    async def create_posts(
        self, user: User, news: list[NewPost], *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> tuple[list[Post], bool]:
        """Store all the posts or none. With an ``idempotency_key`` the user has used before, store
        nothing and return the posts that key created and True; ConflictError if that key came with
        a different ``request_hash``. Returns (posts, replayed).
        """

    async def resolve_target(
        self, user: User, post_id: UUID, target_id: UUID, *, published: bool, url: str | None
    ) -> Post:
        """Settle an ``unknown`` target by hand (published or failed) and re-derive the post's status.

        ConflictError unless the target is ``unknown``; NotFoundError for a foreign post or target.
        """

    async def get_post(self, user: User, post_id: UUID) -> Post: ...

    async def list_posts(self, user: User, query: PostFilter) -> PostPage:
        """Newest first (created_at, then id), with the total matching ``query``."""

    async def update_post(
        self,
        user: User,
        post_id: UUID,
        changes: PostChanges,
        *,
        allowed_from: frozenset[PostStatus],
        action: str,
    ) -> Post:
        """Apply ``changes`` only if the post's status is in ``allowed_from``; else ConflictError.

        ``action`` names the change for the activity log and the conflict message.
        """

    async def delete_post(
        self, user: User, post_id: UUID, *, allowed_from: frozenset[PostStatus]
    ) -> None: ...

    async def approve_post(self, user: User, post_id: UUID, *, publish_now: bool) -> Post:
        """Approve a ``pending_approval`` post: ``scheduled`` (due at once with ``publish_now``), with the
        approver and time on it. ForbiddenError unless the user is an owner, admin or approver of its
        workspace; ConflictError unless it waits for approval, or (code ``time_passed``) when its time
        has passed and not ``publish_now``."""

    async def reject_post(self, user: User, post_id: UUID, *, comment: str) -> Post:
        """Send a ``pending_approval`` post back to ``draft``; ``comment`` (required, field ``comment``)
        joins its comments. ForbiddenError and ConflictError as for ``approve_post``."""

    async def list_runs(self, user: User, post_id: UUID) -> list[Run]:
        """The post's attempts, oldest first; NotFoundError for a foreign post."""

    async def list_activity(
        self, user: User, *, post_id: UUID | None = None, limit: int = 50
    ) -> list[Activity]:
        """The user's activity, newest first."""

    async def post_statistics(self, user: User, *, lag_since: datetime) -> Statistics:
        """Counts by status and platform, and the publish lag of targets published since ``lag_since``."""

    async def list_outbox(self, user: User, *, limit: int = 50) -> list[OutboxEntry]:
        """What the sandbox platform published for the user, newest first."""

    async def operations(self, user: User, *, now: datetime) -> OperationsFigures:
        """The user's operations figures at ``now``: their targets that finished in the last 24 hours
        and 7 days (outcomes, retries, publish lag, per platform), their posts stuck past their lease
        and their due backlog. Definitions: ``supabase/migrations/20261201000500_operations.sql``."""
    async def get_post_analytics(self, user: User, post_id: UUID) -> PostAnalytics:
        """Every target of the post with its latest reading and all its readings (oldest first), and
        the totals of the latest ones; NotFoundError for a foreign post."""

    async def analytics_summary(self, user: User, query: AnalyticsQuery) -> AnalyticsSummary:
        """Totals, per-platform totals and the top posts by engagement over the user's targets
        published in the range; ValidationError (field ``to``) unless start < end and the range is
        at most 366 days, (field ``top``) unless 1 <= top <= 50."""

    # --- the publish run (service role) -------------------------------------------------------
    async def claim_due_posts(
        self, *, now: datetime, limit: int, lease_seconds: int, post_ids: tuple[UUID, ...] | None = None,
        due_by: datetime | None = None,
    ) -> Claim:
        """Lease up to ``limit`` posts, oldest due first, in one atomic step.

        ``due_by`` (later than ``now``: the lookahead) also takes scheduled posts due up to then;
        expired leases are judged against ``now`` only. The claim names the platforms paused for
        the whole app (``Claim.platform_pauses``) and each channel's ``rate_limited_until``.

        First, posts left ``publishing`` by a run that died (lease expired before ``now``) are
        re-leased to this run; then due posts (status ``scheduled`` and
        ``coalesce(next_attempt_at, scheduled_at) <= now``; only ``post_ids`` if given) become
        ``publishing`` with a new lease id and ``lease_expires_at = now + lease``. Targets stay
        ``pending`` until ``mark_sending``; every claimed target already in ``publishing`` (marked
        sending by an earlier run) is reported in ``maybe_sent``: its call may have gone out.
        Overlapping claims never return the same post.
        """

    async def mark_sending(self, target_ids: list[UUID], *, now: datetime) -> None:
        """Record that these targets' platform calls are about to start (pending -> publishing).

        A run dying after this leaves them distinguishable from targets it never touched.
        """

    async def save_progress(self, lease_id: UUID, target_id: UUID, resume: dict[str, Any]) -> bool:
        """Save a target's resume details mid-call (a YouTube upload session), so that a run killed
        before it records its results still leaves them for the next attempt.

        Only while the post is leased to ``lease_id`` and the target is marked sending; False (and
        nothing written) otherwise.
        """

    async def spend_quota(self, platform: str, day: date, units: int, limit: int) -> tuple[bool, int]:
        """Count ``units`` of ``platform``'s daily API quota against ``day`` (as the platform counts
        days: Pacific for YouTube), only if the day's total stays within ``limit``.

        Answers (spent, the day's units used after the call); a refused spend writes nothing.
        Atomic: concurrent spends never take the day past ``limit`` together.
        """

    async def save_channel_credentials(
        self, channel_id: UUID, credentials_encrypted: str, *, token_expires_at: datetime | None
    ) -> None:
        """Persist refreshed tokens at once (a rotated refresh token lost is an account lost)."""

    async def mark_channel_needs_reconnect(self, channel_id: UUID, *, reason: str) -> None: ...

    async def list_due(self, *, now: datetime, limit: int) -> list[Post]:
        """What a claim at ``now`` would take, claiming nothing (dry run)."""

    async def cron_health(self, *, now: datetime) -> CronHealth: ...

    async def service_operations(self, *, now: datetime) -> OperationsFigures:
        """``operations`` for the whole service (every user's rows), with the latest cron run's start."""

    async def service_health(self, *, now: datetime) -> ServiceHealth:
        """What ``/cron/health`` judges: ``cron_health``, the oldest expired lease of a post still
        publishing, and the outcomes of the last 24 hours (the 24 h window of ``service_operations``)."""

    async def deliver_to_outbox(self, entry: OutboxEntry) -> None:
        """The sandbox platform's 'publish': append to the local outbox."""

    async def record_results(
        self, results: list[PostResult], *, now: datetime, cron_run: CronRun | None = None,
        pauses: tuple[RateLimitPause, ...] = (),
    ) -> int:
        """Write target outcomes, runs, activity and post statuses in one atomic step.

        A result whose lease the post no longer holds is ignored (another run recovered it).
        A result's ``released`` targets go back from ``publishing`` to ``pending`` (marked sending but
        never started); unreported targets are left as they are. A
        result with ``next_occurrence_at`` creates the series' next post (same content, time
        zone, rule and live channels; ``parent_post_id`` = this post) exactly once.
        Writes ``cron_run`` when given, and ``pauses``: a channel's ``rate_limited_until`` or a
        platform's app-wide pause (a later ``until`` wins). Return the number of posts still due at ``now``.
        """

    async def count_due(self, *, now: datetime) -> int: ...

    # --- the analytics refresh (service role) ------------------------------------------------
    async def claim_media_checks(self, *, now: datetime, within: timedelta, limit: int) -> list[MediaCheckClaim]:
        """Claim up to ``limit`` scheduled posts with media due after ``now`` and within ``within`` of
        it, not yet checked for their current time, soonest first; overlapping claims never return
        the same post. An edit of a post's content or time makes it claimable again."""

    async def record_media_checks(self, checks: list[tuple[UUID, datetime, list[dict[str, Any]] | None]], *,
                                  now: datetime) -> int:
        """Keep each (post id, checked_for, warnings) on its post (``media_warnings``) unless the post
        was edited since its claim; a post with warnings emits ``post.media_warning``. Warnings None:
        the check did not finish, the post is given back to be claimed again. Returns how many
        findings were kept (given-back posts not counted)."""

    async def claim_analytics_due(self, *, now: datetime, limit: int, lease_seconds: int) -> AnalyticsClaim:
        """Lease up to ``limit`` published targets whose metrics read is due at ``now``, earliest
        first, in one atomic step; overlapping claims never return the same target.

        Targets of a channel that needs reconnecting or is paused (its publish pause
        ``rate_limited_until``, its analytics pause, its platform's app-wide pause) are left due
        and unclaimed. A leased target is due again when the lease ends, unless recorded first.
        """

    async def record_analytics(
        self, lease_id: UUID, readings: list[Reading], *, now: datetime, pauses: tuple[RateLimitPause, ...] = (),
    ) -> AnalyticsRecorded:
        """Write a refresh run's readings and each target's next read in one atomic step.

        A reading whose target the lease no longer holds is ignored. MEASURED stores a snapshot and
        schedules the next slot after it (hourly in the first day after publishing, daily until day
        30, then none); FAILED schedules the next slot; STOPPED schedules none; RELEASED makes it due
        again at ``due_at``. ``pauses`` (channel ids) pause those accounts' analytics only, never
        their publishing. Touches no post, attempt, run or publish pause.
        """

    async def last_cron_run(self) -> CronRun | None: ...
