"""What Supabase's Data API can reach: every relation and function in the schemas that
``supabase/config.toml`` exposes, with what ``anon`` and ``authenticated`` may do to each.

PostgREST serves each of them at ``/rest/v1/<name>`` (``/rest/v1/rpc/<name>`` for a function) to
anyone with the anon key or a user's token, and pg_graphql reflects them, so the only thing allowed
there is EXECUTE on the documented API functions. Herald's tables live in ``herald`` and the
functions' helpers in ``herald_private``, neither of them exposed
(``supabase/migrations/20261201000100_private_schema.sql``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
API_CONFIG = tomllib.loads((ROOT / "supabase" / "config.toml").read_text())["api"]
EXPOSED = API_CONFIG["schemas"]
API_ROLES = ["anon", "authenticated"]
HERALD_SCHEMAS = ["public", "herald", "herald_private"]  # every schema Herald's migrations write to

#: The Data API, as the grants block at the end of 20261124000200_functions.sql hands it out (and
#: the later migrations for their new versions): the
#: user functions to authenticated (RLS scopes them to the caller's rows) and the health check to
#: both API roles. The service-role functions (the publish run, the OAuth callback) are not here:
#: neither API role may call them.
USER_FUNCTIONS = [
    "public.herald_create_channel_v1(text, text, text, text, jsonb, timestamptz)",
    "public.herald_list_channels_v1()",
    "public.herald_get_channel_v1(uuid)",
    "public.herald_delete_channel_v1(uuid, boolean)",
    "public.herald_update_channel_v1(uuid, text, jsonb, boolean)",
    "public.herald_create_post_v1(jsonb, uuid[], text, timestamptz, text, text)",
    "public.herald_create_posts_v1(jsonb, text, text)",
    "public.herald_get_post_v1(uuid)",
    "public.herald_list_posts_v1(text[], text, uuid, timestamptz, timestamptz, timestamptz, boolean, integer, integer)",
    "public.herald_update_post_v1(uuid, jsonb, text[], text)",
    "public.herald_delete_post_v1(uuid, text[])",
    "public.herald_resolve_target_v1(uuid, uuid, boolean, text)",
    "public.herald_list_runs_v1(uuid)",
    "public.herald_list_activity_v1(uuid, integer)",
    "public.herald_post_statistics_v1()",
    "public.herald_post_statistics_v2(timestamptz)",
    "public.herald_list_outbox_v1(integer)",
    "public.herald_create_webhook_v1(text, text[], text, text)",
    "public.herald_list_webhooks_v1()",
    "public.herald_get_webhook_v1(uuid)",
    "public.herald_update_webhook_v1(uuid, text[], text, text)",
    "public.herald_delete_webhook_v1(uuid)",
    "public.herald_test_webhook_v1(uuid)",
    "public.herald_list_deliveries_v1(uuid, integer, integer)",
    "public.herald_operations_v1(timestamptz)",
    "public.herald_get_post_analytics_v1(uuid)",
    "public.herald_analytics_summary_v1(timestamptz, timestamptz, text, uuid, integer)",
    "public.herald_add_comment_v1(uuid, text)",
    "public.herald_list_comments_v1(uuid, integer, integer)",
    "public.herald_post_history_v1(uuid, integer, integer)",
    "public.herald_approve_post_v1(uuid, boolean)",
    "public.herald_reject_post_v1(uuid, text)",
    "public.herald_list_workspaces_v1()",
    "public.herald_create_workspace_v1(text)",
    "public.herald_get_workspace_v1(uuid)",
    "public.herald_update_workspace_v1(uuid, text, boolean, boolean)",
    "public.herald_delete_workspace_v1(uuid)",
    "public.herald_list_members_v1(uuid)",
    "public.herald_update_member_v1(uuid, uuid, text, boolean)",
    "public.herald_remove_member_v1(uuid, uuid)",
    "public.herald_create_invite_v1(uuid, text, boolean, text, text, timestamptz)",
    "public.herald_list_invites_v1(uuid)",
    "public.herald_revoke_invite_v1(uuid, uuid)",
    "public.herald_accept_invite_v1(text)",
]
API = {**{fn: ["authenticated"] for fn in USER_FUNCTIONS}, "public.herald_ping_v1()": API_ROLES}

#: Supabase's own GraphQL entrypoint, on every hosted project (it comes with pg_graphql, so the local
#: bootstrap lacks it): open to both API roles, it serves only what pg_graphql reflects.
SUPABASE_ENTRYPOINTS = {"function graphql_public.graphql(text, text, jsonb, jsonb)"}

#: (object, role, privilege) for every privilege an API role holds on a relation or function in the
#: given schemas, whether granted to the role or to PUBLIC.
SURFACE = """
with api_roles (role) as (select unnest(%(roles)s::text[])),
relations as (
    select c.oid, c.relkind,
           case c.relkind when 'r' then 'table' when 'p' then 'partitioned table' when 'v' then 'view'
                          when 'm' then 'materialized view' when 'f' then 'foreign table' when 'S' then 'sequence'
           end || ' ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) as object
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
)
select r.object, a.role, g.privilege
  from relations r cross join api_roles a
 cross join lateral (
    select p from unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p
     where r.relkind <> 'S' and has_table_privilege(a.role, r.oid, p)
    union all  -- a column grant opens the table too
    select 'column ' || p from unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) p
     where r.relkind <> 'S' and has_any_column_privilege(a.role, r.oid, p)
    union all
    select p from unnest(array['USAGE', 'SELECT', 'UPDATE']) p
     where r.relkind = 'S' and has_sequence_privilege(a.role, r.oid, p)
 ) g (privilege)
union all
select 'function ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname)
       || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')', a.role, 'EXECUTE'
  from pg_proc p join pg_namespace n on n.oid = p.pronamespace cross join api_roles a
 where n.nspname = any(%(schemas)s) and has_function_privilege(a.role, p.oid, 'EXECUTE')
"""


def exposed_surface(conn: psycopg.Connection, schemas: list[str]) -> set[tuple[str, str, str]]:
    return {tuple(row) for row in conn.execute(SURFACE, {"roles": API_ROLES, "schemas": schemas}).fetchall()}


def documented_api(conn: psycopg.Connection) -> set[tuple[str, str, str]]:
    """API as the listing spells it; a documented function missing from the database fails here."""
    spelled = {}
    for fn in API:
        row = conn.execute("select 'function ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname)"
                           " || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')'"
                           " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
                           " where p.oid = to_regprocedure(%s)", [fn]).fetchone()
        assert row is not None, f"the documented function {fn} does not exist"
        spelled[fn] = row[0]
    return {(spelled[fn], role, "EXECUTE") for fn, roles in API.items() for role in roles}


def test_every_exposed_schema_exists(pg_catalog):
    # a schema missing here would make the listing below vacuously empty
    found = {r[0] for r in pg_catalog.execute("select nspname from pg_namespace where nspname = any(%s)",
                                              [EXPOSED]).fetchall()}
    assert found == set(EXPOSED)


def test_the_api_roles_reach_only_the_documented_functions(pg_catalog):
    found = exposed_surface(pg_catalog, EXPOSED)
    expected = documented_api(pg_catalog)
    supabase_own = {f for f in found if f[0] in SUPABASE_ENTRYPOINTS and f[2] == "EXECUTE"}
    assert sorted(found - expected - supabase_own) == [], "reachable through the Data API, and not an API function"
    assert sorted(expected - found) == [], "an API function its callers cannot execute"


def test_a_table_added_to_an_exposed_schema_by_mistake_is_reported(pg_database):
    """Supabase's default privileges open anything new in public to the API roles; RLS does not hide it."""
    with psycopg.connect(pg_database, autocommit=True) as conn:
        before = exposed_surface(conn, EXPOSED)
        conn.execute("create table public.notes (id bigserial primary key, body text)")
        conn.execute("alter table public.notes enable row level security")
        conn.execute("create view public.notes_view as select id from public.notes")
        conn.execute("create function public.notes_count() returns bigint language sql as 'select 1::bigint'")
        added = exposed_surface(conn, EXPOSED) - before
    assert {obj for obj, _, _ in added} == {"table public.notes", "sequence public.notes_id_seq",
                                            "view public.notes_view", "function public.notes_count()"}
    for role in API_ROLES:
        assert {("table public.notes", role, p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")} <= added
        assert ("function public.notes_count()", role, "EXECUTE") in added


def test_the_api_roles_cannot_truncate_reference_or_trigger_anything_of_heralds(pg_catalog):
    # TRUNCATE ignores RLS; REFERENCES and TRIGGER would let a role hang its own objects on a table
    found = exposed_surface(pg_catalog, HERALD_SCHEMAS)
    assert sorted(f for f in found if f[2] in {"TRUNCATE", "REFERENCES", "column REFERENCES", "TRIGGER"}) == []


def test_anon_reaches_nothing_in_the_private_schemas(pg_catalog):
    assert sorted(f for f in exposed_surface(pg_catalog, ["herald", "herald_private"]) if f[1] == "anon") == []
    usable = pg_catalog.execute("select has_schema_privilege('anon', 'herald', 'USAGE'),"
                                " has_schema_privilege('anon', 'herald_private', 'USAGE')").fetchone()
    assert usable == (False, False)


def test_the_private_schemas_stay_off_the_data_api_and_graphqls_search_path():
    # PostgREST serves [api].schemas; pg_graphql reflects every schema on the request's search_path,
    # which is the selected exposed schema plus extra_search_path
    private = {"herald", "herald_private"}
    assert private.isdisjoint(API_CONFIG["schemas"])
    assert private.isdisjoint(API_CONFIG.get("extra_search_path", []))
