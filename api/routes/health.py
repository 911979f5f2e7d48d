"""Liveness: is the store reachable."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import RuntimeDep
from services.logs import log_event

router = APIRouter(tags=["health"], redirect_slashes=False)


class HealthOut(BaseModel):
    status: Literal["ok", "down"]
    store: str = Field(description="which store this deployment uses: embedded, postgres or supabase")


@router.head("/health", include_in_schema=False)  # uptime monitors probe with HEAD
@router.get("/health", response_model=HealthOut,
            responses={503: {"model": HealthOut, "description": "the store does not answer"}})
async def health(rt: RuntimeDep) -> JSONResponse:
    """200 when the store answers, 503 when it does not."""
    try:
        await rt.store.ping()
    except Exception as exc:  # any failure to reach the store is "down", whatever its type
        log_event("health.store_unreachable", error=type(exc).__name__)
        return JSONResponse({"status": "down", "store": rt.settings.herald_store}, status_code=503)
    return JSONResponse({"status": "ok", "store": rt.settings.herald_store})
