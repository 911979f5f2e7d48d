-- Herald's tables leave the Data API (issue 9). Supabase serves every table of an exposed schema
-- at /rest/v1/<table> to any signed-in user, whatever Herald's code calls, and `public` is exposed.
-- So the tables move to the schema `herald`, which the Data API does not expose, and a user reaches
-- Herald only through the herald_*_v1 functions, which stay in public. RLS stays on as a second wall.
--
-- Existing deployments: ALTER TABLE ... SET SCHEMA moves a table in place (no rewrite), with its
-- rows, indexes, constraints, triggers, RLS policies, owned identity sequence and row type.
-- Function bodies are text resolved at call time, so every function that names a table is
-- replaced below with herald.-qualified names; signatures, volatility, search_path and grants
-- are unchanged (CREATE OR REPLACE keeps a function's owner and privileges).
--
-- GraphQL. Would pg_graphql show a signed-in user tables in a schema the Data API does not expose?
-- Not Herald's. pg_graphql reflects only the schemas on the current search_path, filtered by the
-- role's privileges (pg_graphql docs, "Schema & Table Visibility",
-- https://supabase.github.io/pg_graphql/supabase/#schema-table-visibility; its reflection query
-- takes the schemas from current_schemas(false), sql/load_sql_context.sql). Supabase serves
-- /graphql/v1 through PostgREST's rpc to graphql_public.graphql(), which sets no search_path of
-- its own, so it runs with the request's: the selected exposed schema plus extra_search_path
-- (PostgREST docs, Schemas, https://docs.postgrest.org/en/latest/references/api/schemas.html).
-- `herald` is in neither list of supabase/config.toml, so none of its tables is reflected, even
-- though `authenticated` keeps the table privileges its SECURITY INVOKER functions use. Keep it
-- out of [api].schemas and [api].extra_search_path: tests/postgres/test_exposed_surface.py checks.

create schema herald;

-- --- the tables move ------------------------------------------------------------------------

alter table public.channels set schema herald;
alter table public.posts set schema herald;
alter table public.post_targets set schema herald;
alter table public.post_runs set schema herald;
alter table public.activity_logs set schema herald;
alter table public.cron_runs set schema herald;
alter table public.sandbox_outbox set schema herald;
alter table public.idempotency_keys set schema herald;

-- --- the functions that name a table, now herald.-qualified ---------------------------------
-- From 20261124000200_functions.sql, identical but for the schema of the tables. The functions
-- that name no table (current_user_id, conflict_message, derive_post_status, channel_json,
-- herald_ping_v1, herald_create_channel_v1, herald_create_post_v1) need no change: a parameter
-- of a table's row type follows the table.

-- Raise the 409 for an action refused while a target is live or may be (published or unknown):
-- services.domain.transitions.BLOCKED_WHEN_LIVE (the store contract tests pin the behaviour).
create or replace function herald_private.refuse_if_live(p_post_id uuid, p_action text) returns void
language plpgsql stable set search_path = '' as $$
begin
    if p_action = any(array['edit', 'schedule', 'unschedule', 'delete']) and exists (
        select from herald.post_targets t where t.post_id = p_post_id and t.status in ('published', 'unknown')
    ) then
        raise exception '%', herald_private.conflict_message(p_action, 'live')
            using errcode = 'HR409', detail = 'invalid_state';
    end if;
end
$$;

create or replace function herald_private.log(p_user_id uuid, p_post_id uuid, p_event text, p_details jsonb)
returns void
language sql volatile set search_path = '' as $$
    insert into herald.activity_logs (user_id, post_id, event, details)
    values (p_user_id, p_post_id, p_event, coalesce(p_details, '{}'::jsonb))
$$;

-- A post as rows.post_from_row reads it: its columns (no lease or series bookkeeping) and targets.
create or replace function herald_private.post_json(p herald.posts) returns jsonb
language sql stable set search_path = '' as $$
    select (to_jsonb(p) - 'series_content' - 'lease_id' - 'lease_expires_at')
        || jsonb_build_object('targets', coalesce(
            (select jsonb_agg(to_jsonb(t) order by t.platform, t.id)
               from herald.post_targets t where t.post_id = p.id),
            '[]'::jsonb))
$$;

-- Raise HR422 (field p_field) unless the user owns every channel named.
create or replace function herald_private.check_channels(p_user_id uuid, p_channel_ids uuid[], p_field text)
returns void
language plpgsql stable set search_path = '' as $$
declare
    v_missing uuid;
begin
    select wanted.id into v_missing
      from unnest(coalesce(p_channel_ids, '{}')) with ordinality as wanted (id, n)
     where not exists (select from herald.channels c where c.id = wanted.id and c.user_id = p_user_id)
     order by wanted.n
     limit 1;
    if v_missing is not null then
        raise exception 'channel % not found', v_missing
            using errcode = 'HR422', detail = 'unknown_channel', hint = p_field;
    end if;
end
$$;

-- One pending target for each named channel the post does not target yet.
create or replace function herald_private.add_targets(p_user_id uuid, p_post_id uuid, p_channel_ids uuid[])
returns void
language sql volatile set search_path = '' as $$
    insert into herald.post_targets (post_id, channel_id, user_id, platform, status)
    select p_post_id, c.id, c.user_id, c.platform, 'pending'
      from herald.channels c
     where c.id = any(p_channel_ids) and c.user_id = p_user_id
       and not exists (select from herald.post_targets t where t.post_id = p_post_id and t.channel_id = c.id)
$$;

-- Insert one post (a NewPost as JSON) with its targets; HR422 names p_field for a foreign channel.
create or replace function herald_private.insert_post(p_user_id uuid, p_new jsonb, p_field text) returns uuid
language plpgsql volatile set search_path = '' as $$
declare
    v_id uuid := gen_random_uuid();
    v_channel_ids uuid[] := array(select jsonb_array_elements_text(coalesce(p_new -> 'channel_ids', '[]'))::uuid);
    v_rrule text := p_new ->> 'rrule';
    v_at timestamptz := (p_new ->> 'scheduled_at')::timestamptz;
    v_recurring boolean := coalesce(v_rrule, '') <> '';
begin
    perform herald_private.check_channels(p_user_id, v_channel_ids, p_field);
    insert into herald.posts (id, user_id, content, scheduled_at, timezone, rrule, status, series_id, series_start_at)
    values (v_id, p_user_id, p_new -> 'content', v_at, coalesce(p_new ->> 'timezone', 'UTC'), v_rrule,
            p_new ->> 'status', case when v_recurring then v_id end, case when v_recurring then v_at end);
    perform herald_private.add_targets(p_user_id, v_id, v_channel_ids);
    perform herald_private.log(p_user_id, v_id, 'post.created', jsonb_build_object('status', p_new ->> 'status'));
    return v_id;
end
$$;

create or replace function herald_private.post_by_id(p_post_id uuid) returns jsonb
language sql stable set search_path = '' as $$
    select herald_private.post_json(p) from herald.posts p where p.id = p_post_id
$$;

create or replace function herald_private.insert_channel(
    p_user_id uuid, p_platform text, p_account_id text, p_name text, p_credentials_encrypted text,
    p_metadata jsonb, p_token_expires_at timestamptz
) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_channel herald.channels;
begin
    insert into herald.channels (user_id, platform, account_id, name, metadata, credentials_encrypted, token_expires_at)
    values (p_user_id, p_platform, p_account_id, p_name, coalesce(p_metadata, '{}'::jsonb), p_credentials_encrypted,
            p_token_expires_at)
    returning * into v_channel;
    perform herald_private.log(p_user_id, null, 'channel.created',
                               jsonb_build_object('channel_id', v_channel.id, 'platform', p_platform));
    return herald_private.channel_json(v_channel);
exception when unique_violation then
    raise exception 'this % account is already connected', p_platform
        using errcode = 'HR409', detail = 'channel_exists', hint = 'account_id';
end
$$;

create or replace function public.herald_list_channels_v1() returns jsonb
language sql stable security invoker set search_path = '' as $$
    select coalesce(jsonb_agg(herald_private.channel_json(c) order by c.created_at, c.id), '[]'::jsonb)
      from herald.channels c
     where c.user_id = herald_private.current_user_id()
$$;

create or replace function public.herald_get_channel_v1(p_channel_id uuid) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
declare
    v_channel herald.channels;
begin
    select * into v_channel from herald.channels c
     where c.id = p_channel_id and c.user_id = herald_private.current_user_id();
    if not found then
        raise exception 'channel not found' using errcode = 'HR404', hint = 'channel_id';
    end if;
    return herald_private.channel_json(v_channel);
end
$$;

create or replace function public.herald_delete_channel_v1(p_channel_id uuid, p_force boolean default false) returns void
language plpgsql volatile security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_busy uuid[];
    v_publishing boolean;
    v_post uuid;
begin
    perform from herald.channels c where c.id = p_channel_id and c.user_id = v_uid for update;
    if not found then
        raise exception 'channel not found' using errcode = 'HR404', hint = 'channel_id';
    end if;
    -- Lock the posts still waiting on this channel, so that a claim cannot take one meanwhile.
    perform from herald.posts p
     where p.id in (select t.post_id from herald.post_targets t
                     where t.channel_id = p_channel_id and t.status in ('pending', 'publishing'))
     order by p.id
       for update;
    select coalesce(array_agg(p.id order by p.id), '{}'), coalesce(bool_or(p.status = 'publishing'), false)
      into v_busy, v_publishing
      from herald.post_targets t join herald.posts p on p.id = t.post_id
     where t.channel_id = p_channel_id and t.status in ('pending', 'publishing')
       and p.status in ('scheduled', 'publishing');
    if v_publishing then
        raise exception 'a post to this channel is being published right now; try again in a minute'
            using errcode = 'HR409', detail = 'conflict';
    end if;
    if cardinality(v_busy) > 0 and not p_force then
        raise exception '% scheduled post(s) still target this channel; unschedule them or pass force=true',
            cardinality(v_busy) using errcode = 'HR409', detail = 'channel_in_use';
    end if;
    delete from herald.post_targets t
     where t.channel_id = p_channel_id and t.status = 'pending' and t.attempts = 0
       and t.post_id in (select p.id from herald.posts p where p.status not in ('scheduled', 'publishing'));
    update herald.post_targets t set status = 'cancelled', error = 'channel deleted'
     where t.channel_id = p_channel_id and t.status = 'pending';
    foreach v_post in array v_busy loop
        update herald.posts p set status = 'cancelled', error = 'its channel was deleted'
         where p.id = v_post
           and not exists (select from herald.post_targets t where t.post_id = v_post and t.status <> 'cancelled');
        perform herald_private.log(v_uid, v_post, 'target.cancelled',
                                   jsonb_build_object('channel_id', p_channel_id, 'reason', 'channel deleted'));
    end loop;
    delete from herald.channels c where c.id = p_channel_id;
    perform herald_private.log(v_uid, null, 'channel.deleted',
                               jsonb_build_object('channel_id', p_channel_id, 'cancelled_posts', cardinality(v_busy)));
end
$$;

-- All the posts or none. A known idempotency key stores nothing and returns what that key created.
create or replace function public.herald_create_posts_v1(
    p_posts jsonb, p_idempotency_key text default null, p_request_hash text default null
) returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_seen herald.idempotency_keys;
    v_ids uuid[] := '{}';
    v_item record;
    v_many boolean := jsonb_array_length(p_posts) > 1;
begin
    if p_idempotency_key is not null then
        -- two requests with one key: the second waits for the first and replays it
        perform pg_advisory_xact_lock(hashtextextended(v_uid::text || '/' || p_idempotency_key, 0));
        select * into v_seen from herald.idempotency_keys k where k.user_id = v_uid and k.key = p_idempotency_key;
        if found then
            if v_seen.request_hash is distinct from p_request_hash then
                raise exception 'this Idempotency-Key was used for a different request'
                    using errcode = 'HR409', detail = 'idempotency_key_reused', hint = 'Idempotency-Key';
            end if;
            return jsonb_build_object('replayed', true, 'posts', coalesce(
                (select jsonb_agg(herald_private.post_json(p) order by ids.n)
                   from unnest(v_seen.post_ids) with ordinality as ids (id, n)
                   join herald.posts p on p.id = ids.id),
                '[]'::jsonb));
        end if;
    end if;
    for v_item in select value, ordinality - 1 as i from jsonb_array_elements(p_posts) with ordinality loop
        v_ids := v_ids || herald_private.insert_post(
            v_uid, v_item.value, case when v_many then format('posts.%s.channel_ids', v_item.i) else 'channel_ids' end);
    end loop;
    if p_idempotency_key is not null then
        insert into herald.idempotency_keys (user_id, key, request_hash, post_ids)
        values (v_uid, p_idempotency_key, p_request_hash, v_ids);
    end if;
    return jsonb_build_object('replayed', false, 'posts', coalesce(
        (select jsonb_agg(herald_private.post_json(p) order by ids.n)
           from unnest(v_ids) with ordinality as ids (id, n)
           join herald.posts p on p.id = ids.id),
        '[]'::jsonb));
end
$$;

create or replace function public.herald_get_post_v1(p_post_id uuid) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
declare
    v_post herald.posts;
begin
    select * into v_post from herald.posts p where p.id = p_post_id and p.user_id = herald_private.current_user_id();
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    return herald_private.post_json(v_post);
end
$$;

-- Newest first (created_at, then id), with the total matching the filters.
create or replace function public.herald_list_posts_v1(
    p_statuses text[] default null, p_platform text default null, p_channel_id uuid default null,
    p_scheduled_from timestamptz default null, p_scheduled_to timestamptz default null,
    p_updated_since timestamptz default null, p_recurring boolean default null,
    p_limit integer default 50, p_offset integer default 0
) returns jsonb
language sql stable security invoker set search_path = '' as $$
    with matching as (
        select p.* from herald.posts p
         where p.user_id = herald_private.current_user_id()
           and (coalesce(cardinality(p_statuses), 0) = 0 or p.status = any(p_statuses))
           and (coalesce(p_platform, '') = ''
                or exists (select from herald.post_targets t where t.post_id = p.id and t.platform = p_platform))
           and (p_channel_id is null
                or exists (select from herald.post_targets t where t.post_id = p.id and t.channel_id = p_channel_id))
           and (p_scheduled_from is null or p.scheduled_at >= p_scheduled_from)
           and (p_scheduled_to is null or p.scheduled_at <= p_scheduled_to)
           and (p_updated_since is null or p.updated_at >= p_updated_since)
           and (p_recurring is null or (p.rrule is not null) = p_recurring)
    ), page as (
        select m.* from matching m order by m.created_at desc, m.id desc limit p_limit offset p_offset
    )
    select jsonb_build_object(
        'total', (select count(*) from matching),
        'items', coalesce((select jsonb_agg(herald_private.post_json(pg::herald.posts) order by pg.created_at desc, pg.id desc)
                             from page pg), '[]'::jsonb))
$$;

-- A compare-and-set edit. p_changes holds only the PostChanges fields the caller sent.
create or replace function public.herald_update_post_v1(
    p_post_id uuid, p_changes jsonb, p_allowed_from text[], p_action text
) returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_post herald.posts;
    v_channel_ids uuid[];
    v_status text := p_changes ->> 'status';
    v_occurrence_only boolean := coalesce((p_changes ->> 'occurrence_only')::boolean, false);
    v_reanchor boolean := p_changes ?| array['rrule', 'scheduled_at', 'timezone'];
    v_rule text;
    v_anchor timestamptz;
begin
    select * into v_post from herald.posts p where p.id = p_post_id and p.user_id = v_uid for update;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    if not v_post.status = any(p_allowed_from) then
        raise exception '%', herald_private.conflict_message(p_action, v_post.status)
            using errcode = 'HR409', detail = 'invalid_state';
    end if;
    perform herald_private.refuse_if_live(p_post_id, p_action);
    if p_changes ? 'channel_ids' then
        v_channel_ids := array(select jsonb_array_elements_text(p_changes -> 'channel_ids')::uuid);
        perform herald_private.check_channels(v_uid, v_channel_ids, 'channel_ids');
        delete from herald.post_targets t
         where t.post_id = p_post_id and t.status <> 'published'
           and (t.channel_id is null or t.channel_id <> all(v_channel_ids));
        perform herald_private.add_targets(v_uid, p_post_id, v_channel_ids);
    end if;
    -- a changed rule, time or zone starts the series afresh from this occurrence
    v_rule := case when p_changes ? 'rrule' then p_changes ->> 'rrule' else v_post.rrule end;
    v_anchor := case when p_changes ? 'scheduled_at' then (p_changes ->> 'scheduled_at')::timestamptz
                     else v_post.scheduled_at end;
    if v_status = 'scheduled' then
        update herald.post_targets t set status = 'pending', error = null
         where t.post_id = p_post_id and t.status in ('failed', 'cancelled') and t.channel_id is not null;
    elsif v_status = 'cancelled' then
        update herald.post_targets t set status = 'cancelled' where t.post_id = p_post_id and t.status = 'pending';
    end if;
    update herald.posts p set
        content = case when p_changes ? 'content' then p_changes -> 'content' else p.content end,
        -- later occurrences keep the series' content: remember it before a one-off edit
        series_content = case when not p_changes ? 'content' then p.series_content
                              when v_occurrence_only then coalesce(p.series_content, p.content) end,
        scheduled_at = v_anchor,
        timezone = case when p_changes ? 'timezone' then p_changes ->> 'timezone' else p.timezone end,
        rrule = v_rule,
        series_id = case when not v_reanchor or v_occurrence_only then p.series_id
                         when coalesce(v_rule, '') <> '' then coalesce(p.series_id, p.id) end,
        series_start_at = case when not v_reanchor or v_occurrence_only then p.series_start_at
                               when coalesce(v_rule, '') <> '' then v_anchor end,
        status = coalesce(v_status, p.status),
        error = case when v_status = 'scheduled' then null else p.error end,
        next_attempt_at = case when v_status = 'scheduled' then (p_changes ->> 'next_attempt_at')::timestamptz
                               else p.next_attempt_at end
     where p.id = p_post_id;
    perform herald_private.log(v_uid, p_post_id, 'post.' || p_action, jsonb_build_object(
        'fields', to_jsonb(array(select k from jsonb_object_keys(p_changes) k
                                  where k not in ('status', 'next_attempt_at', 'occurrence_only')
                                  order by k collate "C")),
        'status', coalesce(v_status, v_post.status)));
    return herald_private.post_by_id(p_post_id);
end
$$;

create or replace function public.herald_delete_post_v1(p_post_id uuid, p_allowed_from text[]) returns void
language plpgsql volatile security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_status text;
begin
    select p.status into v_status from herald.posts p where p.id = p_post_id and p.user_id = v_uid for update;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    if not v_status = any(p_allowed_from) then
        raise exception '%', herald_private.conflict_message('delete', v_status)
            using errcode = 'HR409', detail = 'invalid_state';
    end if;
    perform herald_private.refuse_if_live(p_post_id, 'delete');
    delete from herald.posts p where p.id = p_post_id;
    perform herald_private.log(v_uid, p_post_id, 'post.deleted', jsonb_build_object('status', v_status));
end
$$;

-- Settle an unknown target by hand and re-derive the post's status.
create or replace function public.herald_resolve_target_v1(
    p_post_id uuid, p_target_id uuid, p_published boolean, p_url text default null
) returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_target_status text;
    v_status text;
begin
    perform from herald.posts p where p.id = p_post_id and p.user_id = v_uid for update;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    select t.status into v_target_status from herald.post_targets t where t.id = p_target_id and t.post_id = p_post_id;
    if not found then
        raise exception 'target not found' using errcode = 'HR404', hint = 'target_id';
    end if;
    if v_target_status <> 'unknown' then
        raise exception 'only an unknown target can be resolved; this one is %', v_target_status
            using errcode = 'HR409', detail = 'invalid_state', hint = 'target_id';
    end if;
    update herald.post_targets t set
        status = case when p_published then 'published' else 'failed' end,
        platform_post_url = coalesce(p_url, t.platform_post_url),
        error = case when p_published then null else 'marked failed by the user' end,
        published_at = case when p_published then now() else t.published_at end
     where t.id = p_target_id;
    v_status := herald_private.derive_post_status(
        array(select t.status from herald.post_targets t where t.post_id = p_post_id));
    if v_status in ('needs_review', 'scheduled') then
        update herald.posts p set updated_at = now() where p.id = p_post_id;
    else
        update herald.posts p set
            status = v_status,
            error = case when v_status = 'published' then null else p.error end,
            published_at = case when v_status in ('published', 'partial') then coalesce(p.published_at, now())
                                 else p.published_at end
         where p.id = p_post_id;
    end if;
    perform herald_private.log(v_uid, p_post_id, 'target.resolved',
                               jsonb_build_object('target_id', p_target_id, 'published', p_published));
    return herald_private.post_by_id(p_post_id);
end
$$;

create or replace function public.herald_list_runs_v1(p_post_id uuid) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
begin
    perform from herald.posts p where p.id = p_post_id and p.user_id = herald_private.current_user_id();
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    return coalesce((select jsonb_agg(to_jsonb(r) order by r.started_at, r.attempt, r.id)
                       from herald.post_runs r where r.post_id = p_post_id), '[]'::jsonb);
end
$$;

create or replace function public.herald_list_activity_v1(p_post_id uuid default null, p_limit integer default 50)
returns jsonb
language sql stable security invoker set search_path = '' as $$
    select coalesce(jsonb_agg(to_jsonb(a) order by a.id desc), '[]'::jsonb)
      from (select * from herald.activity_logs a
             where a.user_id = herald_private.current_user_id()
               and (p_post_id is null or a.post_id = p_post_id)
             order by a.id desc
             limit p_limit) a
$$;

-- {"total", "by_status": {status: n}, "by_platform": {platform: {"targets": n, status: n}}}
create or replace function public.herald_post_statistics_v1() returns jsonb
language sql stable security invoker set search_path = '' as $$
    with me as (select herald_private.current_user_id() as uid),
    by_status as (
        select p.status, count(*) as n from herald.posts p, me where p.user_id = me.uid group by p.status
    ),
    by_target as (
        select t.platform, t.status, count(*) as n from herald.post_targets t, me
         where t.user_id = me.uid group by t.platform, t.status
    ),
    by_platform as (
        select b.platform, jsonb_build_object('targets', sum(b.n)) || jsonb_object_agg(b.status, b.n) as counts
          from by_target b group by b.platform
    )
    select jsonb_build_object(
        'total', coalesce((select sum(n) from by_status), 0),
        'by_status', coalesce((select jsonb_object_agg(status, n) from by_status), '{}'::jsonb),
        'by_platform', coalesce((select jsonb_object_agg(platform, counts) from by_platform), '{}'::jsonb))
$$;

create or replace function public.herald_list_outbox_v1(p_limit integer default 50) returns jsonb
language sql stable security invoker set search_path = '' as $$
    select coalesce(jsonb_agg(to_jsonb(o) order by o.published_at desc, o.id), '[]'::jsonb)
      from (select * from herald.sandbox_outbox o
             where o.user_id = herald_private.current_user_id()
             order by o.published_at desc, o.id
             limit p_limit) o
$$;

-- create_channel for a User without a token: the OAuth callback's signed state proved the user.
-- Connecting an account the user already has reconnects it (Store.create_channel with reconnect).
create or replace function public.herald_connect_channel_v1(
    p_user_id uuid, p_platform text, p_account_id text, p_name text, p_credentials_encrypted text,
    p_metadata jsonb default '{}'::jsonb, p_token_expires_at timestamptz default null
) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_channel herald.channels;
begin
    -- An account connected before is reconnected: new tokens, active again, same id (its posts keep it).
    update herald.channels c
       set name = p_name, metadata = c.metadata || coalesce(p_metadata, '{}'::jsonb),
           credentials_encrypted = p_credentials_encrypted, token_expires_at = p_token_expires_at, status = 'active'
     where c.user_id = p_user_id and c.platform = p_platform and c.account_id = p_account_id
    returning * into v_channel;
    if found then
        perform herald_private.log(p_user_id, null, 'channel.reconnected',
                                   jsonb_build_object('channel_id', v_channel.id, 'platform', p_platform));
        return herald_private.channel_json(v_channel);
    end if;
    return herald_private.insert_channel(p_user_id, p_platform, p_account_id, p_name, p_credentials_encrypted,
                                         p_metadata, p_token_expires_at);
end
$$;

-- Lease up to p_limit posts in one atomic step (Store.claim_due_posts): first posts whose lease
-- expired before p_now (a run died; re-leased to this run), then due posts oldest first. Rows
-- another claim holds are skipped, never waited on, so overlapping claims never share a post.
-- Returns {"posts": [{"post", "lease_id", "channels" (with credentials), "maybe_sent"}], "recovered"}.
-- VOLATILE: PostgREST runs STABLE functions read-only.
create or replace function public.herald_claim_due_posts_v1(
    p_now timestamptz, p_limit integer, p_lease_seconds integer, p_post_ids uuid[] default null
) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_expires timestamptz := p_now + make_interval(secs => p_lease_seconds);
    v_recovered uuid[];
    v_due uuid[] := '{}';
    v_result jsonb;
begin
    with picked as materialized (
        select q.id, q.lease_expires_at from herald.posts q
         where q.status = 'publishing' and q.lease_expires_at < p_now
           and (p_post_ids is null or q.id = any(p_post_ids))
         order by q.lease_expires_at, q.id
         limit greatest(p_limit, 0)
           for update skip locked
    ), leased as (
        update herald.posts p
           set lease_id = gen_random_uuid(), lease_expires_at = v_expires, attempts = p.attempts + 1
         where p.id in (select picked.id from picked)
        returning p.id
    )
    select coalesce(array_agg(picked.id order by picked.lease_expires_at, picked.id), '{}') into v_recovered
      from picked where picked.id in (select leased.id from leased);

    if p_limit > cardinality(v_recovered) then
        with picked as materialized (
            select q.id from herald.posts q
             where q.status = 'scheduled' and coalesce(q.next_attempt_at, q.scheduled_at) <= p_now
               and (p_post_ids is null or q.id = any(p_post_ids))
             order by coalesce(q.next_attempt_at, q.scheduled_at), q.id
             limit p_limit - cardinality(v_recovered)
               for update skip locked
        ), leased as (
            update herald.posts p
               set status = 'publishing', lease_id = gen_random_uuid(), lease_expires_at = v_expires,
                   attempts = p.attempts + 1
             where p.id in (select picked.id from picked)
            returning p.id
        )
        select coalesce(array_agg(leased.id), '{}') into v_due from leased;
    end if;

    insert into herald.activity_logs (user_id, post_id, event, details)
    select p.user_id, p.id, case when p.id = any(v_recovered) then 'post.recovered' else 'post.claimed' end,
           jsonb_build_object('attempt', p.attempts)
      from herald.posts p where p.id = any(v_recovered || v_due);

    select jsonb_build_object(
        'recovered', to_jsonb(v_recovered),
        'posts', coalesce(jsonb_agg(jsonb_build_object(
            'post', herald_private.post_json(p),
            'lease_id', p.lease_id,
            'channels', coalesce((select jsonb_agg(to_jsonb(c) order by c.id) from herald.channels c
                                   where c.id in (select t.channel_id from herald.post_targets t where t.post_id = p.id)),
                                 '[]'::jsonb),
            -- marked sending by an earlier run: that call may have gone out
            'maybe_sent', coalesce((select jsonb_agg(t.id order by t.id) from herald.post_targets t
                                     where t.post_id = p.id and t.status = 'publishing'), '[]'::jsonb))
            order by coalesce(p.next_attempt_at, p.scheduled_at), p.id), '[]'::jsonb))
      into v_result
      from herald.posts p where p.id = any(v_recovered || v_due);
    return v_result;
end
$$;

-- The named targets' calls are about to start: pending -> publishing, only on leased posts.
create or replace function public.herald_mark_sending_v1(p_target_ids uuid[], p_now timestamptz) returns void
language sql volatile set search_path = '' as $$
    update herald.post_targets t set status = 'publishing'
     where t.status = 'pending' and t.id = any(p_target_ids)
       and t.post_id in (select p.id from herald.posts p where p.status = 'publishing')
$$;

create or replace function public.herald_save_channel_credentials_v1(
    p_channel_id uuid, p_credentials_encrypted text, p_token_expires_at timestamptz default null
) returns void
language sql volatile set search_path = '' as $$
    update herald.channels c
       set credentials_encrypted = p_credentials_encrypted, token_expires_at = p_token_expires_at, status = 'active'
     where c.id = p_channel_id
$$;

create or replace function public.herald_mark_channel_needs_reconnect_v1(p_channel_id uuid, p_reason text) returns void
language plpgsql volatile set search_path = '' as $$
declare
    v_owner uuid;
begin
    update herald.channels c set status = 'needs_reconnect' where c.id = p_channel_id returning c.user_id into v_owner;
    if found then
        perform herald_private.log(v_owner, null, 'channel.needs_reconnect',
                                   jsonb_build_object('channel_id', p_channel_id, 'reason', p_reason));
    end if;
end
$$;

-- What a claim at p_now would take, claiming nothing (dry run).
create or replace function public.herald_list_due_v1(p_now timestamptz, p_limit integer) returns jsonb
language sql stable set search_path = '' as $$
    select coalesce(jsonb_agg(herald_private.post_json(d::herald.posts)
                              order by coalesce(d.next_attempt_at, d.scheduled_at), d.id), '[]'::jsonb)
      from (select * from herald.posts p
             where p.status = 'scheduled' and coalesce(p.next_attempt_at, p.scheduled_at) <= p_now
             order by coalesce(p.next_attempt_at, p.scheduled_at), p.id
             limit p_limit) d
$$;

create or replace function public.herald_count_due_v1(p_now timestamptz) returns integer
language sql stable set search_path = '' as $$
    select count(*)::integer from herald.posts p
     where p.status = 'scheduled' and coalesce(p.next_attempt_at, p.scheduled_at) <= p_now
$$;

create or replace function public.herald_last_cron_run_v1() returns jsonb
language sql stable set search_path = '' as $$
    select to_jsonb(r) from herald.cron_runs r order by r.started_at desc limit 1
$$;

-- {"last_run", "due_now", "oldest_due_at", "stuck"}
create or replace function public.herald_cron_health_v1(p_now timestamptz) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object(
        'last_run', public.herald_last_cron_run_v1(),
        'due_now', count(*),
        'oldest_due_at', min(coalesce(p.next_attempt_at, p.scheduled_at)),
        'stuck', (select count(*) from herald.posts s where s.status = 'publishing' and s.lease_expires_at < p_now))
      from herald.posts p
     where p.status = 'scheduled' and coalesce(p.next_attempt_at, p.scheduled_at) <= p_now
$$;

-- The sandbox platform's "publish": append to its outbox, owned by the target's owner.
create or replace function public.herald_deliver_to_outbox_v1(
    p_id uuid, p_channel_id uuid, p_target_id uuid, p_text text, p_media jsonb, p_published_at timestamptz
) returns void
language plpgsql volatile set search_path = '' as $$
declare
    v_owner uuid;
begin
    select t.user_id into v_owner from herald.post_targets t where t.id = p_target_id;
    if not found then
        raise exception 'target not found' using errcode = 'HR404', hint = 'target_id';
    end if;
    insert into herald.sandbox_outbox (id, user_id, channel_id, target_id, text, media, published_at)
    values (p_id, v_owner, p_channel_id, p_target_id, p_text, coalesce(p_media, '[]'::jsonb), p_published_at);
end
$$;

-- A finished occurrence's successor (same content, zone, rule and live channels), exactly once.
create or replace function herald_private.create_next_occurrence(p_parent_id uuid, p_when jsonb) returns void
language plpgsql volatile set search_path = '' as $$
declare
    v_parent herald.posts;
    v_child uuid := gen_random_uuid();
    v_inserted integer;
begin
    select * into v_parent from herald.posts p where p.id = p_parent_id;
    insert into herald.posts (id, user_id, content, scheduled_at, timezone, rrule, status, series_id,
                              series_start_at, parent_post_id)
    values (v_child, v_parent.user_id, coalesce(v_parent.series_content, v_parent.content),
            (p_when #>> '{}')::timestamptz, v_parent.timezone, v_parent.rrule, 'scheduled',
            coalesce(v_parent.series_id, p_parent_id), coalesce(v_parent.series_start_at, v_parent.scheduled_at),
            p_parent_id)
    on conflict (parent_post_id) where parent_post_id is not null do nothing;
    get diagnostics v_inserted = row_count;
    if v_inserted = 0 then
        return;  -- this occurrence already has its successor
    end if;
    insert into herald.post_targets (post_id, channel_id, user_id, platform, status)
    select v_child, t.channel_id, t.user_id, t.platform, 'pending'
      from herald.post_targets t
     where t.post_id = p_parent_id and t.channel_id is not null and t.status <> 'cancelled';
    perform herald_private.log(v_parent.user_id, v_child, 'post.next_occurrence',
                               jsonb_build_object('parent_post_id', p_parent_id, 'scheduled_at', p_when));
end
$$;

-- Write a run's outcomes in one transaction (Store.record_results). p_results is
-- rows.results_to_rows(...); a result whose lease the post no longer holds is ignored. Writes the
-- cron run (with remaining_due counted here) when given, and returns the posts still due at p_now.
create or replace function public.herald_record_results_v1(
    p_results jsonb, p_now timestamptz, p_cron_run jsonb default null
) returns integer
language plpgsql volatile set search_path = '' as $$
declare
    v_result jsonb;
    v_target jsonb;
    v_post uuid;
    v_owner uuid;
    v_status text;
    v_remaining integer;
begin
    for v_result in select value from jsonb_array_elements(coalesce(p_results, '[]'::jsonb)) loop
        v_post := (v_result ->> 'post_id')::uuid;
        select p.user_id into v_owner from herald.posts p
         where p.id = v_post and p.status = 'publishing' and p.lease_id = (v_result ->> 'lease_id')::uuid
           for update;
        if not found then
            continue;  -- the lease expired and another run recovered the post
        end if;
        for v_target in select value from jsonb_array_elements(coalesce(v_result -> 'targets', '[]'::jsonb)) loop
            v_status := v_target ->> 'status';
            update herald.post_targets t set
                status = v_status,
                attempts = (v_target ->> 'attempt')::integer,
                rate_limited = t.rate_limited + (v_target ->> 'outcome' = 'rate_limited')::integer,
                error = case when v_status = 'published' then null
                             else coalesce(nullif(v_target ->> 'error_message', ''), v_target ->> 'error_code') end,
                platform_post_id = coalesce(v_target ->> 'platform_post_id', t.platform_post_id),
                platform_post_url = coalesce(v_target ->> 'platform_post_url', t.platform_post_url),
                resume = case when jsonb_typeof(v_target -> 'resume') = 'object' then v_target -> 'resume'
                              else t.resume end,
                published_at = case when v_status = 'published' then (v_target ->> 'finished_at')::timestamptz
                                    else t.published_at end
             where t.id = (v_target ->> 'target_id')::uuid and t.post_id = v_post and t.status <> 'published';
            insert into herald.post_runs (post_id, target_id, attempt, outcome, http_status, error_code, error_message,
                                          idempotency_key, started_at, finished_at, duration_ms)
            values (v_post, (v_target ->> 'target_id')::uuid, (v_target ->> 'attempt')::integer,
                    v_target ->> 'outcome', (v_target ->> 'http_status')::integer, v_target ->> 'error_code',
                    v_target ->> 'error_message', v_target ->> 'idempotency_key',
                    (v_target ->> 'started_at')::timestamptz, (v_target ->> 'finished_at')::timestamptz,
                    (v_target ->> 'duration_ms')::integer);
            perform herald_private.log(v_owner, v_post, 'target.' || v_status, jsonb_build_object(
                'target_id', v_target -> 'target_id', 'outcome', v_target -> 'outcome',
                'attempt', v_target -> 'attempt', 'error_code', v_target -> 'error_code'));
        end loop;
        -- Marked sending but never started: back in the queue, untouched.
        update herald.post_targets t set status = 'pending'
         where t.post_id = v_post and t.status = 'publishing'
           and t.id in (select jsonb_array_elements_text(coalesce(v_result -> 'released', '[]'::jsonb))::uuid);
        v_status := v_result ->> 'status';
        update herald.posts p set
            status = v_status,
            error = v_result ->> 'error',
            next_attempt_at = (v_result ->> 'next_attempt_at')::timestamptz,
            lease_id = null,
            lease_expires_at = null,
            published_at = case when v_status in ('published', 'partial') then p_now else p.published_at end
         where p.id = v_post;
        perform herald_private.log(v_owner, v_post, 'post.' || v_status,
                                   jsonb_build_object('error', v_result -> 'error'));
        if v_result ->> 'next_occurrence_at' is not null then
            perform herald_private.create_next_occurrence(v_post, v_result -> 'next_occurrence_at');
        end if;
    end loop;

    v_remaining := public.herald_count_due_v1(p_now);
    if p_cron_run is not null then
        insert into herald.cron_runs (id, trigger, started_at, finished_at, claimed, published, failed, remaining_due,
                                      duration_ms, error)
        values ((p_cron_run ->> 'id')::uuid, p_cron_run ->> 'trigger', (p_cron_run ->> 'started_at')::timestamptz,
                (p_cron_run ->> 'finished_at')::timestamptz, (p_cron_run ->> 'claimed')::integer,
                (p_cron_run ->> 'published')::integer, (p_cron_run ->> 'failed')::integer, v_remaining,
                (p_cron_run ->> 'duration_ms')::integer, p_cron_run ->> 'error');
        perform herald_private.log(null, null, 'cron.run', jsonb_build_object(
            'id', p_cron_run -> 'id', 'trigger', p_cron_run -> 'trigger', 'claimed', p_cron_run -> 'claimed',
            'published', p_cron_run -> 'published', 'failed', p_cron_run -> 'failed'));
    end if;
    return v_remaining;
end
$$;

-- --- privileges -----------------------------------------------------------------------------

-- herald is reached through the functions only: the roles that run them need USAGE, nobody else.
revoke all on schema herald from public, anon;
grant usage on schema herald to authenticated, service_role;

-- The tables brought along the grants they had in public (Supabase's default privileges, less the
-- revokes of 20261124000300_rls.sql). Start again from none and grant what the functions use.
-- No role needs a privilege on activity_logs' identity sequence: an identity column draws its
-- values without checking one (and anon held UPDATE on it, i.e. setval).
revoke all on all tables in schema herald from public, anon, authenticated, service_role;
revoke all on all sequences in schema herald from public, anon, authenticated, service_role;

-- The user functions are SECURITY INVOKER: they act with the caller's privileges, and RLS scopes
-- every row to the caller. The owner's posts, channels and targets are theirs to change...
grant select, insert, update, delete on herald.channels, herald.posts, herald.post_targets to authenticated;
-- ...runs and outbox entries are written by the publish run only...
grant select on herald.post_runs, herald.sandbox_outbox to authenticated;
-- ...activity and idempotency keys are append-only. cron_runs: nothing, the service role's alone.
grant select, insert on herald.activity_logs, herald.idempotency_keys to authenticated;

-- The publish run, token refresh and the OAuth callback run as service_role (BYPASSRLS).
grant select, insert, update, delete on all tables in schema herald to service_role;

-- TRUNCATE ignores RLS; REFERENCES and TRIGGER let a role hang its own objects on a table. The API
-- roles need none of them, on Herald's tables or on anything else the project keeps in public.
-- (public's default privileges stay as Supabase sets them: other tables there are the project's.)
revoke truncate, references, trigger on all tables in schema public, herald, herald_private from anon, authenticated;
