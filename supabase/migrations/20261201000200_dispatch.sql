-- On time at any load: rate-limit pauses per account and per platform, the outcome class and the
-- publish lag on each target, lookahead claims, and runs linked to the tick that started them.
--
-- Additive: new columns are nullable, the _v1 functions stay as they were for an API instance
-- still running the previous release; the new code calls the _v2 functions below.

-- --- columns and tables ------------------------------------------------------------------------

-- Until when the account's platform limit holds (a 429 or the platform's quota answer): runs leave
-- the channel's targets alone until then, spending no retry.
alter table herald.channels add column rate_limited_until timestamptz;
-- How long the account's platform calls typically take (a moving average of recent attempts, in
-- milliseconds): a run starts the slow accounts' calls first, so that they do not start last and
-- lengthen the run.
alter table herald.channels add column typical_call_ms integer check (typical_call_ms >= 0);

-- The outcome class of the target's last failed attempt (rate_limited, transient, permanent,
-- reconnect_required, unknown, timeout, ...), so a dashboard need not parse error text; null once
-- published. And how late it went out: published_at minus the time it was due, in milliseconds.
alter table herald.post_targets add column error_code text check (length(error_code) <= 60);
alter table herald.post_targets add column publish_lag_ms bigint;

-- A run started by another run's tick to drain a burst names that run.
alter table herald.cron_runs add column parent_run_id uuid;

-- A limit the platform documents as the whole app's (every account it publishes for): the run
-- leaves every channel of that platform alone until `until`.
create table herald.platform_pauses (
    platform text primary key check (length(platform) between 1 and 40),
    until timestamptz not null,
    reason text,
    updated_at timestamptz not null default now()
);
alter table herald.platform_pauses enable row level security;  -- no policy: service_role only
grant select, insert, update, delete on herald.platform_pauses to service_role;

create index post_targets_lag on herald.post_targets (user_id, published_at) where publish_lag_ms is not null;

-- --- the claim -------------------------------------------------------------------------------------

-- As _v1, and: p_due_by (default p_now) claims scheduled posts due up to then (LOOKAHEAD_SECONDS)
-- while leases are still judged expired against p_now only; the answer adds "platform_pauses"
-- ({platform: until} in force at p_now), and each channel carries its rate_limited_until.
create function public.herald_claim_due_posts_v2(
    p_now timestamptz, p_limit integer, p_lease_seconds integer, p_post_ids uuid[] default null,
    p_due_by timestamptz default null
) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_due_by timestamptz := greatest(coalesce(p_due_by, p_now), p_now);
    v_expires timestamptz := v_due_by + make_interval(secs => p_lease_seconds);
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
             where q.status = 'scheduled' and coalesce(q.next_attempt_at, q.scheduled_at) <= v_due_by
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
        'platform_pauses', coalesce((select jsonb_object_agg(pp.platform, pp.until) from herald.platform_pauses pp
                                      where pp.until > p_now), '{}'::jsonb),
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

-- --- recording a run -------------------------------------------------------------------------------

-- As _v1, and: each target keeps its outcome class (error_code) and its publish lag, and its
-- channel's typical_call_ms follows the attempt's duration (weight 0.3); the run's
-- rate-limit pauses are stored in the same transaction (p_pauses: [{"channel_id" | "platform",
-- "until", "reason"}], a later `until` wins); the cron run row keeps parent_run_id.
create function public.herald_record_results_v2(
    p_results jsonb, p_now timestamptz, p_cron_run jsonb default null, p_pauses jsonb default null
) returns integer
language plpgsql volatile set search_path = '' as $$
declare
    v_result jsonb;
    v_target jsonb;
    v_pause jsonb;
    v_post uuid;
    v_owner uuid;
    v_status text;
    v_remaining integer;
begin
    -- Overlapping runs record at once: rows several of them write are locked in one global order
    -- (channels by id, then platforms by name), so two recordings never wait on each other in a cycle.
    perform from herald.channels c
     where c.id in (select (x ->> 'channel_id')::uuid from jsonb_array_elements(coalesce(p_pauses, '[]'::jsonb)) x
                     where x ? 'channel_id')
     order by c.id for update;
    for v_pause in select value from jsonb_array_elements(coalesce(p_pauses, '[]'::jsonb))
                    order by value ? 'channel_id' desc, value ->> 'channel_id', value ->> 'platform' loop
        if v_pause ? 'channel_id' then
            update herald.channels c
               set rate_limited_until = greatest(c.rate_limited_until, (v_pause ->> 'until')::timestamptz)
             where c.id = (v_pause ->> 'channel_id')::uuid
            returning c.user_id into v_owner;
            if found then
                perform herald_private.log(v_owner, null, 'channel.rate_limited', jsonb_build_object(
                    'channel_id', v_pause -> 'channel_id', 'until', v_pause -> 'until', 'reason', v_pause -> 'reason'));
            end if;
        else
            insert into herald.platform_pauses as pp (platform, until, reason)
            values (v_pause ->> 'platform', (v_pause ->> 'until')::timestamptz, v_pause ->> 'reason')
            on conflict (platform) do update
               set until = greatest(pp.until, excluded.until), reason = excluded.reason, updated_at = now();
            perform herald_private.log(null, null, 'platform.rate_limited', jsonb_build_object(
                'platform', v_pause -> 'platform', 'until', v_pause -> 'until', 'reason', v_pause -> 'reason'));
        end if;
    end loop;

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
                error_code = case when v_status = 'published' then null else v_target ->> 'error_class' end,
                platform_post_id = coalesce(v_target ->> 'platform_post_id', t.platform_post_id),
                platform_post_url = coalesce(v_target ->> 'platform_post_url', t.platform_post_url),
                resume = case when jsonb_typeof(v_target -> 'resume') = 'object' then v_target -> 'resume'
                              else t.resume end,
                published_at = case when v_status = 'published' then (v_target ->> 'finished_at')::timestamptz
                                    else t.published_at end,
                publish_lag_ms = case when v_status = 'published' then (v_target ->> 'lag_ms')::bigint
                                      else t.publish_lag_ms end
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

    -- Each channel's typical call time follows this run's attempts (weight 0.3). A heuristic: a
    -- channel another recording holds right now is skipped, never waited on.
    with durations as (
        select t.channel_id, avg((x ->> 'duration_ms')::numeric) as ms
          from jsonb_array_elements(coalesce(p_results, '[]'::jsonb)) r
         cross join lateral jsonb_array_elements(coalesce(r -> 'targets', '[]'::jsonb)) x
          join herald.post_targets t on t.id = (x ->> 'target_id')::uuid
         where x ->> 'duration_ms' is not null and t.channel_id is not null
         group by t.channel_id
    ), free as (
        select c.id from herald.channels c where c.id in (select d.channel_id from durations d)
         order by c.id for update skip locked
    )
    update herald.channels c
       set typical_call_ms = round(coalesce(c.typical_call_ms * 0.7 + d.ms * 0.3, d.ms))
      from durations d
     where c.id = d.channel_id and c.id in (select f.id from free f);

    v_remaining := public.herald_count_due_v1(p_now);
    if p_cron_run is not null then
        insert into herald.cron_runs (id, trigger, started_at, finished_at, claimed, published, failed, remaining_due,
                                      duration_ms, error, parent_run_id)
        values ((p_cron_run ->> 'id')::uuid, p_cron_run ->> 'trigger', (p_cron_run ->> 'started_at')::timestamptz,
                (p_cron_run ->> 'finished_at')::timestamptz, (p_cron_run ->> 'claimed')::integer,
                (p_cron_run ->> 'published')::integer, (p_cron_run ->> 'failed')::integer, v_remaining,
                (p_cron_run ->> 'duration_ms')::integer, p_cron_run ->> 'error',
                (p_cron_run ->> 'parent_run_id')::uuid);
        perform herald_private.log(null, null, 'cron.run', jsonb_build_object(
            'id', p_cron_run -> 'id', 'trigger', p_cron_run -> 'trigger', 'claimed', p_cron_run -> 'claimed',
            'published', p_cron_run -> 'published', 'failed', p_cron_run -> 'failed',
            'parent_run_id', p_cron_run -> 'parent_run_id'));
    end if;
    return v_remaining;
end
$$;

-- --- statistics ------------------------------------------------------------------------------------

-- As _v1, and "publish_lag": the caller's targets published since p_since, with the lag's
-- percentiles in milliseconds (null when none).
create function public.herald_post_statistics_v2(p_since timestamptz) returns jsonb
language sql stable security invoker set search_path = '' as $$
    select public.herald_post_statistics_v1() || jsonb_build_object('publish_lag', (
        select jsonb_build_object(
            'since', p_since,
            'count', count(*),
            'p50_ms', round(percentile_cont(0.5) within group (order by t.publish_lag_ms)),
            'p95_ms', round(percentile_cont(0.95) within group (order by t.publish_lag_ms)),
            'max_ms', max(t.publish_lag_ms))
          from herald.post_targets t
         where t.user_id = herald_private.current_user_id()
           and t.status = 'published' and t.publish_lag_ms is not null and t.published_at >= p_since))
$$;

-- --- privileges ------------------------------------------------------------------------------------

revoke all on function public.herald_post_statistics_v2(timestamptz) from public, anon, service_role;
grant execute on function public.herald_post_statistics_v2(timestamptz) to authenticated;

revoke all on function public.herald_claim_due_posts_v2(timestamptz, integer, integer, uuid[], timestamptz)
    from public, anon, authenticated;
grant execute on function public.herald_claim_due_posts_v2(timestamptz, integer, integer, uuid[], timestamptz)
    to service_role;
revoke all on function public.herald_record_results_v2(jsonb, timestamptz, jsonb, jsonb) from public, anon, authenticated;
grant execute on function public.herald_record_results_v2(jsonb, timestamptz, jsonb, jsonb) to service_role;
revoke truncate, references, trigger on herald.platform_pauses from anon, authenticated;

-- --- the _v1 functions, kept for an API instance of the previous release ---------------------------

-- One implementation of each operation: the _v1 forms now answer through their _v2 successors
-- (same arguments, same answers plus keys an older caller ignores), so a fix is made once.
create or replace function public.herald_claim_due_posts_v1(
    p_now timestamptz, p_limit integer, p_lease_seconds integer, p_post_ids uuid[] default null
) returns jsonb
language sql volatile set search_path = '' as $$
    select public.herald_claim_due_posts_v2(p_now, p_limit, p_lease_seconds, p_post_ids)
$$;

create or replace function public.herald_record_results_v1(
    p_results jsonb, p_now timestamptz, p_cron_run jsonb default null
) returns integer
language sql volatile set search_path = '' as $$
    select public.herald_record_results_v2(p_results, p_now, p_cron_run)
$$;
