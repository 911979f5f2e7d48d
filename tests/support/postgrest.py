"""What PostgREST does for ``POST /rest/v1/rpc/<fn>``, as a small ASGI app on a real Postgres.

Per request, as PostgREST does: require an ``apikey`` header, verify the ``Authorization: Bearer``
JWT (HS256, the project's secret), then in one transaction ``SET LOCAL ROLE`` to its ``role`` claim,
put the claims in ``request.jwt.claims``, and call the function with named arguments read from the
JSON body through ``json_to_record`` (PostgREST's own way of typing them). Answers with the
function's JSON (204 for ``void``), or PostgREST's error body ``{code, message, details, hint}``
with PostgREST's status for that SQLSTATE. Each request takes its own connection from a small
pool, so overlapping requests really run on different sessions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import jwt
import psycopg
from psycopg import sql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VOID = "void"

#: SQLSTATE (or class prefix) -> HTTP status, as PostgREST maps them (docs.postgrest.org, "Errors").
_STATUS_BY_CODE = {
    "23503": 409, "23505": 409, "25006": 405, "42883": 404, "42P01": 404, "P0001": 400,
    "42P17": 500,
}
_STATUS_BY_CLASS = {
    "08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500, "39": 500,
    "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500, "F0": 500, "HV": 500,
    "P0": 500, "XX": 500,
}


def http_status(sqlstate: str, role: str) -> int:
    if sqlstate == "42501":  # insufficient privilege: unauthenticated vs forbidden
        return 401 if role == "anon" else 403
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[sqlstate]
    return _STATUS_BY_CLASS.get(sqlstate[:2], 400)


def _error(status: int, code: str, message: str, details: str | None = None, hint: str | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "details": details, "hint": hint}, status_code=status)


@dataclass(frozen=True)
class _Function:
    args: dict[str, str]  #: argument name -> SQL type
    returns: str


class _Pool:
    """Idle autocommit connections, reused; a busy pool opens another (no cap: tests are small)."""

    def __init__(self, conninfo: str):
        self._conninfo = conninfo
        self._idle: list[psycopg.AsyncConnection] = []
        self._all: list[psycopg.AsyncConnection] = []

    async def acquire(self) -> psycopg.AsyncConnection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        self._all.append(conn)
        return conn

    def release(self, conn: psycopg.AsyncConnection) -> None:
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            self._idle.append(conn)

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()
        self._all.clear()
        self._idle.clear()


class PostgrestRpc:
    """The ASGI app (``.app``) plus the pool it owns; ``await close()`` when done."""

    def __init__(self, conninfo: str, jwt_secret: str):
        self._secret = jwt_secret
        self._pool = _Pool(conninfo)
        self._functions: dict[str, _Function | None] = {}
        self.app = Starlette(routes=[Route("/rest/v1/rpc/{fn}", self._rpc, methods=["POST"])])

    async def close(self) -> None:
        await self._pool.close()

    def _claims(self, request: Request) -> dict | JSONResponse:
        if not request.headers.get("apikey"):
            return _error(401, "PGRST301", "No API key found in request", hint="No `apikey` request header was found.")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "PGRST301", "No suitable key or wrong key type")
        try:
            # Supabase configures no jwt-aud: user tokens carry aud "authenticated", API keys none.
            return jwt.decode(token, self._secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            return _error(401, "PGRST303", "JWT expired")
        except jwt.InvalidTokenError as exc:
            return _error(401, "PGRST301", f"JWT could not be decoded: {exc}")

    async def _describe(self, conn: psycopg.AsyncConnection, name: str) -> _Function | None:
        if name not in self._functions:
            cur = await conn.execute(
                "select coalesce(p.proargnames, '{}'), array(select format_type(t, null) from unnest(p.proargtypes) t),"
                " format_type(p.prorettype, null), p.proretset"
                " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = 'public' and p.proname = %s",
                [name],
            )
            found = await cur.fetchall()
            if len(found) != 1 or found[0][3]:
                self._functions[name] = None  # unknown, overloaded or set-returning: not supported here
            else:
                names, types, returns, _ = found[0]
                self._functions[name] = _Function(args=dict(zip(names, types)), returns=returns)
        return self._functions[name]

    async def _rpc(self, request: Request) -> Response:
        claims = self._claims(request)
        if isinstance(claims, Response):
            return claims
        role = claims.get("role") or "anon"
        name = request.path_params["fn"]
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(400, "PGRST102", "Empty or invalid json")
        if not isinstance(body, dict):
            return _error(400, "PGRST102", "Expected a JSON object of named arguments")
        if not _IDENTIFIER.match(name) or not _IDENTIFIER.match(role) or not all(map(_IDENTIFIER.match, body)):
            return _error(404, "PGRST202", f"Could not find the function public.{name}")

        conn = await self._pool.acquire()
        try:
            function = await self._describe(conn, name)
            if function is None or set(body) - set(function.args):
                signature = ", ".join(sorted(body))
                return _error(404, "PGRST202",
                              f"Could not find the function public.{name}({signature}) in the schema cache")
            call = sql.SQL("public.{}({})").format(
                sql.Identifier(name),
                sql.SQL(", ").join(
                    sql.SQL("{} => _args.{}").format(sql.Identifier(a), sql.Identifier(a)) for a in body),
            )
            if body:
                record = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(a), sql.SQL(function.args[a])) for a in body)
                source = sql.SQL(" from json_to_record(%s::json) as _args({})").format(record)
            else:
                source = sql.SQL("")
            if function.returns == _VOID:
                query = sql.SQL("select {}{}").format(call, source)
            else:
                query = sql.SQL("select to_json({})::text{}").format(call, source)
            try:
                async with conn.transaction():
                    await conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
                    await conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
                    cur = await conn.execute(query, [json.dumps(body)] if body else None)
                    row = await cur.fetchone()
            except psycopg.Error as exc:
                sqlstate = exc.sqlstate or "XX000"
                diag = exc.diag
                return _error(http_status(sqlstate, role), sqlstate, diag.message_primary or str(exc),
                              diag.message_detail, diag.message_hint)
        finally:
            self._pool.release(conn)
        if function.returns == _VOID:
            return Response(status_code=204)
        return Response(row[0] if row[0] is not None else "null", media_type="application/json")
