"""The Store protocol as calls of the ``herald_*_v1`` SQL functions: Herald's one store logic.

Every store operation lives once, as a SQL function in ``supabase/migrations``; this module only
turns each Store method into one call of its function (named parameters as JSON, the answer as
JSON) and the answer into domain values. Two transports carry the calls, held to one contract
suite on real Postgres: ``SupabaseStore`` (rpc() through supabase-py, production) and
``PostgresStore`` (psycopg, calling the functions the way PostgREST does: local and any
``HERALD_DATABASE_URL``). A transport implements ``_as_user`` (the caller's JWT: RLS applies)
and ``_as_service`` (the service role: the publish run).

The functions raise custom SQLSTATEs (HR401/HR403/HR404/HR409/HR422, DETAIL = error code, HINT = field)
that ``error_for`` maps to Herald's error classes, whichever transport carried them.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from services.domain.analytics import AnalyticsClaim, AnalyticsRecorded, AnalyticsSummary, PostAnalytics, Reading
from services.domain.health import ServiceHealth
from services.domain.models import (
    Activity,
    Channel,
    Claim,
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
from services.errors import (
    AuthenticationError,
    ConflictError,
    ForbiddenError,
    HeraldError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from services.store import analytics_rows, rows
from services.store.base import (
    AnalyticsQuery,
    ChannelChanges,
    NewChannel,
    NewPost,
    PostChanges,
    PostFilter,
    PostPage,
    PublishLag,
    Statistics,
)
from services.store.comments import CommentCalls
from services.store.webhooks import WebhookCalls
from services.store.workspaces import WorkspaceCalls

_fmt = rows.format_time

#: SQLSTATEs raised by the herald_*_v1 functions -> Herald's error classes.
_ERRORS: dict[str, type[HeraldError]] = {
    "HR401": AuthenticationError,
    "HR403": ForbiddenError,
    "HR404": NotFoundError,
    "HR409": ConflictError,
    "HR422": ValidationError,
}


def _ids(values: Any) -> list[str]:
    return [str(v) for v in values]


def _new_post_params(new: NewPost) -> dict[str, Any]:
    return {
        "content": rows.content_to_dict(new.content),
        "channel_ids": _ids(new.channel_ids),
        "status": new.status.value,
        "scheduled_at": _fmt(new.scheduled_at),
        "timezone": new.timezone,
        "rrule": new.rrule,
    }


def _changes_json(changes: PostChanges) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in changes.values().items():
        if key == "content":
            value = rows.content_to_dict(value)
        elif key == "channel_ids":
            value = _ids(value)
        elif isinstance(value, PostStatus):
            value = value.value
        elif isinstance(value, datetime):
            value = _fmt(value)
        out[key] = value
    return out


def error_for(code: str | None, message: str | None, details: str | None, hint: str | None) -> HeraldError:
    """The HeraldError a failed function call means; StoreError (no details, no secrets) for the unexpected."""
    cls = _ERRORS.get(code or "")
    if cls is not None:
        return cls(message or cls.__doc__ or "", code=details or None, field=hint or None)
    if code == "23505":
        return ConflictError("this already exists")
    return StoreError(f"the database refused the request (code {code or 'unknown'})")


class RpcStore(WebhookCalls, CommentCalls, WorkspaceCalls):
    """The Store protocol over the SQL functions; subclasses supply the transport."""

    async def _as_user(self, user: User, fn: str, params: dict[str, Any] | None = None) -> Any:
        """Call ``fn`` as ``user`` (role authenticated, the user's JWT claims): RLS applies."""
        raise NotImplementedError

    async def _as_service(self, fn: str, params: dict[str, Any] | None = None) -> Any:
        """Call ``fn`` with the service role (the publish run, OAuth callbacks)."""
        raise NotImplementedError

    # --- health -------------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._as_service("herald_ping_v1")

    # --- channels -----------------------------------------------------------------------------

    async def create_channel(self, user: User, new: NewChannel) -> Channel:
        params = {
            "p_platform": new.platform,
            "p_account_id": new.account_id,
            "p_name": new.name,
            "p_credentials_encrypted": new.credentials_encrypted,
            "p_metadata": new.metadata,
            "p_token_expires_at": _fmt(new.token_expires_at),
        }
        if user.token and not new.reconnect:
            return rows.channel_from_row(await self._as_user(user, "herald_create_channel_v1", params))
        # An OAuth callback whose signed state proved the user (Store.create_channel): connect or reconnect,
        # in the workspace the connect began in (the user's personal one without one).
        return rows.channel_from_row(await self._as_service("herald_connect_channel_v2", {
            "p_user_id": str(user.id), "p_workspace_id": str(user.workspace_id) if user.workspace_id else None,
            **params}))

    async def list_channels(self, user: User) -> list[Channel]:
        return [rows.channel_from_row(r) for r in await self._as_user(user, "herald_list_channels_v1")]

    async def get_channel(self, user: User, channel_id: UUID) -> Channel:
        return rows.channel_from_row(
            await self._as_user(user, "herald_get_channel_v1", {"p_channel_id": str(channel_id)}))

    async def update_channel(self, user: User, channel_id: UUID, changes: ChannelChanges) -> Channel:
        return rows.channel_from_row(await self._as_user(user, "herald_update_channel_v1", {
            "p_channel_id": str(channel_id), "p_name": changes.name, "p_metadata": changes.metadata,
            "p_active": changes.active}))

    async def delete_channel(self, user: User, channel_id: UUID, *, force: bool) -> None:
        await self._as_user(user, "herald_delete_channel_v1", {"p_channel_id": str(channel_id), "p_force": force})

    # --- posts --------------------------------------------------------------------------------

    async def create_post(self, user: User, new: NewPost) -> Post:
        params = {f"p_{k}": v for k, v in _new_post_params(new).items()}
        return rows.post_from_row(await self._as_user(user, "herald_create_post_v1", params))

    async def create_posts(
        self, user: User, news: list[NewPost], *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> tuple[list[Post], bool]:
        found = await self._as_user(user, "herald_create_posts_v1", {
            "p_posts": [_new_post_params(n) for n in news],
            "p_idempotency_key": idempotency_key,
            "p_request_hash": request_hash,
        })
        return [rows.post_from_row(p) for p in found["posts"]], bool(found["replayed"])

    async def resolve_target(
        self, user: User, post_id: UUID, target_id: UUID, *, published: bool, url: str | None
    ) -> Post:
        return rows.post_from_row(await self._as_user(user, "herald_resolve_target_v1", {
            "p_post_id": str(post_id), "p_target_id": str(target_id), "p_published": published, "p_url": url}))

    async def get_post(self, user: User, post_id: UUID) -> Post:
        return rows.post_from_row(await self._as_user(user, "herald_get_post_v1", {"p_post_id": str(post_id)}))

    async def list_posts(self, user: User, query: PostFilter) -> PostPage:
        page = await self._as_user(user, "herald_list_posts_v1", {
            "p_statuses": [s.value for s in query.statuses] or None,
            "p_platform": query.platform,
            "p_channel_id": str(query.channel_id) if query.channel_id else None,
            "p_scheduled_from": _fmt(query.scheduled_from),
            "p_scheduled_to": _fmt(query.scheduled_to),
            "p_updated_since": _fmt(query.updated_since),
            "p_recurring": query.recurring,
            "p_limit": query.limit,
            "p_offset": query.offset,
        })
        return PostPage(items=[rows.post_from_row(p) for p in page["items"]], total=int(page["total"]))

    async def update_post(
        self,
        user: User,
        post_id: UUID,
        changes: PostChanges,
        *,
        allowed_from: frozenset[PostStatus],
        action: str,
    ) -> Post:
        return rows.post_from_row(await self._as_user(user, "herald_update_post_v1", {
            "p_post_id": str(post_id),
            "p_changes": _changes_json(changes),
            "p_allowed_from": sorted(s.value for s in allowed_from),
            "p_action": action,
        }))

    async def delete_post(self, user: User, post_id: UUID, *, allowed_from: frozenset[PostStatus]) -> None:
        await self._as_user(user, "herald_delete_post_v1", {
            "p_post_id": str(post_id), "p_allowed_from": sorted(s.value for s in allowed_from)})

    async def approve_post(self, user: User, post_id: UUID, *, publish_now: bool) -> Post:
        return rows.post_from_row(await self._as_user(user, "herald_approve_post_v1", {
            "p_post_id": str(post_id), "p_publish_now": publish_now}))

    async def reject_post(self, user: User, post_id: UUID, *, comment: str) -> Post:
        return rows.post_from_row(await self._as_user(user, "herald_reject_post_v1", {
            "p_post_id": str(post_id), "p_comment": comment}))

    async def list_runs(self, user: User, post_id: UUID) -> list[Run]:
        found = await self._as_user(user, "herald_list_runs_v1", {"p_post_id": str(post_id)})
        return [rows.run_from_row(r) for r in found]

    async def list_activity(self, user: User, *, post_id: UUID | None = None, limit: int = 50) -> list[Activity]:
        found = await self._as_user(user, "herald_list_activity_v1", {
            "p_post_id": str(post_id) if post_id else None, "p_limit": limit})
        return [rows.activity_from_row(r) for r in found]

    async def post_statistics(self, user: User, *, lag_since: datetime) -> Statistics:
        stats = await self._as_user(user, "herald_post_statistics_v2", {"p_since": _fmt(lag_since)})
        lag = stats["publish_lag"]
        return Statistics(
            total=int(stats["total"]),
            by_status={k: int(v) for k, v in stats["by_status"].items()},
            by_platform={p: {k: int(v) for k, v in counts.items()} for p, counts in stats["by_platform"].items()},
            publish_lag=PublishLag(since=lag_since, count=int(lag["count"]),
                                   **{k: None if lag[k] is None else int(lag[k]) for k in ("p50_ms", "p95_ms", "max_ms")}),
        )

    async def list_outbox(self, user: User, *, limit: int = 50) -> list[OutboxEntry]:
        return [rows.outbox_from_row(r) for r in await self._as_user(user, "herald_list_outbox_v1", {"p_limit": limit})]

    async def operations(self, user: User, *, now: datetime) -> OperationsFigures:
        found = await self._as_user(user, "herald_operations_v1", {"p_now": _fmt(now)})
        return rows.operations_from_row(found, is_service=False)

    async def get_post_analytics(self, user: User, post_id: UUID) -> PostAnalytics:
        return analytics_rows.post_analytics_from_row(
            await self._as_user(user, "herald_get_post_analytics_v1", {"p_post_id": str(post_id)}))

    async def analytics_summary(self, user: User, query: AnalyticsQuery) -> AnalyticsSummary:
        return analytics_rows.summary_from_row(await self._as_user(user, "herald_analytics_summary_v1", {
            "p_from": _fmt(query.start),
            "p_to": _fmt(query.end),
            "p_platform": query.platform,
            "p_channel_id": str(query.channel_id) if query.channel_id else None,
            "p_top": query.top,
        }))

    # --- the publish run (service role) -------------------------------------------------------

    async def claim_due_posts(
        self, *, now: datetime, limit: int, lease_seconds: int, post_ids: tuple[UUID, ...] | None = None,
        due_by: datetime | None = None,
    ) -> Claim:
        return rows.claim_from_row(await self._as_service("herald_claim_due_posts_v2", {
            "p_now": _fmt(now),
            "p_limit": limit,
            "p_lease_seconds": lease_seconds,
            "p_post_ids": _ids(post_ids) if post_ids is not None else None,
            "p_due_by": _fmt(due_by) if due_by is not None else None,
        }))

    async def claim_media_checks(self, *, now: datetime, within: timedelta, limit: int) -> list[MediaCheckClaim]:
        return rows.media_check_claims_from_rows(await self._as_service("herald_claim_media_checks_v1", {
            "p_now": _fmt(now), "p_ahead_seconds": int(within.total_seconds()), "p_limit": limit}))

    async def record_media_checks(self, checks: list[tuple[UUID, datetime, list[dict[str, Any]] | None]], *,
                                  now: datetime) -> int:
        if not checks:
            return 0
        return int(await self._as_service("herald_record_media_checks_v1", {
            "p_checks": [{"post_id": str(post_id), "checked_for": _fmt(checked_for), "warnings": warnings}
                         for post_id, checked_for, warnings in checks],
            "p_now": _fmt(now)}))

    async def mark_sending(self, target_ids: list[UUID], *, now: datetime) -> None:
        if target_ids:
            await self._as_service("herald_mark_sending_v1", {"p_target_ids": _ids(target_ids), "p_now": _fmt(now)})

    async def save_progress(self, lease_id: UUID, target_id: UUID, resume: dict[str, Any]) -> bool:
        saved = await self._as_service("herald_save_progress_v1", {
            "p_lease_id": str(lease_id), "p_target_id": str(target_id), "p_resume": resume})
        return bool(saved)

    async def spend_quota(self, platform: str, day: date, units: int, limit: int) -> tuple[bool, int]:
        answer = await self._as_service("herald_spend_quota_v1", {
            "p_platform": platform, "p_day": day.isoformat(), "p_units": units, "p_limit": limit})
        return bool(answer["spent"]), int(answer["used"])

    async def save_channel_credentials(
        self, channel_id: UUID, credentials_encrypted: str, *, token_expires_at: datetime | None
    ) -> None:
        await self._as_service("herald_save_channel_credentials_v1", {
            "p_channel_id": str(channel_id),
            "p_credentials_encrypted": credentials_encrypted,
            "p_token_expires_at": _fmt(token_expires_at),
        })

    async def mark_channel_needs_reconnect(self, channel_id: UUID, *, reason: str) -> None:
        await self._as_service("herald_mark_channel_needs_reconnect_v1",
                               {"p_channel_id": str(channel_id), "p_reason": reason})

    async def list_due(self, *, now: datetime, limit: int) -> list[Post]:
        found = await self._as_service("herald_list_due_v1", {"p_now": _fmt(now), "p_limit": limit})
        return [rows.post_from_row(p) for p in found]

    async def cron_health(self, *, now: datetime) -> CronHealth:
        health = await self._as_service("herald_cron_health_v1", {"p_now": _fmt(now)})
        last = health.get("last_run")
        return CronHealth(
            last_run=rows.cron_run_from_row(last) if last else None,
            due_now=int(health["due_now"]),
            oldest_due_at=rows.parse_time(health.get("oldest_due_at")),
            stuck=int(health["stuck"]),
        )

    async def service_operations(self, *, now: datetime) -> OperationsFigures:
        found = await self._as_service("herald_service_operations_v1", {"p_now": _fmt(now)})
        return rows.operations_from_row(found, is_service=True)

    async def service_health(self, *, now: datetime) -> ServiceHealth:
        return rows.service_health_from_row(await self._as_service("herald_cron_health_v2", {"p_now": _fmt(now)}))

    async def deliver_to_outbox(self, entry: OutboxEntry) -> None:
        await self._as_service("herald_deliver_to_outbox_v1", {
            "p_id": str(entry.id),
            "p_channel_id": str(entry.channel_id) if entry.channel_id else None,
            "p_target_id": str(entry.target_id),
            "p_text": entry.text,
            "p_media": [rows.media_to_dict(m) for m in entry.media],
            "p_published_at": _fmt(entry.published_at),
        })

    async def record_results(self, results: list[PostResult], *, now: datetime, cron_run: CronRun | None = None,
                             pauses: tuple[RateLimitPause, ...] = ()) -> int:
        remaining = await self._as_service("herald_record_results_v2", {
            "p_results": rows.results_to_rows(results),
            "p_now": _fmt(now),
            "p_cron_run": rows.cron_run_to_dict(cron_run) if cron_run is not None else None,
            "p_pauses": rows.pauses_to_rows(pauses),
        })
        return int(remaining)

    async def count_due(self, *, now: datetime) -> int:
        return int(await self._as_service("herald_count_due_v1", {"p_now": _fmt(now)}))

    async def last_cron_run(self) -> CronRun | None:
        found = await self._as_service("herald_last_cron_run_v1")
        return rows.cron_run_from_row(found) if found else None

    # --- the analytics refresh (service role) -------------------------------------------------

    async def claim_analytics_due(self, *, now: datetime, limit: int, lease_seconds: int) -> AnalyticsClaim:
        return analytics_rows.claim_from_row(await self._as_service("herald_claim_analytics_due_v1", {
            "p_now": _fmt(now), "p_limit": limit, "p_lease_seconds": lease_seconds}))

    async def record_analytics(
        self, lease_id: UUID, readings: list[Reading], *, now: datetime, pauses: tuple[RateLimitPause, ...] = (),
    ) -> AnalyticsRecorded:
        found = await self._as_service("herald_record_analytics_v1", {
            "p_lease_id": str(lease_id),
            "p_now": _fmt(now),
            "p_readings": [analytics_rows.reading_to_row(r) for r in readings],
            "p_pauses": rows.pauses_to_rows(tuple(p for p in pauses if p.channel_id is not None)),
        })
        return AnalyticsRecorded(stored=int(found["stored"]), ignored=int(found["ignored"]),
                                 remaining_due=int(found["remaining_due"]))
