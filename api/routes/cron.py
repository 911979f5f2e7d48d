"""The external cron's endpoint (secret-guarded) and its set-up instructions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from api.deps import CronCaller, RuntimeDep
from services import clock
from services.publishing.run import RunLimits, publish_due

router = APIRouter(prefix="/cron", tags=["cron"])

PUBLISH_PATH = "/api/v1/cron/publish-scheduled"
TRIGGERS = ("vercel-cron", "cron-job.org", "supabase-cron", "manual", "local")


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


async def _publish(
    rt: RuntimeDep,
    user_agent: str | None,
    x_herald_trigger: str | None,
    x_vercel_cron_schedule: str | None,
) -> dict:
    s = rt.settings
    limits = RunLimits(max_posts=s.max_posts_per_run, lease_seconds=s.lease_seconds, concurrency=s.publish_concurrency,
                       request_timeout=s.request_timeout, budget_seconds=s.run_budget_seconds,
                       max_retries=s.max_retry_count, retry_base_seconds=s.retry_base_seconds)
    summary = await publish_due(rt.store, rt.platforms, rt.cipher, rt.http, limits,
                                trigger=_trigger(user_agent, x_herald_trigger, x_vercel_cron_schedule),
                                now=clock.utcnow())
    return summary.to_dict()


_PUBLISH_DOC = {401: {"description": "missing or wrong secret"}, 503: {"description": "CRON_SECRET is not set"}}


@router.post("/publish-scheduled", dependencies=[CronCaller], responses=_PUBLISH_DOC)
@router.post("/publish-scheduled/", dependencies=[CronCaller], include_in_schema=False)
async def publish_scheduled(
    rt: RuntimeDep,
    user_agent: Annotated[str | None, Header()] = None,
    x_herald_trigger: Annotated[str | None, Header()] = None,
    x_vercel_cron_schedule: Annotated[str | None, Header()] = None,
) -> dict:
    """Publish what is due: `X-Cron-Secret: <CRON_SECRET>` or `Authorization: Bearer <CRON_SECRET>`."""
    return await _publish(rt, user_agent, x_herald_trigger, x_vercel_cron_schedule)


@router.get("/publish-scheduled", dependencies=[CronCaller], responses=_PUBLISH_DOC)
@router.get("/publish-scheduled/", dependencies=[CronCaller], include_in_schema=False)
async def publish_scheduled_by_get(
    rt: RuntimeDep,
    user_agent: Annotated[str | None, Header()] = None,
    x_herald_trigger: Annotated[str | None, Header()] = None,
    x_vercel_cron_schedule: Annotated[str | None, Header()] = None,
) -> dict:
    """The same run for callers that only send GET (Vercel Cron)."""
    return await _publish(rt, user_agent, x_herald_trigger, x_vercel_cron_schedule)


@router.get("/info/service")
async def cron_service_info(request: Request, rt: RuntimeDep) -> dict:
    """How to point each external cron at this deployment. Never includes the secret."""
    base = (rt.settings.herald_public_url or str(request.base_url)).rstrip("/")
    url = f"{base}{PUBLISH_PATH}"
    return {
        "endpoint": url,
        "methods": ["GET", "POST"],
        "schedule": "* * * * *",
        "secret_configured": bool(rt.settings.cron_secret),
        "auth": {"headers": ["X-Cron-Secret: <CRON_SECRET>", "Authorization: Bearer <CRON_SECRET>"]},
        "max_posts_per_run": rt.settings.max_posts_per_run,
        "run_budget_seconds": rt.settings.run_budget_seconds,
        "services": {
            "cron-job.org": {
                "url": url, "method": "POST", "schedule": "every minute",
                "headers": {"X-Cron-Secret": "<CRON_SECRET>"},
                "notes": "cron-job.org waits 30 s and reads at most 64 KB of the answer; "
                         "keep RUN_BUDGET_SECONDS below 30 for it, or accept that it logs a timeout while the run finishes.",
            },
            "vercel-cron": {
                "vercel.json": {"crons": [{"path": PUBLISH_PATH, "schedule": "* * * * *"}]},
                "env": "set CRON_SECRET in the project's environment; Vercel sends it as Authorization: Bearer",
                "notes": "Hobby plans run crons once a day only; use cron-job.org or Supabase Cron for every minute.",
            },
            "supabase-cron": {
                "sql": "supabase/cron/publish_every_minute.sql",
                "notes": "pg_net times out after 2 s by default: the job sets timeout_milliseconds 60000; "
                         "keep the URL and secret in Vault.",
            },
        },
    }
