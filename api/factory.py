"""create_app(): routers, CORS, body size limit, error handlers, the OpenAPI document and its pages."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from api.docs import install_docs
from api.errors import install_error_handlers
from api.limits import BodyLimit
from api.openapi import install_openapi
from api.routes import activity, analytics, channels, cron, health, operations, posts, webhooks, workspaces
from api.text_guard import refuse_bad_text
from services.settings import Settings, get_settings


def _operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "herald"
    return f"{tag}-{route.name}"


def create_app(settings: Settings | None = None, *, store: Any = None, http: httpx.AsyncClient | None = None) -> FastAPI:
    """The Herald app. Settings default to the environment (checked: a bad setting stops start-up).

    ``store`` and ``http`` let tests and benchmarks hand in their own; otherwise both are created
    lazily on the first request, so importing the app stays cheap (serverless cold starts).
    """
    settings = settings or get_settings()
    app = FastAPI(
        title="Herald",
        version="0.1.0",
        description="Scheduled social-media publishing: posts, channels and the cron-driven publish run.",
        generate_unique_id_function=_operation_id,
        redirect_slashes=False,  # never redirect: Vercel Cron and many HTTP clients do not follow redirects
        dependencies=[Depends(refuse_bad_text)],  # no NUL or lone surrogate in any string taken
        docs_url=None, redoc_url=None,  # install_docs serves both pages without a CDN
    )
    app.state.settings = settings
    app.state.store = store
    app.state.http = http
    app.state.runtime = None
    app.state.runtime_lock = asyncio.Lock()

    v1 = APIRouter(prefix="/api/v1", redirect_slashes=False)
    for module in (posts, channels, cron, health, activity, analytics, operations, webhooks, workspaces):
        v1.include_router(module.router)
    app.include_router(v1)
    # Uptime monitors probe the root: /health answers there too (not in the OpenAPI twice).
    app.add_api_route("/health", health.health, methods=["GET", "HEAD"], include_in_schema=False)
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    app.add_middleware(BodyLimit)  # added before CORS, so inside it: a 413 still carries CORS headers
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Workspace-Id"],
            expose_headers=["Idempotent-Replayed"],
            max_age=600,
        )
    return app
