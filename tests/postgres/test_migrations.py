"""supabase/migrations on real Postgres: they apply in order, lock every table, and check every status."""

from __future__ import annotations

import itertools
import json
import uuid

import psycopg
import pytest
from psycopg import sql

from services.domain.models import PostStatus, TargetStatus
from services.domain.transitions import ALLOWED_FROM, LIVE, conflict_message, derive_post_status
from tests.support.supabase_fixtures import BOOTSTRAP, MIGRATIONS, _maintenance, apply_schema, conninfo

TABLES = {"channels", "posts", "post_targets", "post_runs", "activity_logs", "cron_runs", "sandbox_outbox",
          "idempotency_keys"}

#: every CHECK-constrained state column, with the SQL that makes a valid row to update
STATE_COLUMNS = {
    ("channels", "status"): "insert into channels (user_id, platform, account_id, name, credentials_encrypted)"
                            " values (%(user)s, 'sandbox', 'a', 'n', 'x') returning id",
    ("posts", "status"): "insert into posts (user_id, content, status) values (%(user)s, '{}', 'draft') returning id",
    ("post_targets", "status"): "insert into post_targets (post_id, user_id, platform)"
                                " values (%(post)s, %(user)s, 'sandbox') returning id",
    ("post_runs", "outcome"): "insert into post_runs (post_id, target_id, attempt, outcome, started_at, finished_at,"
                              " duration_ms) values (%(post)s, %(target)s, 1, 'published', now(), now(), 0)"
                              " returning id",
}


@pytest.fixture
def empty_database():
    name = f"herald_empty_{uuid.uuid4().hex[:12]}"
    with _maintenance() as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield conninfo(name)
    finally:
        with _maintenance() as admin:
            admin.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def db(pg_database):
    with psycopg.connect(pg_database, autocommit=True) as conn:
        yield conn


def test_migrations_apply_in_order_on_a_bootstrapped_fresh_database(empty_database):
    names = [m.name for m in MIGRATIONS]
    assert names == sorted(names) and len(names) >= 3
    assert all(n[:14].isdigit() and n[14] == "_" for n in names), "migrations are <timestamp>_<what>.sql"
    with psycopg.connect(empty_database, autocommit=True) as conn:
        apply_schema(conn)
        found = {r[0] for r in conn.execute(
            "select tablename from pg_tables where schemaname = 'public'").fetchall()}
        assert found == TABLES
        # Supabase-only extensions stay out of the replayed migrations.
        text = "\n".join(m.read_text() for m in MIGRATIONS).lower()
        assert "cron.schedule" not in text and "vault." not in text and "net.http_post" not in text


def test_bootstrap_is_idempotent(db):
    db.execute(BOOTSTRAP.read_text())  # the template already ran it once


def test_every_table_has_row_level_security(pg_catalog):
    rows = pg_catalog.execute(
        "select c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind = 'r'").fetchall()
    assert {name for name, _ in rows} == TABLES
    assert [name for name, enabled in rows if not enabled] == []


def test_every_state_column_has_a_check_under_test(pg_catalog):
    columns = {tuple(r) for r in pg_catalog.execute(
        "select table_name, column_name from information_schema.columns"
        " where table_schema = 'public' and column_name in ('status', 'outcome')").fetchall()}
    assert columns == set(STATE_COLUMNS)


@pytest.mark.parametrize(("table", "column"), sorted(STATE_COLUMNS))
def test_state_column_rejects_an_unknown_value(db, table, column):
    user = uuid.uuid4()
    db.execute("insert into auth.users (id) values (%s)", [user])
    # the rows a target or a run hangs off
    post = db.execute("insert into posts (user_id, content, status) values (%s, '{}', 'draft') returning id",
                      [user]).fetchone()[0]
    target = db.execute("insert into post_targets (post_id, user_id, platform) values (%s, %s, 'sandbox')"
                        " returning id", [post, user]).fetchone()[0]
    row_id = db.execute(STATE_COLUMNS[(table, column)], {"user": user, "post": post, "target": target}).fetchone()[0]
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(sql.SQL("update {} set {} = 'bogus' where id = %s").format(
            sql.Identifier(table), sql.Identifier(column)), [row_id])


def test_claim_function_stays_volatile(pg_catalog):
    # PostgREST runs STABLE/IMMUTABLE functions in a read-only transaction: a claim must be VOLATILE.
    volatility = pg_catalog.execute(
        "select provolatile from pg_proc where proname = 'herald_claim_due_posts_v1'").fetchone()
    assert volatility == ("v",)


def test_user_functions_run_as_the_caller(pg_catalog):
    definers = pg_catalog.execute(
        "select proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('public', 'herald_private') and p.prosecdef").fetchall()
    assert definers == []


@pytest.mark.parametrize(("action", "status"),
                         list(itertools.product(sorted({*ALLOWED_FROM, "delete"}), [*PostStatus, LIVE])))
def test_sql_conflict_message_matches_the_domain(pg_catalog, action, status):
    said = pg_catalog.execute("select herald_private.conflict_message(%s, %s)", [action, getattr(status, "value", status)]).fetchone()[0]
    assert said == conflict_message(action, status)


@pytest.mark.parametrize("statuses", [
    (),                                                          # no targets at all
    (TargetStatus.CANCELLED,),                                   # only cancelled
    (TargetStatus.PUBLISHED, TargetStatus.PENDING),              # one waits for a retry
    (TargetStatus.PUBLISHED, TargetStatus.PUBLISHING),           # one marked sending
    (TargetStatus.PUBLISHED, TargetStatus.UNKNOWN),              # outcome unknown
    (TargetStatus.PUBLISHED, TargetStatus.PUBLISHED, TargetStatus.CANCELLED),  # all live ones published
    (TargetStatus.PUBLISHED, TargetStatus.FAILED),               # partial
    (TargetStatus.FAILED, TargetStatus.FAILED),                  # failed
    (TargetStatus.FAILED, TargetStatus.UNKNOWN, TargetStatus.PENDING),  # pending wins
])
def test_sql_derived_post_status_matches_the_domain(pg_catalog, statuses):
    said = pg_catalog.execute("select herald_private.derive_post_status(%s::text[])",
                              [[s.value for s in statuses]]).fetchone()
    assert said[0] == derive_post_status(statuses).value


def test_functions_return_the_shapes_rows_reads(db):
    user = uuid.uuid4()
    db.execute("insert into auth.users (id) values (%s)", [user])
    with db.transaction():
        db.execute("set local role authenticated")
        db.execute("select set_config('request.jwt.claims', %s, true)",
                   [json.dumps({"sub": str(user), "role": "authenticated"})])
        channel = db.execute("select herald_create_channel_v1(p_platform => 'sandbox', p_account_id => 'a',"
                             " p_name => 'n', p_credentials_encrypted => 'secret')").fetchone()[0]
        post = db.execute("select herald_create_post_v1(p_content => '{\"text\": \"hi\"}', p_channel_ids => %s,"
                          " p_status => 'draft')", [[channel["id"]]]).fetchone()[0]
    assert "credentials_encrypted" not in channel
    assert {"lease_id", "lease_expires_at", "series_content"}.isdisjoint(post)
    assert [t["channel_id"] for t in post["targets"]] == [channel["id"]]


def test_seed_runs_on_a_fresh_database_and_never_where_users_exist(db):
    seed = (MIGRATIONS[0].parent.parent / "seed.sql").read_text()
    db.execute(seed)
    db.execute(seed)  # a second run adds nothing
    assert db.execute("select count(*) from auth.users").fetchone()[0] == 1
    assert db.execute("select status, count(*) from posts group by status").fetchall() == [("scheduled", 1)]
    assert db.execute("select count(*) from post_targets where status = 'pending'").fetchone()[0] == 1


def test_every_function_is_callable_by_exactly_one_api_role(pg_catalog):
    """A new function left with Postgres' default EXECUTE for PUBLIC would be open to anon."""
    rows = pg_catalog.execute(
        "select p.oid::regprocedure::text,"
        " has_function_privilege('anon', p.oid, 'execute'),"
        " has_function_privilege('authenticated', p.oid, 'execute'),"
        " has_function_privilege('service_role', p.oid, 'execute')"
        " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public' and p.proname like 'herald\\_%'"
    ).fetchall()
    assert len(rows) > 20
    callers = {name: {role for role, can in zip(("anon", "authenticated", "service_role"), flags) if can}
               for name, *flags in rows}
    assert callers.pop("herald_ping_v1()") == {"anon", "authenticated", "service_role"}
    wrong = {name: roles for name, roles in callers.items() if roles not in ({"authenticated"}, {"service_role"})}
    assert wrong == {}
    assert {"authenticated"} in callers.values() and {"service_role"} in callers.values()
