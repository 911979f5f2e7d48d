"""supabase/migrations on real Postgres: they apply in order, lock every table, and check every status."""

from __future__ import annotations

import itertools
import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from services.domain.models import PostStatus, TargetStatus
from services.domain.transitions import ALLOWED_FROM, LIVE, conflict_message, derive_post_status
from tests.postgres.test_rls import acting_as, call
from tests.support.supabase_fixtures import BOOTSTRAP, MIGRATIONS, apply_schema
from tests.support.supabase_fixtures import empty_database as new_database

TABLES = {"channels", "posts", "post_targets", "post_runs", "activity_logs", "cron_runs", "sandbox_outbox",
          "idempotency_keys", "platform_pauses", "webhook_endpoints", "events", "webhook_deliveries", "webhook_attempts",
          "post_analytics", "post_comments", "post_history", "workspaces", "workspace_members", "workspace_invites",
          "platform_quota"}
#: the tables 20261201000100_private_schema.sql moved (the others came after it)
MOVED_TABLES = TABLES - {"platform_pauses", "webhook_endpoints", "events", "webhook_deliveries", "webhook_attempts",
                         "post_analytics", "post_comments", "post_history", "workspaces", "workspace_members",
                         "workspace_invites", "platform_quota"}

#: every CHECK-constrained state column, with the SQL that makes a valid row to update
STATE_COLUMNS = {
    ("channels", "status"): "insert into herald.channels (user_id, platform, account_id, name, credentials_encrypted)"
                            " values (%(user)s, 'sandbox', 'a', 'n', 'x') returning id",
    ("posts", "status"): "insert into herald.posts (user_id, content, status)"
                         " values (%(user)s, '{}', 'draft') returning id",
    ("post_targets", "status"): "insert into herald.post_targets (post_id, user_id, platform)"
                                " values (%(post)s, %(user)s, 'sandbox') returning id",
    ("post_runs", "outcome"): "insert into herald.post_runs (post_id, target_id, attempt, outcome, started_at,"
                              " finished_at, duration_ms)"
                              " values (%(post)s, %(target)s, 1, 'published', now(), now(), 0) returning id",
    ("webhook_endpoints", "status"): "insert into herald.webhook_endpoints (user_id, url, events, secret_encrypted)"
                                     " values (%(user)s, 'https://example.com/h', '{post.failed}', 'x') returning id",
    ("webhook_deliveries", "status"): "with w as (insert into herald.webhook_endpoints (user_id, url, events,"
                                      " secret_encrypted) values (%(user)s, 'https://example.com/h', '{*}', 'x')"
                                      " returning id), e as (insert into herald.events (user_id, type, subject)"
                                      " values (%(user)s, 'post.failed', '{}') returning id)"
                                      " insert into herald.webhook_deliveries (event_id, endpoint_id, user_id)"
                                      " select e.id, w.id, %(user)s from e, w returning id",
}


@pytest.fixture
def empty_database():
    with new_database() as dsn:
        yield dsn


@pytest.fixture
def db(pg_database):
    with psycopg.connect(pg_database, autocommit=True) as conn:
        yield conn


def test_migrations_apply_in_order_on_a_bootstrapped_fresh_database(empty_database):
    names = [m.name for m in MIGRATIONS]
    assert names == sorted(names) and len(names) >= 3
    assert all(n[:14].isdigit() and n[14] == "_" for n in names), "migrations are <timestamp>_<what>.sql"
    apply_schema(empty_database)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        found = {tuple(r) for r in conn.execute(
            "select schemaname, tablename from pg_tables where schemaname in ('public', 'herald')").fetchall()}
        # Herald's tables live outside the schemas the Data API exposes (config.toml [api].schemas)
        assert found == {("herald", t) for t in TABLES}
        # Supabase-only extensions stay out of the replayed migrations.
        text = "\n".join(m.read_text() for m in MIGRATIONS).lower()
        assert "cron.schedule" not in text and "vault." not in text and "net.http_post" not in text


def test_bootstrap_is_idempotent(db):
    db.execute(BOOTSTRAP.read_text())  # the template already ran it once


def test_every_table_has_row_level_security(pg_catalog):
    rows = pg_catalog.execute(
        "select c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'herald' and c.relkind = 'r'").fetchall()
    assert {name for name, _ in rows} == TABLES
    assert [name for name, enabled in rows if not enabled] == []


def test_every_state_column_has_a_check_under_test(pg_catalog):
    columns = {tuple(r) for r in pg_catalog.execute(
        "select table_name, column_name from information_schema.columns"
        " where table_schema = 'herald' and column_name in ('status', 'outcome')").fetchall()}
    assert columns == set(STATE_COLUMNS)


@pytest.mark.parametrize(("table", "column"), sorted(STATE_COLUMNS))
def test_state_column_rejects_an_unknown_value(db, table, column):
    user = uuid.uuid4()
    db.execute("insert into auth.users (id) values (%s)", [user])
    # the rows a target or a run hangs off
    post = db.execute("insert into herald.posts (user_id, content, status) values (%s, '{}', 'draft') returning id",
                      [user]).fetchone()[0]
    target = db.execute("insert into herald.post_targets (post_id, user_id, platform) values (%s, %s, 'sandbox')"
                        " returning id", [post, user]).fetchone()[0]
    row_id = db.execute(STATE_COLUMNS[(table, column)], {"user": user, "post": post, "target": target}).fetchone()[0]
    with pytest.raises(psycopg.errors.CheckViolation):
        db.execute(sql.SQL("update {} set {} = 'bogus' where id = %s").format(
            sql.Identifier("herald", table), sql.Identifier(column)), [row_id])


def test_claim_function_stays_volatile(pg_catalog):
    # PostgREST runs STABLE/IMMUTABLE functions in a read-only transaction: a claim must be VOLATILE.
    volatility = pg_catalog.execute(
        "select provolatile from pg_proc where proname = 'herald_claim_due_posts_v1'").fetchone()
    assert volatility == ("v",)


#: the API functions that run as their owner: the workspace functions, which check the caller's role
#: themselves (a caller not yet a member must read an invite, for one); every other API function runs
#: as its caller, under RLS
DEFINER_API = {"herald_list_workspaces_v1", "herald_create_workspace_v1", "herald_get_workspace_v1",
               "herald_update_workspace_v1", "herald_delete_workspace_v1", "herald_list_members_v1",
               "herald_update_member_v1", "herald_remove_member_v1", "herald_create_invite_v1",
               "herald_list_invites_v1", "herald_revoke_invite_v1", "herald_accept_invite_v1"}


def test_user_functions_run_as_the_caller_but_the_membership_checks(pg_catalog):
    """SECURITY DEFINER only where RLS cannot answer (membership, which a policy on workspace_members
    would ask of itself), each with an empty search_path so no caller's object can stand in for ours."""
    definers = pg_catalog.execute(
        "select n.nspname, p.proname, coalesce(p.proconfig, '{}') from pg_proc p"
        " join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname in ('public', 'herald', 'herald_private') and p.prosecdef").fetchall()
    assert definers
    for schema, name, config in definers:
        assert 'search_path=""' in config, (schema, name, config)
        assert schema == "herald_private" or name in DEFINER_API, (schema, name)


def test_each_workspace_function_checks_its_caller_before_it_reads_a_table(pg_catalog):
    bodies = dict(pg_catalog.execute(
        "select p.proname, p.prosrc from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public' and p.proname = any(%s)", [sorted(DEFINER_API)]).fetchall())
    assert set(bodies) == DEFINER_API
    for name, body in bodies.items():
        before_any_table = body.split("herald.")[0]
        assert re.search(r"herald_private\.(require_role|current_user_id|lock_workspace)\(", before_any_table), name


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
    assert db.execute("select status, count(*) from herald.posts group by status").fetchall() == [("scheduled", 1)]
    assert db.execute("select count(*) from herald.post_targets where status = 'pending'").fetchone()[0] == 1


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
    callers = {name: {role for role, can in zip(("anon", "authenticated", "service_role"), flags, strict=True) if can}
               for name, *flags in rows}
    assert callers.pop("herald_ping_v1()") == {"anon", "authenticated", "service_role"}
    wrong = {name: roles for name, roles in callers.items() if roles not in ({"authenticated"}, {"service_role"})}
    assert wrong == {}
    assert {"authenticated"} in callers.values() and {"service_role"} in callers.values()


# --- upgrading a deployment: the tables move from public to herald (20261201000100_private_schema) ---

PRIVATE_SCHEMA = "20261201000100"
#: the last migration a deployment had before the move
BEFORE_PRIVATE_SCHEMA = max(m.name.split("_")[0] for m in MIGRATIONS if m.name.split("_")[0] < PRIVATE_SCHEMA)
NOW = datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)
#: the tables' catalog entries that must travel with them, spelled without the schema
STRUCTURE = {
    "indexes": "select indexname, indexdef from pg_indexes where schemaname = %(schema)s and tablename = %(table)s",
    "constraints": "select conname, pg_get_constraintdef(oid) from pg_constraint where conrelid = %(rel)s::regclass",
    "triggers": "select tgname, tgfoid::regproc::text, tgenabled from pg_trigger"
                " where tgrelid = %(rel)s::regclass and not tgisinternal",
    "policies": "select polname, polcmd, polpermissive, polroles::regrole[]::text[], pg_get_expr(polqual, polrelid),"
                " pg_get_expr(polwithcheck, polrelid) from pg_policy where polrelid = %(rel)s::regclass",
    "row level security": "select relrowsecurity, relforcerowsecurity from pg_class where oid = %(rel)s::regclass",
    "identity": "select attname, attidentity, pg_get_serial_sequence(%(rel)s, attname) is not null from pg_attribute"
                " where attrelid = %(rel)s::regclass and attidentity <> ''",
}
#: every function as Postgres keeps it: signature, body, volatility, definer, settings, grants
FUNCTIONS = (
    "select n.nspname || '.' || p.proname || '(' || pg_get_function_arguments(p.oid) || ')',"
    " pg_get_function_result(p.oid), p.prosrc, p.provolatile, p.prosecdef, p.proconfig, p.proacl::text[]"
    " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
    " where n.nspname in ('public', 'herald_private') order by 1"
)


def unschema(value):
    """A catalog value with the tables' schema left out, so that before and after compare."""
    if isinstance(value, str):
        return value.replace("herald.", "").replace("public.", "")
    if isinstance(value, (list, tuple)):
        return type(value)(unschema(v) for v in value)
    return value


def table_rows(db: psycopg.Connection, schema: str) -> dict[str, list]:
    return {t: db.execute(sql.SQL("select coalesce(jsonb_agg(to_jsonb(t) order by to_jsonb(t)::text), '[]')"
                                  " from {} t").format(sql.Identifier(schema, t))).fetchone()[0]
            for t in sorted(MOVED_TABLES)}


def table_structure(db: psycopg.Connection, schema: str) -> dict[tuple[str, str], list]:
    return {(t, what): sorted(unschema(tuple(r)) for r in db.execute(
                query, {"schema": schema, "table": t, "rel": f"{schema}.{t}"}).fetchall())
            for t in sorted(MOVED_TABLES) for what, query in STRUCTURE.items()}


def function_definitions(db: psycopg.Connection) -> list:
    # the bodies now name herald.<table> where they named public.<table>; nothing else may differ
    return [unschema(tuple(r)) for r in db.execute(FUNCTIONS).fetchall()]


def what_the_functions_return(db: psycopg.Connection, owner: uuid.UUID, posts: list[str]) -> dict:
    """Every read the API offers, as the owner and as the service role."""
    seen = {}
    with acting_as(db, "authenticated", owner):
        seen["channels"] = call(db, "herald_list_channels_v1")
        seen["posts"] = call(db, "herald_list_posts_v1", p_limit=100)
        seen["each post"] = [call(db, "herald_get_post_v1", p_post_id=p) for p in posts]
        seen["runs"] = [call(db, "herald_list_runs_v1", p_post_id=p) for p in posts]
        seen["activity"] = call(db, "herald_list_activity_v1", p_limit=1000)
        seen["outbox"] = call(db, "herald_list_outbox_v1")
        seen["statistics"] = call(db, "herald_post_statistics_v1")
    with acting_as(db, "service_role"):
        seen["health"] = call(db, "herald_cron_health_v1", p_now=NOW)
        seen["due later"] = call(db, "herald_list_due_v1", p_now=NOW + timedelta(days=1), p_limit=100)
    return seen


def write_a_deployments_data(db: psycopg.Connection) -> dict:
    """What a deployment holds: rows from every function that writes, and rows written directly."""
    owner, other = uuid.uuid4(), uuid.uuid4()
    db.execute("insert into auth.users (id, email) values (%s, 'owner@herald.test'), (%s, 'other@herald.test')",
               [owner, other])
    with acting_as(db, "authenticated", owner):
        channel = call(db, "herald_create_channel_v1", p_platform="sandbox", p_account_id="acct", p_name="Sandbox",
                       p_credentials_encrypted="gAAAA-owner-secret", p_metadata=Jsonb({"handle": "@owner"}))
    with acting_as(db, "service_role"):  # the OAuth callback connects a second account
        mastodon = call(db, "herald_connect_channel_v1", p_user_id=owner, p_platform="mastodon", p_account_id="42",
                        p_name="Mastodon", p_credentials_encrypted="gAAAA-mastodon-secret",
                        p_token_expires_at=NOW + timedelta(days=30))
    with acting_as(db, "authenticated", owner):
        created = call(db, "herald_create_posts_v1", p_idempotency_key="bulk-1", p_request_hash="hash-1",
                       p_posts=Jsonb([
                           {"content": {"text": "due now"}, "channel_ids": [channel["id"], mastodon["id"]],
                            "status": "scheduled", "scheduled_at": (NOW - timedelta(minutes=1)).isoformat()},
                           {"content": {"text": "due later"}, "channel_ids": [channel["id"]], "status": "scheduled",
                            "scheduled_at": (NOW + timedelta(hours=1)).isoformat(), "rrule": "FREQ=DAILY"},
                           {"content": {"text": "a draft"}, "channel_ids": [], "status": "draft"}]))
    due, later, draft = (p["id"] for p in created["posts"])
    with acting_as(db, "service_role"):
        [claimed] = call(db, "herald_claim_due_posts_v1", p_now=NOW, p_limit=10, p_lease_seconds=60)["posts"]
        targets = {t["channel_id"]: t["id"] for t in claimed["post"]["targets"]}
        call(db, "herald_deliver_to_outbox_v1", p_id=uuid.uuid4(), p_channel_id=channel["id"],
             p_target_id=targets[channel["id"]], p_text="due now", p_media=Jsonb([]), p_published_at=NOW)
        run = {"started_at": NOW.isoformat(), "finished_at": NOW.isoformat(), "duration_ms": 5}
        call(db, "herald_record_results_v1", p_now=NOW, p_results=Jsonb([{
            "post_id": due, "lease_id": claimed["lease_id"], "status": "partial", "error": None, "released": [],
            "targets": [{"target_id": targets[channel["id"]], "outcome": "published", "status": "published",
                         "attempt": 1, "platform_post_id": "p1", **run},
                        {"target_id": targets[mastodon["id"]], "outcome": "permanent", "status": "failed",
                         "attempt": 1, "error_code": "rejected", "error_message": "too long", **run}]}]),
             p_cron_run=Jsonb({"id": str(uuid.uuid4()), "trigger": "vercel", "started_at": NOW.isoformat(),
                               "finished_at": NOW.isoformat(), "claimed": 1, "published": 1, "failed": 1,
                               "duration_ms": 9, "error": None}))
    # rows no function wrote: an older version's, or direct SQL
    direct = db.execute("insert into public.posts (user_id, content, status) values (%s, '{\"text\": \"direct\"}',"
                        " 'draft') returning id::text", [owner]).fetchone()[0]
    db.execute("insert into public.post_targets (post_id, channel_id, user_id, platform)"
               " values (%s, %s, %s, 'sandbox')", [direct, channel["id"], owner])
    db.execute("insert into public.activity_logs (user_id, event) values (%s, 'imported')", [other])
    # a table of the project's own, beside Herald's: it stays, only without TRUNCATE, REFERENCES, TRIGGER
    db.execute("create table public.project_notes (id int primary key)")
    return {"owner": owner, "other": other, "channel": channel["id"], "mastodon": mastodon["id"],
            "posts": [due, later, draft, direct], "later": later, "draft": draft}


def test_moving_the_tables_to_the_private_schema_keeps_a_deployments_data_and_behaviour(empty_database):
    apply_schema(empty_database, until=BEFORE_PRIVATE_SCHEMA)  # a deployment as it stood
    with psycopg.connect(empty_database, autocommit=True) as db:
        data = write_a_deployments_data(db)
        rows, structure = table_rows(db, "public"), table_structure(db, "public")
        functions, answers = function_definitions(db), what_the_functions_return(db, data["owner"], data["posts"])
        last_activity = db.execute("select max(id) from public.activity_logs").fetchone()[0]
    assert all(rows.values()), {t: len(r) for t, r in rows.items()}  # something in every table

    assert apply_schema(empty_database, until=PRIVATE_SCHEMA) == [PRIVATE_SCHEMA]

    with psycopg.connect(empty_database, autocommit=True) as db:
        assert db.execute("select count(*) from pg_tables where schemaname = 'public' and tablename = any(%s)",
                          [sorted(MOVED_TABLES)]).fetchone()[0] == 0
        assert table_rows(db, "herald") == rows
        assert table_structure(db, "herald") == structure
        assert function_definitions(db) == functions
        assert what_the_functions_return(db, data["owner"], data["posts"]) == answers
        left = db.execute("select p.oid::regprocedure::text"
                          " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                          " where n.nspname in ('public', 'herald_private') and p.prosrc ~ %s",
                          [rf"public\.({'|'.join(MOVED_TABLES)})\M"]).fetchall()
        assert left == []  # no function still names a table where it no longer is

        # and the functions keep writing, as the user...
        with acting_as(db, "authenticated", data["owner"]):
            replay = call(db, "herald_create_posts_v1", p_posts=Jsonb([{"content": {"text": "x"}, "status": "draft"}]),
                          p_idempotency_key="bulk-1", p_request_hash="hash-1")
            assert replay["replayed"] and [p["id"] for p in replay["posts"]] == data["posts"][:3]
            edited = call(db, "herald_update_post_v1", p_post_id=data["draft"], p_changes=Jsonb({
                "content": {"text": "edited"}}), p_allowed_from=["draft"], p_action="edit")
            assert edited["content"] == {"text": "edited"}
            call(db, "herald_delete_post_v1", p_post_id=data["posts"][3], p_allowed_from=["draft"])
            assert call(db, "herald_list_posts_v1")["total"] == 3
        with acting_as(db, "authenticated", data["other"]):  # RLS and the owner filters still hold
            assert call(db, "herald_list_posts_v1")["total"] == 0
            assert call(db, "herald_list_channels_v1") == []
        # ...and as the service role: the later post is claimed with its channel's credentials intact
        with acting_as(db, "service_role"):
            [claimed] = call(db, "herald_claim_due_posts_v1", p_now=NOW + timedelta(hours=2), p_limit=10,
                             p_lease_seconds=60)["posts"]
            assert claimed["post"]["id"] == data["later"]
            assert [c["credentials_encrypted"] for c in claimed["channels"]] == ["gAAAA-owner-secret"]
            again = call(db, "herald_connect_channel_v1", p_user_id=data["owner"], p_platform="mastodon",
                         p_account_id="42", p_name="Mastodon", p_credentials_encrypted="gAAAA-renewed")
            assert again["id"] == data["mastodon"]
        # the activity log's identity sequence moved with its table and carries on
        assert db.execute("select min(id) from herald.activity_logs where id > %s",
                          [last_activity]).fetchone()[0] == last_activity + 1

        # the project's own table in public: still there, minus what the API roles never need
        privileges = db.execute(
            "select r, p, has_table_privilege(r, 'public.project_notes', p)"
            " from unnest(array['anon', 'authenticated']) r,"
            " unnest(array['SELECT', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p").fetchall()
        assert {(r, p) for r, p, held in privileges if held} == {("anon", "SELECT"), ("authenticated", "SELECT")}


def test_posts_and_targets_are_published_to_supabase_realtime(db):
    """Postgres Changes streams the tables of the supabase_realtime publication (Supabase docs,
    "Postgres Changes"), each change checked against the subscriber's RLS: the owner policies
    and authenticated's SELECT must be there for a dashboard to receive its own rows."""
    published = {tuple(r) for r in db.execute(
        "select schemaname, tablename from pg_publication_tables where pubname = 'supabase_realtime'").fetchall()}
    assert {("herald", "posts"), ("herald", "post_targets")} <= published
    assert not {t for s, t in published if s == "herald"} - {"posts", "post_targets"}  # nothing else leaks out
    for table in ("posts", "post_targets"):
        assert db.execute("select has_table_privilege('authenticated', %s, 'select')", [f"herald.{table}"]).fetchone()[0]
        policies = db.execute("select count(*) from pg_policies where schemaname = 'herald' and tablename = %s"
                              " and 'authenticated' = any(roles)", [table]).fetchone()[0]
        assert policies >= 1
