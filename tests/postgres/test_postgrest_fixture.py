"""The Data API fixture answers like Supabase's gateway and PostgREST, and SupabaseStore maps those answers.

Tests that write nothing share one clone per module (``http``); those that make scratch tables, views,
functions or rows take their own (``own_http`` and ``admin`` on ``pg_database``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import httpx
import jwt
import psycopg
import pytest
from postgrest import AsyncPostgrestClient
from psycopg.conninfo import make_conninfo

from services.domain.models import User
from services.errors import AuthenticationError, StoreError
from services.store.supabase import SupabaseStore
from tests.support.postgrest import PostgrestRpc, exposed_schemas
from tests.support.supabase_fixtures import ANON_KEY, JWT_SECRET, SERVICE_ROLE_KEY, SUPABASE_URL, cloned_database, user_token

#: Every table Herald keeps; none may be reachable at /rest/v1/<table>.
HERALD_TABLES = ["channels", "posts", "post_targets", "post_runs", "activity_logs", "cron_runs",
                 "sandbox_outbox", "idempotency_keys"]


@pytest.fixture(scope="module")
def shared_database(herald_template):
    """One clone for this module's tests that write nothing (a clone costs about half a second)."""
    with cloned_database(herald_template) as dsn:
        yield dsn


@pytest.fixture
async def http(shared_database):
    rpc = PostgrestRpc(make_conninfo(shared_database, user="authenticator"), JWT_SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rpc.app), base_url=SUPABASE_URL) as client:
        yield client
    await rpc.close()


@pytest.fixture
async def own_http(postgrest_rpc):
    """The app on this test's own clone (``pg_database``)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=postgrest_rpc.app), base_url=SUPABASE_URL) as client:
        yield client


@pytest.fixture
def admin(pg_database):
    with psycopg.connect(pg_database, autocommit=True) as conn:
        yield conn


def headers(token: str | None, apikey: str | None = ANON_KEY, **extra: str) -> dict[str, str]:
    bearer = {"Authorization": f"Bearer {token}"} if token else {}
    return {**bearer, **({"apikey": apikey} if apikey else {}), **extra}


def new_user(admin: psycopg.Connection) -> str:
    """A user in auth.users; returns their access token."""
    user_id = uuid.uuid4()
    admin.execute("insert into auth.users (id, email) values (%s, %s)", [user_id, f"{user_id}@herald.test"])
    return user_token(user_id)


# --- the gateway: apikey -------------------------------------------------------------------------

async def test_a_request_without_an_apikey_gets_the_gateways_401(http):
    for path in ["/rest/v1/rpc/herald_ping_v1", "/rest/v1/posts"]:
        response = await http.post(path, json={}, headers=headers(ANON_KEY, apikey=None))
        assert response.status_code == 401, path
        assert response.json() == {"message": "No API key found in request",
                                   "hint": "No `apikey` request header or url param was found."}


@pytest.mark.parametrize("apikey", [
    "not-a-jwt",
    jwt.encode({"role": "anon"}, "another-secret-of-thirty-two-bytes!!"),   # not signed by this project
    user_token(uuid.uuid4()),                                                  # signed, but a user's token
    jwt.encode({"iss": "supabase", "role": "postgres"}, JWT_SECRET),           # signed, not an API role
])
async def test_a_wrong_apikey_gets_the_gateways_401(http, apikey):
    response = await http.post("/rest/v1/rpc/herald_ping_v1", json={}, headers=headers(SERVICE_ROLE_KEY, apikey=apikey))
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid API key",
                               "hint": "Double check your Supabase `anon` or `service_role` API key."}


async def test_without_authorization_the_apikey_is_the_bearer(http):
    body = {"p_now": "2030-01-01T00:00:00+00:00"}
    service = await http.post("/rest/v1/rpc/herald_count_due_v1", json=body, headers=headers(None, SERVICE_ROLE_KEY))
    assert service.status_code == 200
    anon = await http.post("/rest/v1/rpc/herald_count_due_v1", json=body, headers=headers(None, ANON_KEY))
    assert anon.status_code == 401 and anon.json()["code"] == "42501"  # insufficient privilege, anonymous: 401


# --- PostgREST: JWT, rpc, errors ------------------------------------------------------------------

@pytest.mark.parametrize(("token", "code"), [
    ("not-a-jwt", "PGRST301"),                                                        # garbage
    (jwt.encode({"role": "service_role"}, "another-secret-of-thirty-two-bytes!!"), "PGRST301"),  # forged
    (user_token(uuid.uuid4(), expires_in=-60), "PGRST303"),                             # expired
])
async def test_a_bad_jwt_is_a_401_with_postgrests_code(http, token, code):
    response = await http.post("/rest/v1/rpc/herald_ping_v1", json={}, headers=headers(token))
    assert response.status_code == 401 and response.json()["code"] == code


async def test_a_user_calling_a_cron_function_gets_403_insufficient_privilege(http):
    response = await http.post("/rest/v1/rpc/herald_count_due_v1", json={"p_now": "2030-01-01T00:00:00+00:00"},
                               headers=headers(user_token(uuid.uuid4())))
    assert response.status_code == 403 and response.json()["code"] == "42501"


async def test_a_missing_function_is_pgrst202_with_postgrests_message(http):
    response = await http.post("/rest/v1/rpc/herald_nope_v1", json={}, headers=headers(SERVICE_ROLE_KEY))
    assert response.status_code == 404
    assert response.json() == {
        "code": "PGRST202", "hint": None,
        "message": "Could not find the function public.herald_nope_v1 without parameters in the schema cache",
        "details": "Searched for the function public.herald_nope_v1 without parameters or with a single unnamed"
                   " json/jsonb parameter, but no matches were found in the schema cache."}
    response = await http.post("/rest/v1/rpc/herald_count_due_v1", json={"p_when": "x", "p_now": "x"},
                               headers=headers(SERVICE_ROLE_KEY))
    assert response.status_code == 404 and response.json()["code"] == "PGRST202"
    assert response.json()["message"] == ("Could not find the function public.herald_count_due_v1(p_now, p_when)"
                                          " in the schema cache")
    response = await http.post("/rest/v1/rpc/pg_sleep; --", json={}, headers=headers(SERVICE_ROLE_KEY))
    assert response.status_code == 404 and response.json()["code"] == "PGRST202"


async def test_sql_errors_come_back_in_postgrests_shape(http):
    response = await http.post("/rest/v1/rpc/herald_get_post_v1", json={"p_post_id": str(uuid.uuid4())},
                               headers=headers(user_token(uuid.uuid4())))
    assert response.status_code == 400
    assert response.json() == {"code": "HR404", "message": "post not found", "details": None, "hint": "post_id"}


async def test_void_functions_answer_204(http):
    response = await http.post("/rest/v1/rpc/herald_mark_sending_v1",
                               json={"p_target_ids": [], "p_now": "2030-01-01T00:00:00+00:00"},
                               headers=headers(SERVICE_ROLE_KEY))
    assert response.status_code == 204


# --- read-only transactions -----------------------------------------------------------------------

async def test_stable_functions_and_gets_run_read_only(own_http, admin):
    admin.execute("""
        create table public.scratch_notes (note text);
        create function public.scratch_write(p_note text) returns void language plpgsql volatile as $$
        begin insert into public.scratch_notes values (p_note); end $$;
        -- STABLE, yet it writes (through a volatile helper, which PostgreSQL lets it call)
        create function public.scratch_stable_write(p_note text) returns int language plpgsql stable as $$
        begin perform public.scratch_write(p_note); return 1; end $$;
        create sequence public.scratch_counter;
        create view public.scratch_callcounter as select nextval('public.scratch_counter') as n;
        grant insert on public.scratch_notes to authenticated;
        grant execute on function public.scratch_write(text), public.scratch_stable_write(text) to authenticated;
        grant select on public.scratch_callcounter to authenticated;
        grant usage on sequence public.scratch_counter to authenticated;
    """)
    user = headers(new_user(admin))
    stable = await own_http.post("/rest/v1/rpc/scratch_stable_write", json={"p_note": "stable"}, headers=user)
    assert stable.status_code == 405
    assert stable.json()["code"] == "25006"
    assert stable.json()["message"] == "cannot execute INSERT in a read-only transaction"
    volatile = await own_http.post("/rest/v1/rpc/scratch_write", json={"p_note": "volatile"}, headers=user)
    assert volatile.status_code == 204
    assert admin.execute("select array_agg(note) from public.scratch_notes").fetchone()[0] == ["volatile"]
    # PostgREST's own example: a view that writes, read with GET.
    view = await own_http.get("/rest/v1/scratch_callcounter", headers=user)
    assert view.status_code == 405
    assert view.json()["message"] == "cannot execute nextval() in a read-only transaction"


# --- statement timeouts ---------------------------------------------------------------------------

async def test_each_api_role_has_supabases_statement_timeout_and_a_call_past_it_is_cancelled(own_http, admin):
    # A test-only role with a 50 ms timeout shows the cancellation without waiting anon's 3 s. Roles are
    # cluster-wide: it is made once, by whichever test session comes first.
    admin.execute("""
        do $$
        begin
            create role herald_test_hasty nologin noinherit;
            alter role herald_test_hasty set statement_timeout = '50ms';
            grant herald_test_hasty to authenticator;
        exception when duplicate_object or unique_violation then null;
        end $$;
        create function public.scratch_timeout() returns text language sql stable as $$
            select current_setting('statement_timeout') $$;
        create function public.scratch_sleep(p_seconds float8) returns void language sql as $$
            select pg_sleep(p_seconds) $$;
        grant usage on schema public to herald_test_hasty;
        grant execute on function public.scratch_timeout() to anon, authenticated, service_role;
        grant execute on function public.scratch_sleep(float8) to herald_test_hasty;
    """)
    hasty = jwt.encode({"role": "herald_test_hasty"}, JWT_SECRET)
    started = datetime.now(timezone.utc)
    response = await own_http.post("/rest/v1/rpc/scratch_sleep", json={"p_seconds": 4}, headers=headers(hasty))
    assert (datetime.now(timezone.utc) - started).total_seconds() < 2
    assert response.status_code == 500  # class 57, operator intervention
    assert response.json()["code"] == "57014"
    assert response.json()["message"] == "canceling statement due to statement timeout"

    # Each role's setting lasts its own transaction, on the same pooled session.
    seen = {}
    for role, token in [("anon", ANON_KEY), ("authenticated", new_user(admin)), ("service_role", SERVICE_ROLE_KEY)]:
        response = await own_http.post("/rest/v1/rpc/scratch_timeout", json={}, headers=headers(token))
        assert response.status_code == 200, response.text
        seen[role] = response.json()
    # service_role has no setting of its own: it keeps the authenticator session's.
    assert seen == {"anon": "3s", "authenticated": "8s", "service_role": "8s"}


# --- table routes ---------------------------------------------------------------------------------

@pytest.fixture
def scratch_table(admin):
    """A user-owned table in public, open to authenticated as Supabase's defaults would leave it, RLS on."""
    admin.execute("""
        create table public.scratch_notes (
            id uuid primary key default gen_random_uuid(),
            owner uuid not null default auth.uid(),
            body text not null
        );
        alter table public.scratch_notes enable row level security;
        create policy scratch_owner on public.scratch_notes for all to authenticated
            using (owner = auth.uid()) with check (owner = auth.uid());
        revoke all on public.scratch_notes from anon;
        grant select, insert, update, delete on public.scratch_notes to authenticated;
    """)


async def test_table_routes_read_and_write_as_the_jwts_role_with_rls(own_http, admin, scratch_table):
    alice_token = new_user(admin)
    alice, bob = headers(alice_token), headers(new_user(admin))
    wanted = {"Prefer": "return=representation"}
    created = await own_http.post("/rest/v1/scratch_notes", json={"body": "hello"}, headers={**alice, **wanted})
    assert created.status_code == 201
    [note] = created.json()
    assert note["body"] == "hello"
    assert note["owner"] == jwt.decode(alice_token, options={"verify_signature": False})["sub"]
    quiet = await own_http.post("/rest/v1/scratch_notes", json=[{"body": "second"}, {"body": "third"}], headers=alice)
    assert quiet.status_code == 201 and quiet.content == b""

    assert len((await own_http.get("/rest/v1/scratch_notes?select=*", headers=alice)).json()) == 3
    assert (await own_http.get(f"/rest/v1/scratch_notes?id=eq.{note['id']}", headers=alice)).json() == [note]
    assert (await own_http.get("/rest/v1/scratch_notes", headers=bob)).json() == []  # RLS: not his rows

    url = f"/rest/v1/scratch_notes?id=eq.{note['id']}"
    stolen = await own_http.patch(url, json={"body": "mine"}, headers={**bob, **wanted})
    assert stolen.status_code == 200 and stolen.json() == []
    edited = await own_http.patch(url, json={"body": "edited"}, headers={**alice, **wanted})
    assert edited.status_code == 200 and [n["body"] for n in edited.json()] == ["edited"]

    anon = await own_http.get("/rest/v1/scratch_notes", headers=headers(ANON_KEY))
    assert anon.status_code == 401 and anon.json()["code"] == "42501"  # no grant to anon

    deleted = await own_http.delete(f"/rest/v1/scratch_notes?id=eq.{note['id']}", headers=alice)
    assert deleted.status_code == 204
    assert admin.execute("select count(*) from public.scratch_notes").fetchone()[0] == 2

    unsupported = await own_http.get("/rest/v1/scratch_notes?body=like.h*", headers=alice)
    assert unsupported.status_code == 400 and unsupported.json()["code"] == "PGRST100"

    # The same through supabase-py, as a dashboard's client would send it.
    client = AsyncPostgrestClient(f"{SUPABASE_URL}/rest/v1", http_client=own_http,
                                  headers={"apikey": ANON_KEY, "Authorization": alice["Authorization"]})
    inserted = await client.from_("scratch_notes").insert({"body": "via supabase-py"}).execute()
    read = await client.from_("scratch_notes").select("*").eq("id", inserted.data[0]["id"]).execute()
    assert [n["body"] for n in read.data] == ["via supabase-py"]


async def test_profiles_choose_among_the_exposed_schemas_only(http):
    schemas, _ = exposed_schemas()
    user = headers(user_token(uuid.uuid4()))
    for method, path, header in [("GET", "/rest/v1/users", "Accept-Profile"),
                                 ("POST", "/rest/v1/rpc/herald_ping_v1", "Content-Profile")]:
        response = await http.request(method, path, json={} if method == "POST" else None,
                                      headers={**user, header: "auth"})
        assert response.status_code == 406, path
        assert response.json() == {"code": "PGRST106", "message": "Invalid schema: auth", "details": None,
                                   "hint": f"Only the following schemas are exposed: {', '.join(schemas)}"}
    response = await http.get("/rest/v1/no_such_table", headers={**user, "Accept-Profile": schemas[0]})
    assert response.status_code == 404
    assert response.json() == {"code": "PGRST205", "details": None, "hint": None,
                               "message": f"Could not find the table '{schemas[0]}.no_such_table' in the schema cache"}


def _attack(table: str, user_id: str) -> dict:
    """A row a signed-in user would like to write into ``table`` (the first key doubles as the filter)."""
    now, some_id = "2030-01-01T00:00:00+00:00", str(uuid.uuid4())
    return {
        "channels": {"user_id": user_id, "platform": "sandbox", "account_id": "mine", "name": "mine",
                     "credentials_encrypted": "not-encrypted"},
        "posts": {"user_id": user_id, "content": {"media": [{}]}, "status": "scheduled", "scheduled_at": now},
        "post_targets": {"user_id": user_id, "post_id": some_id, "platform": "sandbox", "status": "published"},
        "post_runs": {"post_id": some_id, "target_id": some_id, "attempt": 1, "outcome": "published",
                      "started_at": now, "finished_at": now, "duration_ms": 1},
        "activity_logs": {"user_id": user_id, "event": "post.published"},
        "cron_runs": {"id": some_id, "trigger": "forged", "started_at": now, "finished_at": now, "claimed": 0,
                      "published": 0, "failed": 0, "remaining_due": 0, "duration_ms": 0},
        "sandbox_outbox": {"user_id": user_id, "id": some_id, "target_id": some_id, "text": "forged",
                           "published_at": now},
        "idempotency_keys": {"user_id": user_id, "key": "forged", "post_ids": []},
    }[table]


async def test_a_signed_in_user_cannot_reach_herald_tables_through_the_data_api(http):
    # What any user of a deployment can send: the public anon key and their own access token.
    user_id = uuid.uuid4()
    user = headers(user_token(user_id), Prefer="return=representation")
    answers = {}
    for table in HERALD_TABLES:
        row = _attack(table, str(user_id))
        column, value = next(iter(row.items()))
        for method, url, body in [("GET", f"/rest/v1/{table}?select=*", None), ("POST", f"/rest/v1/{table}", row),
                                  ("PATCH", f"/rest/v1/{table}?{column}=eq.{value}", row),
                                  ("DELETE", f"/rest/v1/{table}?{column}=eq.{value}", None)]:
            response = await http.request(method, url, json=body, headers=user)
            answers[method, table] = (response.status_code, response.json().get("code") if response.content else None)
    # Refused by the API surface itself: not in an exposed schema (PGRST205), or no privilege (42501).
    refused = {(404, "PGRST205"), (403, "42501")}
    reached = {attempt: answer for attempt, answer in answers.items() if answer not in refused}
    assert reached == {}


# --- SupabaseStore on these answers ---------------------------------------------------------------

async def test_store_maps_refused_credentials_and_unexpected_errors(http):
    store = SupabaseStore(SUPABASE_URL, SERVICE_ROLE_KEY, ANON_KEY, http=http)
    await store.ping()
    expired = User(id=uuid.uuid4(), token=user_token(uuid.uuid4(), expires_in=-60))
    with pytest.raises(AuthenticationError):
        await store.list_channels(expired)
    # A service key that is not one (a user's role, signed with the project's secret): the gateway refuses it.
    broken = SupabaseStore(SUPABASE_URL, jwt.encode({"role": "authenticated"}, JWT_SECRET), ANON_KEY, http=http)
    with pytest.raises(StoreError) as err:
        await broken.count_due(now=datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert JWT_SECRET not in err.value.message
