"""The Supabase side on this machine's Postgres: a template database built once, a clone per test.

The template is Supabase's essentials (``supabase/local/bootstrap.sql``) plus ``supabase/migrations`` applied in
filename order; it is named after a hash of those files, so it is rebuilt only when they change.
Each test gets its own ``CREATE DATABASE … TEMPLATE`` clone, dropped afterwards.

``supabase_harness`` runs SupabaseStore through real supabase-py and httpx against
``tests/support/postgrest.py`` (PostgREST's rpc endpoint) over ``httpx.ASGITransport``.
``pg_database`` gives the postgres tests a fresh clone's connection string.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from psycopg import sql

from services.domain.models import User
from services.store.supabase import SupabaseStore
from tests.conftest import Harness
from tests.support.postgrest import PostgrestRpc

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "supabase" / "local" / "bootstrap.sql"
MIGRATIONS = sorted((ROOT / "supabase" / "migrations").glob("*.sql"))

PG_HOST = os.environ.get("HERALD_TEST_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("HERALD_TEST_PG_PORT", "5432")
MAINTENANCE_DB = "test"

JWT_SECRET = "herald-test-jwt-secret-with-at-least-32-characters"
SUPABASE_URL = "http://supabase.test"
SERVICE_ROLE_KEY = jwt.encode({"iss": "supabase", "ref": "herald", "role": "service_role"}, JWT_SECRET)
ANON_KEY = jwt.encode({"iss": "supabase", "ref": "herald", "role": "anon"}, JWT_SECRET)


def conninfo(dbname: str, user: str = "postgres") -> str:
    return f"host={PG_HOST} port={PG_PORT} user={user} dbname={dbname} connect_timeout=5"


def user_token(user_id: uuid.UUID, *, expires_in: int = 3600) -> str:
    """A Supabase user access token (HS256, the project's secret)."""
    now = int(time.time())
    return jwt.encode({"sub": str(user_id), "aud": "authenticated", "role": "authenticated", "iat": now,
                       "exp": now + expires_in, "iss": f"{SUPABASE_URL}/auth/v1"}, JWT_SECRET)


def apply_schema(conn: psycopg.Connection) -> None:
    """The bootstrap, then every migration in filename order (what `supabase db push` replays)."""
    for path in [BOOTSTRAP, *MIGRATIONS]:
        try:
            conn.execute(path.read_text())
        except psycopg.Error as exc:
            raise RuntimeError(f"{path.relative_to(ROOT)} failed: {exc}") from exc


def _maintenance() -> psycopg.Connection:
    try:
        return psycopg.connect(conninfo(MAINTENANCE_DB), autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} (user postgres, database {MAINTENANCE_DB}): {exc}\n"
            "Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def herald_template() -> str:
    """Name of the template database, built on first use (or reused when the SQL is unchanged)."""
    return ensure_template()


def ensure_template() -> str:
    """Build the template database unless one for the current SQL exists; return its name."""
    digest = hashlib.sha256()
    for path in [BOOTSTRAP, *MIGRATIONS]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    name = f"herald_template_{digest.hexdigest()[:12]}"
    with _maintenance() as admin:
        exists = admin.execute("select 1 from pg_database where datname = %s", [name]).fetchone()
        if not exists:
            # Build under a private name and rename: a concurrent session never clones a half-built template.
            building = f"herald_build_{uuid.uuid4().hex[:12]}"
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(building)))
            try:
                with psycopg.connect(conninfo(building), autocommit=True) as conn:
                    apply_schema(conn)
                admin.execute(sql.SQL("alter database {} rename to {}").format(
                    sql.Identifier(building), sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # another session built the same template meanwhile
            finally:
                admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(building)))
        for (stale,) in admin.execute(
            "select datname from pg_database where datname like 'herald\\_template\\_%%' and datname <> %s", [name]
        ).fetchall():
            try:
                admin.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(stale)))
            except psycopg.Error:
                pass  # in use by another session: leave it
    return name


@contextmanager
def cloned_database(template: str) -> Iterator[str]:
    """A fresh ``CREATE DATABASE … TEMPLATE`` clone, dropped on exit; yields its superuser connection string."""
    name = f"herald_test_{uuid.uuid4().hex[:16]}"
    with _maintenance() as admin:
        admin.execute(sql.SQL("create database {} template {}").format(sql.Identifier(name), sql.Identifier(template)))
    try:
        yield conninfo(name)
    finally:
        with _maintenance() as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def pg_database(herald_template) -> Iterator[str]:
    """A fresh clone of the template for one test; yields the superuser connection string."""
    with cloned_database(herald_template) as dsn:
        yield dsn


@pytest.fixture(scope="module")
def pg_catalog(herald_template) -> Iterator[psycopg.Connection]:
    """One clone per module for tests that only read the catalog (privileges, pure SQL helpers).

    Tests that write must take ``pg_database`` instead: this connection is shared.
    """
    with cloned_database(herald_template) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def postgrest_rpc(pg_database):
    """The PostgREST-rpc app on the test's database, logging in as authenticator like PostgREST."""
    rpc = PostgrestRpc(pg_database.replace("user=postgres", "user=authenticator"), JWT_SECRET)
    yield rpc
    await rpc.close()


def _store_on(rpc: PostgrestRpc, clients: list[httpx.AsyncClient]) -> SupabaseStore:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rpc.app), base_url=SUPABASE_URL, timeout=httpx.Timeout(30.0))
    clients.append(http)
    return SupabaseStore(SUPABASE_URL, SERVICE_ROLE_KEY, ANON_KEY, http=http)


def _user_maker(admin: psycopg.Connection):
    def new_user() -> User:
        user_id = uuid.uuid4()
        admin.execute("insert into auth.users (id, email) values (%s, %s)", [user_id, f"{user_id}@herald.test"])
        return User(id=user_id, token=user_token(user_id))

    return new_user


async def open_bench_store():
    """SupabaseStore on a fresh clone, outside pytest (``make bench``): ``(store, new_user, close)``."""
    clone = cloned_database(ensure_template())
    dsn = clone.__enter__()
    rpc = PostgrestRpc(dsn.replace("user=postgres", "user=authenticator"), JWT_SECRET)
    admin = psycopg.connect(dsn, autocommit=True)
    clients: list[httpx.AsyncClient] = []

    async def close() -> None:
        for http in clients:
            await http.aclose()
        await rpc.close()
        admin.close()
        clone.__exit__(None, None, None)

    return _store_on(rpc, clients), _user_maker(admin), close


@pytest.fixture
async def supabase_harness(pg_database, postgrest_rpc):
    admin = psycopg.connect(pg_database, autocommit=True)
    clients: list[httpx.AsyncClient] = []
    new_user = _user_maker(admin)

    def open_store() -> SupabaseStore:
        return _store_on(postgrest_rpc, clients)

    def run_sql(query: str, params: list | None = None) -> list:
        cur = admin.execute(query, params)
        return cur.fetchall() if cur.description else []

    yield Harness(kind="supabase", store=open_store(), new_user=new_user, another_store=open_store, sql=run_sql)
    for http in clients:
        await http.aclose()
    admin.close()
