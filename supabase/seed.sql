-- Local demo data for `supabase start` / `supabase db reset` (never run against production): a demo
-- user who can sign in, with a sandbox channel and a post due in a minute, so the first cron call
-- publishes something.
--
-- Sign in as the demo user:  email demo@herald.local   password herald-demo-password
--   curl -s "http://127.0.0.1:54321/auth/v1/token?grant_type=password" \
--        -H "apikey: <anon or publishable key from `supabase status`>" -H "Content-Type: application/json" \
--        -d '{"email": "demo@herald.local", "password": "herald-demo-password"}'
--   (or supabase.auth.sign_in_with_password({...}) in a client); the answer's access_token is the
--   Bearer token for Herald's API.
--
-- The CLI runs this file only locally (`db push` skips seeds unless told), and it is guarded
-- anyway: it does nothing on a database that already has any user, so it can never add a demo
-- account (with a published password) to a live project.
--
-- What GoTrue (Supabase Auth) needs to sign a user in with email and password, from its source
-- (github.com/supabase/auth internal/models/user.go and identity.go, and its migrations):
--   * auth.users with instance_id = the nil UUID (FindUserByEmailAndAudience looks only there),
--     aud = 'authenticated', role = 'authenticated', a bcrypt encrypted_password (pgcrypto's
--     crypt(..., gen_salt('bf')) writes $2a$ hashes, which GoTrue's bcrypt compare accepts;
--     Supabase always has pgcrypto in schema extensions, and on a plain PostgreSQL without it
--     the seed stores the same password's hash from a literal), and email_confirmed_at set
--     (config.toml keeps confirmations off, but a project that turns them on still lets it in);
--   * '' rather than NULL in the token columns GoTrue scans into plain Go strings
--     (confirmation_token, recovery_token, email_change_token_new, email_change, ...): NULL there
--     fails every sign-in with "Database error querying schema" (supabase/auth issue #1940);
--   * an auth.identities row with provider 'email', provider_id = the user's id as text, and
--     identity_data {"sub": <id>, "email": ...} (what GoTrue writes for an email sign-up; see its
--     migrations 20221125140132_backfill_email_identity and 20231117164230_add_id_pkey_identities).
-- confirmed_at and identities.email are generated columns: never written here.

do $$
declare
    v_user uuid := '00000000-0000-4000-8000-00000000d3e0';
    v_email text := 'demo@herald.local';
    v_password text := 'herald-demo-password';
    -- The same password, hashed once with extensions.crypt('herald-demo-password', gen_salt('bf')):
    -- used only where pgcrypto is missing (tests/postgres/test_seed.py checks that it verifies).
    v_password_bcrypt constant text := '$2a$06$8m93rKHSfV2OrQLRlCtS4eSP1lIg9O1rdEkOMgy0TMAryZPRNzEU6';
    v_hash text;
    v_channel uuid;
    v_post uuid;
begin
    if exists (select from auth.users) then
        raise notice 'seed.sql: this database already has users; nothing seeded';
        return;
    end if;

    if to_regprocedure('extensions.crypt(text, text)') is not null then
        v_hash := extensions.crypt(v_password, extensions.gen_salt('bf'));
    else
        raise notice 'seed.sql: pgcrypto is missing (not a Supabase database); storing the demo password''s '
                     'bcrypt hash made earlier with crypt(''herald-demo-password'', gen_salt(''bf''))';
        v_hash := v_password_bcrypt;
    end if;

    insert into auth.users (
        instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
        raw_app_meta_data, raw_user_meta_data, is_super_admin, created_at, updated_at,
        confirmation_token, recovery_token, email_change_token_new, email_change_token_current,
        email_change, phone_change, phone_change_token, reauthentication_token)
    values (
        '00000000-0000-0000-0000-000000000000', v_user, 'authenticated', 'authenticated', v_email,
        v_hash, now(),
        '{"provider": "email", "providers": ["email"]}', '{"email_verified": true}', false, now(), now(),
        '', '', '', '', '', '', '', '');

    insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
    values (v_user::text, v_user,
            jsonb_build_object('sub', v_user::text, 'email', v_email, 'email_verified', true, 'phone_verified', false),
            'email', now(), now(), now());

    -- The sandbox platform needs no credentials. The seed cannot know HERALD_ENCRYPTION_KEYS, so it
    -- stores none: an empty value is read as no credentials, where a placeholder would fail to decrypt.
    insert into herald.channels (user_id, platform, account_id, name, credentials_encrypted)
    values (v_user, 'sandbox', 'demo', 'Sandbox (demo)', '')
    returning id into v_channel;

    insert into herald.posts (user_id, content, scheduled_at, timezone, status)
    values (v_user, '{"text": "Hello from Herald", "media": [], "platforms": {}}', now() + interval '1 minute',
            'UTC', 'scheduled')
    returning id into v_post;

    insert into herald.post_targets (post_id, channel_id, user_id, platform)
    values (v_post, v_channel, v_user, 'sandbox');

    insert into herald.activity_logs (user_id, post_id, event, details)
    values (v_user, v_post, 'post.created', '{"status": "scheduled"}');
end
$$;
