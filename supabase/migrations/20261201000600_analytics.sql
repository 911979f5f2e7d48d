-- Engagement analytics (issue 13): each published target's figures (likes, comments, shares,
-- impressions, clicks, saves) read from its platform on a decaying schedule and kept as snapshots.
--
-- The schedule: a grid anchored at the target's published_at. Hourly slots in the first day
-- (published_at + 1 h, + 2 h, ... + 24 h), then daily slots until day 30 (+ 2 d, ... + 30 d), then
-- none. After each read (or failed read) the next slot is the first one after that moment, so a
-- late or hourly cron reads each target about once per slot and never catches up in a burst.
--
-- The refresh run (services/analytics/refresh.py, GET|POST /api/v1/cron/refresh-analytics) claims
-- due targets with a lease (for update skip locked: overlapping calls never read one target twice)
-- and records every reading and the next slots in one call. It reads only: a post's attempts,
-- rate_limited count and status, its channel's rate_limited_until (the publish pause) and the
-- post_runs history are never touched. A rate limit met by a metrics read pauses that account's
-- analytics only (channels.metrics_paused_until).
--
-- Additive: new nullable columns, a new table and new functions; nothing an earlier release calls
-- changes its signature or answer.

-- --- columns, table, indexes -------------------------------------------------------------------

-- When the target's next metrics read is due (null: none; not published, past day 30, or stopped
-- because the post is gone). While a run holds it: the end of that run's lease.
alter table herald.post_targets add column metrics_next_at timestamptz;
-- The claim that holds the target (a refresh run's lease id); null when none does.
alter table herald.post_targets add column metrics_lease_id uuid;
-- Why the last metrics read failed, or why reading stopped; null after a good read.
alter table herald.post_targets add column metrics_error text check (length(metrics_error) <= 2000);

-- The account's analytics are paused until then: a metrics read met its platform's limit. Publishing
-- ignores it (its own pause is rate_limited_until, which a metrics read never sets).
alter table herald.channels add column metrics_paused_until timestamptz;

-- The refresh claim: due targets, earliest first.
create index post_targets_metrics_due on herald.post_targets (metrics_next_at, id) where metrics_next_at is not null;

-- One reading of one published target. A figure the platform does not give is null, not 0.
create table herald.post_analytics (
    id uuid primary key default gen_random_uuid(),
    target_id uuid not null references herald.post_targets (id) on delete cascade,
    post_id uuid not null references herald.posts (id) on delete cascade,
    user_id uuid not null references auth.users (id) on delete cascade,
    channel_id uuid references herald.channels (id) on delete set null,
    platform text not null check (length(platform) between 1 and 40),
    recorded_at timestamptz not null,
    likes bigint check (likes >= 0),
    comments bigint check (comments >= 0),
    shares bigint check (shares >= 0),
    impressions bigint check (impressions >= 0),
    clicks bigint check (clicks >= 0),
    saves bigint check (saves >= 0),
    -- the platform's own figures as it named them (what the columns above do not hold)
    raw jsonb not null default '{}'::jsonb check (jsonb_typeof(raw) = 'object')
);
-- A target's readings, newest first (the latest, and the series).
create index post_analytics_target on herald.post_analytics (target_id, recorded_at desc, id desc);
-- The summary: an owner's targets published in a range.
create index post_targets_user_published on herald.post_targets (user_id, published_at) where status = 'published';

alter table herald.post_analytics enable row level security;
-- Written by the refresh run only (service role); the owner reads their own.
create policy post_analytics_read_own on herald.post_analytics for select to authenticated
    using (user_id = (select auth.uid()));

-- --- the schedule ------------------------------------------------------------------------------

-- The first slot of the grid after p_at, for a target published at p_published_at; null past day 30.
-- Days are 24 hours (a day added to a timestamptz would follow the session's time zone across DST).
create function herald_private.metrics_next_at(p_published_at timestamptz, p_at timestamptz) returns timestamptz
language sql immutable set search_path = '' as $$
    select case
        when p_published_at is null or p_at is null then null
        when p_at < p_published_at then p_published_at + interval '1 hour'
        when p_at < p_published_at + interval '24 hours' then p_published_at
            + make_interval(hours => floor(extract(epoch from p_at - p_published_at) / 3600)::integer + 1)
        when p_at < p_published_at + interval '720 hours' then p_published_at
            + make_interval(hours => 24 * (floor(extract(epoch from p_at - p_published_at) / 86400)::integer + 1))
    end
$$;

-- A target that becomes published (by a run, or resolved by hand) with a platform post id to read
-- is first due an hour after it went out.
create function herald_private.schedule_metrics() returns trigger
language plpgsql set search_path = '' as $$
begin
    if new.status = 'published' and new.published_at is not null and new.platform_post_id is not null
       and (tg_op = 'INSERT' or old.status is distinct from 'published'
            or old.published_at is distinct from new.published_at) then
        new.metrics_next_at := herald_private.metrics_next_at(new.published_at, new.published_at);
        new.metrics_error := null;
    end if;
    return new;
end
$$;

create trigger post_targets_schedule_metrics before insert or update of status, published_at on herald.post_targets
    for each row execute function herald_private.schedule_metrics();

-- A target's updated_at says when the target changed, not when its analytics bookkeeping did (it
-- moves every hour in the first day): an update of the metrics_* columns alone leaves it.
drop trigger post_targets_updated_at on herald.post_targets;
create trigger post_targets_updated_at before update on herald.post_targets
    for each row
    when ((to_jsonb(old) - array['metrics_next_at', 'metrics_lease_id', 'metrics_error', 'updated_at'])
          is distinct from (to_jsonb(new) - array['metrics_next_at', 'metrics_lease_id', 'metrics_error', 'updated_at']))
    execute function herald_private.set_updated_at();

-- Targets already published in the last 30 days get their first read at the next refresh.
update herald.post_targets t
   set metrics_next_at = greatest(t.published_at + interval '1 hour', now())
 where t.status = 'published' and t.platform_post_id is not null and t.published_at > now() - interval '720 hours';

-- --- the refresh run (service role) ----------------------------------------------------------------

-- One reading as the API shows it.
create function herald_private.snapshot_json(a herald.post_analytics) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object('recorded_at', a.recorded_at, 'likes', a.likes, 'comments', a.comments,
                              'shares', a.shares, 'impressions', a.impressions, 'clicks', a.clicks,
                              'saves', a.saves, 'raw', a.raw)
$$;

-- Lease up to p_limit targets whose metrics read is due at p_now, earliest first, in one atomic step
-- (Store.claim_analytics_due). A target is left alone (not leased, still due) while its channel
-- needs reconnecting or is paused: publishing's rate_limited_until, its analytics pause
-- (metrics_paused_until), or its platform's app-wide pause. A target whose channel was deleted is
-- claimed, so that the run stops it. Rows another claim holds are skipped, never waited on; a
-- leased target is due again when its lease ends (a run that died), unless recorded before.
-- Returns {"lease_id", "targets": [{"target_id", "post_id", "user_id", "channel_id", "platform",
-- "platform_post_id", "platform_post_url", "published_at", "due_at"}], "channels" (with credentials)}.
-- VOLATILE: PostgREST runs STABLE functions read-only.
create function public.herald_claim_analytics_due_v1(p_now timestamptz, p_limit integer, p_lease_seconds integer)
returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_lease uuid := gen_random_uuid();
    v_result jsonb;
begin
    with picked as materialized (
        select t.id, t.metrics_next_at as due_at from herald.post_targets t
          left join herald.channels c on c.id = t.channel_id
         where t.metrics_next_at <= p_now and t.status = 'published'
           and (c.id is null or (
                c.status = 'active'
                and (c.rate_limited_until is null or c.rate_limited_until <= p_now)
                and (c.metrics_paused_until is null or c.metrics_paused_until <= p_now)
                and not exists (select from herald.platform_pauses pp where pp.platform = t.platform and pp.until > p_now)))
         order by t.metrics_next_at, t.id
         limit greatest(p_limit, 0)
           for update of t skip locked
    ), leased as (
        update herald.post_targets t
           set metrics_next_at = p_now + make_interval(secs => greatest(p_lease_seconds, 1)), metrics_lease_id = v_lease
          from picked
         where t.id = picked.id
        returning t.*, picked.due_at
    )
    select jsonb_build_object(
        'lease_id', v_lease,
        'targets', coalesce(jsonb_agg(jsonb_build_object(
            'target_id', l.id, 'post_id', l.post_id, 'user_id', l.user_id, 'channel_id', l.channel_id,
            'platform', l.platform, 'platform_post_id', l.platform_post_id, 'platform_post_url', l.platform_post_url,
            'published_at', l.published_at, 'due_at', l.due_at) order by l.due_at, l.id), '[]'::jsonb),
        'channels', coalesce((select jsonb_agg(to_jsonb(c) order by c.id) from herald.channels c
                               where c.id in (select l2.channel_id from leased l2)), '[]'::jsonb))
      into v_result
      from leased l;
    return v_result;
end
$$;

-- Due targets a claim at p_now would take (paused and reconnect-needing channels left out).
create function herald_private.count_analytics_due(p_now timestamptz) returns integer
language sql stable set search_path = '' as $$
    select count(*)::integer from herald.post_targets t
      left join herald.channels c on c.id = t.channel_id
     where t.metrics_next_at <= p_now and t.status = 'published'
       and (c.id is null or (
            c.status = 'active'
            and (c.rate_limited_until is null or c.rate_limited_until <= p_now)
            and (c.metrics_paused_until is null or c.metrics_paused_until <= p_now)
            and not exists (select from herald.platform_pauses pp where pp.platform = t.platform and pp.until > p_now)))
$$;

-- Record a refresh run's readings in one transaction (Store.record_analytics). Each reading names a
-- target the lease p_lease_id holds (others are ignored: the lease ended and another run took it)
-- and its outcome:
--   "measured"  a snapshot at "recorded_at" (default p_now) with the figures given; next slot after it
--   "failed"    no snapshot, "error" kept; next slot after "recorded_at" (a slot is skipped, not retried)
--   "stopped"   never read again ("error" says why: the post is gone, the channel was deleted, ...);
--               with "report": true (the platform's answer), the owner's activity log says so too
--   "released"  not read in this run (budget, or its account paused meanwhile): due again at "due_at"
-- p_pauses [{"channel_id", "until", "reason"}] pause those accounts' analytics (a later until wins).
-- Returns {"stored", "ignored", "remaining_due"} (remaining_due: what a claim at p_now would take).
create function public.herald_record_analytics_v1(
    p_lease_id uuid, p_now timestamptz, p_readings jsonb, p_pauses jsonb default null
) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_reading jsonb;
    v_pause jsonb;
    v_target herald.post_targets;
    v_outcome text;
    v_at timestamptz;
    v_owner uuid;
    v_stored integer := 0;
    v_ignored integer := 0;
begin
    -- Rows several recordings write are taken in one global order (channels, then targets, by id),
    -- as herald_record_results_v2 does, so that two recordings never wait on each other in a cycle.
    for v_pause in select value from jsonb_array_elements(coalesce(p_pauses, '[]'::jsonb))
                    order by value ->> 'channel_id' loop
        update herald.channels c
           set metrics_paused_until = greatest(c.metrics_paused_until, (v_pause ->> 'until')::timestamptz)
         where c.id = (v_pause ->> 'channel_id')::uuid
        returning c.user_id into v_owner;
        if found then
            perform herald_private.log(v_owner, null, 'channel.analytics_paused', jsonb_build_object(
                'channel_id', v_pause -> 'channel_id', 'until', v_pause -> 'until', 'reason', v_pause -> 'reason'));
        end if;
    end loop;

    for v_reading in select value from jsonb_array_elements(coalesce(p_readings, '[]'::jsonb))
                      order by value ->> 'target_id' loop
        v_outcome := v_reading ->> 'outcome';
        if v_outcome is null or v_outcome not in ('measured', 'failed', 'stopped', 'released') then
            raise exception 'reading outcome must be measured, failed, stopped or released, not %', v_outcome
                using errcode = 'HR422', detail = 'invalid', hint = 'outcome';
        end if;
        v_at := coalesce((v_reading ->> 'recorded_at')::timestamptz, p_now);
        update herald.post_targets t set
            metrics_lease_id = null,
            metrics_next_at = case v_outcome
                when 'released' then coalesce((v_reading ->> 'due_at')::timestamptz, p_now)
                when 'stopped' then null
                else herald_private.metrics_next_at(t.published_at, v_at) end,
            metrics_error = case v_outcome
                when 'measured' then null
                when 'released' then t.metrics_error
                else left(coalesce(nullif(v_reading ->> 'error', ''), v_outcome), 2000) end
         where t.id = (v_reading ->> 'target_id')::uuid and t.metrics_lease_id = p_lease_id
        returning * into v_target;
        if not found then
            v_ignored := v_ignored + 1;
            continue;
        end if;
        if v_outcome = 'measured' then
            insert into herald.post_analytics (target_id, post_id, user_id, channel_id, platform, recorded_at,
                                               likes, comments, shares, impressions, clicks, saves, raw)
            values (v_target.id, v_target.post_id, v_target.user_id, v_target.channel_id, v_target.platform, v_at,
                    (v_reading ->> 'likes')::bigint, (v_reading ->> 'comments')::bigint,
                    (v_reading ->> 'shares')::bigint, (v_reading ->> 'impressions')::bigint,
                    (v_reading ->> 'clicks')::bigint, (v_reading ->> 'saves')::bigint,
                    case when jsonb_typeof(v_reading -> 'raw') = 'object' then v_reading -> 'raw' else '{}'::jsonb end);
            v_stored := v_stored + 1;
        elsif v_outcome = 'stopped' and coalesce((v_reading ->> 'report')::boolean, false) then
            perform herald_private.log(v_target.user_id, v_target.post_id, 'target.analytics_stopped',
                                       jsonb_build_object('target_id', v_target.id, 'reason', v_reading -> 'error'));
        end if;
    end loop;
    return jsonb_build_object('stored', v_stored, 'ignored', v_ignored,
                              'remaining_due', herald_private.count_analytics_due(p_now));
end
$$;

-- --- what the owner reads (security invoker: RLS applies) ------------------------------------------

-- Totals over a set of targets, each counted by its latest reading (the arguments are aggregates
-- of those readings). A figure is null when no target's platform gives it. Engagement of a reading
-- is likes + comments + shares (each 0 where the platform gives none). The engagement rate is
-- engagement / impressions over the targets whose impressions are known and above 0 only, so a
-- platform that counts no impressions neither inflates nor dilutes it; null when there are none.
create function herald_private.analytics_figures(
    p_targets bigint, p_measured bigint, p_likes numeric, p_comments numeric, p_shares numeric,
    p_impressions numeric, p_clicks numeric, p_saves numeric, p_engagement numeric,
    p_rated_engagement numeric, p_rated_impressions numeric
) returns jsonb
language sql immutable set search_path = '' as $$
    select jsonb_build_object(
        'targets', coalesce(p_targets, 0), 'measured', coalesce(p_measured, 0),
        'likes', p_likes, 'comments', p_comments, 'shares', p_shares, 'impressions', p_impressions,
        'clicks', p_clicks, 'saves', p_saves, 'engagement', p_engagement,
        'engagement_rate', round(p_rated_engagement / nullif(p_rated_impressions, 0), 6))
$$;

-- {"post_id", "totals", "targets": [{"target_id", "channel_id", "platform", "status", "platform_post_url",
-- "published_at", "next_refresh_at", "refresh_error", "latest", "series"}]}: every target of the post,
-- its latest reading and all of them oldest first; "totals" sums each target's latest reading.
create function public.herald_get_post_analytics_v1(p_post_id uuid) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_result jsonb;
begin
    perform from herald.posts p where p.id = p_post_id and p.user_id = v_uid;
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
         where t.post_id = p_post_id and t.user_id = v_uid
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

-- The caller's targets published in [p_from, p_to) (only p_platform's, only p_channel_id's, when
-- given), each counted by its latest reading: {"from", "to", "platform", "channel_id", "totals",
-- "by_platform": {platform: totals}, "top_posts": [{"post_id", "text", "published_at", "platforms",
-- "engagement", "impressions", "engagement_rate"}]}, top_posts ranked by engagement (at most p_top,
-- measured posts only). HR422 (field to) unless from < to and the range is at most 366 days;
-- HR422 (field top) unless 1 <= p_top <= 50; HR422 (field channel_id) for a channel not the caller's.
create function public.herald_analytics_summary_v1(
    p_from timestamptz, p_to timestamptz, p_platform text default null, p_channel_id uuid default null,
    p_top integer default 10
) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
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
        perform herald_private.check_channels(v_uid, array[p_channel_id], 'channel_id');
    end if;
    with scope as (
        select t.id, t.post_id, t.platform, t.published_at, latest.*
          from herald.post_targets t
          left join lateral (
              select a.id as reading_id, a.likes, a.comments, a.shares, a.impressions, a.clicks, a.saves,
                     coalesce(a.likes, 0) + coalesce(a.comments, 0) + coalesce(a.shares, 0) as engagement
                from herald.post_analytics a where a.target_id = t.id
               order by a.recorded_at desc, a.id desc limit 1) latest on true
         where t.user_id = v_uid and t.status = 'published'
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

-- --- privileges ------------------------------------------------------------------------------------

-- The new helpers, like every helper: callable by the functions' roles, never by anon or PUBLIC.
revoke all on function herald_private.metrics_next_at(timestamptz, timestamptz), herald_private.schedule_metrics(),
    herald_private.snapshot_json(herald.post_analytics), herald_private.count_analytics_due(timestamptz),
    herald_private.analytics_figures(bigint, bigint, numeric, numeric, numeric, numeric, numeric, numeric, numeric,
                                     numeric, numeric)
    from public, anon;
grant execute on function herald_private.metrics_next_at(timestamptz, timestamptz), herald_private.schedule_metrics(),
    herald_private.snapshot_json(herald.post_analytics), herald_private.count_analytics_due(timestamptz),
    herald_private.analytics_figures(bigint, bigint, numeric, numeric, numeric, numeric, numeric, numeric, numeric,
                                     numeric, numeric)
    to authenticated, service_role;

-- The readings are written by the refresh run only; the owner reads them through the functions.
revoke all on herald.post_analytics from public, anon, authenticated, service_role;
grant select on herald.post_analytics to authenticated;
grant select, insert, update, delete on herald.post_analytics to service_role;
revoke truncate, references, trigger on herald.post_analytics from anon, authenticated;

-- Each function to the one role that may call it (as 20261124000200_functions.sql hands them out).
do $grants$
declare
    v_fn text;
begin
    foreach v_fn in array array[
        'public.herald_get_post_analytics_v1(uuid)',
        'public.herald_analytics_summary_v1(timestamptz, timestamptz, text, uuid, integer)'
    ] loop
        execute format('revoke all on function %s from public, anon, service_role', v_fn);
        execute format('grant execute on function %s to authenticated', v_fn);
    end loop;
    foreach v_fn in array array[
        'public.herald_claim_analytics_due_v1(timestamptz, integer, integer)',
        'public.herald_record_analytics_v1(uuid, timestamptz, jsonb, jsonb)'
    ] loop
        execute format('revoke all on function %s from public, anon, authenticated', v_fn);
        execute format('grant execute on function %s to service_role', v_fn);
    end loop;
end
$grants$;
