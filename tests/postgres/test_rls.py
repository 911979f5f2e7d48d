"""Row-level security and function privileges, acting as Supabase's API roles with JWT claims set."""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)
USER_TABLES = ["channels", "posts", "post_targets", "post_runs", "activity_logs", "sandbox_outbox",
               "idempotency_keys", "post_analytics", "post_comments", "post_history"]
SERVICE_FUNCTIONS = [
    "herald_connect_channel_v1", "herald_connect_channel_v2", "herald_claim_due_posts_v1", "herald_mark_sending_v1",
    "herald_save_channel_credentials_v1", "herald_mark_channel_needs_reconnect_v1", "herald_list_due_v1",
    "herald_count_due_v1", "herald_last_cron_run_v1", "herald_cron_health_v1", "herald_deliver_to_outbox_v1",
    "herald_record_results_v1", "herald_claim_due_posts_v2", "herald_record_results_v2",
    "herald_service_operations_v1", "herald_cron_health_v2",
    "herald_claim_analytics_due_v1", "herald_record_analytics_v1",
    "herald_claim_media_checks_v1", "herald_record_media_checks_v1", "herald_save_progress_v1",
    "herald_spend_quota_v1",
]


@contextmanager
def acting_as(conn: psycopg.Connection, role: str, user_id: uuid.UUID | None = None):
    """One transaction as PostgREST runs a request: SET LOCAL ROLE and the JWT claims."""
    claims = {"role": role}
    if user_id is not None:
        claims |= {"sub": str(user_id), "aud": "authenticated"}
    with conn.transaction():
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        yield conn


def call(conn, fn: str, **args):
    named = sql.SQL(", ").join(sql.SQL("{} => %({})s").format(sql.Identifier(k), sql.SQL(k)) for k in args)
    return conn.execute(sql.SQL("select public.{}({})").format(sql.Identifier(fn), named), args).fetchone()[0]


@pytest.fixture
def db(pg_database):
    with psycopg.connect(pg_database, autocommit=True) as conn:
        yield conn


@pytest.fixture
def owner_a(db):
    """User A with a channel, a published post (a run, activity, an outbox entry, a comment, its history) and an
    idempotency key."""
    a = uuid.uuid4()
    db.execute("insert into auth.users (id) values (%s)", [a])
    with acting_as(db, "authenticated", a):
        channel = call(db, "herald_create_channel_v1", p_platform="sandbox", p_account_id="acct", p_name="A",
                       p_credentials_encrypted="gAAAA-secret")
        created = call(db, "herald_create_posts_v1", p_posts=psycopg.types.json.Jsonb([{
            "content": {"text": "A's post"}, "channel_ids": [channel["id"]], "status": "scheduled",
            "scheduled_at": (NOW - timedelta(minutes=1)).isoformat()}]), p_idempotency_key="k", p_request_hash="h")
    post = created["posts"][0]
    with acting_as(db, "authenticated", a):
        call(db, "herald_add_comment_v1", p_post_id=post["id"], p_body="ready for review")
    with acting_as(db, "service_role"):
        claim = call(db, "herald_claim_due_posts_v1", p_now=NOW, p_limit=5, p_lease_seconds=60)
        [claimed] = claim["posts"]
        target = claimed["post"]["targets"][0]
        call(db, "herald_deliver_to_outbox_v1", p_id=uuid.uuid4(), p_channel_id=channel["id"], p_target_id=target["id"],
             p_text="A's post", p_media=psycopg.types.json.Jsonb([]), p_published_at=NOW)
        call(db, "herald_record_results_v1", p_now=NOW, p_results=psycopg.types.json.Jsonb([{
            "post_id": post["id"], "lease_id": claimed["lease_id"], "status": "published", "error": None,
            "released": [], "targets": [{
                "target_id": target["id"], "outcome": "published", "status": "published", "attempt": 1,
                "platform_post_id": "p1", "started_at": NOW.isoformat(), "finished_at": NOW.isoformat(),
                "duration_ms": 5}]}]))
        # an hour later, the analytics refresh reads its figures
        read = call(db, "herald_claim_analytics_due_v1", p_now=NOW + timedelta(hours=1), p_limit=5, p_lease_seconds=60)
        call(db, "herald_record_analytics_v1", p_lease_id=read["lease_id"], p_now=NOW + timedelta(hours=1),
             p_readings=psycopg.types.json.Jsonb([{"target_id": target["id"], "outcome": "measured", "likes": 3}]))
    counts = {t: db.execute(sql.SQL("select count(*) from {}").format(sql.Identifier("herald", t))).fetchone()[0]
              for t in USER_TABLES}
    assert all(counts.values()), counts
    return {"id": a, "channel": channel["id"], "post": post["id"], "target": target["id"]}


@pytest.fixture
def user_b(db):
    b = uuid.uuid4()
    db.execute("insert into auth.users (id) values (%s)", [b])
    return b


@pytest.mark.parametrize("table", USER_TABLES)
def test_user_sees_none_of_another_users_rows(db, owner_a, user_b, table):
    count = sql.SQL("select count(*) from {}").format(sql.Identifier("herald", table))
    with acting_as(db, "authenticated", user_b):
        assert db.execute(count).fetchone()[0] == 0
    with acting_as(db, "authenticated", owner_a["id"]):
        assert db.execute(count).fetchone()[0] > 0


def test_user_functions_do_not_reach_another_users_rows(db, owner_a, user_b):
    with acting_as(db, "authenticated", user_b):
        assert call(db, "herald_list_channels_v1") == []
        assert call(db, "herald_list_posts_v1")["total"] == 0
        assert call(db, "herald_list_activity_v1") == []
        assert call(db, "herald_list_outbox_v1") == []
        assert call(db, "herald_post_statistics_v1") == {"total": 0, "by_status": {}, "by_platform": {}}
        figures = call(db, "herald_operations_v1", p_now=NOW + timedelta(minutes=1))
        assert [figures["windows"][w]["finished"] for w in ("24h", "7d")] == [0, 0]
        assert (figures["stuck"]["count"], figures["due"]["count"]) == (0, 0)
    with acting_as(db, "authenticated", owner_a["id"]):  # A's own published target
        assert call(db, "herald_operations_v1", p_now=NOW + timedelta(minutes=1))["windows"]["24h"]["published"] == 1
    with acting_as(db, "authenticated", user_b):
        summary = call(db, "herald_analytics_summary_v1", p_from=NOW - timedelta(days=1), p_to=NOW + timedelta(days=1))
        assert summary["totals"]["targets"] == 0 and summary["top_posts"] == []
    for fn, args in [("herald_get_post_v1", {"p_post_id": owner_a["post"]}),
                     ("herald_get_post_analytics_v1", {"p_post_id": owner_a["post"]}),
                     ("herald_list_runs_v1", {"p_post_id": owner_a["post"]}),
                     ("herald_add_comment_v1", {"p_post_id": owner_a["post"], "p_body": "mine now"}),
                     ("herald_list_comments_v1", {"p_post_id": owner_a["post"]}),
                     ("herald_post_history_v1", {"p_post_id": owner_a["post"]}),
                     ("herald_get_channel_v1", {"p_channel_id": owner_a["channel"]}),
                     ("herald_delete_channel_v1", {"p_channel_id": owner_a["channel"], "p_force": True})]:
        with pytest.raises(psycopg.Error) as err, acting_as(db, "authenticated", user_b):
            call(db, fn, **args)
        assert err.value.sqlstate == "HR404", fn


@pytest.mark.parametrize(("table", "key"), [
    ("channels", "channel"), ("posts", "post"), ("post_targets", "target"), ("post_runs", "post"),
    ("activity_logs", "post"), ("sandbox_outbox", "target"), ("post_comments", "post"), ("post_history", "post"),
])
def test_user_cannot_update_or_delete_another_users_rows(db, owner_a, user_b, table, key):
    column = {"post_runs": "post_id", "activity_logs": "post_id", "sandbox_outbox": "target_id",
              "post_comments": "post_id", "post_history": "post_id"}.get(table, "id")
    where = sql.SQL("{} = %s").format(sql.Identifier(column))
    before = db.execute(sql.SQL("select count(*) from {} where ").format(sql.Identifier("herald", table)) + where,
                        [owner_a[key]]).fetchone()[0]

    def affected(statement: sql.Composable) -> int:
        try:
            with acting_as(db, "authenticated", user_b):
                return db.execute(statement, [owner_a[key]]).rowcount
        except psycopg.errors.InsufficientPrivilege:
            return 0  # no such privilege at all (runs, outbox, activity are not the user's to write)

    updated = affected(sql.SQL("update {} set {} = {} where ").format(
        sql.Identifier("herald", table), sql.Identifier(column), sql.Identifier(column)) + where)
    deleted = affected(sql.SQL("delete from {} where ").format(sql.Identifier("herald", table)) + where)
    assert (updated, deleted) == (0, 0)
    after = db.execute(sql.SQL("select count(*) from {} where ").format(sql.Identifier("herald", table)) + where,
                       [owner_a[key]]).fetchone()[0]
    assert after == before > 0


def test_user_cannot_insert_a_channel_owned_by_another_user(db, owner_a, user_b):
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), \
            acting_as(db, "authenticated", user_b):
        db.execute("insert into herald.channels (user_id, platform, account_id, name, credentials_encrypted)"
                   " values (%s, 'sandbox', 'x', 'x', 'x')", [owner_a["id"]])


def test_user_cannot_insert_a_post_owned_by_another_user(db, owner_a, user_b):
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), \
            acting_as(db, "authenticated", user_b):
        db.execute("insert into herald.posts (user_id, content, status) values (%s, '{}', 'draft')", [owner_a["id"]])


def test_user_cannot_attach_a_target_to_another_users_post(db, owner_a, user_b):
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), \
            acting_as(db, "authenticated", user_b):
        # user_id is B's own, but the post is A's
        db.execute("insert into herald.post_targets (post_id, user_id, platform) values (%s, %s, 'sandbox')",
                   [owner_a["post"], user_b])


def test_user_cannot_post_to_another_users_channel_through_the_functions(db, owner_a, user_b):
    with pytest.raises(psycopg.Error) as err, acting_as(db, "authenticated", user_b):
        call(db, "herald_create_post_v1", p_content=psycopg.types.json.Jsonb({"text": "x"}),
             p_channel_ids=[uuid.UUID(owner_a["channel"])], p_status="draft")
    assert (err.value.sqlstate, err.value.diag.message_hint) == ("HR422", "channel_ids")


def test_user_cannot_write_runs_outbox_or_analytics_even_for_their_own_post(db, owner_a):
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, "authenticated", owner_a["id"]):
        db.execute("insert into herald.post_runs (post_id, target_id, attempt, outcome, started_at, finished_at,"
                   " duration_ms) values (%s, %s, 1, 'published', now(), now(), 0)",
                   [owner_a["post"], owner_a["target"]])
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, "authenticated", owner_a["id"]):
        db.execute("insert into herald.sandbox_outbox (id, user_id, target_id, text, published_at)"
                   " values (gen_random_uuid(), %s, %s, 'x', now())", [owner_a["id"], owner_a["target"]])
    for statement in ("insert into herald.post_analytics (target_id, post_id, user_id, platform, recorded_at, likes)"
                      " values (%(target)s, %(post)s, %(id)s, 'sandbox', now(), 1000000)",
                      "update herald.post_analytics set likes = 1000000 where post_id = %(post)s"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, "authenticated", owner_a["id"]):
            db.execute(statement, owner_a)


def test_user_cannot_write_history_even_for_their_own_post(db, owner_a):
    """Only the triggers on posts append history: a forged entry is refused, and none is edited or removed."""
    forged = ("insert into herald.post_history (post_id, user_id, actor, change, before, after)"
              " values (%(post)s, %(id)s, %(id)s, 'status', '{\"status\": \"draft\"}', '{\"status\": \"published\"}')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), \
            acting_as(db, "authenticated", owner_a["id"]):
        db.execute(forged, owner_a)
    for statement in ("update herald.post_history set actor = null where post_id = %(post)s",
                      "delete from herald.post_history where post_id = %(post)s"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, "authenticated", owner_a["id"]):
            db.execute(statement, owner_a)
    with acting_as(db, "authenticated", owner_a["id"]):
        changes = db.execute("select change, actor from herald.post_history where post_id = %s order by id",
                             [owner_a["post"]]).fetchall()
    assert changes == [("created", owner_a["id"]), ("status", None), ("status", None)]  # publishing, published


def test_user_cannot_comment_on_or_read_comments_of_another_users_post(db, owner_a, user_b):
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), \
            acting_as(db, "authenticated", user_b):
        db.execute("insert into herald.post_comments (post_id, user_id, body) values (%s, %s, 'hi')",
                   [owner_a["post"], user_b])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"), \
            acting_as(db, "authenticated", owner_a["id"]):  # nor in another user's name on one's own post
        db.execute("insert into herald.post_comments (post_id, user_id, body) values (%s, %s, 'hi')",
                   [owner_a["post"], user_b])
    with acting_as(db, "authenticated", user_b):
        assert db.execute("select count(*) from herald.post_comments where post_id = %s",
                          [owner_a["post"]]).fetchone()[0] == 0


@pytest.mark.parametrize("table", [*USER_TABLES, "cron_runs"])
def test_anon_reads_nothing(db, owner_a, table):
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, "anon"):
        db.execute(sql.SQL("select count(*) from {}").format(sql.Identifier("herald", table)))


def test_anon_cannot_call_the_user_functions(db, owner_a):
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, "anon"):
        call(db, "herald_list_posts_v1")


@pytest.mark.parametrize(("fn", "args"), [("herald_list_channels_v1", {}), ("herald_operations_v1", {"p_now": NOW})])
def test_a_user_function_without_a_signed_in_user_is_refused(db, fn, args):
    with pytest.raises(psycopg.Error) as err, acting_as(db, "authenticated"):
        call(db, fn, **args)
    assert err.value.sqlstate == "HR401"


def test_cron_runs_are_the_service_roles_alone(db, owner_a):
    with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, "authenticated", owner_a["id"]):
        db.execute("select count(*) from herald.cron_runs")
    with acting_as(db, "service_role"):
        assert db.execute("select count(*) from herald.cron_runs").fetchone()[0] == 0


@pytest.mark.parametrize("fn", SERVICE_FUNCTIONS)
def test_service_functions_are_executable_by_the_service_role_only(pg_catalog, fn):
    allowed = {role: pg_catalog.execute(
        "select has_function_privilege(%s, p.oid, 'execute') from pg_proc p where p.proname = %s",
        [role, fn]).fetchone()[0] for role in ("anon", "authenticated", "service_role")}
    assert allowed == {"anon": False, "authenticated": False, "service_role": True}


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_users_cannot_claim_posts(db, owner_a, role):
    user = owner_a["id"] if role == "authenticated" else None
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"), \
            acting_as(db, role, user):
        call(db, "herald_claim_due_posts_v1", p_now=NOW + timedelta(days=1), p_limit=5, p_lease_seconds=60)


def test_every_public_function_is_granted_deliberately(pg_catalog):
    # Supabase's default privileges would open each new function to anon: none may keep that by accident.
    open_to_anon = {r[0] for r in pg_catalog.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
        " where n.nspname = 'public' and has_function_privilege('anon', p.oid, 'execute')").fetchall()}
    assert open_to_anon == {"herald_ping_v1"}


def test_a_webhook_endpoints_secret_never_reaches_its_owners_role(db, user_b):
    """The encrypted signing secret is for the service role's delivery alone: the owner's own calls
    (what the Data API would run for them) neither answer it nor reach the function that reads it."""
    with acting_as(db, "authenticated", user_b):
        endpoint = call(db, "herald_create_webhook_v1", p_url="https://hooks.example.com/h", p_events=["*"],
                        p_description=None, p_secret_encrypted="ciphertext-of-the-secret")
        made = call(db, "herald_test_webhook_v1", p_endpoint_id=endpoint["id"])
        listed = call(db, "herald_list_webhooks_v1")
    assert set(made) == {"event_id", "delivery_id"}
    assert "ciphertext-of-the-secret" not in str([endpoint, made, listed])
    for function in ("public.herald_delivery_v1", "herald_private.delivery_json"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), acting_as(db, "authenticated", user_b):
            db.execute(f"select {function}(%s)", [made["delivery_id"]])
    with acting_as(db, "service_role"):
        assert call(db, "herald_delivery_v1", p_delivery_id=made["delivery_id"])["endpoint"]["secret_encrypted"] \
            == "ciphertext-of-the-secret"
