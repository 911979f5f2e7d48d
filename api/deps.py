"""Request dependencies: the process-wide runtime (store, cipher, HTTP client, platforms) and auth."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any
from uuid import UUID

import httpx
from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from services.analytics.refresh import RefreshLimits
from services.domain.models import User
from services.errors import AuthenticationError, ValidationError
from services.events.delivery import DeliveryLimits
from services.media import Prober
from services.platforms.base import Platform
from services.platforms.registry import build_platforms
from services.publishing.run import RunLimits
from services.security.cron_secret import check_cron_secret, is_cron_secret, presented_secret
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
            # can land on the same instance, and so can an analytics refresh), the calls that start
            # them and event deliveries: a platform call must never wait for a free connection, or it
            # fails as not sent and spends a retry.
            runs = settings.max_parallel_runs
            connections = settings.publish_concurrency * (runs + 1) + runs + DeliveryLimits().concurrency
            http = app.state.http or httpx.AsyncClient(
                timeout=httpx.Timeout(settings.request_timeout),
                limits=httpx.Limits(max_connections=connections),
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
                                          oauth_apps=settings.oauth_apps,
                                          youtube_insert_units=settings.youtube_insert_units),
            )
    return app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def media_prober(rt: Runtime) -> Prober | None:
    """What looks at a request's media files (one per request: each URL probed once), unless
    HERALD_MEDIA_CHECKS is off."""
    if not rt.settings.herald_media_checks:
        return None
    return Prober(rt.http, allow_private=rt.settings.herald_allow_private_hosts)


# The schemes say in the OpenAPI how each caller authenticates; the checks are ours (auto_error off),
# so a missing credential answers Herald's 401 body.
_user_token = HTTPBearer(scheme_name="SupabaseJWT", bearerFormat="JWT", auto_error=False,
                         description="the signed-in user's Supabase access token")
_cron_header = APIKeyHeader(name="X-Cron-Secret", scheme_name="CronSecret", auto_error=False,
                            description="CRON_SECRET (cron-job.org, Supabase Cron)")
_cron_bearer = HTTPBearer(scheme_name="CronBearer", auto_error=False,
                          description="CRON_SECRET as a bearer token (Vercel Cron)")


async def signed_in_user(runtime: RuntimeDep, request: Request, _: Annotated[Any, Depends(_user_token)]) -> User:
    """The caller, in no workspace in particular: for the routes that name theirs in the path."""
    authorization = request.headers.get("authorization")
    if not authorization or authorization[:7].lower() != "bearer " or not authorization[7:].strip():
        raise AuthenticationError("missing bearer token: send Authorization: Bearer <Supabase access token>")
    return await runtime.verifier.verify(authorization[7:].strip())


SignedInUser = Annotated[User, Depends(signed_in_user)]


WorkspaceHeader = Annotated[str | None, Header(
    alias="X-Workspace-Id", description="the workspace this request acts in (its id); without it, the caller's "
    "personal workspace")]


def _in_workspace(user: User, workspace: str | None) -> User:
    if workspace is None or not workspace.strip():
        return user
    try:
        workspace_id = UUID(workspace.strip())
    except ValueError:
        raise ValidationError("X-Workspace-Id must be a workspace id (a UUID)", field="X-Workspace-Id") from None
    return replace(user, workspace_id=workspace_id)


async def current_user(user: SignedInUser, workspace: WorkspaceHeader = None) -> User:
    """The caller, in the workspace the request names (``X-Workspace-Id``), else their personal one."""
    return _in_workspace(user, workspace)


CurrentUser = Annotated[User, Depends(current_user)]


async def cron_caller(
    runtime: RuntimeDep, request: Request, _header: Annotated[Any, Depends(_cron_header)],
    _bearer: Annotated[Any, Depends(_cron_bearer)],
) -> None:
    headers = request.headers
    check_cron_secret(runtime.settings.cron_secret,
                      presented_secret(headers.get("x-cron-secret"), headers.get("authorization")))


CronCaller = Depends(cron_caller)


async def user_or_service(
    runtime: RuntimeDep, request: Request, _user: Annotated[Any, Depends(_user_token)],
    _header: Annotated[Any, Depends(_cron_header)], workspace: WorkspaceHeader = None,
) -> User | None:
    """A signed-in user (their access token, in the workspace the request names), or the service itself (None): the cron secret in
    ``X-Cron-Secret`` or as the bearer token, as the cron routes take it. A wrong cron secret in
    ``X-Cron-Secret`` is a 401, never read as a user's token; a bearer token that is not the secret
    must be a valid user token."""
    x_cron_secret, authorization = request.headers.get("x-cron-secret"), request.headers.get("authorization")
    if x_cron_secret is not None:
        check_cron_secret(runtime.settings.cron_secret, x_cron_secret)
        return None
    token = presented_secret(None, authorization)
    if not token:
        raise AuthenticationError("send a user's access token or the cron secret: Authorization: Bearer <token>"
                                  " or X-Cron-Secret: <CRON_SECRET>")
    if is_cron_secret(runtime.settings.cron_secret, token):
        return None
    return _in_workspace(await runtime.verifier.verify(token), workspace)


#: the caller of an endpoint that answers a user and the service: the User, or None for the service
UserOrService = Annotated[User | None, Depends(user_or_service)]


def run_limits(settings: Settings) -> RunLimits:
    return RunLimits(max_posts=settings.max_posts_per_run, lease_seconds=settings.lease_seconds,
                     concurrency=settings.publish_concurrency, request_timeout=settings.request_timeout,
                     budget_seconds=settings.run_budget_seconds, max_retries=settings.max_retry_count,
                     retry_base_seconds=settings.retry_base_seconds, lookahead_seconds=settings.lookahead_seconds,
                     daily_quotas={"youtube": settings.youtube_daily_quota_units})


def refresh_limits(settings: Settings) -> RefreshLimits:
    return RefreshLimits(max_targets=settings.max_analytics_per_run, concurrency=settings.publish_concurrency,
                         request_timeout=settings.request_timeout, budget_seconds=settings.run_budget_seconds)
