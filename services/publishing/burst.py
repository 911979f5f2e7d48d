"""Parallel runs for bursts: a tick that sees more due posts than one run may claim starts more runs.

Each extra run is a call to Herald's own publish endpoint, so on Vercel or Lambda it is a separate
function invocation with its own time budget, claiming its own posts (``FOR UPDATE SKIP LOCKED``
keeps every post in one run only). A started run names its tick in ``X-Herald-Parent-Run`` and
never starts more: one level only. The tick sends the calls while it publishes its own posts and
collects their answers within its own budget.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

from services.logs import log_event

#: the header that marks a run as started by another run's tick (its value: that run's id)
PARENT_HEADER = "X-Herald-Parent-Run"


@dataclass(frozen=True)
class Helper:
    """What one started run answered (``status_code`` None: no answer within the wait)."""

    status_code: int | None
    run_id: str | None = None
    processed: int = 0
    published: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def runs_needed(due: int, *, max_posts: int, max_parallel: int) -> int:
    """How many runs to start beside the tick's own for ``due`` posts (the tick takes one share)."""
    if due <= max_posts or max_parallel <= 1:
        return 0
    return min(math.ceil(due / max_posts), max_parallel) - 1


async def start_runs(http: httpx.AsyncClient, url: str, *, count: int, parent_run_id: UUID, cron_secret: str,
                     wait_seconds: float, vercel_bypass: str | None = None) -> list[Helper]:
    """Call the publish endpoint at ``url`` ``count`` times at once, as runs of ``parent_run_id``.

    Waits at most ``wait_seconds`` for the answers; a run whose answer is late keeps going on its
    own (its invocation is separate) and reports through its cron_runs row.
    """
    headers = {"Authorization": f"Bearer {cron_secret}", PARENT_HEADER: str(parent_run_id),
               "X-Herald-Trigger": "burst"}
    if vercel_bypass:  # Vercel's Deployment Protection answers 401 to calls without it
        headers["x-vercel-protection-bypass"] = vercel_bypass

    async def one() -> Helper:
        try:
            response = await http.post(url, headers=headers, timeout=httpx.Timeout(wait_seconds, connect=5.0))
        except httpx.TimeoutException:
            return Helper(status_code=None, error="no answer in time; the run goes on by itself")
        except httpx.HTTPError as exc:
            return Helper(status_code=None, error=f"could not start: {type(exc).__name__}")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
            return Helper(status_code=response.status_code, error=message or f"answered {response.status_code}")
        return Helper(status_code=200, run_id=body.get("run_id"), processed=int(body.get("processed") or 0),
                      published=int(body.get("published") or 0))

    helpers = await asyncio.gather(*(one() for _ in range(count)))
    log_event("publish.burst", parent_run_id=str(parent_run_id), started=count,
              answered=sum(h.status_code == 200 for h in helpers))
    return list(helpers)
