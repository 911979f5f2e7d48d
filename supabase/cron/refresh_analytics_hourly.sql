-- Herald on Supabase Cron: call the analytics refresh endpoint every hour (pg_cron + pg_net + Vault).
--
-- Not a migration (tests and `supabase db push` never run it). Run it yourself, once per project,
-- after publish_every_minute.sql (this job reuses the CRON_SECRET that file keeps in Vault):
--
--   1. In "settings" below, replace the one value: your deployment's refresh-analytics URL. The
--      file refuses to run while it is still the placeholder, or while Vault holds no
--      herald_cron_secret (run publish_every_minute.sql first).
--   2. Paste the whole file into the SQL editor of the Supabase project (Dashboard > SQL Editor)
--      and run it.
--   3. After the next half hour, check that the calls arrive (see "Checking" at the end).
--
-- Running it again is safe: the URL is updated in place in Vault, and cron.schedule with the same
-- job name replaces the job. Rotating CRON_SECRET is done by running publish_every_minute.sql
-- again: both jobs read the one secret from Vault on every run. To stop:
-- select cron.unschedule('herald-refresh-analytics');
--
-- Why hourly, at minute 30: a target's figures are read hourly in its first day, daily until day
-- 30, then never, so an hourly call is the finest step that matters; half past keeps the reads
-- away from the top of the hour, when most posts are due and publishing needs the accounts' limits.
-- A call with nothing due answers at once.
--
-- Sources: as in publish_every_minute.sql (pg_cron, pg_net's 5000 ms default timeout, Vault).

create extension if not exists pg_cron with schema pg_catalog;
grant usage on schema cron to postgres;
grant all privileges on all tables in schema cron to postgres;

create extension if not exists pg_net with schema extensions;

do $settings$
declare
    -- Your deployment's analytics endpoint, exactly (Herald never redirects, so no other path works).
    analytics_url constant text := 'https://YOUR-APP.vercel.app/api/v1/cron/refresh-analytics';

    v_id uuid;
    v_current text;
begin
    if not exists (select from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                    where n.nspname = 'vault' and p.proname in ('create_secret', 'update_secret')
                    having count(distinct p.proname) = 2) then
        raise exception 'Supabase Vault is missing: enable "supabase_vault" in Database > Extensions, then run this file again';
    end if;
    if analytics_url like '%YOUR-APP%' or analytics_url !~ '^https?://[^/]+/api/v1/cron/refresh-analytics/?$' then
        raise exception 'analytics_url is %: set it to https://<your deployment>/api/v1/cron/refresh-analytics',
            quote_literal(analytics_url);
    end if;
    if not exists (select from vault.decrypted_secrets where name = 'herald_cron_secret') then
        raise exception 'Vault holds no herald_cron_secret: run supabase/cron/publish_every_minute.sql first';
    end if;

    select id, decrypted_secret into v_id, v_current from vault.decrypted_secrets where name = 'herald_analytics_url';
    if v_id is null then
        perform vault.create_secret(analytics_url, 'herald_analytics_url',
                                    'Herald: analytics endpoint called by the herald-refresh-analytics cron job');
        raise notice 'Vault secret herald_analytics_url created';
    elsif v_current is distinct from analytics_url then
        perform vault.update_secret(v_id, analytics_url, null,
                                    'Herald: analytics endpoint called by the herald-refresh-analytics cron job');
        raise notice 'Vault secret herald_analytics_url updated';
    else
        raise notice 'Vault secret herald_analytics_url unchanged';
    end if;
end
$settings$;

-- The job. Same name again replaces it. A refresh takes at most RUN_BUDGET_SECONDS (50 s by
-- default) plus its last store call, and vercel.json gives the function 60 s, hence 60000 ms
-- (pg_net's 5000 ms default would log every longer call as a timeout, though the run goes on).
select cron.schedule(
    'herald-refresh-analytics',
    '30 * * * *',
    $job$
    select net.http_post(
        url := (select decrypted_secret from vault.decrypted_secrets where name = 'herald_analytics_url'),
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
--   select jobid, jobname, schedule, active from cron.job where jobname = 'herald-refresh-analytics';
--   select status, return_message, start_time from cron.job_run_details
--    where jobid = (select jobid from cron.job where jobname = 'herald-refresh-analytics')
--    order by start_time desc limit 5;
--   select id, status_code, timed_out, error_msg, left(content, 200), created from net._http_response
--    order by created desc limit 5;
--     (200 answers {"claimed", "measured", ...}; 401 is a wrong secret; 503 means Herald has no CRON_SECRET.)
