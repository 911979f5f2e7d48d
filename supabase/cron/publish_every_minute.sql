-- Optional: Supabase Cron (pg_cron + pg_net) calls Herald's publish endpoint every minute.
-- Not a migration: run it once in the SQL editor of a Supabase project (where pg_cron, pg_net and
-- Vault exist), after replacing the two placeholders. The secret stays in Vault, never in the job.
-- pg_net gives up after 2 s by default, so the request sets 60 s; pg_net sends POST, which the
-- endpoint accepts. Check deliveries in net._http_response (status_code, timed_out, error_msg):
-- cron.job_run_details "succeeded" only means the request was queued.

create extension if not exists pg_cron;
create extension if not exists pg_net;

do $$
begin
    if to_regnamespace('cron') is null or to_regnamespace('net') is null or to_regnamespace('vault') is null then
        raise exception 'pg_cron, pg_net and Vault are needed: enable them in Database > Extensions';
    end if;
    if not exists (select from vault.secrets where name = 'herald_publish_url') then
        perform vault.create_secret('https://YOUR-APP.vercel.app/api/v1/cron/publish-scheduled', 'herald_publish_url');
    end if;
    if not exists (select from vault.secrets where name = 'herald_cron_secret') then
        perform vault.create_secret('REPLACE-WITH-YOUR-CRON_SECRET', 'herald_cron_secret');
    end if;
end
$$;

-- Same name again replaces the job.
select cron.schedule('herald-publish', '* * * * *', $job$
    select net.http_post(
        url := (select decrypted_secret from vault.decrypted_secrets where name = 'herald_publish_url'),
        headers := jsonb_build_object(
            'Content-Type', 'application/json',
            'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets
                                           where name = 'herald_cron_secret')),
        body := '{}'::jsonb,
        timeout_milliseconds := 60000
    );
$job$);
