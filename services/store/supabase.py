"""SupabaseStore: the production transport, each store call one ``rpc()`` through supabase-py.

User calls carry the caller's JWT (the functions take the owner from ``auth.uid()`` and RLS
applies) on a cheap per-call client over the process's shared ``httpx.AsyncClient``; the publish
run uses the service-role key. What each call does lives in ``services/store/rpc.py`` and, in the
end, in the SQL functions.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from postgrest import APIError, AsyncPostgrestClient
from postgrest.constants import DEFAULT_POSTGREST_CLIENT_HEADERS

from services.domain.models import User
from services.errors import AuthenticationError, HeraldError, StoreError
from services.store.rpc import RpcStore, error_for
from supabase import AsyncClient, AsyncClientOptions, acreate_client

#: PostgREST's own codes for a JWT it refused.
_JWT_REFUSED = {"PGRST301", "PGRST302", "PGRST303"}


def _error(exc: APIError) -> HeraldError:
    if exc.code in _JWT_REFUSED:
        return AuthenticationError("your session is not valid; sign in again")
    return error_for(exc.code, exc.message, exc.details, exc.hint)


class SupabaseStore(RpcStore):
    """The Store protocol on Supabase through supabase-py's async client.

    ``http`` is the process's shared ``httpx.AsyncClient`` (set its timeouts); without one the
    store makes its own and ``close()`` closes it.
    """

    def __init__(self, url: str, service_role_key: str, anon_key: str, *, http: httpx.AsyncClient | None = None):
        self._url = url.rstrip("/")
        self._service_role_key = service_role_key
        self._anon_key = anon_key
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=httpx.Timeout(30.0))
        self._service: AsyncClient | None = None
        self._service_lock = asyncio.Lock()

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _service_client(self) -> AsyncClient:
        async with self._service_lock:
            if self._service is None:
                self._service = await acreate_client(self._url, self._service_role_key, options=AsyncClientOptions(
                    httpx_client=self._http, auto_refresh_token=False, persist_session=False))
        return self._service

    def _user_client(self, user: User) -> AsyncPostgrestClient:
        """A throwaway client carrying this caller's JWT on the shared pool (never auth() on a shared one)."""
        if not user.token:
            raise AuthenticationError("this call needs the user's access token")
        headers = {**DEFAULT_POSTGREST_CLIENT_HEADERS, "apikey": self._anon_key, "Authorization": f"Bearer {user.token}"}
        if user.workspace_id:  # the functions read it from PostgREST's request.headers
            headers["X-Workspace-Id"] = str(user.workspace_id)
        return AsyncPostgrestClient(f"{self._url}/rest/v1", http_client=self._http, headers=headers)

    @staticmethod
    async def _call(client: AsyncClient | AsyncPostgrestClient, fn: str, params: dict[str, Any]) -> Any:
        try:
            response = await client.rpc(fn, params).execute()
        except APIError as exc:
            raise _error(exc) from exc
        except httpx.HTTPError as exc:
            raise StoreError("the database could not be reached") from exc
        return response.data

    async def _as_user(self, user: User, fn: str, params: dict[str, Any] | None = None) -> Any:
        return await self._call(self._user_client(user), fn, params or {})

    async def _as_service(self, fn: str, params: dict[str, Any] | None = None) -> Any:
        return await self._call(await self._service_client(), fn, params or {})
