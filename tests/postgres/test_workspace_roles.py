"""Workspaces on real Postgres: users of each role (and an outsider) try every operation, through the
API functions (the first wall: 403 naming the role, 404 for a workspace you are not in) and straight
at the tables as the ``authenticated`` role (the second wall: RLS by membership).

Each attempt runs in its own transaction, rolled back, so the attempts do not change one another's world.
"""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

ROLES = ["owner", "admin", "editor", "viewer"]
RANK = {"outsider": 0, "viewer": 1, "editor": 2, "admin": 3, "owner": 4}
LATER = datetime.now(timezone.utc) + timedelta(days=3)


@contextmanager
def acting_as(conn: psycopg.Connection, user_id: uuid.UUID, workspace_id: uuid.UUID | None):
    """One request as PostgREST runs it: role authenticated, the JWT's claims and the request's headers
    (X-Workspace-Id) as transaction settings; rolled back at the end."""
    headers = {"x-workspace-id": str(workspace_id)} if workspace_id else {}
    with conn.transaction():
        conn.execute("set local role authenticated")
        conn.execute("select set_config('request.jwt.claims', %s, true), set_config('request.headers', %s, true)",
                     [json.dumps({"role": "authenticated", "sub": str(user_id), "aud": "authenticated"}),
                      json.dumps(headers)])
        yield conn
        raise psycopg.Rollback()


def call(conn, fn: str, **args):
    named = sql.SQL(", ").join(sql.SQL("{} => %({})s").format(sql.Identifier(k), sql.SQL(k)) for k in args)
    return conn.execute(sql.SQL("select public.{}({})").format(sql.Identifier(fn), named), args).fetchone()[0]


@dataclass
class Team:
    workspace: uuid.UUID
    users: dict[str, uuid.UUID]  #: role (and "outsider") -> user id
    channel: str
    draft: str
    pending: str
    webhook: str


@pytest.fixture
def db(pg_database):
    with psycopg.connect(pg_database, autocommit=True) as conn:
        yield conn


@pytest.fixture
def team(db) -> Team:
    """A workspace with one member of each role, a channel, a draft, a post waiting for approval and a
    webhook endpoint; and an outsider with a workspace of their own."""
    users = {name: uuid.uuid4() for name in [*ROLES, "outsider"]}
    for user in users.values():
        db.execute("insert into auth.users (id, email) values (%s, %s)", [user, f"{user}@herald.test"])
    workspace = db.execute("insert into herald.workspaces (name, approval_required, created_by) values"
                           " ('Agency', true, %s) returning id", [users["owner"]]).fetchone()[0]
    for role in ROLES:
        db.execute("insert into herald.workspace_members (workspace_id, user_id, role) values (%s, %s, %s)",
                   [workspace, users[role], role])
    owner = users["owner"]
    with db.transaction():
        db.execute("set local role authenticated")
        db.execute("select set_config('request.jwt.claims', %s, true), set_config('request.headers', %s, true)",
                   [json.dumps({"role": "authenticated", "sub": str(owner)}),
                    json.dumps({"x-workspace-id": str(workspace)})])
        channel = call(db, "herald_create_channel_v1", p_platform="sandbox", p_account_id="acct", p_name="Agency",
                       p_credentials_encrypted="gAAAA-secret")
        draft = call(db, "herald_create_post_v1", p_content=Jsonb({"text": "draft"}), p_channel_ids=[channel["id"]],
                     p_status="draft")
        webhook = call(db, "herald_create_webhook_v1", p_url="https://hooks.example.com/h", p_events=["*"],
                       p_description=None, p_secret_encrypted="gAAAA-whsec")
        db.execute("reset role")
    # An editor's post, scheduled: it waits for approval.
    with db.transaction():
        db.execute("set local role authenticated")
        db.execute("select set_config('request.jwt.claims', %s, true), set_config('request.headers', %s, true)",
                   [json.dumps({"role": "authenticated", "sub": str(users["editor"])}),
                    json.dumps({"x-workspace-id": str(workspace)})])
        pending = call(db, "herald_create_post_v1", p_content=Jsonb({"text": "please approve"}),
                       p_channel_ids=[channel["id"]], p_status="scheduled", p_scheduled_at=LATER)
        db.execute("reset role")
    assert pending["status"] == "pending_approval"
    return Team(workspace, users, channel["id"], draft["id"], pending["id"], webhook["id"])


#: operation -> (the least role it needs, the call); "approver" = owner or admin here
OPERATIONS = {
    "list channels": ("viewer", lambda t: ("herald_list_channels_v1", {})),
    "get channel": ("viewer", lambda t: ("herald_get_channel_v1", {"p_channel_id": t.channel})),
    "list posts": ("viewer", lambda t: ("herald_list_posts_v1", {})),
    "get post": ("viewer", lambda t: ("herald_get_post_v1", {"p_post_id": t.draft})),
    "list runs": ("viewer", lambda t: ("herald_list_runs_v1", {"p_post_id": t.draft})),
    "list activity": ("viewer", lambda t: ("herald_list_activity_v1", {})),
    "statistics": ("viewer", lambda t: ("herald_post_statistics_v2", {"p_since": LATER - timedelta(days=30)})),
    "list comments": ("viewer", lambda t: ("herald_list_comments_v1", {"p_post_id": t.draft})),
    "history": ("viewer", lambda t: ("herald_post_history_v1", {"p_post_id": t.draft})),
    "list webhooks": ("viewer", lambda t: ("herald_list_webhooks_v1", {})),
    "list deliveries": ("viewer", lambda t: ("herald_list_deliveries_v1", {"p_endpoint_id": t.webhook})),
    "operations": ("viewer", lambda t: ("herald_operations_v1", {"p_now": LATER})),
    "post analytics": ("viewer", lambda t: ("herald_get_post_analytics_v1", {"p_post_id": t.draft})),
    "analytics summary": ("viewer", lambda t: ("herald_analytics_summary_v1", {
        "p_from": LATER - timedelta(days=30), "p_to": LATER})),
    "create post": ("editor", lambda t: ("herald_create_post_v1", {
        "p_content": Jsonb({"text": "new"}), "p_channel_ids": [t.channel], "p_status": "draft"})),
    "bulk create": ("editor", lambda t: ("herald_create_posts_v1", {
        "p_posts": Jsonb([{"content": {"text": "bulk"}, "channel_ids": [t.channel], "status": "draft"}])})),
    "edit post": ("editor", lambda t: ("herald_update_post_v1", {
        "p_post_id": t.draft, "p_changes": Jsonb({"content": {"text": "edited"}}),
        "p_allowed_from": ["draft"], "p_action": "edit"})),
    "delete post": ("editor", lambda t: ("herald_delete_post_v1", {"p_post_id": t.draft, "p_allowed_from": ["draft"]})),
    "comment": ("editor", lambda t: ("herald_add_comment_v1", {"p_post_id": t.draft, "p_body": "looks good"})),
    "connect channel": ("admin", lambda t: ("herald_create_channel_v1", {
        "p_platform": "sandbox", "p_account_id": "other", "p_name": "Other", "p_credentials_encrypted": "gAAAA-x"})),
    "edit channel": ("admin", lambda t: ("herald_update_channel_v1", {"p_channel_id": t.channel, "p_name": "Renamed"})),
    "pause channel": ("admin", lambda t: ("herald_update_channel_v1", {"p_channel_id": t.channel, "p_active": False})),
    "delete channel": ("admin", lambda t: ("herald_delete_channel_v1", {"p_channel_id": t.channel, "p_force": True})),
    "create webhook": ("admin", lambda t: ("herald_create_webhook_v1", {
        "p_url": "https://hooks.example.com/2", "p_events": ["*"], "p_description": None,
        "p_secret_encrypted": "gAAAA-2"})),
    "update webhook": ("admin", lambda t: ("herald_update_webhook_v1", {"p_endpoint_id": t.webhook,
                                                                         "p_status": "disabled"})),
    "test webhook": ("admin", lambda t: ("herald_test_webhook_v1", {"p_endpoint_id": t.webhook})),
    "delete webhook": ("admin", lambda t: ("herald_delete_webhook_v1", {"p_endpoint_id": t.webhook})),
    "approve": ("admin", lambda t: ("herald_approve_post_v1", {"p_post_id": t.pending})),
    "reject": ("admin", lambda t: ("herald_reject_post_v1", {"p_post_id": t.pending, "p_comment": "not yet"})),
}


@pytest.mark.parametrize("who", [*ROLES, "outsider"])
def test_each_role_may_do_what_its_role_allows_and_is_told_what_it_lacks(db, team, who):
    user = team.users[who]
    outcomes = {}
    for name, (_, make) in OPERATIONS.items():
        fn, args = make(team)
        try:
            with acting_as(db, user, team.workspace):
                call(db, fn, **args)
            outcomes[name] = "ok"
        except psycopg.Error as exc:
            outcomes[name] = (exc.sqlstate, exc.diag.message_primary)
    for name, (least, _) in OPERATIONS.items():
        got = outcomes[name]
        if who == "outsider":
            assert got == ("HR404", "workspace not found"), name
        elif RANK[who] >= RANK[least]:
            assert got == "ok", (name, got)
        else:
            assert got[0] == "HR403", (name, got)
            assert least in got[1] or "approver" in got[1], (name, got)
            assert who in got[1], (name, got)


def test_an_editor_connects_channels_only_where_the_workspace_allows_it(db, team):
    editor = team.users["editor"]
    connect = dict(p_platform="sandbox", p_account_id="editor-acct", p_name="Mine", p_credentials_encrypted="gAAAA-e")
    with pytest.raises(psycopg.Error) as refused, acting_as(db, editor, team.workspace):
        call(db, "herald_create_channel_v1", **connect)
    assert refused.value.sqlstate == "HR403"
    assert "editor role where the workspace lets editors connect channels" in refused.value.diag.message_primary
    db.execute("update herald.workspaces set editors_connect_channels = true where id = %s", [team.workspace])
    with acting_as(db, editor, team.workspace):
        channel = call(db, "herald_create_channel_v1", **connect)
        assert channel["workspace_id"] == str(team.workspace)


def test_an_approver_flag_lets_an_editor_approve(db, team):
    editor = team.users["editor"]
    with pytest.raises(psycopg.Error) as refused, acting_as(db, editor, team.workspace):
        call(db, "herald_approve_post_v1", p_post_id=team.pending)
    assert refused.value.sqlstate == "HR403"
    db.execute("update herald.workspace_members set approver = true where user_id = %s", [editor])
    with acting_as(db, editor, team.workspace):
        approved = call(db, "herald_approve_post_v1", p_post_id=team.pending)
    assert (approved["status"], approved["approved_by"]) == ("scheduled", str(editor))


def test_a_member_reading_with_no_header_reads_their_personal_workspace(db, team):
    with acting_as(db, team.users["editor"], None):
        assert call(db, "herald_list_posts_v1")["total"] == 0
        assert call(db, "herald_list_channels_v1") == []


def test_a_malformed_workspace_header_names_it(db, team):
    with pytest.raises(psycopg.Error) as bad, db.transaction():
        db.execute("set local role authenticated")
        db.execute("select set_config('request.jwt.claims', %s, true), set_config('request.headers', %s, true)",
                   [json.dumps({"role": "authenticated", "sub": str(team.users["owner"])}),
                    json.dumps({"x-workspace-id": "not-a-uuid"})])
        call(db, "herald_list_posts_v1")
    assert (bad.value.sqlstate, bad.value.diag.message_hint) == ("HR422", "X-Workspace-Id")


# --- the second wall: the tables themselves, as the authenticated role --------------------------

OWNED = ["channels", "posts", "post_targets", "activity_logs", "post_history", "webhook_endpoints"]


@pytest.mark.parametrize("who", [*ROLES, "outsider"])
def test_rls_shows_the_workspace_rows_to_its_members_only(db, team, who):
    with acting_as(db, team.users[who], None):
        for table in OWNED:
            seen = db.execute(sql.SQL("select count(*) from herald.{} where workspace_id = %s").format(
                sql.Identifier(table)), [team.workspace]).fetchone()[0]
            assert (seen > 0) == (who != "outsider"), table
        members = db.execute("select count(*) from herald.workspace_members where workspace_id = %s",
                             [team.workspace]).fetchone()[0]
        assert members == (4 if who != "outsider" else 0)
        invites = db.execute("select count(*) from herald.workspace_invites").fetchone()[0]
        assert invites == 0


@pytest.mark.parametrize("who", [*ROLES, "outsider"])
def test_rls_lets_only_editors_and_up_write_posts_and_only_admins_write_channels(db, team, who):
    user = team.users[who]

    def attempt(statement: str, args: list) -> str:
        try:
            with acting_as(db, user, None):
                changed = db.execute(statement, args).rowcount
            return "changed" if changed else "unchanged"
        except psycopg.errors.InsufficientPrivilege:
            return "refused"

    post_insert = attempt("insert into herald.posts (workspace_id, user_id, content, status)"
                          " values (%s, %s, '{}', 'draft')", [team.workspace, user])
    post_update = attempt("update herald.posts set content = '{\"text\": \"x\"}' where id = %s", [team.draft])
    post_delete = attempt("delete from herald.posts where id = %s", [team.draft])
    channel_update = attempt("update herald.channels set name = 'x' where id = %s", [team.channel])
    channel_delete = attempt("delete from herald.channels where id = %s", [team.channel])
    member_write = attempt("update herald.workspace_members set role = 'owner' where user_id = %s", [user])
    writes_posts = RANK[who] >= RANK["editor"]
    writes_channels = RANK[who] >= RANK["admin"]
    assert post_insert == ("changed" if writes_posts else "refused")
    assert post_update == ("changed" if writes_posts else "unchanged")
    assert post_delete == ("changed" if writes_posts else "unchanged")
    assert channel_update == ("changed" if writes_channels else "unchanged")
    assert channel_delete == ("changed" if writes_channels else "unchanged")
    assert member_write == "refused"  # memberships change through the checked functions only


def test_a_target_cannot_point_at_another_workspaces_channel(db, team):
    outsider = team.users["outsider"]
    with acting_as(db, outsider, None):
        mine = call(db, "herald_create_post_v1", p_content=Jsonb({"text": "mine"}), p_channel_ids=[],
                    p_status="draft")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute("insert into herald.post_targets (post_id, channel_id, user_id, platform, status)"
                       " values (%s, %s, %s, 'sandbox', 'pending')", [mine["id"], team.channel, outsider])


def test_the_cron_claims_an_approved_post_and_never_one_waiting(db, team):
    """The service role sees every workspace; what waits for approval is never due."""
    with db.transaction():
        db.execute("update herald.posts set scheduled_at = now() - interval '1 minute' where id = %s", [team.pending])
        db.execute("set local role service_role")
        claim = call(db, "herald_claim_due_posts_v2", p_now=datetime.now(timezone.utc), p_limit=50,
                     p_lease_seconds=60)
        assert team.pending not in [p["post"]["id"] for p in claim["posts"]]
        raise psycopg.Rollback()
    with acting_as(db, team.users["admin"], team.workspace):
        call(db, "herald_approve_post_v1", p_post_id=team.pending, p_publish_now=True)
        db.execute("reset role")
        db.execute("set local role service_role")
        claim = call(db, "herald_claim_due_posts_v2", p_now=datetime.now(timezone.utc) + timedelta(seconds=1),
                     p_limit=50, p_lease_seconds=60)
        assert team.pending in [p["post"]["id"] for p in claim["posts"]]
