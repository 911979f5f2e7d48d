-- Every herald_*_v1 function now acts in the request's workspace (issue 14), not for its caller
-- alone, with the role each action needs, and posts pass approval where the workspace asks for it.
--
-- The workspace: the `X-Workspace-Id` header the request names (PostgREST's `request.headers`), or
-- the caller's personal workspace (herald_private.current_workspace_id / ensure_workspace_id of
-- 20261201000900_workspaces.sql). A workspace the caller is not in answers 404; a role too low 403,
-- naming the role. Signatures are unchanged (CREATE OR REPLACE keeps owner and grants); a caller that
-- names no workspace sees exactly what it saw before: its own rows, now in its personal workspace.
--
-- Roles: viewer reads; editor writes posts and comments (and connects channels where the workspace
-- allows editors to); admin manages channels and webhook endpoints; owner everything (the workspace
-- functions of 20261201001100_workspace_api.sql). RLS by membership is the second wall.
--
-- Approval: in a workspace with approval_required, a post that a member who may not approve moves to
-- `scheduled` (create, schedule, publish now, a PUT with status scheduled) goes to `pending_approval`
-- instead; editing the content, channels or time of an approved post sends it back. Owners, admins
-- and members with the approver flag approve (herald_approve_post_v1: scheduled, or due at once) or
-- reject with a comment (herald_reject_post_v1: back to draft). The claim takes `scheduled` posts
-- only, so the cron never publishes an unapproved one. Posts scheduled before the setting was turned
-- on keep their place.

-- --- helpers ------------------------------------------------------------------------------------

create function herald_private.log_in(p_workspace_id uuid, p_user_id uuid, p_post_id uuid, p_event text,
                                      p_details jsonb) returns void
language sql volatile set search_path = '' as $$
    insert into herald.activity_logs (workspace_id, user_id, post_id, event, details)
    values (p_workspace_id, p_user_id, p_post_id, p_event, coalesce(p_details, '{}'::jsonb))
$$;

-- "you are an editor": the end of a 403's message.
create function herald_private.you_are(p_workspace_id uuid) returns text
language sql stable set search_path = '' as $$
    select 'you are ' || case when r.role in ('owner', 'admin', 'editor') then 'an ' else 'a ' end || r.role
      from (select herald_private.caller_role(p_workspace_id) as role) r
$$;

-- 403 unless the caller may connect channels in the workspace.
create function herald_private.require_connect(p_workspace_id uuid) returns void
language plpgsql stable set search_path = '' as $$
begin
    perform herald_private.require_role(p_workspace_id, 'viewer');
    if not herald_private.caller_may_connect(p_workspace_id) then
        raise exception 'connecting channels needs the admin role in this workspace (or the editor role where the workspace lets editors connect channels); %',
            herald_private.you_are(p_workspace_id) using errcode = 'HR403', detail = 'forbidden';
    end if;
end
$$;

-- A move to `scheduled` by a member who may not approve, where the workspace asks for approval.
create function herald_private.needs_approval(p_workspace_id uuid) returns boolean
language sql stable set search_path = '' as $$
    select coalesce((select w.approval_required from herald.workspaces w where w.id = p_workspace_id), false)
           and not herald_private.is_approver(p_workspace_id)
$$;

create or replace function herald_private.conflict_message(p_action text, p_status text) returns text
language sql immutable set search_path = '' as $$
    select format('cannot %s this post: %s', p_action, case p_status
        when 'live' then 'it is already live on some of its channels; the others are retried on their own'
        when 'publishing' then 'it is being published right now; try again in a minute'
        when 'published' then 'it has been published; published posts cannot be changed'
        when 'partial' then 'it is already live on some channels; retry its failed targets instead'
        when 'needs_review' then 'the outcome of its last attempt is unknown; resolve it first'
        when 'draft' then 'it is a draft'
        when 'pending_approval' then 'it is waiting for approval'
        when 'failed' then 'it has failed; retry it instead'
        when 'cancelled' then 'it is cancelled'
        when 'scheduled' then 'it is scheduled'
    end)
$$;

-- Raise HR422 (field p_field) unless every channel named is the workspace's.
drop function herald_private.check_channels(uuid, uuid[], text);
create function herald_private.check_channels(p_workspace_id uuid, p_channel_ids uuid[], p_field text)
returns void
language plpgsql stable set search_path = '' as $$
declare
    v_missing uuid;
begin
    select wanted.id into v_missing
      from unnest(coalesce(p_channel_ids, '{}')) with ordinality as wanted (id, n)
     where not exists (select from herald.channels c where c.id = wanted.id and c.workspace_id = p_workspace_id)
     order by wanted.n
     limit 1;
    if v_missing is not null then
        raise exception 'channel % not found', v_missing
            using errcode = 'HR422', detail = 'unknown_channel', hint = p_field;
    end if;
end
$$;

-- One pending target for each named channel of the post's workspace it does not target yet.
drop function herald_private.add_targets(uuid, uuid, uuid[]);
create function herald_private.add_targets(p_workspace_id uuid, p_post_id uuid, p_channel_ids uuid[])
returns void
language sql volatile set search_path = '' as $$
    insert into herald.post_targets (post_id, channel_id, user_id, workspace_id, platform, status)
    select p_post_id, c.id, c.user_id, c.workspace_id, c.platform, 'pending'
      from herald.channels c
     where c.id = any(p_channel_ids) and c.workspace_id = p_workspace_id
       and not exists (select from herald.post_targets t where t.post_id = p_post_id and t.channel_id = c.id)
$$;

-- Insert one post (a NewPost as JSON) with its targets, by p_user_id in p_workspace_id; a post meant
-- for `scheduled` waits for approval where the workspace asks for it and the author may not approve.
create function herald_private.insert_workspace_post(p_workspace_id uuid, p_user_id uuid, p_new jsonb, p_field text)
returns uuid
language plpgsql volatile set search_path = '' as $$
declare
    v_id uuid := gen_random_uuid();
    v_channel_ids uuid[] := array(select jsonb_array_elements_text(coalesce(p_new -> 'channel_ids', '[]'))::uuid);
    v_rrule text := p_new ->> 'rrule';
    v_at timestamptz := (p_new ->> 'scheduled_at')::timestamptz;
    v_recurring boolean := coalesce(v_rrule, '') <> '';
    v_status text := p_new ->> 'status';
    v_approved boolean := false;
begin
    perform herald_private.check_channels(p_workspace_id, v_channel_ids, p_field);
    if v_status = 'scheduled' then
        if herald_private.needs_approval(p_workspace_id) then
            v_status := 'pending_approval';
        else
            v_approved := (select w.approval_required from herald.workspaces w where w.id = p_workspace_id);
        end if;
    end if;
    insert into herald.posts (id, workspace_id, user_id, content, scheduled_at, timezone, rrule, status, series_id,
                              series_start_at, approved_by, approved_at)
    values (v_id, p_workspace_id, p_user_id, p_new -> 'content', v_at, coalesce(p_new ->> 'timezone', 'UTC'), v_rrule,
            v_status, case when v_recurring then v_id end, case when v_recurring then v_at end,
            case when v_approved then p_user_id end, case when v_approved then now() end);
    perform herald_private.add_targets(p_workspace_id, v_id, v_channel_ids);
    perform herald_private.log_in(p_workspace_id, p_user_id, v_id, 'post.created', jsonb_build_object('status', v_status));
    return v_id;
end
$$;

create function herald_private.insert_workspace_channel(
    p_workspace_id uuid, p_user_id uuid, p_platform text, p_account_id text, p_name text,
    p_credentials_encrypted text, p_metadata jsonb, p_token_expires_at timestamptz
) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_channel herald.channels;
begin
    insert into herald.channels (workspace_id, user_id, platform, account_id, name, metadata, credentials_encrypted,
                                 token_expires_at)
    values (p_workspace_id, p_user_id, p_platform, p_account_id, p_name, coalesce(p_metadata, '{}'::jsonb),
            p_credentials_encrypted, p_token_expires_at)
    returning * into v_channel;
    perform herald_private.log_in(p_workspace_id, p_user_id, null, 'channel.created',
                                  jsonb_build_object('channel_id', v_channel.id, 'platform', p_platform));
    return herald_private.channel_json(v_channel);
exception when unique_violation then
    raise exception 'this % account is already connected', p_platform
        using errcode = 'HR409', detail = 'channel_exists', hint = 'account_id';
end
$$;

-- The helpers that made rows for a user alone: nothing calls them now (every caller above passes
-- the workspace to insert_workspace_post / insert_workspace_channel).
drop function herald_private.insert_post(uuid, jsonb, text);
drop function herald_private.insert_channel(uuid, text, text, text, text, jsonb, timestamptz);

-- A post the caller may read (any member), else 404.
create or replace function herald_private.can_discuss_post(p_post_id uuid) returns boolean
language sql stable set search_path = '' as $$
    select exists (select from herald.posts p where p.id = p_post_id
                      and p.workspace_id = (select herald_private.current_workspace_id('viewer')))
$$;

create or replace function herald_private.require_discussable_post(p_post_id uuid) returns void
language plpgsql stable set search_path = '' as $$
begin
    perform herald_private.current_workspace_id('viewer');  -- a workspace the caller is not in: 404 first
    if not herald_private.can_discuss_post(p_post_id) then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
end
$$;

-- Figures of one workspace (p_workspace_id), or of the whole service (null).
drop function herald_private.operations(timestamptz, uuid);
drop function herald_private.window_outcomes(timestamptz, timestamptz, uuid);

create function herald_private.window_outcomes(p_since timestamp with time zone, p_until timestamp with time zone, p_workspace_id uuid) returns jsonb
language sql stable set search_path = '' as $$
    with finished as materialized (
        -- each target once, by its last attempt (a duplicate run row written by hand counts once)
        select distinct on (t.id) t.id, t.platform, t.status, t.attempts, t.publish_lag_ms
          from herald.post_runs r
          join herald.post_targets t on t.id = r.target_id and t.attempts = r.attempt
         where r.finished_at > p_since and r.finished_at <= p_until
           and t.status in ('published', 'failed', 'unknown')
           and (p_workspace_id is null or t.workspace_id = p_workspace_id)
         order by t.id
    ), totals as (
        select count(*) as finished,
               count(*) filter (where f.status = 'published') as published,
               count(*) filter (where f.status = 'failed') as failed,
               count(*) filter (where f.status = 'unknown') as unknown,
               count(*) filter (where f.attempts > 1) as retried,
               count(f.publish_lag_ms) filter (where f.status = 'published') as lag_count,
               round(percentile_cont(0.5) within group (order by f.publish_lag_ms)
                     filter (where f.status = 'published'))::bigint as lag_p50,
               round(percentile_cont(0.95) within group (order by f.publish_lag_ms)
                     filter (where f.status = 'published'))::bigint as lag_p95,
               max(f.publish_lag_ms) filter (where f.status = 'published') as lag_max
          from finished f
    ), platforms as (
        select f.platform, count(*) as finished,
               count(*) filter (where f.status = 'published') as published,
               count(*) filter (where f.status = 'failed') as failed,
               count(*) filter (where f.status = 'unknown') as unknown
          from finished f
         group by f.platform
    )
    select jsonb_build_object(
        'since', p_since,
        'until', p_until,
        'finished', t.finished,
        'published', t.published,
        'failed', t.failed,
        'unknown', t.unknown,
        'retried', t.retried,
        'success_ratio', t.published::float8 / nullif(t.finished, 0),
        'failure_ratio', (t.failed + t.unknown)::float8 / nullif(t.finished, 0),
        'retry_ratio', t.retried::float8 / nullif(t.finished, 0),
        'publish_lag', jsonb_build_object('count', t.lag_count, 'p50_ms', t.lag_p50, 'p95_ms', t.lag_p95,
                                          'max_ms', t.lag_max),
        'by_platform', coalesce((select jsonb_object_agg(p.platform, jsonb_build_object(
                                     'finished', p.finished, 'published', p.published, 'failed', p.failed,
                                     'unknown', p.unknown))
                                   from platforms p), '{}'::jsonb))
      from totals t
$$;

create function herald_private.operations(p_now timestamp with time zone, p_workspace_id uuid) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object(
        'now', p_now,
        'windows', jsonb_build_object(
            '24h', herald_private.window_outcomes(p_now - interval '24 hours', p_now, p_workspace_id),
            '7d', herald_private.window_outcomes(p_now - interval '7 days', p_now, p_workspace_id)),
        'stuck', (select jsonb_build_object('count', count(*), 'oldest_lease_expires_at', min(p.lease_expires_at))
                    from herald.posts p
                   where p.status = 'publishing' and p.lease_expires_at < p_now
                     and (p_workspace_id is null or p.workspace_id = p_workspace_id)),
        'due', (select jsonb_build_object('count', count(*),
                                          'oldest_due_at', min(coalesce(p.next_attempt_at, p.scheduled_at)))
                  from herald.posts p
                 where p.status = 'scheduled' and coalesce(p.next_attempt_at, p.scheduled_at) <= p_now
                   and (p_workspace_id is null or p.workspace_id = p_workspace_id)))
$$;

-- --- the API functions, in the request's workspace ------------------------------------------------

create or replace function public.herald_add_comment_v1(p_post_id uuid, p_body text) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('editor');
    v_comment herald.post_comments;
begin
    perform herald_private.require_discussable_post(p_post_id);
    if p_body is null or btrim(p_body, E' \t\r\n') = '' then
        raise exception 'a comment needs some text' using errcode = 'HR422', hint = 'body';
    end if;
    if length(p_body) > 10000 then
        raise exception 'a comment is at most 10000 characters' using errcode = 'HR422', hint = 'body';
    end if;
    insert into herald.post_comments (post_id, workspace_id, user_id, body) values (p_post_id, v_ws, v_uid, p_body)
    returning * into v_comment;
    perform herald_private.log_in(v_ws, v_uid, p_post_id, 'post.commented', jsonb_build_object('comment_id', v_comment.id));
    return herald_private.comment_json(v_comment);
end
$$;

create or replace function public.herald_analytics_summary_v1(p_from timestamp with time zone, p_to timestamp with time zone, p_platform text DEFAULT NULL::text, p_channel_id uuid DEFAULT NULL::uuid, p_top integer DEFAULT 10) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    v_ws uuid := herald_private.current_workspace_id('viewer');
    v_result jsonb;
begin
    if p_from is null or p_to is null or p_to <= p_from or p_to - p_from > interval '366 days' then
        raise exception 'to must be after from, and the range at most 366 days'
            using errcode = 'HR422', detail = 'invalid', hint = 'to';
    end if;
    if p_top is null or p_top < 1 or p_top > 50 then
        raise exception 'top must be between 1 and 50' using errcode = 'HR422', detail = 'invalid', hint = 'top';
    end if;
    if p_channel_id is not null then
        perform herald_private.check_channels(v_ws, array[p_channel_id], 'channel_id');
    end if;
    with scope as (
        select t.id, t.post_id, t.platform, t.published_at, latest.*
          from herald.post_targets t
          left join lateral (
              select a.id as reading_id, a.likes, a.comments, a.shares, a.impressions, a.clicks, a.saves,
                     coalesce(a.likes, 0) + coalesce(a.comments, 0) + coalesce(a.shares, 0) as engagement
                from herald.post_analytics a where a.target_id = t.id
               order by a.recorded_at desc, a.id desc limit 1) latest on true
         where t.workspace_id = v_ws and t.status = 'published'
           and t.published_at >= p_from and t.published_at < p_to
           and (coalesce(p_platform, '') = '' or t.platform = p_platform)
           and (p_channel_id is null or t.channel_id = p_channel_id)
    ), groups as (
        select s.platform, grouping(s.platform) = 1 as is_total, herald_private.analytics_figures(
                   count(*), count(*) filter (where s.reading_id is not null), sum(s.likes), sum(s.comments),
                   sum(s.shares), sum(s.impressions), sum(s.clicks), sum(s.saves), sum(s.engagement),
                   sum(s.engagement) filter (where s.impressions > 0),
                   sum(s.impressions) filter (where s.impressions > 0))
                   || jsonb_build_object('posts', count(distinct s.post_id)) as figures
          from scope s
         group by grouping sets ((s.platform), ())
    ), top as (
        select s.post_id, sum(s.engagement) as engagement, sum(s.impressions) as impressions,
               round(sum(s.engagement) filter (where s.impressions > 0)
                     / nullif(sum(s.impressions) filter (where s.impressions > 0), 0), 6) as rate,
               min(s.published_at) as published_at,
               array_agg(distinct s.platform order by s.platform) as platforms
          from scope s
         where s.reading_id is not null
         group by s.post_id
         order by sum(s.engagement) desc, min(s.published_at) desc, s.post_id
         limit p_top
    )
    select jsonb_build_object(
        'from', p_from, 'to', p_to, 'platform', nullif(p_platform, ''), 'channel_id', p_channel_id,
        'totals', (select g.figures from groups g where g.is_total),
        'by_platform', coalesce((select jsonb_object_agg(g.platform, g.figures) from groups g where not g.is_total),
                                '{}'::jsonb),
        'top_posts', coalesce((select jsonb_agg(jsonb_build_object(
                'post_id', tp.post_id, 'text', left(p.content ->> 'text', 280), 'published_at', tp.published_at,
                'platforms', to_jsonb(tp.platforms), 'engagement', tp.engagement, 'impressions', tp.impressions,
                'engagement_rate', tp.rate)
                order by tp.engagement desc, tp.published_at desc, tp.post_id)
              from top tp join herald.posts p on p.id = tp.post_id), '[]'::jsonb))
      into v_result;
    return v_result;
end
$$;

create or replace function public.herald_get_post_analytics_v1(p_post_id uuid) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    v_ws uuid := herald_private.current_workspace_id('viewer');
    v_result jsonb;
begin
    perform from herald.posts p where p.id = p_post_id and p.workspace_id = v_ws;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    with targets as (
        select t.*, latest.*
          from herald.post_targets t
          left join lateral (
              select a.id as reading_id, a.likes, a.comments, a.shares, a.impressions, a.clicks, a.saves,
                     coalesce(a.likes, 0) + coalesce(a.comments, 0) + coalesce(a.shares, 0) as engagement,
                     herald_private.snapshot_json(a) as latest_json
                from herald.post_analytics a where a.target_id = t.id
               order by a.recorded_at desc, a.id desc limit 1) latest on true
         where t.post_id = p_post_id and t.workspace_id = v_ws
    )
    select jsonb_build_object(
        'post_id', p_post_id,
        'totals', herald_private.analytics_figures(
            count(*), count(*) filter (where g.reading_id is not null), sum(g.likes), sum(g.comments),
            sum(g.shares), sum(g.impressions), sum(g.clicks), sum(g.saves), sum(g.engagement),
            sum(g.engagement) filter (where g.impressions > 0), sum(g.impressions) filter (where g.impressions > 0)),
        'targets', coalesce(jsonb_agg(jsonb_build_object(
            'target_id', g.id, 'channel_id', g.channel_id, 'platform', g.platform, 'status', g.status,
            'platform_post_url', g.platform_post_url, 'published_at', g.published_at,
            'next_refresh_at', g.metrics_next_at, 'refresh_error', g.metrics_error,
            'latest', g.latest_json,
            'series', coalesce((select jsonb_agg(herald_private.snapshot_json(a) order by a.recorded_at, a.id)
                                  from herald.post_analytics a where a.target_id = g.id), '[]'::jsonb))
            order by g.platform, g.id), '[]'::jsonb))
      into v_result
      from targets g;
    return v_result;
end
$$;

create or replace function public.herald_create_channel_v1(p_platform text, p_account_id text, p_name text, p_credentials_encrypted text, p_metadata jsonb DEFAULT '{}'::jsonb, p_token_expires_at timestamp with time zone DEFAULT NULL::timestamp with time zone) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
begin
    perform herald_private.require_connect(v_ws);
    return herald_private.insert_workspace_channel(v_ws, herald_private.current_user_id(), p_platform, p_account_id,
                                                   p_name, p_credentials_encrypted, p_metadata, p_token_expires_at);
end
$$;

create or replace function public.herald_delete_channel_v1(p_channel_id uuid, p_force boolean DEFAULT false) returns void
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
    v_busy uuid[];
    v_publishing boolean;
    v_post uuid;
begin
    perform from herald.channels c where c.id = p_channel_id and c.workspace_id = v_ws;
    if not found then
        raise exception 'channel not found' using errcode = 'HR404', hint = 'channel_id';
    end if;
    perform herald_private.require_role(v_ws, 'admin');
    perform from herald.channels c where c.id = p_channel_id for update;
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
        perform herald_private.log_in(v_ws, v_uid, v_post, 'target.cancelled',
                                   jsonb_build_object('channel_id', p_channel_id, 'reason', 'channel deleted'));
    end loop;
    delete from herald.channels c where c.id = p_channel_id;
    perform herald_private.log_in(v_ws, v_uid, null, 'channel.deleted',
                               jsonb_build_object('channel_id', p_channel_id, 'cancelled_posts', cardinality(v_busy)));
end
$$;

create or replace function public.herald_get_channel_v1(p_channel_id uuid) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    v_ws uuid := herald_private.current_workspace_id('viewer');
    v_channel herald.channels;
begin
    select * into v_channel from herald.channels c
     where c.id = p_channel_id and c.workspace_id = v_ws;
    if not found then
        raise exception 'channel not found' using errcode = 'HR404', hint = 'channel_id';
    end if;
    return herald_private.channel_json(v_channel);
end
$$;

create or replace function public.herald_list_channels_v1() returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    -- first: a workspace the caller is not in is a 404 even where RLS leaves no row to filter
    v_ws uuid := herald_private.current_workspace_id('viewer');
begin
    return (
        select coalesce(jsonb_agg(herald_private.channel_json(c) order by c.created_at, c.id), '[]'::jsonb)
          from herald.channels c
         where c.workspace_id = v_ws
    );
end
$$;

create or replace function public.herald_update_channel_v1(p_channel_id uuid, p_name text DEFAULT NULL::text, p_metadata jsonb DEFAULT NULL::jsonb, p_active boolean DEFAULT NULL::boolean) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
    v_before herald.channels;
    v_channel herald.channels;
begin
    perform from herald.channels c where c.id = p_channel_id and c.workspace_id = v_ws;
    if not found then
        raise exception 'channel not found' using errcode = 'HR404', hint = 'channel_id';
    end if;
    perform herald_private.require_role(v_ws, 'admin');
    select * into v_before from herald.channels c where c.id = p_channel_id for update;
    if p_name is not null and length(btrim(p_name)) = 0 then
        raise exception 'name cannot be empty' using errcode = 'HR422', detail = 'invalid', hint = 'name';
    end if;
    if p_metadata is not null and jsonb_typeof(p_metadata) <> 'object' then
        raise exception 'metadata must be a JSON object' using errcode = 'HR422', detail = 'invalid', hint = 'metadata';
    end if;

    update herald.channels c set
        name = coalesce(p_name, c.name),
        metadata = case when p_metadata is null then c.metadata
                        else (c.metadata || p_metadata)
                             - array(select m.key from jsonb_each(p_metadata) m where m.value = 'null'::jsonb) end,
        active = coalesce(p_active, c.active)
     where c.id = p_channel_id
    returning * into v_channel;

    if v_before.active and not v_channel.active then
        update herald.post_targets t
           set error = 'the channel is paused: its posts wait until it is active again', error_code = 'channel_paused'
         where t.channel_id = p_channel_id and t.status = 'pending';
        perform herald_private.log_in(v_ws, v_uid, null, 'channel.paused', jsonb_build_object('channel_id', p_channel_id));
    elsif not v_before.active and v_channel.active then
        update herald.post_targets t set error = null, error_code = null
         where t.channel_id = p_channel_id and t.status = 'pending' and t.error_code = 'channel_paused';
        -- Held only by paused channels (no target waiting on a retry of its own): due again now.
        update herald.posts p
           set next_attempt_at = case when p.scheduled_at is not null and p.scheduled_at <= now() then null
                                      else least(p.next_attempt_at, now()) end
         where p.status = 'scheduled' and p.next_attempt_at > now()
           and p.id in (select t.post_id from herald.post_targets t
                         where t.channel_id = p_channel_id and t.status = 'pending')
           and not exists (select from herald.post_targets o
                            where o.post_id = p.id and o.status = 'pending' and o.error_code is not null
                              and o.error_code <> 'channel_paused');
        perform herald_private.log_in(v_ws, v_uid, null, 'channel.resumed', jsonb_build_object('channel_id', p_channel_id));
    end if;
    if p_name is not null or p_metadata is not null then
        perform herald_private.log_in(v_ws, v_uid, null, 'channel.updated', jsonb_build_object(
            'channel_id', p_channel_id, 'fields', to_jsonb(array_remove(array[
                case when p_name is not null then 'name' end,
                case when p_metadata is not null then 'metadata' end], null))));
    end if;
    return herald_private.channel_json(v_channel);
end
$$;

create or replace function public.herald_create_post_v1(p_content jsonb, p_channel_ids uuid[], p_status text, p_scheduled_at timestamp with time zone DEFAULT NULL::timestamp with time zone, p_timezone text DEFAULT 'UTC'::text, p_rrule text DEFAULT NULL::text) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_id uuid;
    v_ws uuid := herald_private.ensure_workspace_id('editor');
begin
    v_id := herald_private.insert_workspace_post(v_ws, herald_private.current_user_id(), jsonb_build_object(
        'content', p_content, 'channel_ids', to_jsonb(coalesce(p_channel_ids, '{}')), 'status', p_status,
        'scheduled_at', p_scheduled_at, 'timezone', p_timezone, 'rrule', p_rrule), 'channel_ids');
    return herald_private.post_by_id(v_id);
end
$$;

create or replace function public.herald_delete_post_v1(p_post_id uuid, p_allowed_from text[]) returns void
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
    v_status text;
begin
    perform from herald.posts p where p.id = p_post_id and p.workspace_id = v_ws;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    perform herald_private.require_role(v_ws, 'editor');
    select p.status into v_status from herald.posts p where p.id = p_post_id for update;
    if not v_status = any(p_allowed_from) then
        raise exception '%', herald_private.conflict_message('delete', v_status)
            using errcode = 'HR409', detail = 'invalid_state';
    end if;
    perform herald_private.refuse_if_live(p_post_id, 'delete');
    delete from herald.posts p where p.id = p_post_id;
    perform herald_private.log_in(v_ws, v_uid, p_post_id, 'post.deleted', jsonb_build_object('status', v_status));
end
$$;

create or replace function public.herald_get_post_v1(p_post_id uuid) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    v_ws uuid := herald_private.current_workspace_id('viewer');
    v_post herald.posts;
begin
    select * into v_post from herald.posts p where p.id = p_post_id and p.workspace_id = v_ws;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    return herald_private.post_json(v_post);
end
$$;

create or replace function public.herald_list_activity_v1(p_post_id uuid DEFAULT NULL::uuid, p_limit integer DEFAULT 50) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    -- first: a workspace the caller is not in is a 404 even where RLS leaves no row to filter
    v_ws uuid := herald_private.current_workspace_id('viewer');
begin
    return (
        select coalesce(jsonb_agg(to_jsonb(a) order by a.id desc), '[]'::jsonb)
          from (select * from herald.activity_logs a
                 where a.workspace_id = v_ws
                   and (p_post_id is null or a.post_id = p_post_id)
                 order by a.id desc
                 limit p_limit) a
    );
end
$$;

create or replace function public.herald_list_outbox_v1(p_limit integer DEFAULT 50) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    -- first: a workspace the caller is not in is a 404 even where RLS leaves no row to filter
    v_ws uuid := herald_private.current_workspace_id('viewer');
begin
    return (
        select coalesce(jsonb_agg(to_jsonb(o) order by o.published_at desc, o.id), '[]'::jsonb)
          from (select * from herald.sandbox_outbox o
                 where o.workspace_id = v_ws
                 order by o.published_at desc, o.id
                 limit p_limit) o
    );
end
$$;

create or replace function public.herald_list_posts_v1(p_statuses text[] DEFAULT NULL::text[], p_platform text DEFAULT NULL::text, p_channel_id uuid DEFAULT NULL::uuid, p_scheduled_from timestamp with time zone DEFAULT NULL::timestamp with time zone, p_scheduled_to timestamp with time zone DEFAULT NULL::timestamp with time zone, p_updated_since timestamp with time zone DEFAULT NULL::timestamp with time zone, p_recurring boolean DEFAULT NULL::boolean, p_limit integer DEFAULT 50, p_offset integer DEFAULT 0) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    -- first: a workspace the caller is not in is a 404 even where RLS leaves no row to filter
    v_ws uuid := herald_private.current_workspace_id('viewer');
begin
    return (
        with matching as (
            select p.* from herald.posts p
             where p.workspace_id = v_ws
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
    );
end
$$;

create or replace function public.herald_list_runs_v1(p_post_id uuid) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    v_ws uuid := herald_private.current_workspace_id('viewer');
begin
    perform from herald.posts p where p.id = p_post_id and p.workspace_id = v_ws;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    return coalesce((select jsonb_agg(to_jsonb(r) order by r.started_at, r.attempt, r.id)
                       from herald.post_runs r where r.post_id = p_post_id), '[]'::jsonb);
end
$$;

create or replace function public.herald_operations_v1(p_now timestamp with time zone) returns jsonb
language sql stable set search_path = '' as $$
    select herald_private.operations(p_now, coalesce(herald_private.current_workspace_id('viewer'),
                                              '00000000-0000-0000-0000-000000000000'::uuid))
$$;

create or replace function public.herald_post_statistics_v1() returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    -- first: a workspace the caller is not in is a 404 even where RLS leaves no row to filter
    v_ws uuid := herald_private.current_workspace_id('viewer');
begin
    return (
        with me as (select v_ws as ws),
        by_status as (
            select p.status, count(*) as n from herald.posts p, me where p.workspace_id = me.ws group by p.status
        ),
        by_target as (
            select t.platform, t.status, count(*) as n from herald.post_targets t, me
             where t.workspace_id = me.ws group by t.platform, t.status
        ),
        by_platform as (
            select b.platform, jsonb_build_object('targets', sum(b.n)) || jsonb_object_agg(b.status, b.n) as counts
              from by_target b group by b.platform
        )
        select jsonb_build_object(
            'total', coalesce((select sum(n) from by_status), 0),
            'by_status', coalesce((select jsonb_object_agg(status, n) from by_status), '{}'::jsonb),
            'by_platform', coalesce((select jsonb_object_agg(platform, counts) from by_platform), '{}'::jsonb))
    );
end
$$;

create or replace function public.herald_post_statistics_v2(p_since timestamp with time zone) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    -- first: a workspace the caller is not in is a 404 even where RLS leaves no row to filter
    v_ws uuid := herald_private.current_workspace_id('viewer');
begin
    return (
        select public.herald_post_statistics_v1() || jsonb_build_object('publish_lag', (
            select jsonb_build_object(
                'since', p_since,
                'count', count(*),
                'p50_ms', round(percentile_cont(0.5) within group (order by t.publish_lag_ms)),
                'p95_ms', round(percentile_cont(0.95) within group (order by t.publish_lag_ms)),
                'max_ms', max(t.publish_lag_ms))
              from herald.post_targets t
             where t.workspace_id = v_ws
               and t.status = 'published' and t.publish_lag_ms is not null and t.published_at >= p_since))
    );
end
$$;

create or replace function public.herald_resolve_target_v1(p_post_id uuid, p_target_id uuid, p_published boolean, p_url text DEFAULT NULL::text) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
    v_target_status text;
    v_status text;
begin
    perform from herald.posts p where p.id = p_post_id and p.workspace_id = v_ws;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    perform herald_private.require_role(v_ws, 'editor');
    perform from herald.posts p where p.id = p_post_id for update;
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
        perform herald_private.emit_post(v_uid, 'post.' || v_status, p_post_id);
    end if;
    perform herald_private.log_in(v_ws, v_uid, p_post_id, 'target.resolved',
                               jsonb_build_object('target_id', p_target_id, 'published', p_published));
    return herald_private.post_by_id(p_post_id);
end
$$;

create or replace function public.herald_create_webhook_v1(p_url text, p_events text[], p_description text, p_secret_encrypted text) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('admin');
    v_endpoint herald.webhook_endpoints;
begin
    if (select count(*) from herald.webhook_endpoints w where w.workspace_id = v_ws) >= 20 then
        raise exception 'at most 20 webhook endpoints per workspace' using errcode = 'HR422', hint = 'url';
    end if;
    insert into herald.webhook_endpoints (workspace_id, user_id, url, events, description, secret_encrypted)
    values (v_ws, v_uid, p_url, p_events, p_description, p_secret_encrypted)
    returning * into v_endpoint;
    return herald_private.endpoint_json(v_endpoint);
end
$$;

create or replace function public.herald_delete_webhook_v1(p_endpoint_id uuid) returns void
language plpgsql volatile set search_path = '' as $$
declare
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
begin
    perform from herald.webhook_endpoints w where w.id = p_endpoint_id and w.workspace_id = v_ws;
    if not found then
        raise exception 'webhook endpoint not found' using errcode = 'HR404', hint = 'webhook_id';
    end if;
    perform herald_private.require_role(v_ws, 'admin');
    delete from herald.webhook_endpoints w where w.id = p_endpoint_id;
end
$$;

create or replace function public.herald_get_webhook_v1(p_endpoint_id uuid) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    v_ws uuid := herald_private.current_workspace_id('viewer');
    v_endpoint herald.webhook_endpoints;
begin
    select * into v_endpoint from herald.webhook_endpoints w
     where w.id = p_endpoint_id and w.workspace_id = v_ws;
    if not found then
        raise exception 'webhook endpoint not found' using errcode = 'HR404', hint = 'webhook_id';
    end if;
    return herald_private.endpoint_json(v_endpoint);
end
$$;

create or replace function public.herald_list_deliveries_v1(p_endpoint_id uuid, p_limit integer DEFAULT 50, p_offset integer DEFAULT 0) returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    v_ws uuid := herald_private.current_workspace_id('viewer');
begin
    perform from herald.webhook_endpoints w
     where w.id = p_endpoint_id and w.workspace_id = v_ws;
    if not found then
        raise exception 'webhook endpoint not found' using errcode = 'HR404', hint = 'webhook_id';
    end if;
    return jsonb_build_object(
        'total', (select count(*) from herald.webhook_attempts a where a.endpoint_id = p_endpoint_id),
        'items', coalesce((
            select jsonb_agg(x order by x.id desc) from (
                select a.id, a.delivery_id, d.event_id, e.type as event_type, a.attempt, a.succeeded, a.http_status,
                       a.duration_ms, a.error, a.attempted_at, d.status as delivery_status,
                       d.next_attempt_at as next_attempt_at
                  from herald.webhook_attempts a
                  join herald.webhook_deliveries d on d.id = a.delivery_id
                  join herald.events e on e.id = d.event_id
                 where a.endpoint_id = p_endpoint_id
                 order by a.id desc
                 limit greatest(least(p_limit, 200), 0) offset greatest(p_offset, 0)) x), '[]'::jsonb));
end
$$;

create or replace function public.herald_list_webhooks_v1() returns jsonb
language plpgsql stable set search_path = '' as $$
declare
    -- first: a workspace the caller is not in is a 404 even where RLS leaves no row to filter
    v_ws uuid := herald_private.current_workspace_id('viewer');
begin
    return (
        select coalesce(jsonb_agg(herald_private.endpoint_json(w) order by w.created_at, w.id), '[]'::jsonb)
          from herald.webhook_endpoints w where w.workspace_id = v_ws
    );
end
$$;

create or replace function public.herald_update_webhook_v1(p_endpoint_id uuid, p_events text[] DEFAULT NULL::text[], p_description text DEFAULT NULL::text, p_status text DEFAULT NULL::text) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
    v_endpoint herald.webhook_endpoints;
begin
    perform from herald.webhook_endpoints w where w.id = p_endpoint_id and w.workspace_id = v_ws;
    if not found then
        raise exception 'webhook endpoint not found' using errcode = 'HR404', hint = 'webhook_id';
    end if;
    perform herald_private.require_role(v_ws, 'admin');
    update herald.webhook_endpoints w set
        events = coalesce(p_events, w.events),
        description = coalesce(p_description, w.description),
        status = coalesce(p_status, w.status),
        disabled_reason = case when p_status = 'active' then null
                               when p_status = 'disabled' then 'disabled by a workspace admin' else w.disabled_reason end,
        failing_since = case when p_status = 'active' then null else w.failing_since end,
        updated_at = now()
     where w.id = p_endpoint_id
    returning * into v_endpoint;
    if not found then
        raise exception 'webhook endpoint not found' using errcode = 'HR404', hint = 'webhook_id';
    end if;
    return herald_private.endpoint_json(v_endpoint);
end
$$;

create or replace function public.herald_test_webhook_v1(p_endpoint_id uuid) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
    v_event uuid;
    v_delivery uuid;
begin
    perform from herald.webhook_endpoints w where w.id = p_endpoint_id and w.workspace_id = v_ws;
    if not found then
        raise exception 'webhook endpoint not found' using errcode = 'HR404', hint = 'webhook_id';
    end if;
    perform herald_private.require_role(v_ws, 'admin');
    insert into herald.events (workspace_id, user_id, type, subject)
    values (v_ws, v_uid, 'webhook.test', jsonb_build_object('webhook_id', p_endpoint_id)) returning id into v_event;
    insert into herald.webhook_deliveries (event_id, endpoint_id, workspace_id, user_id, lease_expires_at)
    values (v_event, p_endpoint_id, v_ws, v_uid, now() + interval '2 minutes') returning id into v_delivery;
    return jsonb_build_object('event_id', v_event, 'delivery_id', v_delivery);
end
$$;

create or replace function public.herald_create_posts_v1(p_posts jsonb, p_idempotency_key text default null,
                                                         p_request_hash text default null) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('editor');
    v_seen herald.idempotency_keys;
    v_ids uuid[] := '{}';
    v_item record;
    v_many boolean := jsonb_array_length(p_posts) > 1;
begin
    if p_idempotency_key is not null then
        -- two requests with one key: the second waits for the first and replays it
        perform pg_advisory_xact_lock(hashtextextended(v_ws::text || '/' || v_uid::text || '/' || p_idempotency_key, 0));
        select * into v_seen from herald.idempotency_keys k
         where k.workspace_id = v_ws and k.user_id = v_uid and k.key = p_idempotency_key;
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
        v_ids := v_ids || herald_private.insert_workspace_post(
            v_ws, v_uid, v_item.value, case when v_many then format('posts.%s.channel_ids', v_item.i) else 'channel_ids' end);
    end loop;
    if p_idempotency_key is not null then
        insert into herald.idempotency_keys (workspace_id, user_id, key, request_hash, post_ids)
        values (v_ws, v_uid, p_idempotency_key, p_request_hash, v_ids);
    end if;
    return jsonb_build_object('replayed', false, 'posts', coalesce(
        (select jsonb_agg(herald_private.post_json(p) order by ids.n)
           from unnest(v_ids) with ordinality as ids (id, n)
           join herald.posts p on p.id = ids.id),
        '[]'::jsonb));
end
$$;

-- The edit of 20261201000100 in the request's workspace (editor or more), with approval: where the
-- workspace asks for it and the caller may not approve, a move to `scheduled` goes to
-- `pending_approval` unless the post is approved and this call changes nothing of it, and an edit of
-- its content, channels or time takes a scheduled post back to `pending_approval`. An approver's
-- move to `scheduled` (or edit of a scheduled post) approves it in their name.
create or replace function public.herald_update_post_v1(p_post_id uuid, p_changes jsonb, p_allowed_from text[],
                                                        p_action text) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
    v_post herald.posts;
    v_channel_ids uuid[];
    v_status text := p_changes ->> 'status';
    v_occurrence_only boolean := coalesce((p_changes ->> 'occurrence_only')::boolean, false);
    v_reanchor boolean := p_changes ?| array['rrule', 'scheduled_at', 'timezone'];
    v_rule text;
    v_anchor timestamptz;
    v_gated boolean;
    v_edits boolean;
    v_approval text := 'keep';  -- keep | clear | stamp
    v_next timestamptz := (p_changes ->> 'next_attempt_at')::timestamptz;
begin
    perform from herald.posts p where p.id = p_post_id and p.workspace_id = v_ws;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    perform herald_private.require_role(v_ws, 'editor');
    select * into v_post from herald.posts p where p.id = p_post_id for update;
    if not v_post.status = any(p_allowed_from) then
        raise exception '%', herald_private.conflict_message(p_action, v_post.status)
            using errcode = 'HR409', detail = 'invalid_state';
    end if;
    perform herald_private.refuse_if_live(p_post_id, p_action);
    if p_changes ? 'channel_ids' then
        v_channel_ids := array(select jsonb_array_elements_text(p_changes -> 'channel_ids')::uuid);
        perform herald_private.check_channels(v_ws, v_channel_ids, 'channel_ids');
    end if;
    -- a changed rule, time or zone starts the series afresh from this occurrence
    v_rule := case when p_changes ? 'rrule' then p_changes ->> 'rrule' else v_post.rrule end;
    v_anchor := case when p_changes ? 'scheduled_at' then (p_changes ->> 'scheduled_at')::timestamptz
                     else v_post.scheduled_at end;

    -- approval
    v_edits := (p_changes ? 'content' and p_changes -> 'content' is distinct from v_post.content)
        or (p_changes ? 'channel_ids' and array(select t.channel_id from herald.post_targets t
                                                  where t.post_id = p_post_id and t.status <> 'cancelled'
                                                    and t.channel_id is not null order by 1)
                                          is distinct from array(select distinct c from unnest(v_channel_ids) c order by 1))
        or v_anchor is distinct from v_post.scheduled_at
        or (p_changes ? 'timezone' and p_changes ->> 'timezone' is distinct from v_post.timezone)
        or v_rule is distinct from v_post.rrule;
    v_gated := herald_private.needs_approval(v_ws);
    if v_gated then
        if v_status = 'scheduled' and (v_edits or v_post.approved_at is null) then
            v_status := 'pending_approval';
            v_next := null;
        elsif v_status is null and v_edits and v_post.status in ('scheduled', 'pending_approval') then
            v_status := 'pending_approval';
        end if;
        if v_edits then
            v_approval := 'clear';
        end if;
    elsif (select w.approval_required from herald.workspaces w where w.id = v_ws)
          and (v_status = 'scheduled' or (v_status is null and v_edits and v_post.status = 'scheduled')) then
        v_approval := 'stamp';
    end if;

    if p_changes ? 'channel_ids' then
        delete from herald.post_targets t
         where t.post_id = p_post_id and t.status <> 'published'
           and (t.channel_id is null or t.channel_id <> all(v_channel_ids));
        perform herald_private.add_targets(v_ws, p_post_id, v_channel_ids);
    end if;
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
        error = case when v_status in ('scheduled', 'pending_approval') then null else p.error end,
        next_attempt_at = case when v_status = 'scheduled' then v_next
                               when v_status = 'pending_approval' then null
                               else p.next_attempt_at end,
        approved_by = case v_approval when 'keep' then p.approved_by when 'stamp' then v_uid end,
        approved_at = case v_approval when 'keep' then p.approved_at when 'stamp' then now() end
     where p.id = p_post_id;
    perform herald_private.log_in(v_ws, v_uid, p_post_id, 'post.' || p_action, jsonb_build_object(
        'fields', to_jsonb(array(select k from jsonb_object_keys(p_changes) k
                                  where k not in ('status', 'next_attempt_at', 'occurrence_only')
                                  order by k collate "C")),
        'status', coalesce(v_status, v_post.status)));
    if v_status = 'pending_approval' and v_post.status <> 'pending_approval' then
        perform herald_private.log_in(v_ws, v_uid, p_post_id, 'post.approval_requested', '{}'::jsonb);
    end if;
    return herald_private.post_by_id(p_post_id);
end
$$;

-- Approve a post waiting for approval (owner, admin, or a member with the approver flag): it becomes
-- `scheduled`. If its time has passed, the approver chooses: p_publish_now publishes it at the next
-- run; without it the approval is refused (409 naming the choice), so a stale post never goes out
-- by surprise.
create function public.herald_approve_post_v1(p_post_id uuid, p_publish_now boolean default false) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
    v_post herald.posts;
begin
    perform from herald.posts p where p.id = p_post_id and p.workspace_id = v_ws;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    if not herald_private.is_approver(v_ws) then
        raise exception 'approving posts needs the owner or admin role in this workspace, or the approver flag; %',
            herald_private.you_are(v_ws) using errcode = 'HR403', detail = 'forbidden';
    end if;
    select * into v_post from herald.posts p where p.id = p_post_id for update;
    if v_post.status <> 'pending_approval' then
        raise exception 'cannot approve this post: it is not waiting for approval (it is %)', v_post.status
            using errcode = 'HR409', detail = 'invalid_state';
    end if;
    if v_post.scheduled_at is null then
        raise exception 'cannot approve this post: it has no time; give it a scheduled_at first'
            using errcode = 'HR409', detail = 'invalid_state';
    end if;
    if v_post.scheduled_at <= now() and not coalesce(p_publish_now, false) then
        raise exception 'its time (%) has passed: approve with publish_now true to publish it now, or give it a new time first',
            v_post.scheduled_at using errcode = 'HR409', detail = 'time_passed', hint = 'publish_now';
    end if;
    update herald.posts p set
        status = 'scheduled', error = null, approved_by = v_uid, approved_at = now(),
        next_attempt_at = case when coalesce(p_publish_now, false) then now() end
     where p.id = p_post_id;
    perform herald_private.log_in(v_ws, v_uid, p_post_id, 'post.approved',
                                  jsonb_build_object('publish_now', coalesce(p_publish_now, false)));
    return herald_private.post_by_id(p_post_id);
end
$$;

-- Reject a post waiting for approval, with a comment (added to its comments): back to `draft`.
create function public.herald_reject_post_v1(p_post_id uuid, p_comment text) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_ws uuid := herald_private.ensure_workspace_id('viewer');
    v_status text;
    v_comment uuid;
begin
    perform from herald.posts p where p.id = p_post_id and p.workspace_id = v_ws;
    if not found then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
    if not herald_private.is_approver(v_ws) then
        raise exception 'rejecting posts needs the owner or admin role in this workspace, or the approver flag; %',
            herald_private.you_are(v_ws) using errcode = 'HR403', detail = 'forbidden';
    end if;
    if p_comment is null or btrim(p_comment, E' \t\r\n') = '' then
        raise exception 'say why: a rejection needs a comment' using errcode = 'HR422', hint = 'comment';
    end if;
    if length(p_comment) > 10000 then
        raise exception 'a comment is at most 10000 characters' using errcode = 'HR422', hint = 'comment';
    end if;
    select p.status into v_status from herald.posts p where p.id = p_post_id for update;
    if v_status <> 'pending_approval' then
        raise exception 'cannot reject this post: it is not waiting for approval (it is %)', v_status
            using errcode = 'HR409', detail = 'invalid_state';
    end if;
    update herald.posts p set status = 'draft', next_attempt_at = null, approved_by = null, approved_at = null
     where p.id = p_post_id;
    insert into herald.post_comments (post_id, workspace_id, user_id, body) values (p_post_id, v_ws, v_uid, p_comment)
    returning id into v_comment;
    perform herald_private.log_in(v_ws, v_uid, p_post_id, 'post.rejected', jsonb_build_object('comment_id', v_comment));
    return herald_private.post_by_id(p_post_id);
end
$$;

-- An OAuth callback (service role; the signed state proved the user and names the workspace the
-- connect began in): connect or reconnect the account there, if the user may still connect channels
-- in it. Without a workspace, the user's personal one.
create function public.herald_connect_channel_v2(
    p_user_id uuid, p_workspace_id uuid, p_platform text, p_account_id text, p_name text,
    p_credentials_encrypted text, p_metadata jsonb default '{}'::jsonb, p_token_expires_at timestamptz default null
) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_ws uuid := coalesce(p_workspace_id, herald_private.personal_workspace(p_user_id));
    v_channel herald.channels;
begin
    if not exists (select from herald.workspace_members m join herald.workspaces w on w.id = m.workspace_id
                    where m.workspace_id = v_ws and m.user_id = p_user_id
                      and (m.role in ('owner', 'admin') or (m.role = 'editor' and w.editors_connect_channels))) then
        if exists (select from herald.workspace_members m where m.workspace_id = v_ws and m.user_id = p_user_id) then
            raise exception 'connecting channels needs the admin role in this workspace (or the editor role where the workspace lets editors connect channels)'
                using errcode = 'HR403', detail = 'forbidden';
        end if;
        raise exception 'workspace not found' using errcode = 'HR404', detail = 'workspace_not_found',
            hint = 'workspace_id';
    end if;
    -- An account connected before is reconnected: new tokens, active again, same id (its posts keep it).
    update herald.channels c
       set name = p_name, metadata = c.metadata || coalesce(p_metadata, '{}'::jsonb),
           credentials_encrypted = p_credentials_encrypted, token_expires_at = p_token_expires_at, status = 'active'
     where c.workspace_id = v_ws and c.platform = p_platform and c.account_id = p_account_id
    returning * into v_channel;
    if found then
        perform herald_private.log_in(v_ws, p_user_id, null, 'channel.reconnected',
                                      jsonb_build_object('channel_id', v_channel.id, 'platform', p_platform));
        return herald_private.channel_json(v_channel);
    end if;
    return herald_private.insert_workspace_channel(v_ws, p_user_id, p_platform, p_account_id, p_name,
                                                   p_credentials_encrypted, p_metadata, p_token_expires_at);
end
$$;

create or replace function public.herald_connect_channel_v1(
    p_user_id uuid, p_platform text, p_account_id text, p_name text, p_credentials_encrypted text,
    p_metadata jsonb default '{}'::jsonb, p_token_expires_at timestamptz default null
) returns jsonb
language sql volatile set search_path = '' as $$
    select public.herald_connect_channel_v2(p_user_id, null, p_platform, p_account_id, p_name, p_credentials_encrypted,
                                           p_metadata, p_token_expires_at)
$$;

-- --- privileges -----------------------------------------------------------------------------------

revoke all on function herald_private.you_are(uuid), herald_private.check_channels(uuid, uuid[], text), herald_private.add_targets(uuid, uuid, uuid[]),
    herald_private.log_in(uuid, uuid, uuid, text, jsonb), herald_private.require_connect(uuid),
    herald_private.needs_approval(uuid), herald_private.insert_workspace_post(uuid, uuid, jsonb, text),
    herald_private.insert_workspace_channel(uuid, uuid, text, text, text, text, jsonb, timestamptz),
    herald_private.operations(timestamptz, uuid), herald_private.window_outcomes(timestamptz, timestamptz, uuid)
    from public, anon;
grant execute on function herald_private.you_are(uuid), herald_private.check_channels(uuid, uuid[], text), herald_private.add_targets(uuid, uuid, uuid[]),
    herald_private.log_in(uuid, uuid, uuid, text, jsonb), herald_private.require_connect(uuid),
    herald_private.needs_approval(uuid), herald_private.insert_workspace_post(uuid, uuid, jsonb, text),
    herald_private.insert_workspace_channel(uuid, uuid, text, text, text, text, jsonb, timestamptz),
    herald_private.operations(timestamptz, uuid), herald_private.window_outcomes(timestamptz, timestamptz, uuid)
    to authenticated, service_role;

do $grants$
declare
    v_fn text;
begin
    foreach v_fn in array array[
        'public.herald_approve_post_v1(uuid, boolean)',
        'public.herald_reject_post_v1(uuid, text)'
    ] loop
        execute format('revoke all on function %s from public, anon, service_role', v_fn);
        execute format('grant execute on function %s to authenticated', v_fn);
    end loop;
    execute 'revoke all on function public.herald_connect_channel_v2(uuid, uuid, text, text, text, text, jsonb, timestamptz) from public, anon, authenticated';
    execute 'grant execute on function public.herald_connect_channel_v2(uuid, uuid, text, text, text, text, jsonb, timestamptz) to service_role';
end
$grants$;
