"""Request dependencies: the process-wide runtime (store, cipher, HTTP client, platforms) and auth."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import Depends, Header, Request

from services.analytics.refresh import RefreshLimits
from services.domain.models import User
from services.errors import AuthenticationError
from services.platforms.base import Platform
from services.platforms.registry import build_platforms
from services.publishing.run import RunLimits
from services.security.cron_secret import check_cron_secret, presented_secret
from services.security.crypto import TokenCipher
from services.security.jwt import TokenVerifier
from services.settings import Settings
from services.store.factory import open_store


@dataclass
class Runtime:
    """What every request shares; built once per process on first use (cheap cold starts)."""

    settings: Settings
    store: Any
    cipher: TokenCipher
    verifier: TokenVerifier
    http: httpx.AsyncClient
    platforms: dict[str, Platform]


async def get_runtime(request: Request) -> Runtime:
    app = request.app
    runtime = getattr(app.state, "runtime", None)
    if runtime is not None:
        return runtime
    async with app.state.runtime_lock:
        if getattr(app.state, "runtime", None) is None:
            settings: Settings = app.state.settings
            # Enough connections for every run this process may host at once (a tick's started runs
            # can land on the same instance, and so can an analytics refresh) plus the calls that
            # start them: a platform call must never wait for a free connection, or it fails as not
            # sent and spends a retry.
            runs = settings.max_parallel_runs
            http = app.state.http or httpx.AsyncClient(
                timeout=httpx.Timeout(settings.request_timeout),
                limits=httpx.Limits(max_connections=max(settings.publish_concurrency * (runs + 1) + runs, 20)),
            )
            store = app.state.store or open_store(settings, http=http)
            public_url = settings.herald_public_url or str(request.base_url).rstrip("/")
            app.state.runtime = Runtime(
                settings=settings,
                store=store,
                cipher=TokenCipher(settings.herald_encryption_keys),
                verifier=TokenVerifier(secret=settings.supabase_jwt_secret, supabase_url=settings.supabase_url, http=http),
                http=http,
                platforms=build_platforms(outbox=store, public_url=public_url,
                                          allow_private=settings.herald_allow_private_hosts,
                                          base_urls=settings.platform_base_urls,
                                          oauth_apps=settings.oauth_apps),
            )
    return app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def current_user(runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> User:
    if not authorization or authorization[:7].lower() != "bearer " or not authorization[7:].strip():
        raise AuthenticationError("missing bearer token: send Authorization: Bearer <Supabase access token>")
    return await runtime.verifier.verify(authorization[7:].strip())


CurrentUser = Annotated[User, Depends(current_user)]


async def cron_caller(
    runtime: RuntimeDep,
    x_cron_secret: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    check_cron_secret(runtime.settings.cron_secret, presented_secret(x_cron_secret, authorization))


CronCaller = Depends(cron_caller)


def run_limits(settings: Settings) -> RunLimits:
    return RunLimits(max_posts=settings.max_posts_per_run, lease_seconds=settings.lease_seconds,
                     concurrency=settings.publish_concurrency, request_timeout=settings.request_timeout,
                     budget_seconds=settings.run_budget_seconds, max_retries=settings.max_retry_count,
                     retry_base_seconds=settings.retry_base_seconds, lookahead_seconds=settings.lookahead_seconds)


def refresh_limits(settings: Settings) -> RefreshLimits:
    return RefreshLimits(max_targets=settings.max_analytics_per_run, concurrency=settings.publish_concurrency,
                         request_timeout=settings.request_timeout, budget_seconds=settings.run_budget_seconds)
