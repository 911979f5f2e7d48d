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

grant usage on schema public, extensions, auth to anon, authenticated, service_role;
grant all on schema public to service_role;
grant select on auth.users to service_role;
grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;

-- Supabase: every new table, function and sequence in public is open to the API roles; RLS and
-- explicit revokes are the only restriction.
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
