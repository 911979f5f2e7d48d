"""What Supabase's Data API does at ``/rest/v1``, as a small ASGI app on a real Postgres.

Per request, as Supabase's API gateway and then PostgREST do:

1. The gateway admits only a project API key in ``apikey`` (the anon or service_role JWT, signed with
   the project's secret), else 401 with the gateway's body; a request without ``Authorization``
   goes on with the apikey as its bearer.
2. PostgREST verifies the bearer JWT (HS256, the project's secret) and picks the schema:
   ``Accept-Profile`` for GET, ``Content-Profile`` for the other methods, among the schemas that
   ``supabase/config.toml`` exposes (``[api].schemas``; the first one by default).
3. One transaction per request, READ ONLY for GET and for STABLE or IMMUTABLE functions: the
   impersonated role's own settings (``ALTER ROLE … SET statement_timeout``), ``search_path`` and
   ``request.jwt.claims`` as transaction-scoped settings, ``SET LOCAL ROLE`` to the JWT's ``role``,
   then the request itself:

   - ``POST /rest/v1/rpc/<fn>`` calls the function with named arguments read from the JSON body
     through ``json_to_record`` (PostgREST's own way of typing them) and answers its JSON (204 for
     ``void``);
   - ``GET|POST|PATCH|DELETE /rest/v1/<table>`` selects, inserts (a JSON object or array),
     updates or deletes, narrowed by ``column=eq.value`` filters (no other operator); GET answers
     the rows, the others answer them with ``Prefer: return=representation``.

Errors are PostgREST's body ``{code, message, details, hint}`` with PostgREST's status for that
SQLSTATE or PGRST code; permissions and RLS are Postgres's own. Each request takes its own
connection from a small pool, logged in as ``authenticator`` (so Postgres applies that role's
settings to the session), and overlapping requests really run on different sessions.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import jwt
import psycopg
from psycopg import sql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CONFIG = Path(__file__).resolve().parents[2] / "supabase" / "config.toml"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VOID = "void"

#: SQLSTATE (or class prefix) -> HTTP status, as PostgREST maps them (docs.postgrest.org, references/errors
#: "HTTP Status Codes"; mapSQLtoHTTP in src/PostgREST/Error.hs). 57014, a statement timeout, is class 57: 500.
_STATUS_BY_CODE = {
    "23503": 409, "23505": 409, "25006": 405, "42883": 404, "42P01": 404, "P0001": 400,
    "42P17": 500, "53400": 500, "57P01": 503,
}
_STATUS_BY_CLASS = {
    "08": 503, "09": 500, "0L": 403, "0P": 403, "25": 500, "28": 403, "2D": 500, "38": 500, "39": 500,
    "3B": 500, "40": 500, "53": 503, "54": 500, "55": 500, "57": 500, "58": 500, "F0": 500, "HV": 500,
    "P0": 500, "XX": 500,
}

# Impersonated role settings: Postgres applies the login role's (authenticator's) settings to the
# session; PostgREST (11.1 and later) applies the impersonated role's ``ALTER ROLE … SET`` values, those
# of context ``user``, as transaction-scoped settings, default_transaction_isolation aside (docs.postgrest.org,
# references/transactions "Impersonated Role Settings"; queryRoleSettings in src/PostgREST/Config/Database.hs).
# It also puts the selected schema and db-extra-search-path in search_path ("Request Role and Search Path"),
# and the request's headers, names lower-cased, as the JSON object ``request.headers`` (references/transactions,
# "Request Headers, Cookies and JWT claims": ``current_setting('request.headers', true)::json->>'user-agent'``).
_TRANSACTION_SETTINGS = """
select set_config('search_path', %(search_path)s, true),
       set_config('request.jwt.claims', %(claims)s, true),
       set_config('request.headers', %(headers)s, true),
       (select count(set_config(s.name, s.value, true))
          from pg_roles r
          cross join lateral unnest(r.rolconfig) as c(setting)
          cross join lateral (select split_part(c.setting, '=', 1) as name,
                                     substr(c.setting, strpos(c.setting, '=') + 1) as value) s
          join pg_settings p on p.name = s.name and p.context = 'user'
         where r.rolname = %(role)s and s.name <> 'default_transaction_isolation')
"""


def http_status(sqlstate: str, role: str) -> int:
    if sqlstate == "42501":  # insufficient privilege: 401 as the anonymous role (db-anon-role), else 403
        return 401 if role == "anon" else 403
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        return int(sqlstate[2:])
    if sqlstate in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[sqlstate]
    return _STATUS_BY_CLASS.get(sqlstate[:2], 400)


def _error(status: int, code: str, message: str, details: str | None = None, hint: str | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "details": details, "hint": hint}, status_code=status)


def exposed_schemas(config: Path = CONFIG) -> tuple[list[str], list[str]]:
    """``[api].schemas`` and ``[api].extra_search_path`` of the Supabase CLI config (with the CLI's defaults)."""
    api = tomllib.loads(config.read_text()).get("api", {})
    schemas = api.get("schemas", ["public", "graphql_public"])
    return list(schemas), list(api.get("extra_search_path", ["public", "extensions"]))


@dataclass(frozen=True)
class _Caller:
    role: str
    claims: dict
    schema: str
    headers: dict[str, str]


@dataclass(frozen=True)
class _Function:
    args: dict[str, str]  #: argument name -> SQL type
    returns: str
    read_only: bool  #: STABLE or IMMUTABLE


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
    """The ASGI app (``.app``) plus the pool it owns; ``await close()`` when done.

    ``schemas`` and ``extra_search_path`` default to what ``supabase/config.toml`` says.
    """

    def __init__(self, conninfo: str, jwt_secret: str, *, schemas: list[str] | None = None,
                 extra_search_path: list[str] | None = None):
        self._secret = jwt_secret
        self._pool = _Pool(conninfo)
        configured, extra = exposed_schemas()
        self._schemas = schemas or configured
        self._extra_search_path = extra if extra_search_path is None else extra_search_path
        self._functions: dict[tuple[str, str], _Function | None] = {}
        self.app = Starlette(routes=[
            Route("/rest/v1/rpc/{fn}", self._rpc, methods=["POST"]),
            Route("/rest/v1/{name}", self._table, methods=["GET", "POST", "PATCH", "DELETE"]),
        ])

    async def close(self) -> None:
        await self._pool.close()

    def _caller(self, request: Request) -> _Caller | Response:
        # Supabase's API gateway: key-auth on /rest/v1/ admits only the anon or service_role key
        # (supabase/supabase docker/volumes/api/kong.yml, route rest-v1; those keys are JWTs signed with
        # the project's secret carrying their role: supabase.com/docs/guides/api/api-keys). The 401 bodies
        # are the hosted gateway's, as its users quote them (github.com/nuxt-modules/supabase/issues/195,
        # github.com/supabase-community/supabase-csharp/issues/108,
        # docs.connectgain.cloud/07-api/api-key-authentication).
        apikey = request.headers.get("apikey")
        if not apikey:
            return JSONResponse({"message": "No API key found in request",
                                 "hint": "No `apikey` request header or url param was found."}, status_code=401)
        try:
            key_role = jwt.decode(apikey, self._secret, algorithms=["HS256"], options={"verify_aud": False}).get("role")
        except jwt.InvalidTokenError:
            key_role = None
        if key_role not in ("anon", "service_role"):
            return JSONResponse({"message": "Invalid API key",
                                 "hint": "Double check your Supabase `anon` or `service_role` API key."},
                                status_code=401)
        # The gateway keeps the request's Authorization, else sends the apikey on as the bearer
        # (LUA_AUTH_EXPR in supabase/supabase docker/volumes/api/kong-entrypoint.sh).
        scheme, _, token = request.headers.get("authorization", f"Bearer {apikey}").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "PGRST301", "No suitable key or wrong key type")
        try:
            # Supabase configures no jwt-aud: user tokens carry aud "authenticated", API keys none.
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            return _error(401, "PGRST303", "JWT expired")
        except jwt.InvalidTokenError as exc:
            return _error(401, "PGRST301", f"JWT could not be decoded: {exc}")
        role = claims.get("role") or "anon"  # the anonymous role when the JWT names none (db-anon-role)
        if not _IDENTIFIER.match(role):
            return _error(401, "PGRST301", "JWT role is not a role name")
        # PostgREST "Schemas": Accept-Profile picks the schema for GET/HEAD, Content-Profile for the other
        # methods, the first exposed schema without one; any other schema is PGRST106, 406
        # (docs.postgrest.org, references/api/schemas "Multiple schemas" and references/errors; the
        # message and hint as in src/PostgREST/Error.hs).
        header = "accept-profile" if request.method in ("GET", "HEAD") else "content-profile"
        schema = request.headers.get(header) or self._schemas[0]
        if schema not in self._schemas:
            return _error(406, "PGRST106", f"Invalid schema: {schema}",
                          hint=f"Only the following schemas are exposed: {', '.join(self._schemas)}")
        headers = {name.lower(): value for name, value in request.headers.items()}
        return _Caller(role=role, claims=claims, schema=schema, headers=headers)

    async def _run(self, conn: psycopg.AsyncConnection, caller: _Caller, read_only: bool,
                   query: sql.Composed, params: list | None) -> tuple | Response:
        """The request's one transaction, as PostgREST runs it (references/transactions): its row, or the error."""
        search_path = ", ".join(sql.Identifier(s).as_string(conn) for s in [caller.schema, *self._extra_search_path])
        try:
            async with conn.transaction():
                if read_only:
                    await conn.execute("set transaction read only")
                await conn.execute(_TRANSACTION_SETTINGS, {
                    "search_path": search_path, "claims": json.dumps(caller.claims),
                    "headers": json.dumps(caller.headers), "role": caller.role})
                await conn.execute(sql.SQL("set local role {}").format(sql.Identifier(caller.role)))
                cur = await conn.execute(query, params)
                return await cur.fetchone() or (None,)  # each query selects exactly one row
        except psycopg.Error as exc:
            sqlstate = exc.sqlstate or "XX000"
            diag = exc.diag
            return _error(http_status(sqlstate, caller.role), sqlstate, diag.message_primary or str(exc),
                          diag.message_detail, diag.message_hint)

    async def _describe(self, conn: psycopg.AsyncConnection, schema: str, name: str) -> _Function | None:
        if (schema, name) not in self._functions:
            cur = await conn.execute(
                "select coalesce(p.proargnames, '{}'), array(select format_type(t, null) from unnest(p.proargtypes) t),"
                " format_type(p.prorettype, null), p.proretset, p.provolatile"
                " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                " where n.nspname = %s and p.proname = %s",
                [schema, name],
            )
            found = await cur.fetchall()
            if len(found) != 1 or found[0][3]:
                self._functions[schema, name] = None  # unknown, overloaded or set-returning: not supported here
            else:
                names, types, returns, _, volatility = found[0]
                self._functions[schema, name] = _Function(
                    args=dict(zip(names, types, strict=True)), returns=returns, read_only=volatility in ("s", "i"))
        return self._functions[schema, name]

    async def _rpc(self, request: Request) -> Response:
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        name = request.path_params["fn"]
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(400, "PGRST102", "Empty or invalid json")
        if not isinstance(body, dict):
            return _error(400, "PGRST102", "Expected a JSON object of named arguments")

        conn = await self._pool.acquire()
        try:
            function = await self._describe(conn, caller.schema, name) if _IDENTIFIER.match(name) else None
            if function is None or set(body) - set(function.args):
                # PGRST202, 404: the function is not in the schema cache (docs.postgrest.org, references/errors
                # "Group 2 - Schema Cache"; message and details as NoRpc in src/PostgREST/Error.hs, whose
                # "Perhaps you meant" hint, a fuzzy match, is left out here).
                keys, target = ", ".join(sorted(body)), f"{caller.schema}.{name}"
                searched = f" with parameter{'s' if len(body) > 1 else ''} {keys}" if body else " without parameters"
                signature = f"({keys})" if body else searched
                return _error(404, "PGRST202", f"Could not find the function {target}{signature} in the schema cache",
                              f"Searched for the function {target}{searched} or with a single unnamed json/jsonb"
                              " parameter, but no matches were found in the schema cache.")
            call = sql.SQL("{}.{}({})").format(
                sql.Identifier(caller.schema), sql.Identifier(name),
                sql.SQL(", ").join(
                    sql.SQL("{} => _args.{}").format(sql.Identifier(a), sql.Identifier(a)) for a in body),
            )
            if body:
                record = sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(a), sql.SQL(function.args[a])) for a in body)
                source: sql.Composable = sql.SQL(" from json_to_record(%s::json) as _args({})").format(record)
            else:
                source = sql.SQL("")
            if function.returns == _VOID:
                query = sql.SQL("select {}{}").format(call, source)
            else:
                query = sql.SQL("select to_json({})::text{}").format(call, source)
            # PostgREST "Access Mode on Functions": POST runs VOLATILE functions READ WRITE, STABLE and
            # IMMUTABLE ones READ ONLY, so a write inside one fails with 25006, answered 405
            # (docs.postgrest.org, references/transactions "Access Mode").
            row = await self._run(conn, caller, function.read_only, query, [json.dumps(body)] if body else None)
        finally:
            self._pool.release(conn)
        if isinstance(row, Response):
            return row
        if function.returns == _VOID:
            return Response(status_code=204)
        return Response(row[0] if row[0] is not None else "null", media_type="application/json")

    async def _table(self, request: Request) -> Response:
        """PostgREST "Tables and Views" (docs.postgrest.org, references/api/tables_views) with ``eq`` filters only."""
        caller = self._caller(request)
        if isinstance(caller, Response):
            return caller
        name, method = request.path_params["name"], request.method
        filters, params = [], []
        for column, value in request.query_params.multi_items():
            if column in ("select", "columns"):  # columns are chosen by the body's keys here
                continue
            operator, _, operand = value.partition(".")
            if operator != "eq" or not _IDENTIFIER.match(column):
                return _error(400, "PGRST100", f"\"failed to parse filter ({value})\"",
                              "only eq filters are supported here")
            filters.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(operand)
        selected = request.query_params.get("select", "*")
        if selected != "*" and not all(map(_IDENTIFIER.match, selected.split(","))):
            return _error(400, "PGRST100", f"\"failed to parse select parameter ({selected})\"",
                          "only * or column names are supported here")
        body = None
        if method in ("POST", "PATCH"):
            try:
                body = json.loads(await request.body())
            except ValueError:
                return _error(400, "PGRST102", "Empty or invalid json")
            rows = body if isinstance(body, list) else [body]  # POST takes an object or an array
            if not rows or not all(isinstance(r, dict) for r in rows):
                return _error(400, "PGRST102", "Empty or invalid json")
            if method == "PATCH" and not (isinstance(body, dict) and body):  # PATCH takes a non-empty object
                return _error(400, "PGRST102", "Empty or invalid json")
            columns = list(dict.fromkeys(k for r in rows for k in r))
            unknown = next((c for c in columns if not _IDENTIFIER.match(c)), None)
            if unknown is not None:
                return _error(400, "PGRST204", f"Could not find the '{unknown}' column of '{name}' in the schema cache")

        conn = await self._pool.acquire()
        try:
            # A relation missing from the schema cache (tables, views, materialized views and foreign tables of
            # the selected schema) is PGRST205, 404, in PostgREST 12.2 and later (docs.postgrest.org,
            # references/errors "Group 2 - Schema Cache"; message as TableNotFound in src/PostgREST/Error.hs).
            cur = await conn.execute(
                "select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where n.nspname = %s and c.relname = %s and c.relkind in ('r', 'p', 'v', 'm', 'f')",
                [caller.schema, name])
            if await cur.fetchone() is None:
                return _error(404, "PGRST205", f"Could not find the table '{caller.schema}.{name}' in the schema cache")
            table = sql.Identifier(caller.schema, name)
            where = sql.SQL(" and ").join(filters) if filters else sql.SQL("true")
            if method == "GET":
                cols = sql.SQL("*") if selected == "*" else sql.SQL(", ").join(map(sql.Identifier, selected.split(",")))
                statement = sql.SQL("select {} from {} where {}").format(cols, table, where)
            elif method == "POST":
                cols = sql.SQL(", ").join(map(sql.Identifier, columns))
                statement = sql.SQL("insert into {} {} select {} from json_populate_recordset(null::{}, %s::json)"
                                    " returning *").format(
                    table, sql.SQL("({})").format(cols) if columns else sql.SQL(""), cols, table)
                params = [json.dumps(rows)]
            elif method == "PATCH":
                cols = sql.SQL(", ").join(map(sql.Identifier, columns))
                statement = sql.SQL("update {} set ({}) = (select {} from json_populate_record(null::{}, %s::json))"
                                    " where {} returning *").format(table, cols, cols, table, where)
                params = [json.dumps(body), *params]
            else:
                statement = sql.SQL("delete from {} where {} returning *").format(table, where)
            query = sql.SQL("with _rows as ({}) select coalesce(json_agg(_rows), '[]')::text from _rows").format(
                statement)
            # PostgREST "Access Mode on Tables and Views": GET is READ ONLY, the other methods READ WRITE.
            row = await self._run(conn, caller, method == "GET", query, params)
        finally:
            self._pool.release(conn)
        if isinstance(row, Response):
            return row
        # GET answers the rows; a write answers them only with Prefer: return=representation, else no body
        # (201 for POST, 204 for PATCH and DELETE): docs.postgrest.org, references/api/tables_views and
        # references/api/preferences "Return Representation".
        if method == "GET":
            return Response(row[0], media_type="application/json")
        representation = "return=representation" in request.headers.get("prefer", "")
        status = 201 if method == "POST" else (200 if representation else 204)
        return Response(row[0] if representation else None, status_code=status,
                        media_type="application/json" if representation else None)
