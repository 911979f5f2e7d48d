"""The external cron's endpoint (secret-guarded) and its set-up instructions."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import CronCaller, RuntimeDep, refresh_limits, run_limits
from api.events import render_event
from api.schemas.errors import error_responses
from services import clock
from services.analytics.refresh import refresh_due
from services.domain import health
from services.errors import HeraldError, ValidationError
from services.events.delivery import deliver_due
from services.logs import log_event
from services.media import PASS_SECONDS, check_upcoming_media
from services.publishing.burst import PARENT_HEADER, runs_needed, start_runs
from services.publishing.run import publish_due

router = APIRouter(prefix="/cron", tags=["cron"], redirect_slashes=False)

PUBLISH_PATH = "/api/v1/cron/publish-scheduled"
ANALYTICS_PATH = "/api/v1/cron/refresh-analytics"
#: every minute: posts go out on time
PUBLISH_SCHEDULE = "* * * * *"
#: hourly, at half past: the schedule's finest step is an hour, and half past keeps the reads away
#: from the top of the hour, when most posts are due and the publish run needs the accounts' limits
ANALYTICS_SCHEDULE = "30 * * * *"
TRIGGERS = ("vercel-cron", "cron-job.org", "supabase-cron", "manual", "local", "burst")


def _trigger(user_agent: str | None, explicit: str | None, vercel_schedule: str | None) -> str:
    if explicit in TRIGGERS:
        return explicit
    agent = (user_agent or "").lower()
    if vercel_schedule or "vercel-cron" in agent:
        return "vercel-cron"
    if "pg_net" in agent:
        return "supabase-cron"
    if "cron-job.org" in agent:
        return "cron-job.org"
    return "manual"


def _parent_run(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationError(f"{PARENT_HEADER} must be the id of the run that started this one",
                              field=PARENT_HEADER) from None


async def _publish(
    rt: RuntimeDep,
    request: Request,
    user_agent: str | None,
    x_herald_trigger: str | None,
    x_vercel_cron_schedule: str | None,
    parent_run_id: uuid.UUID | None,
    dry_run: bool,
) -> dict:
    now = clock.utcnow()
    if dry_run:
        due = await rt.store.list_due(now=now, limit=rt.settings.max_posts_per_run)
        return {"dry_run": True, "would_claim": len(due), "remaining_due": await rt.store.count_due(now=now),
                "posts": [{"id": str(p.id), "scheduled_at": p.scheduled_at.isoformat(),
                           "next_attempt_at": p.next_attempt_at.isoformat() if p.next_attempt_at else None,
                           "platforms": sorted({t.platform for t in p.targets})} for p in due]}
    run_id, settings, started = uuid.uuid4(), rt.settings, time.monotonic()
    helpers: list[asyncio.Task] = []

    async def drain_a_burst(claimed: int) -> None:
        # Only a tick whose claim came back full can have left posts behind: count them then (a
        # quiet minute costs no extra round trip) and start more runs, each its own invocation.
        if parent_run_id is not None or claimed < settings.max_posts_per_run or settings.max_parallel_runs <= 1:
            return
        try:
            # due posts, and posts a dead run left leased past their lease (the next runs recover them)
            health = await rt.store.cron_health(now=now)
            left = health.due_now + health.stuck
        except HeraldError as exc:  # the tick's own posts matter more: publish them, start nothing
            log_event("publish.burst_count_failed", run_id=str(run_id), error=exc.code)
            return
        count = runs_needed(claimed + left, max_posts=settings.max_posts_per_run,
                            max_parallel=settings.max_parallel_runs)
        if count and settings.cron_secret:  # the route is guarded by it, so it is set
            url = (settings.herald_public_url or str(request.base_url)).rstrip("/") + PUBLISH_PATH
            helpers.append(asyncio.create_task(start_runs(
                rt.http, url, count=count, parent_run_id=run_id, cron_secret=settings.cron_secret,
                wait_seconds=settings.run_budget_seconds + settings.request_timeout + 5,
                vercel_bypass=settings.vercel_automation_bypass_secret)))

    summary = await publish_due(rt.store, rt.platforms, rt.cipher, rt.http, run_limits(settings),
                                trigger=_trigger(user_agent, x_herald_trigger, x_vercel_cron_schedule), now=now,
                                run_id=run_id, parent_run_id=parent_run_id, after_claim=drain_a_burst)
    answer = summary.to_dict()
    if parent_run_id is None and settings.herald_media_checks:
        answer["media_checks"] = await _check_upcoming_media(rt, run_id, now=now, deadline=min(
            started + settings.run_budget_seconds, time.monotonic() + PASS_SECONDS))
    # Published and recorded: now the events (this run's, and what earlier runs left), with what is
    # left of the budget. A slow receiver only lengthens this call, never a publish.
    answer["events"] = (await deliver_due(rt.store, rt.cipher, rt.http, render_event,
                                          deadline=started + settings.run_budget_seconds,
                                          allow_private=settings.herald_allow_private_hosts)).to_dict()
    if parent_run_id is not None:
        answer["parent_run_id"] = str(parent_run_id)
    if helpers:
        answer["parallel_runs"] = [h.to_dict() for h in await helpers[0]]
    return answer


async def _check_upcoming_media(rt: RuntimeDep, run_id: uuid.UUID, *, now: datetime, deadline: float) -> dict:
    """The media of posts due within the hour, looked at again (after this tick's posts went out, so
    it never delays one); a failure here is logged and answered, never the call's."""
    try:
        return (await check_upcoming_media(rt.store, rt.platforms, rt.http, now=now, deadline=deadline,
                                           allow_private=rt.settings.herald_allow_private_hosts)).to_dict()
    except HeraldError as exc:
        log_event("media.check_failed", run_id=str(run_id), error=exc.code)
        return {"error": exc.code}
    except Exception as exc:  # a side pass: its bug must not cost this tick its event deliveries
        log_event("media.check_crashed", run_id=str(run_id), error=type(exc).__name__)
        return {"error": "internal"}


_PUBLISH_DOC = error_responses({401: "missing or wrong secret", 503: "CRON_SECRET is not set"})
DryRun = Annotated[bool, Query(description="list what a run would claim, claiming nothing")]


async def publish_scheduled(
    rt: RuntimeDep,
    request: Request,
    user_agent: Annotated[str | None, Header()] = None,
    x_herald_trigger: Annotated[str | None, Header()] = None,
    x_vercel_cron_schedule: Annotated[str | None, Header()] = None,
    x_herald_parent_run: Annotated[str | None, Header(description="set by Herald on the runs a tick starts",
                                                      json_schema_extra={"format": "uuid"})] = None,
    dry_run: DryRun = False,
) -> dict:
    """Publish what is due: `X-Cron-Secret: <CRON_SECRET>` or `Authorization: Bearer <CRON_SECRET>`.

    GET and POST do the same (Vercel Cron sends GET, pg_net POST); the path answers with or
    without a trailing slash and never redirects (Vercel Cron does not follow redirects). When
    more posts are due than one run may claim, the call starts up to MAX_PARALLEL_RUNS - 1 more
    runs (calls to this endpoint, each claiming its own posts) and reports them in `parallel_runs`.
    """
    return await _publish(rt, request, user_agent, x_herald_trigger, x_vercel_cron_schedule,
                          _parent_run(x_herald_parent_run), dry_run)


for _method in ("POST", "GET"):
    for _path in ("/publish-scheduled", "/publish-scheduled/"):
        router.add_api_route(_path, publish_scheduled, methods=[_method], dependencies=[CronCaller],
                             responses=_PUBLISH_DOC, include_in_schema=not _path.endswith("/"),
                             name=f"publish_scheduled_{_method.lower()}")


async def refresh_analytics(
    rt: RuntimeDep,
    user_agent: Annotated[str | None, Header()] = None,
    x_herald_trigger: Annotated[str | None, Header()] = None,
    x_vercel_cron_schedule: Annotated[str | None, Header()] = None,
) -> dict:
    """Read the engagement of published posts that are due (hourly in their first day, daily until
    day 30): the same secret as `publish-scheduled`, GET or POST, with or without a trailing slash.

    Budgeted like a publish run (RUN_BUDGET_SECONDS, PUBLISH_CONCURRENCY, one call at a time per
    account, MAX_ANALYTICS_PER_RUN targets); an account whose publishing is rate limited is left
    alone, and a rate limit met here pauses that account's analytics only. It never spends a post's
    publish quota.
    """
    summary = await refresh_due(rt.store, rt.platforms, rt.cipher, rt.http, refresh_limits(rt.settings),
                                now=clock.utcnow(), trigger=_trigger(user_agent, x_herald_trigger, x_vercel_cron_schedule))
    return summary.to_dict()


for _method in ("POST", "GET"):
    for _path in ("/refresh-analytics", "/refresh-analytics/"):
        router.add_api_route(_path, refresh_analytics, methods=[_method], dependencies=[CronCaller],
                             responses=_PUBLISH_DOC, include_in_schema=not _path.endswith("/"),
                             name=f"refresh_analytics_{_method.lower()}")


class HealthReasonOut(BaseModel):
    code: str = Field(description="cron_stale, failure_rate or stuck_posts")
    message: str


class CronHealthOut(BaseModel):
    status: Literal["ok", "degraded", "stale"] = Field(description=(
        "stale (503): posts are due and no run came for 3 minutes; degraded (200): more than 5% of the last "
        "24 hours' finished targets failed (over at least 20), or a post is stuck more than 10 minutes past its lease"))
    reasons: list[HealthReasonOut] = Field(description="what made it stale or degraded; empty when ok")
    last_run_at: str | None = Field(description="when the last run started (ISO 8601), null before the first")
    seconds_since_last_run: int | None
    due_now: int = Field(description="posts due and not yet claimed")
    oldest_due_lag_seconds: int
    stuck: int = Field(description="posts leased by a run past its lease (the next run recovers them)")


@router.head("/health", include_in_schema=False)  # uptime monitors probe with HEAD
@router.get("/health", response_model=CronHealthOut,
            responses={503: {"model": CronHealthOut, "description": "stale: posts are due and no run for 3 minutes"}})
async def cron_health(rt: RuntimeDep) -> JSONResponse:
    """Is the external cron still calling, and is publishing going well? For an uptime monitor: 503
    when `stale` (posts due, no run for 3 minutes); 200 with `degraded` and its `reasons` when more than
    5% of the last 24 hours' finished targets failed (counted over at least 20) or a post is stuck more
    than 10 minutes past its lease. No secret needed, none shown."""
    now = clock.utcnow()
    found = await rt.store.service_health(now=now)
    verdict = health.judge(found, now=now)
    cron = found.cron
    last = cron.last_run.started_at if cron.last_run else None
    since = round((now - last).total_seconds()) if last else None
    lag = round((now - cron.oldest_due_at).total_seconds()) if cron.oldest_due_at else 0
    body = {"status": verdict.status, "reasons": [{"code": r.code, "message": r.message} for r in verdict.reasons],
            "last_run_at": last.isoformat() if last else None, "seconds_since_last_run": since,
            "due_now": cron.due_now, "oldest_due_lag_seconds": max(lag, 0), "stuck": cron.stuck}
    return JSONResponse(body, status_code=503 if verdict.status == "stale" else 200)


@router.get("/info/service")
async def cron_service_info(request: Request, rt: RuntimeDep) -> dict:
    """How to point each external cron at this deployment (two jobs: publish, analytics). Never includes the secret."""
    base = (rt.settings.herald_public_url or str(request.base_url)).rstrip("/")
    url, analytics_url = f"{base}{PUBLISH_PATH}", f"{base}{ANALYTICS_PATH}"
    return {
        "endpoint": url,
        "methods": ["GET", "POST"],
        "schedule": PUBLISH_SCHEDULE,
        "jobs": {
            "publish": {"endpoint": url, "schedule": PUBLISH_SCHEDULE, "methods": ["GET", "POST"],
                        "what": "publishes the posts that are due"},
            "analytics": {"endpoint": analytics_url, "schedule": ANALYTICS_SCHEDULE, "methods": ["GET", "POST"],
                          "what": "reads the engagement of published posts (hourly in their first day, daily until "
                                  "day 30); a call with nothing due returns at once",
                          "max_targets_per_run": rt.settings.max_analytics_per_run},
        },
        "secret_configured": bool(rt.settings.cron_secret),
        "auth": {"headers": ["X-Cron-Secret: <CRON_SECRET>", "Authorization: Bearer <CRON_SECRET>"]},
        "max_posts_per_run": rt.settings.max_posts_per_run,
        "run_budget_seconds": rt.settings.run_budget_seconds,
        "services": {
            "cron-job.org": {
                "url": url, "method": "POST", "schedule": "every minute",
                "headers": {"X-Cron-Secret": "<CRON_SECRET>"},
                "jobs": [{"url": url, "method": "POST", "schedule": "every minute"},
                         {"url": analytics_url, "method": "POST", "schedule": "every hour, at minute 30"}],
                "notes": "cron-job.org waits 30 s and reads at most 64 KB of the answer; "
                         "keep RUN_BUDGET_SECONDS below 30 for it, or accept that it logs a timeout while the run finishes.",
            },
            "vercel-cron": {
                "vercel.json": {"crons": [{"path": PUBLISH_PATH, "schedule": PUBLISH_SCHEDULE},
                                          {"path": ANALYTICS_PATH, "schedule": ANALYTICS_SCHEDULE}]},
                "env": "set CRON_SECRET in the project's environment; Vercel sends it as Authorization: Bearer",
                "notes": "Hobby plans run crons once a day only (a more frequent schedule fails the deploy): use "
                         "cron-job.org or Supabase Cron for both jobs, or make analytics daily (then its first day "
                         "is read once).",
            },
            "supabase-cron": {
                "sql": "supabase/cron/publish_every_minute.sql",
                "analytics_sql": "supabase/cron/refresh_analytics_hourly.sql",
                "notes": "pg_net times out after 5 s by default (5000 ms): the jobs set timeout_milliseconds 60000; "
                         "keep the URLs and secret in Vault (run publish_every_minute.sql first: the analytics job "
                         "reuses its secret).",
            },
        },
    }
