-- Threads of posts and first comments (issue 15, items 3 and 4): a target publishes in steps (the
-- post, each part of its thread as a reply, its first comment), each with its own platform id.
-- `steps` shows them on the target (also the ones already live while a later one is retried: the
-- adapter's progress in `resume` carries them from attempt to attempt, so none is repeated);
-- `first_comment_error` says why a published post has no first comment.

alter table herald.post_targets
    add column steps jsonb not null default '[]'::jsonb check (jsonb_typeof(steps) = 'array'),
    add column first_comment_error text;

-- As in 20261201000400_events.sql, and: a result's "steps" (a JSON array: the steps live so far)
-- replace the target's, and a published result records its "first_comment_error".
create or replace function public.herald_record_results_v2(
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
                perform herald_private.emit_channel(v_owner, 'channel.rate_limited', (v_pause ->> 'channel_id')::uuid,
                                                   jsonb_build_object('until', v_pause -> 'until',
                                                                      'reason', v_pause -> 'reason'));
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
                                      else t.publish_lag_ms end,
                steps = case when jsonb_typeof(v_target -> 'steps') = 'array' then v_target -> 'steps'
                             else t.steps end,
                first_comment_error = case when v_status = 'published' then v_target ->> 'first_comment_error'
                                           else t.first_comment_error end
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
        -- 'publishing' with "lookup_at": an answer was lost on a platform that can tell later
        -- whether the post went out; the post stays leased until then, and the run that recovers
        -- it at lookup_at looks the post up (or repeats the call under the same idempotency key).
        update herald.posts p set
            status = v_status,
            error = v_result ->> 'error',
            next_attempt_at = (v_result ->> 'next_attempt_at')::timestamptz,
            lease_id = case when v_status = 'publishing' then gen_random_uuid() end,
            lease_expires_at = case when v_status = 'publishing'
                                    then coalesce((v_result ->> 'lookup_at')::timestamptz, p_now) end,
            published_at = case when v_status in ('published', 'partial') then p_now else p.published_at end
         where p.id = v_post;
        perform herald_private.log(v_owner, v_post, 'post.' || v_status,
                                   jsonb_build_object('error', v_result -> 'error'));
        -- The outbox: the event is written with the transition, in this transaction, or not at all.
        if v_status in ('published', 'partial', 'failed', 'needs_review') then
            perform herald_private.emit_post(v_owner, 'post.' || v_status, v_post);
        elsif v_status = 'scheduled' and exists (
            select from jsonb_array_elements(coalesce(v_result -> 'targets', '[]'::jsonb)) x
             where x.value ->> 'status' = 'pending') then
            perform herald_private.emit_post(v_owner, 'post.retry_scheduled', v_post);
        end if;
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
