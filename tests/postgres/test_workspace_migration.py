"""Upgrading a deployment to workspaces (20261201000900_workspaces, 20261201001000_workspace_scope) keeps
its data intact, each user's rows in that user's personal workspace, and every function's answers."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from tests.postgres.test_rls import acting_as, call
from tests.support.supabase_fixtures import apply_schema
from tests.support.supabase_fixtures import empty_database as new_database

#: the last migration before workspaces: a deployment as it stood
BEFORE_WORKSPACES = "20261201000800"
NOW = datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)

#: Herald's tables at BEFORE_WORKSPACES
TABLES = {"channels", "posts", "post_targets", "post_runs", "activity_logs", "cron_runs", "sandbox_outbox",
          "idempotency_keys", "platform_pauses", "webhook_endpoints", "events", "webhook_deliveries", "webhook_attempts",
          "post_analytics", "post_comments", "post_history"}
WORKSPACE_TABLES = {"workspaces", "workspace_members", "workspace_invites"}
#: the tables later migrations add on the way to the head (20261201001500: YouTube's quota count)
LATER_TABLES = {"platform_quota"}
#: the tables that now carry workspace_id (the spec's "every owned table")
OWNED = TABLES - {"post_runs", "cron_runs", "platform_pauses"}
#: the columns the upgrade adds to existing tables (posts' approval, every owned table's workspace),
#: and those later migrations add on the way to the head (posts' media check, 20261201001200; targets'
#: steps, 20261201001300)
NEW_KEYS = {"workspace_id", "approved_by", "approved_at", "media_warnings", "media_checked_at", "media_checked_for",
            "steps", "first_comment_error"}
#: how a row is named where it has no id
ROW_KEYS = {"idempotency_keys": "t.user_id::text || ' ' || t.key", "platform_pauses": "t.platform"}
#: (child, its column, the parent it names): a child belongs where its parent does
PARENTS = [
    ("posts", "parent_post_id", "posts"), ("post_targets", "post_id", "posts"), ("post_targets", "channel_id", "channels"),
    ("activity_logs", "post_id", "posts"), ("sandbox_outbox", "target_id", "post_targets"),
    ("sandbox_outbox", "channel_id", "channels"),
    ("webhook_deliveries", "endpoint_id", "webhook_endpoints"), ("webhook_deliveries", "event_id", "events"),
    ("webhook_attempts", "delivery_id", "webhook_deliveries"), ("webhook_attempts", "endpoint_id", "webhook_endpoints"),
    ("post_analytics", "target_id", "post_targets"), ("post_analytics", "post_id", "posts"),
    ("post_analytics", "channel_id", "channels"), ("post_comments", "post_id", "posts"),
    ("post_history", "post_id", "posts"),
]


@pytest.fixture
def empty_database():
    with new_database() as dsn:
        yield dsn


def without_new_keys(value):
    """An answer with the keys the upgrade added left out, wherever they appear."""
    if isinstance(value, dict):
        return {k: without_new_keys(v) for k, v in value.items() if k not in NEW_KEYS}
    if isinstance(value, list):
        return [without_new_keys(v) for v in value]
    return value


def herald_tables(db: psycopg.Connection) -> set[str]:
    return {t for (t,) in db.execute("select tablename from pg_tables where schemaname = 'herald'").fetchall()}


def every_row(db: psycopg.Connection) -> dict[str, dict[str, dict]]:
    """Every row of every table Herald had before workspaces, as JSON, by its id."""
    return {t: db.execute(sql.SQL("select coalesce(jsonb_object_agg({}, to_jsonb(t)), '{{}}') from {} t").format(
                sql.SQL(ROW_KEYS.get(t, "t.id::text")), sql.Identifier("herald", t))).fetchone()[0]
            for t in sorted(TABLES)}


def what_they_read(db: psycopg.Connection, user: uuid.UUID, mine: dict, workspace: str | None = None) -> dict:
    """Every read the API offers a user, on their own posts, channels and endpoints (in ``workspace``, named in
    the X-Workspace-Id header, if given)."""
    seen = {}
    with acting_as(db, "authenticated", user):
        if workspace is not None:
            db.execute("select set_config('request.headers', %s, true)", [json.dumps({"x-workspace-id": workspace})])
        seen["channels"] = call(db, "herald_list_channels_v1")
        seen["each channel"] = [call(db, "herald_get_channel_v1", p_channel_id=c) for c in mine["channels"]]
        seen["posts"] = call(db, "herald_list_posts_v1", p_limit=100)
        seen["recurring posts"] = call(db, "herald_list_posts_v1", p_recurring=True)
        for name, fn in [("each post", "herald_get_post_v1"), ("runs", "herald_list_runs_v1"),
                         ("comments", "herald_list_comments_v1"), ("history", "herald_post_history_v1"),
                         ("analytics", "herald_get_post_analytics_v1")]:
            seen[name] = [call(db, fn, p_post_id=p) for p in mine["posts"]]
        seen["activity"] = call(db, "herald_list_activity_v1", p_limit=1000)
        seen["outbox"] = call(db, "herald_list_outbox_v1", p_limit=1000)
        seen["statistics"] = call(db, "herald_post_statistics_v1")
        seen["statistics v2"] = call(db, "herald_post_statistics_v2", p_since=NOW - timedelta(days=1))
        seen["operations"] = call(db, "herald_operations_v1", p_now=NOW + timedelta(hours=2))
        seen["analytics summary"] = call(db, "herald_analytics_summary_v1", p_from=NOW - timedelta(days=1),
                                         p_to=NOW + timedelta(days=1))
        seen["webhooks"] = call(db, "herald_list_webhooks_v1")
        seen["each webhook"] = [call(db, "herald_get_webhook_v1", p_endpoint_id=w) for w in mine["webhooks"]]
        seen["deliveries"] = [call(db, "herald_list_deliveries_v1", p_endpoint_id=w) for w in mine["webhooks"]]
    return seen


def what_the_service_reads(db: psycopg.Connection) -> dict:
    with acting_as(db, "service_role"):
        return {"health": call(db, "herald_cron_health_v1", p_now=NOW),
                "health v2": call(db, "herald_cron_health_v2", p_now=NOW),
                "operations": call(db, "herald_service_operations_v1", p_now=NOW + timedelta(hours=2)),
                "due later": call(db, "herald_list_due_v1", p_now=NOW + timedelta(days=1), p_limit=100)}


def sqlstate_of(db: psycopg.Connection, user: uuid.UUID, workspace: str, fn: str, **args) -> str | None:
    """The SQLSTATE a user's call answers (None: it succeeded), in the workspace the header names."""
    try:
        with acting_as(db, "authenticated", user):
            db.execute("select set_config('request.headers', %s, true)", [json.dumps({"x-workspace-id": workspace})])
            call(db, fn, **args)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def write_a_deployments_data(db: psycopg.Connection) -> dict:
    """A deployment before workspaces: A with a bit of everything, B with a little, C with nothing; written
    through the functions as they were then (user and service role), and by direct SQL."""
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    db.execute("insert into auth.users (id, email) values (%s, 'a@herald.test'), (%s, 'b@herald.test'),"
               " (%s, 'c@herald.test')", [a, b, c])
    with acting_as(db, "authenticated", a):
        sandbox = call(db, "herald_create_channel_v1", p_platform="sandbox", p_account_id="a-sandbox", p_name="A",
                       p_credentials_encrypted="gAAAA-a-sandbox", p_metadata=Jsonb({"handle": "@a"}))["id"]
        hook = call(db, "herald_create_webhook_v1", p_url="https://hooks.example.com/a", p_events=["*"],
                    p_description="everything", p_secret_encrypted="gAAAA-a-whsec")["id"]
    with acting_as(db, "service_role"):  # the OAuth callback connects a second account
        mastodon = call(db, "herald_connect_channel_v1", p_user_id=a, p_platform="mastodon", p_account_id="42",
                        p_name="A on Mastodon", p_credentials_encrypted="gAAAA-a-mastodon",
                        p_token_expires_at=NOW + timedelta(days=30))["id"]
    with acting_as(db, "authenticated", a):
        call(db, "herald_update_channel_v1", p_channel_id=mastodon, p_name="A's Mastodon")
        created = call(db, "herald_create_posts_v1", p_idempotency_key="bulk-1", p_request_hash="hash-1",
                       p_posts=Jsonb([
                           {"content": {"text": "due now"}, "channel_ids": [sandbox, mastodon], "status": "scheduled",
                            "scheduled_at": (NOW - timedelta(minutes=1)).isoformat()},
                           {"content": {"text": "daily"}, "channel_ids": [sandbox], "status": "scheduled",
                            "scheduled_at": (NOW - timedelta(minutes=2)).isoformat(), "timezone": "Europe/Paris",
                            "rrule": "FREQ=DAILY"},
                           {"content": {"text": "later"}, "channel_ids": [sandbox], "status": "scheduled",
                            "scheduled_at": (NOW + timedelta(hours=1)).isoformat()},
                           {"content": {"text": "a draft"}, "channel_ids": [], "status": "draft"}]))
        due, daily, later, draft = (p["id"] for p in created["posts"])
        retry = call(db, "herald_create_post_v1", p_content=Jsonb({"text": "retried"}), p_channel_ids=[mastodon],
                     p_status="scheduled", p_scheduled_at=NOW - timedelta(minutes=3))["id"]
        call(db, "herald_update_post_v1", p_post_id=draft, p_changes=Jsonb({"content": {"text": "a better draft"}}),
             p_allowed_from=["draft"], p_action="edit")
        call(db, "herald_add_comment_v1", p_post_id=due, p_body="ready for review")
        call(db, "herald_test_webhook_v1", p_endpoint_id=hook)
    with acting_as(db, "authenticated", b):
        b_channel = call(db, "herald_create_channel_v1", p_platform="sandbox", p_account_id="b-sandbox", p_name="B",
                         p_credentials_encrypted="gAAAA-b-sandbox")["id"]
        b_draft = call(db, "herald_create_post_v1", p_content=Jsonb({"text": "B's draft"}), p_channel_ids=[b_channel],
                       p_status="draft")["id"]
        call(db, "herald_create_post_v1", p_content=Jsonb({"text": "B's next week"}), p_channel_ids=[b_channel],
             p_status="scheduled", p_scheduled_at=NOW + timedelta(days=7))
        call(db, "herald_add_comment_v1", p_post_id=b_draft, p_body="B's note")

    with acting_as(db, "service_role"):  # a publish run: A's three due posts
        claim = call(db, "herald_claim_due_posts_v2", p_now=NOW, p_limit=10, p_lease_seconds=60)
        claimed = {p["post"]["id"]: p for p in claim["posts"]}
        assert set(claimed) == {due, daily, retry}
        targets = {(p, t["channel_id"]): t["id"] for p, c in claimed.items() for t in c["post"]["targets"]}
        for post, text in [(due, "due now"), (daily, "daily")]:
            call(db, "herald_deliver_to_outbox_v1", p_id=uuid.uuid4(), p_channel_id=sandbox,
                 p_target_id=targets[(post, sandbox)], p_text=text, p_media=Jsonb([]), p_published_at=NOW)
        run = {"attempt": 1, "started_at": NOW.isoformat(), "finished_at": NOW.isoformat(), "duration_ms": 5}
        published = {"outcome": "published", "status": "published", "lag_ms": 60_000, **run}
        call(db, "herald_record_results_v2", p_now=NOW, p_results=Jsonb([
            {"post_id": due, "lease_id": claimed[due]["lease_id"], "status": "partial", "error": None, "released": [],
             "targets": [{"target_id": targets[(due, sandbox)], "platform_post_id": "p1", **published},
                         {"target_id": targets[(due, mastodon)], "outcome": "permanent", "status": "failed",
                          "error_class": "permanent", "error_code": "rejected", "error_message": "too long", **run}]},
            {"post_id": daily, "lease_id": claimed[daily]["lease_id"], "status": "published", "error": None,
             "released": [], "next_occurrence_at": (NOW + timedelta(days=1, minutes=-2)).isoformat(),
             "targets": [{"target_id": targets[(daily, sandbox)], "platform_post_id": "p2", **published}]},
            {"post_id": retry, "lease_id": claimed[retry]["lease_id"], "status": "scheduled", "error": "try again",
             "released": [], "next_attempt_at": (NOW + timedelta(minutes=5)).isoformat(),
             "targets": [{"target_id": targets[(retry, mastodon)], "outcome": "transient", "status": "pending",
                          "error_class": "transient", "error_message": "502", "http_status": 502, **run}]}]),
             p_cron_run=Jsonb({"id": str(uuid.uuid4()), "trigger": "vercel", "started_at": NOW.isoformat(),
                               "finished_at": NOW.isoformat(), "claimed": 3, "published": 2, "failed": 1,
                               "duration_ms": 9, "error": None}),
             p_pauses=Jsonb([{"channel_id": mastodon, "until": (NOW + timedelta(minutes=10)).isoformat(),
                              "reason": "429"},
                             {"platform": "mastodon", "until": (NOW + timedelta(minutes=10)).isoformat(),
                              "reason": "the app's daily limit"}]))
        # the webhook run: the events of that run (and the test event) to A's endpoint
        deliveries = call(db, "herald_claim_deliveries_v1", p_now=NOW, p_limit=10, p_lease_seconds=60)
        assert len(deliveries) == 5  # partial, published, retry_scheduled, rate_limited, the test
        call(db, "herald_record_deliveries_v1", p_now=NOW, p_attempts=Jsonb([
            {"delivery_id": deliveries[0]["id"], "succeeded": True, "http_status": 200, "duration_ms": 30,
             "attempted_at": NOW.isoformat()},
            {"delivery_id": deliveries[1]["id"], "succeeded": False, "http_status": 500, "duration_ms": 40,
             "error": "server error", "attempted_at": NOW.isoformat(),
             "next_attempt_at": (NOW + timedelta(minutes=1)).isoformat()}]))
        # an hour later, the analytics refresh reads both published targets
        read = call(db, "herald_claim_analytics_due_v1", p_now=NOW + timedelta(hours=1), p_limit=10, p_lease_seconds=60)
        assert len(read["targets"]) == 2
        call(db, "herald_record_analytics_v1", p_lease_id=read["lease_id"], p_now=NOW + timedelta(hours=1),
             p_readings=Jsonb([{"target_id": targets[(due, sandbox)], "outcome": "measured", "likes": 3,
                                "impressions": 120, "raw": {"favourites": 3}},
                               {"target_id": targets[(daily, sandbox)], "outcome": "measured", "likes": 1,
                                "comments": 2}]))

    # rows no function wrote: an older version's, or direct SQL
    direct = db.execute("insert into herald.posts (user_id, content, status) values (%s, '{\"text\": \"direct\"}',"
                        " 'draft') returning id::text", [a]).fetchone()[0]
    db.execute("insert into herald.post_targets (post_id, channel_id, user_id, platform) values (%s, %s, %s, 'sandbox')",
               [direct, sandbox, a])
    db.execute("insert into herald.activity_logs (user_id, event) values (%s, 'imported'), (null, 'maintenance')", [b])
    # kept when its post went: the outbox names a target that no longer exists
    db.execute("insert into herald.sandbox_outbox (id, user_id, channel_id, target_id, text, published_at)"
               " values (%s, %s, %s, %s, 'gone since', %s)", [uuid.uuid4(), b, b_channel, uuid.uuid4(),
                                                             NOW - timedelta(days=3)])
    return {"a": a, "b": b, "c": c, "sandbox": sandbox, "mastodon": mastodon, "due": due, "later": later,
            "draft": draft, "retry": retry}


def test_the_workspace_migration_moves_an_existing_deployments_data_intact(empty_database):
    """From a database made by the migrations before workspaces, holding rows in every table (written by
    the functions of that release and by direct SQL): after the upgrade every row is still there with the
    same values (only the new columns added), each user (one without any rows too) has one personal
    workspace they alone own, every row is in its user's personal workspace and every child row in its
    parent's; each user's reads answer what they answered before, with no X-Workspace-Id header, and show
    nothing of another user's, whose workspace answers 404; and the functions keep writing, the publish
    run claiming with the channels' credentials intact."""
    apply_schema(empty_database, until=BEFORE_WORKSPACES)  # a deployment as it stood
    with psycopg.connect(empty_database, autocommit=True) as db:
        assert herald_tables(db) == TABLES
        data = write_a_deployments_data(db)
        a, b, c = data["a"], data["b"], data["c"]
        rows = every_row(db)
        empty = sorted(t for t, found in rows.items() if not found)
        assert empty == []  # something in every table
        mine = {user: {"posts": sorted(k for k, r in rows["posts"].items() if r["user_id"] == str(user)),
                       "channels": sorted(k for k, r in rows["channels"].items() if r["user_id"] == str(user)),
                       "webhooks": sorted(k for k, r in rows["webhook_endpoints"].items()
                                          if r["user_id"] == str(user))}
                for user in (a, b)}
        assert [len(mine[a]["posts"]), len(mine[b]["posts"]), len(mine[b]["webhooks"])] == [7, 2, 0]
        read = {user: without_new_keys(what_they_read(db, user, mine[user])) for user in (a, b)}
        served = without_new_keys(what_the_service_reads(db))
        assert read[a]["posts"]["total"] == 7 and read[b]["posts"]["total"] == 2

    # the workspace migrations, then any later ones: the upgrade runs to the head
    assert apply_schema(empty_database)[:3] == ["20261201000900", "20261201001000", "20261201001100"]

    with psycopg.connect(empty_database, autocommit=True) as db:
        assert herald_tables(db) == TABLES | WORKSPACE_TABLES | LATER_TABLES

        # every row is still there, with the same values; the new columns are all the difference
        after = every_row(db)
        assert {t: {k: without_new_keys(r) for k, r in found.items()} for t, found in after.items()} == rows
        assert db.execute("select count(*) from herald.posts where approved_by is not null or approved_at is not null"
                          ).fetchone()[0] == 0

        # one personal workspace per user (C's too), its user its only member, an owner
        personal = dict(db.execute("select personal_of, id from herald.workspaces").fetchall())
        assert set(personal) == {a, b, c}
        members = sorted(db.execute("select workspace_id, user_id, role, approver from herald.workspace_members"
                                    ).fetchall())
        assert members == sorted((personal[u], u, "owner", False) for u in (a, b, c))
        assert db.execute("select count(*) from herald.workspace_invites").fetchone()[0] == 0
        assert db.execute("select count(*) from herald.workspaces where name <> 'Personal' or created_by <> personal_of"
                          ).fetchone()[0] == 0

        # every row in its user's personal workspace; only activity of no user in none
        with_workspace = {t for (t,) in db.execute(
            "select table_name from information_schema.columns where table_schema = 'herald'"
            " and column_name = 'workspace_id'").fetchall()}
        assert with_workspace == OWNED | {"workspace_members", "workspace_invites"}
        for table in sorted(OWNED):
            misplaced = db.execute(sql.SQL(
                "select {}, t.user_id, t.workspace_id from {} t left join herald.workspaces w on w.personal_of = t.user_id"
                " where t.workspace_id is distinct from w.id").format(
                    sql.SQL(ROW_KEYS.get(table, "t.id::text")), sql.Identifier("herald", table))).fetchall()
            assert misplaced == [], table
        assert db.execute("select count(*) from herald.activity_logs where workspace_id is null"
                          ).fetchone()[0] == 3  # the cron run, the platform's pause, the direct 'maintenance'
        # and every child where its parent is
        for child, column, parent in PARENTS:
            strays = db.execute(sql.SQL(
                "select c.{key}, c.workspace_id, p.workspace_id from {child} c join {parent} p on p.id = c.{column}"
                " where c.workspace_id is distinct from p.workspace_id").format(
                    key=sql.Identifier("id"), child=sql.Identifier("herald", child),
                    parent=sql.Identifier("herald", parent), column=sql.Identifier(column))).fetchall()
            assert strays == [], (child, column)

        # each user reads what they read before, with no header, and with their personal workspace named
        for user in (a, b):
            assert without_new_keys(what_they_read(db, user, mine[user])) == read[user]
            assert without_new_keys(what_they_read(db, user, mine[user], str(personal[user]))) == read[user]
        assert without_new_keys(what_the_service_reads(db)) == served
        # B: nothing of A's, through the functions or the tables; A's workspace named in the header is 404
        seen_by_b = json.dumps(what_they_read(db, b, mine[b]))
        assert [i for i in [*mine[a]["posts"], *mine[a]["channels"], *mine[a]["webhooks"], str(personal[a])]
                if i in seen_by_b] == []
        with acting_as(db, "authenticated", b):
            for table in sorted(OWNED):
                assert db.execute(sql.SQL("select count(*) from {} where workspace_id = %s").format(
                    sql.Identifier("herald", table)), [personal[a]]).fetchone()[0] == 0, table
        assert sqlstate_of(db, b, str(personal[b]), "herald_get_post_v1", p_post_id=data["due"]) == "HR404"
        for fn, args in [("herald_list_posts_v1", {}), ("herald_list_channels_v1", {}),
                         ("herald_list_activity_v1", {}), ("herald_get_post_v1", {"p_post_id": data["due"]}),
                         ("herald_list_comments_v1", {"p_post_id": data["due"]}),
                         ("herald_create_post_v1", {"p_content": Jsonb({"text": "x"}), "p_channel_ids": [],
                                                    "p_status": "draft"})]:
            assert sqlstate_of(db, b, str(personal[a]), fn, **args) == "HR404", fn
            # C sees no row anywhere, so RLS leaves nothing to filter: the workspace is checked first all the same
            assert sqlstate_of(db, c, str(personal[a]), fn, **args) == "HR404", fn

        # the functions keep writing, as A...
        with acting_as(db, "authenticated", a):
            replay = call(db, "herald_create_posts_v1", p_posts=Jsonb([{"content": {"text": "x"}, "status": "draft"}]),
                          p_idempotency_key="bulk-1", p_request_hash="hash-1")
            assert replay["replayed"] and len(replay["posts"]) == 4
            edited = call(db, "herald_update_post_v1", p_post_id=data["draft"], p_changes=Jsonb({
                "content": {"text": "edited after the upgrade"}}), p_allowed_from=["draft"], p_action="edit")
            assert edited["content"] == {"text": "edited after the upgrade"}
            new = call(db, "herald_create_post_v1", p_content=Jsonb({"text": "new"}), p_channel_ids=[data["sandbox"]],
                       p_status="scheduled", p_scheduled_at=NOW + timedelta(hours=3))
            assert new["workspace_id"] == str(personal[a]) and new["status"] == "scheduled"
            assert [t["workspace_id"] for t in new["targets"]] == [str(personal[a])]
            assert call(db, "herald_list_posts_v1", p_limit=100)["total"] == 8
            assert call(db, "herald_list_comments_v1", p_post_id=data["due"])["total"] == 1
        # ...and as the service role: A's due posts claimed with their channels' credentials intact
        with acting_as(db, "service_role"):
            claim = call(db, "herald_claim_due_posts_v2", p_now=NOW + timedelta(hours=2), p_limit=10,
                         p_lease_seconds=60)
            assert [p["post"]["id"] for p in claim["posts"]] == [data["retry"], data["later"]]
            credentials = {ch["id"]: ch["credentials_encrypted"] for p in claim["posts"] for ch in p["channels"]}
            assert credentials == {data["sandbox"]: "gAAAA-a-sandbox", data["mastodon"]: "gAAAA-a-mastodon"}
            again = call(db, "herald_connect_channel_v1", p_user_id=a, p_platform="mastodon", p_account_id="42",
                         p_name="Mastodon", p_credentials_encrypted="gAAAA-renewed")
            assert again["id"] == data["mastodon"] and again["workspace_id"] == str(personal[a])
