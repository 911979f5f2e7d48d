"""Operations figures: a user's (their token) or the service's (the cron secret), as JSON or for Prometheus."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api import prometheus
from api.deps import CronCaller, RuntimeDep, UserOrService
from api.schemas.errors import error_responses
from api.schemas.operations import OperationsOut
from services import clock

router = APIRouter(tags=["operations"], redirect_slashes=False)

_AUTH = error_responses({401: "no valid user token and no valid cron secret",
                         503: "the cron secret was sent but CRON_SECRET is not set"})


@router.get("/metrics", response_model=OperationsOut, responses=_AUTH)
async def metrics(caller: UserOrService, rt: RuntimeDep) -> OperationsOut:
    """Success, failure and retry rates, publish lag and per-platform outcomes over the last 24 hours
    and 7 days; posts stuck past their lease; the due backlog. A user's token gives their figures;
    the cron secret (`X-Cron-Secret` or `Authorization: Bearer`) the whole service's."""
    now = clock.utcnow()
    if caller is None:
        return OperationsOut.of(await rt.store.service_operations(now=now))
    return OperationsOut.of(await rt.store.operations(caller, now=now))


@router.get("/metrics/prometheus", dependencies=[CronCaller], response_class=Response,
            responses={**_AUTH, 200: {"content": {"text/plain": {}}, "description": "Prometheus text format 0.0.4"}})
async def metrics_prometheus(rt: RuntimeDep) -> Response:
    """The service's figures in Prometheus' text format 0.0.4, behind the cron secret (a scrape job's
    `authorization: {credentials: <CRON_SECRET>}` sends it as a bearer token)."""
    figures = await rt.store.service_operations(now=clock.utcnow())
    return Response(prometheus.exposition(figures), media_type=prometheus.CONTENT_TYPE)
