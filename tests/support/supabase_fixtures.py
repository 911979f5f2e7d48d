"""Real PostgreSQL for the tests: a template database built once, a clone per test.

The server is the embedded one (``services/store/embedded.py``, under ``.herald/test-postgres``)
unless ``HERALD_TEST_DATABASE_URL`` names another (a superuser connection, e.g. this machine's
``postgresql://postgres@127.0.0.1:5432/test``). The template is ``services.store.migrate``'s work
(Supabase's essentials from ``supabase/local/bootstrap.sql``, then ``supabase/migrations`` in
order, recorded like the Supabase CLI), named after a hash of those files so it is rebuilt only
when they change. Each test gets its own ``CREATE DATABASE … TEMPLATE`` clone, dropped afterwards.

``postgres_harness`` runs PostgresStore (the direct transport) on the clone; ``supabase_harness``
runs SupabaseStore through real supabase-py and httpx against ``tests/support/postgrest.py``
(PostgREST's behaviour) over ``httpx.ASGITransport``. ``pg_database`` gives a test a fresh clone's
connection string.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import queue
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from services.domain.models import User
from services.store import migrate
from services.store.postgres import PostgresStore
from services.store.supabase import SupabaseStore
from tests.conftest import Harness
from tests.support.postgrest import PostgrestRpc

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = migrate.BOOTSTRAP
MIGRATIONS = [path for _, _, path in migrate.migration_files()]

JWT_SECRET = "herald-test-jwt-secret-with-at-least-32-characters"
SUPABASE_URL = "http://supabase.test"
SERVICE_ROLE_KEY = jwt.encode({"iss": "supabase", "ref": "herald", "role": "service_role"}, JWT_SECRET)
ANON_KEY = jwt.encode({"iss": "supabase", "ref": "herald", "role": "anon"}, JWT_SECRET)


@lru_cache(maxsize=1)
def server_url() -> str:
    """The test server's superuser connection string; starts the embedded server on first use."""
    url = os.environ.get("HERALD_TEST_DATABASE_URL")
    if url:
        return url
    from services.store.embedded import start_embedded

    url = start_embedded(ROOT / ".herald" / "test-postgres")
    with psycopg.connect(url, autocommit=True) as conn:
        # A throwaway test server: durability costs time and buys nothing (reloadable settings).
        if (conn.execute("select current_setting('fsync')").fetchone() or ("off",))[0] == "on":
            conn.execute("alter system set fsync = off")
            conn.execute("alter system set synchronous_commit = off")
            conn.execute("alter system set full_page_writes = off")
            conn.execute("select pg_reload_conf()")
    return url


def conninfo(dbname: str, user: str = "postgres") -> str:
    return make_conninfo(server_url(), dbname=dbname, user=user, connect_timeout=10)


def _maintenance_db() -> str:
    return str(conninfo_to_dict(server_url()).get("dbname") or "postgres")


def user_token(user_id: uuid.UUID, *, expires_in: int = 3600) -> str:
    """A Supabase user access token (HS256, the project's secret)."""
    now = int(time.time())
    return jwt.encode({"sub": str(user_id), "aud": "authenticated", "role": "authenticated", "iat": now,
                       "exp": now + expires_in, "iss": f"{SUPABASE_URL}/auth/v1"}, JWT_SECRET)


def apply_schema(target: str | psycopg.Connection, *, until: str | None = None) -> list[str]:
    """The bootstrap, then the migrations in order (up to ``until``), as ``make run`` applies them,
    on a database named by a connection string or an open connection's."""
    dsn = target if isinstance(target, str) else target.info.dsn
    return migrate.apply_migrations(dsn, until=until)


def _maintenance() -> psycopg.Connection:
    try:
        return psycopg.connect(conninfo(_maintenance_db()), autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"the test PostgreSQL is not reachable ({'HERALD_TEST_DATABASE_URL' if os.environ.get('HERALD_TEST_DATABASE_URL') else 'embedded server'}): {exc}", pytrace=False)


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
                apply_schema(conninfo(building))
                admin.execute(sql.SQL("alter database {} rename to {}").format(
                    sql.Identifier(building), sql.Identifier(name)))
            except psycopg.errors.DuplicateDatabase:
                pass  # another session built the same template meanwhile
            finally:
                admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(building)))
        for (stale,) in admin.execute(
            "select datname from pg_database where datname like 'herald\\_template\\_%%' and datname <> %s", [name]
        ).fetchall():
            with suppress(psycopg.Error):  # in use by another session: leave it
                admin.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(stale)))
    return name


@contextmanager
def empty_database(prefix: str = "herald_empty") -> Iterator[str]:
    """A new empty database on the test server (no bootstrap, no migrations), dropped on exit;
    yields its superuser connection string."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _maintenance() as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield conninfo(name)
    finally:
        with _maintenance() as admin:
            admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _create_clone(template: str) -> str:
    name = f"herald_test_{uuid.uuid4().hex[:16]}"
    with _maintenance() as admin:
        # file_copy: for a small template, faster than the default WAL-logged copy (PostgreSQL 15+)
        admin.execute(sql.SQL("create database {} template {} strategy file_copy").format(
            sql.Identifier(name), sql.Identifier(template)))
    return name


def _drop_clone(name: str) -> None:
    with _maintenance() as admin:
        admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


class _Clones:
    """Clones made ahead, in a thread, while the current test runs.

    Making a clone is most of a database test's time (about 0.3-0.5 s, nearly all of it the
    server's); the thread keeps ``AHEAD`` ready so the next test finds one waiting. Clones left
    over at exit are dropped.
    """

    AHEAD = 2

    def __init__(self, template: str):
        self.template = template
        self.ready: queue.Queue = queue.Queue()
        self.slots = threading.Semaphore(self.AHEAD)
        self.stopped = False
        self.thread = threading.Thread(target=self._fill, name=f"clones-{template}", daemon=True)
        self.thread.start()

    def _fill(self) -> None:
        while True:
            self.slots.acquire()
            if self.stopped:
                return
            try:
                self.ready.put(_create_clone(self.template))
            except BaseException as exc:  # handed to the test that takes it
                self.ready.put(exc)

    def take(self) -> str:
        item = self.ready.get(timeout=120)
        self.slots.release()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self.stopped = True
        self.slots.release()
        self.thread.join(timeout=30)
        while not self.ready.empty():
            item = self.ready.get_nowait()
            if isinstance(item, str):
                with suppress(psycopg.Error):
                    _drop_clone(item)


_clones: dict[str, _Clones] = {}
_clones_lock = threading.Lock()


def _close_all() -> None:
    for clones in list(_clones.values()):
        clones.close()


def _clones_of(template: str) -> _Clones:
    with _clones_lock:
        if template not in _clones:
            if not _clones:
                atexit.register(_close_all)
            _clones[template] = _Clones(template)
        return _clones[template]


@contextmanager
def cloned_database(template: str) -> Iterator[str]:
    """A fresh ``CREATE DATABASE … TEMPLATE`` clone, dropped on exit; yields its superuser connection string."""
    name = _clones_of(template).take()
    try:
        yield conninfo(name)
    finally:
        _drop_clone(name)


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
    rpc = PostgrestRpc(make_conninfo(pg_database, user="authenticator"), JWT_SECRET)
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


def _sql_runner(admin: psycopg.Connection):
    def run_sql(query: str, params: list | None = None) -> list:
        cur = admin.execute(query, params)
        return cur.fetchall() if cur.description else []

    return run_sql


@dataclass
class BenchDatabase:
    """A fresh clone with a store of one transport on it, outside pytest (``make bench``)."""

    kind: str
    dsn: str  #: the clone's superuser connection string (for a server process of its own)
    store: Any
    new_user: Callable[[], User]
    #: run SQL as the superuser on the clone: the rows, or [] for a statement without a result
    sql: Callable[..., list]
    close: Callable[[], Awaitable[None]]


async def open_bench_database(kind: str) -> BenchDatabase:
    """A store of ``kind`` (postgres or supabase) on a fresh clone; ``await close()`` drops it."""
    clone = cloned_database(ensure_template())
    dsn = clone.__enter__()
    admin = psycopg.connect(dsn, autocommit=True)
    clients: list[httpx.AsyncClient] = []
    rpc = PostgrestRpc(make_conninfo(dsn, user="authenticator"), JWT_SECRET) if kind == "supabase" else None
    store = _store_on(rpc, clients) if rpc is not None else PostgresStore(dsn)

    async def close() -> None:
        for http in clients:
            await http.aclose()
        if rpc is not None:
            await rpc.close()
        else:
            await store.close()
        admin.close()
        clone.__exit__(None, None, None)

    return BenchDatabase(kind=kind, dsn=dsn, store=store, new_user=_user_maker(admin), sql=_sql_runner(admin),
                         close=close)


async def open_bench_store(kind: str):
    """A store of ``kind`` (postgres or supabase) on a fresh clone, outside pytest (``make bench``):
    ``(store, new_user, close)``."""
    bench = await open_bench_database(kind)
    return bench.store, bench.new_user, bench.close


@pytest.fixture
async def postgres_harness(pg_database):
    """PostgresStore (the direct transport) on the test's clone, as ``make run`` uses it."""
    admin = psycopg.connect(pg_database, autocommit=True)
    opened: list[PostgresStore] = []

    def open_store() -> PostgresStore:
        store = PostgresStore(pg_database, max_connections=4)
        opened.append(store)
        return store

    yield Harness(kind="postgres", store=open_store(), new_user=_user_maker(admin), another_store=open_store,
                  sql=_sql_runner(admin))
    for store in opened:
        await store.close()
    admin.close()


@pytest.fixture
async def supabase_harness(pg_database, postgrest_rpc):
    admin = psycopg.connect(pg_database, autocommit=True)
    clients: list[httpx.AsyncClient] = []

    def open_store() -> SupabaseStore:
        return _store_on(postgrest_rpc, clients)

    yield Harness(kind="supabase", store=open_store(), new_user=_user_maker(admin), another_store=open_store,
                  sql=_sql_runner(admin))
    for http in clients:
        await http.aclose()
    admin.close()
