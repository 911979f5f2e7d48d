-- Herald on Supabase Cron: call the publish endpoint every minute (pg_cron + pg_net + Vault).
--
-- Not a migration (tests and `supabase db push` never run it). Run it yourself, once per project:
--
--   1. In "settings" below, replace the two values: your deployment's publish URL and the
--      CRON_SECRET that Herald's environment has (at least 16 characters). The file refuses to
--      run while either is still the placeholder, so a rerun can never overwrite a real secret
--      with a placeholder.
--   2. Paste the whole file into the SQL editor of the Supabase project (Dashboard > SQL Editor)
--      and run it. It needs no psql commands.
--   3. A minute later, check that the calls arrive (see "Checking" at the end of this file).
--
-- Running it again is safe and is how you change anything: the two Vault secrets are updated in
-- place with vault.update_secret (a rotated CRON_SECRET or a new URL replaces the stored one;
-- nothing is duplicated), and cron.schedule with the same job name replaces the job.
-- To stop: select cron.unschedule('herald-publish');
--
-- The URL and the secret live only in Vault; the job reads them on every run, so the job's
-- text (visible in cron.job) holds no secret, and a rotation takes effect on the next minute.
--
-- Sources:
--   pg_cron:  Supabase docs, guides/cron/install (create extension pg_cron with schema
--             pg_catalog, and the two grants to postgres); guides/cron/quickstart ("Attempting
--             to create a second Job with the same name ... will overwrite the first Job").
--   pg_net:   Supabase docs, guides/database/extensions ("Most extensions are installed under
--             the extensions schema"); splinter lint 0014_extension_in_public. pg_net is not
--             relocatable (github.com/orgs/supabase/discussions/47079), hence the check below.
--   timeout:  supabase/pg_net sql/pg_net.sql (0.19): net.http_post(..., timeout_milliseconds int
--             default 5000); the default has been 5000 ms since the 0.7.3 -> 0.8.0 upgrade script
--             and is 5000 in every release Supabase ships today (0.15 and later). Some Supabase
--             doc pages still print 2000 or 1000: they are out of date.
--   Vault:    supabase/vault sql/supabase_vault--0.2.8--0.3.0.sql:
--             vault.create_secret(new_secret text, new_name text = null, new_description text = '', ...)
--               returns uuid;
--             vault.update_secret(secret_id uuid, new_secret text = null, new_name text = null,
--                                 new_description text = null, ...) returns void.

-- Extensions, as Supabase documents them. Both are no-ops when already enabled.
create extension if not exists pg_cron with schema pg_catalog;
grant usage on schema cron to postgres;
grant all privileges on all tables in schema cron to postgres;

create extension if not exists pg_net with schema extensions;

do $check$
declare
    v_schema text := (select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace
                      where e.extname = 'pg_net');
begin
    if not exists (select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                    where n.nspname = 'vault' and p.proname in ('create_secret', 'update_secret')
                    having count(distinct p.proname) = 2) then
        raise exception 'Supabase Vault is missing: enable "supabase_vault" in Database > Extensions, then run this file again';
    end if;
    -- An older project may have pg_net in public, where `if not exists` leaves it. It still works
    -- (its functions live in schema net either way), but the Security Advisor flags it.
    if v_schema <> 'extensions' then
        raise warning 'pg_net is installed in schema %, not extensions. The job works anyway. pg_net is not '
                      'relocatable: to move it, see github.com/orgs/supabase/discussions/47079 (it also '
                      'carries Database Webhooks, so do not simply drop it)', v_schema;
    end if;
end
$check$;

-- Settings: the two values to replace. Then the secrets are created, or updated in place.
do $settings$
declare
    -- Your deployment's publish endpoint, exactly (Herald never redirects, so no other path works).
    publish_url constant text := 'https://YOUR-APP.vercel.app/api/v1/cron/publish-scheduled';
    -- The CRON_SECRET from Herald's environment.
    cron_secret constant text := 'REPLACE-WITH-YOUR-CRON_SECRET';

    v_item record;
    v_id uuid;
    v_current text;
begin
    if publish_url like '%YOUR-APP%' or publish_url !~ '^https?://[^/]+/api/v1/cron/publish-scheduled/?$' then
        raise exception 'publish_url is %: set it to https://<your deployment>/api/v1/cron/publish-scheduled',
            quote_literal(publish_url);
    end if;
    if cron_secret like 'REPLACE-WITH%' or length(cron_secret) < 16 then
        raise exception 'cron_secret is still the placeholder or shorter than 16 characters: '
                        'set it to the CRON_SECRET of Herald''s environment';
    end if;

    for v_item in
        select * from (values
            ('herald_publish_url', publish_url, 'Herald: publish endpoint called by the herald-publish cron job'),
            ('herald_cron_secret', cron_secret, 'Herald: CRON_SECRET sent as Authorization: Bearer by herald-publish')
        ) as s (name, value, description)
    loop
        select id, decrypted_secret into v_id, v_current
          from vault.decrypted_secrets where name = v_item.name;
        if v_id is null then
            perform vault.create_secret(v_item.value, v_item.name, v_item.description);
            raise notice 'Vault secret % created', v_item.name;
        elsif v_current is distinct from v_item.value then
            -- A placeholder from an earlier run, or a rotated secret: the new value replaces it.
            perform vault.update_secret(v_id, v_item.value, null, v_item.description);
            raise notice 'Vault secret % updated', v_item.name;
        else
            raise notice 'Vault secret % unchanged', v_item.name;
        end if;
    end loop;
end
$settings$;

-- The job. Same name again replaces it, so running this file twice leaves one job.
-- pg_net sends a POST after the job's transaction commits, so the job itself ends at once; the
-- request then waits up to timeout_milliseconds for Herald's answer. A run takes at most
-- RUN_BUDGET_SECONDS (50 s by default) plus its last store calls, and vercel.json gives the
-- function 60 s, hence 60000 ms (pg_net's 5000 ms default would log every longer run as a timeout,
-- though the run itself goes on). If you raise RUN_BUDGET_SECONDS, raise this with it.
select cron.schedule(
    'herald-publish',
    '* * * * *',
    $job$
    select net.http_post(
        url := (select decrypted_secret from vault.decrypted_secrets where name = 'herald_publish_url'),
        headers := jsonb_build_object(
            'Content-Type', 'application/json',
            'X-Herald-Trigger', 'supabase-cron',
            'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets
                                           where name = 'herald_cron_secret')),
        body := '{}'::jsonb,
        timeout_milliseconds := 60000
    );
    $job$
);

-- Checking (run these yourself):
--   select jobid, jobname, schedule, active from cron.job where jobname = 'herald-publish';
--   select status, return_message, start_time from cron.job_run_details
--    where jobid = (select jobid from cron.job where jobname = 'herald-publish')
--    order by start_time desc limit 5;
--     ("succeeded" there only means the request was queued.)
--   select id, status_code, timed_out, error_msg, left(content, 200), created from net._http_response
--    order by created desc limit 5;
--     (200 is a run; 401 is a wrong secret; 503 means Herald has no CRON_SECRET. Kept 6 hours.)
