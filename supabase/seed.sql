-- Local demo data for `supabase db reset` (never run against production): one demo user with a
-- sandbox channel and a post due in a minute, so the first cron call publishes something.
-- The CLI runs it only locally (`supabase start` / `db reset`; `db push` skips seeds unless told),
-- and it is guarded anyway: it does nothing on a database that already has any user, so it can
-- never add a demo account to a live project. Sign in as demo@herald.local to see it.

do $$
declare
    v_user uuid := '00000000-0000-4000-8000-00000000d3e0';
    v_channel uuid;
    v_post uuid;
begin
    if exists (select from auth.users) then
        raise notice 'seed.sql: this database already has users; nothing seeded';
        return;
    end if;

    insert into auth.users (id, email) values (v_user, 'demo@herald.local');

    -- The sandbox platform needs no credentials. The seed cannot know HERALD_ENCRYPTION_KEYS, so it
    -- stores none: an empty value is read as no credentials, where a placeholder would fail to decrypt.
    insert into public.channels (user_id, platform, account_id, name, credentials_encrypted)
    values (v_user, 'sandbox', 'demo', 'Sandbox (demo)', '')
    returning id into v_channel;

    insert into public.posts (user_id, content, scheduled_at, timezone, status)
    values (v_user, '{"text": "Hello from Herald", "media": [], "platforms": {}}', now() + interval '1 minute',
            'UTC', 'scheduled')
    returning id into v_post;

    insert into public.post_targets (post_id, channel_id, user_id, platform)
    values (v_post, v_channel, v_user, 'sandbox');

    insert into public.activity_logs (user_id, post_id, event, details)
    values (v_user, v_post, 'post.created', '{"status": "scheduled"}');
end
$$;
