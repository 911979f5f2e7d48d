"""PostgresStore: the direct transport, each store call one SQL function call over psycopg.

It calls the ``herald_*_v1`` functions the way PostgREST does for ``POST /rest/v1/rpc/<fn>``, so
the local default (the embedded PostgreSQL) and any ``HERALD_DATABASE_URL`` run exactly what
Supabase runs: one transaction per call; the role switched with ``set_config('role', …, true)``
(``authenticated`` for a user, ``service_role`` for the publish run) and the caller's JWT claims in
``request.jwt.claims`` and its headers (the workspace it names) in ``request.headers``, so
``auth.uid()`` and RLS apply; named arguments typed from the function's
own signature through ``json_to_record``; STABLE and IMMUTABLE functions in a read-only
transaction; the same SQLSTATE to error mapping (``rpc.error_for``). What each call does lives in
``services/store/rpc.py`` and, in the end, in the SQL functions.

psycopg (with psycopg_pool) is a local/self-hosting dependency (requirements-dev.txt), imported
only when this store is opened: a Supabase deployment does not install it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from services.domain.models import User
from services.errors import AuthenticationError, StoreError
from services.store.rpc import RpcStore, error_for


@dataclass(frozen=True)
class _Signature:
    args: dict[str, str]  #: argument name -> SQL type
    returns_void: bool
    is_read_only: bool  #: STABLE or IMMUTABLE: PostgREST runs it in a read-only transaction


class PostgresStore(RpcStore):
    """The Store protocol on a PostgreSQL database that has Herald's migrations applied.

    ``conninfo`` is a libpq connection string or URL for a role that may switch to
    ``authenticated`` and ``service_role`` (the database owner, ``postgres``, or PostgREST's
    ``authenticator``). Connections come from a small pool opened on first use.
    """

    def __init__(self, conninfo: str, *, max_connections: int = 10):
        self.conninfo = conninfo
        self._pool = AsyncConnectionPool(conninfo, min_size=1, max_size=max_connections, open=False,
                                         kwargs={"connect_timeout": 10})
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._signatures: dict[str, _Signature] = {}

    async def close(self) -> None:
        if self._opened:
            await self._pool.close()
            self._opened = False

    async def _ensure_open(self) -> None:
        async with self._open_lock:
            if not self._opened:
                try:
                    await self._pool.open(wait=True, timeout=15)
                except psycopg.Error as exc:
                    raise StoreError("the database could not be reached") from exc
                self._opened = True

    async def _signature(self, conn: psycopg.AsyncConnection, fn: str) -> _Signature:
        if fn not in self._signatures:
            cur = await conn.execute(
                "select coalesce(p.proargnames, '{}'), array(select format_type(t, null) from unnest(p.proargtypes) t),"
                " p.prorettype = 'void'::regtype, p.provolatile in ('s', 'i')"
                " from pg_proc p where p.pronamespace = 'public'::regnamespace and p.proname = %s",
                [fn],
            )
            found = await cur.fetchall()
            await conn.commit()
            if len(found) != 1:  # PostgREST's PGRST202: no such function (or an ambiguous overload)
                raise StoreError(f"the database has no function public.{fn}; are the migrations applied?")
            names, types, returns_void, is_read_only = found[0]
            self._signatures[fn] = _Signature(dict(zip(names, types, strict=True)), returns_void, is_read_only)
        return self._signatures[fn]

    def _statement(self, fn: str, signature: _Signature, params: dict[str, Any]) -> sql.Composed:
        unknown = set(params) - set(signature.args)
        if unknown:
            raise StoreError(f"public.{fn} takes no argument {', '.join(sorted(unknown))}")
        call = sql.SQL("public.{}({})").format(sql.Identifier(fn), sql.SQL(", ").join(
            sql.SQL("{} => _args.{}").format(sql.Identifier(a), sql.Identifier(a)) for a in params))
        result = call if signature.returns_void else sql.SQL("to_json({})").format(call)
        if not params:
            return sql.SQL("select {}").format(result)
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(a), sql.SQL(signature.args[a])) for a in params)
        return sql.SQL("select {} from json_to_record(%s::json) as _args({})").format(result, columns)

    async def _call(self, role: str, claims: dict[str, Any], fn: str, params: dict[str, Any],
                    headers: dict[str, str] | None = None) -> Any:
        headers = headers or {}
        await self._ensure_open()
        try:
            async with self._pool.connection() as conn:
                signature = await self._signature(conn, fn)
                statement = self._statement(fn, signature, params)
                if signature.is_read_only:
                    await conn.execute("set transaction read only")
                await conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true),"
                                   " set_config('request.headers', %s, true)",
                                   [role, json.dumps(claims), json.dumps(headers)])
                cur = await conn.execute(statement, [json.dumps(params)] if params else None)
                row = await cur.fetchone()
        except psycopg.Error as exc:
            if exc.sqlstate is None:
                raise StoreError("the database could not be reached") from exc
            diag = exc.diag
            raise error_for(exc.sqlstate, diag.message_primary, diag.message_detail, diag.message_hint) from exc
        return None if signature.returns_void or row is None else row[0]

    async def _as_user(self, user: User, fn: str, params: dict[str, Any] | None = None) -> Any:
        if not user.token:
            raise AuthenticationError("this call needs the user's access token")
        # The API verified the token; like PostgREST, hand its claims to the database as they are.
        claims = jwt.decode(user.token, options={"verify_signature": False})
        if claims.get("sub") != str(user.id):
            raise AuthenticationError("the access token belongs to another user")
        # PostgREST hands the request's headers to the transaction as `request.headers` (lower-cased
        # names); the functions read the workspace the caller names from it.
        headers = {"x-workspace-id": str(user.workspace_id)} if user.workspace_id else {}
        return await self._call("authenticated", claims, fn, params or {}, headers)

    async def _as_service(self, fn: str, params: dict[str, Any] | None = None) -> Any:
        return await self._call("service_role", {"role": "service_role"}, fn, params or {})
