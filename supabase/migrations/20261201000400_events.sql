-- Know what happened: events for every outcome, delivered to the user's webhook endpoints (signed
-- as the Standard Webhooks specification says, by the run), and posts/targets in Supabase
-- Realtime's publication so a dashboard can subscribe instead of polling.
--
-- The outbox: an event row (and one delivery per subscribed endpoint) is written by the same
-- function, in the same transaction, as the transition it reports: herald_record_results_v2 for a
-- post's outcome and a channel's rate limit, herald_mark_channel_needs_reconnect_v1, and
-- herald_resolve_target_v1 when a person settles an unknown target. So an event exists if and
-- only if its transition happened; delivery is at least once, the same event id every time.

-- --- tables ----------------------------------------------------------------------------------------

create table herald.webhook_endpoints (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    url text not null check (length(url) between 9 and 2048 and url like 'http%://%'),
    events text[] not null check (cardinality(events) between 1 and 20),
    description text check (length(description) <= 500),
    -- whsec_... encrypted with the app's keys (HERALD_ENCRYPTION_KEYS); shown to the user once
    secret_encrypted text not null,
    status text not null default 'active' check (status in ('active', 'disabled')),
    disabled_reason text check (length(disabled_reason) <= 1000),
    -- the first failure since the last success: a day of failures disables the endpoint
    failing_since timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index webhook_endpoints_user on herald.webhook_endpoints (user_id, created_at);

create table herald.events (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references auth.users (id) on delete cascade,
    type text not null check (type in ('post.published', 'post.partial', 'post.failed', 'post.needs_review',
                                       'post.retry_scheduled', 'channel.needs_reconnect', 'channel.rate_limited',
                                       'webhook.test')),
    -- {"post": post row as herald_private.post_json} or {"channel": channel row, ...}: the API shape
    -- is made from it at delivery, the same bytes on every attempt
    subject jsonb not null,
    created_at timestamptz not null default now()
);
create index events_user on herald.events (user_id, created_at);
create index events_age on herald.events (created_at);

create table herald.webhook_deliveries (
    id uuid primary key default gen_random_uuid(),
    event_id uuid not null references herald.events (id) on delete cascade,
    endpoint_id uuid not null references herald.webhook_endpoints (id) on delete cascade,
    user_id uuid not null references auth.users (id) on delete cascade,
    status text not null default 'pending' check (status in ('pending', 'delivered', 'failed')),
    attempts integer not null default 0 check (attempts >= 0),
    next_attempt_at timestamptz not null default now(),
    lease_expires_at timestamptz,
    last_http_status integer,
    last_error text,
    delivered_at timestamptz,
    created_at timestamptz not null default now(),
    unique (event_id, endpoint_id)
);
create index webhook_deliveries_due on herald.webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_endpoint on herald.webhook_deliveries (endpoint_id, created_at);

create table herald.webhook_attempts (
    id bigint generated always as identity primary key,
    delivery_id uuid not null references herald.webhook_deliveries (id) on delete cascade,
    endpoint_id uuid not null references herald.webhook_endpoints (id) on delete cascade,
    user_id uuid not null references auth.users (id) on delete cascade,
    attempt integer not null check (attempt >= 1),
    succeeded boolean not null,
    http_status integer,
    duration_ms integer check (duration_ms >= 0),
    error text check (length(error) <= 1000),
    attempted_at timestamptz not null
);
create index webhook_attempts_endpoint on herald.webhook_attempts (endpoint_id, id desc);

-- Row-level security, the second wall behind the functions' owner filters. The owner manages
-- their endpoints and reads their events and deliveries; the functions a user calls (resolve)
-- write events and deliveries as that user, for that user only.
alter table herald.webhook_endpoints enable row level security;
alter table herald.events enable row level security;
alter table herald.webhook_deliveries enable row level security;
alter table herald.webhook_attempts enable row level security;
create policy webhook_endpoints_owner on herald.webhook_endpoints for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy events_owner on herald.events for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy webhook_deliveries_owner on herald.webhook_deliveries for all to authenticated
    using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));
create policy webhook_attempts_read_own on herald.webhook_attempts for select to authenticated
    using (user_id = (select auth.uid()));

grant select, insert, update, delete on herald.webhook_endpoints to authenticated;
grant select, insert on herald.events, herald.webhook_deliveries to authenticated;
grant select on herald.webhook_attempts to authenticated;
grant select, insert, update, delete on herald.webhook_endpoints, herald.events, herald.webhook_deliveries,
    herald.webhook_attempts to service_role;
revoke truncate, references, trigger on herald.webhook_endpoints, herald.events, herald.webhook_deliveries,
    herald.webhook_attempts from anon, authenticated;

-- --- emitting ---------------------------------------------------------------------------------------

-- An event for p_user, and a pending delivery to each of their active endpoints subscribed to it.
create function herald_private.emit(p_user uuid, p_type text, p_subject jsonb) returns void
language sql volatile set search_path = '' as $$
    with e as (
        insert into herald.events (user_id, type, subject) values (p_user, p_type, p_subject)
        returning id, user_id
    )
    insert into herald.webhook_deliveries (event_id, endpoint_id, user_id)
    select e.id, w.id, e.user_id
      from e join herald.webhook_endpoints w on w.user_id = e.user_id
     where w.status = 'active' and (p_type = any (w.events) or '*' = any (w.events))
$$;

create function herald_private.emit_post(p_user uuid, p_type text, p_post_id uuid) returns void
language sql volatile set search_path = '' as $$
    select herald_private.emit(p_user, p_type, jsonb_build_object('post', herald_private.post_json(p)))
      from herald.posts p where p.id = p_post_id
$$;

create function herald_private.emit_channel(p_user uuid, p_type text, p_channel_id uuid, p_extra jsonb)
returns void
language sql volatile set search_path = '' as $$
    select herald_private.emit(p_user, p_type,
                               jsonb_build_object('channel', herald_private.channel_json(c)) || coalesce(p_extra, '{}'))
      from herald.channels c where c.id = p_channel_id
$$;

-- --- the transitions that emit -----------------------------------------------------------------------

-- As in 20261201000200_dispatch.sql, and:
-- - a result with status 'publishing' (an answer lost on a platform that can tell later, see
--   20261201000300_lost_answers.sql) keeps its post leased until its "lookup_at";
-- - a post's outcome (published, partial, failed, needs_review, or scheduled again for a retry)
--   and a channel's rate limit emit their events.
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

-- As in 20261201000100_private_schema.sql, and: the change to needs_reconnect emits its event
-- (once: a channel already waiting for its owner is not announced again).
create or replace function public.herald_mark_channel_needs_reconnect_v1(p_channel_id uuid, p_reason text) returns void
language plpgsql volatile set search_path = '' as $$
declare
    v_owner uuid;
    v_was text;
begin
    select c.user_id, c.status into v_owner, v_was from herald.channels c where c.id = p_channel_id for update;
    if not found then
        return;
    end if;
    update herald.channels c set status = 'needs_reconnect' where c.id = p_channel_id;
    perform herald_private.log(v_owner, null, 'channel.needs_reconnect',
                               jsonb_build_object('channel_id', p_channel_id, 'reason', p_reason));
    if v_was <> 'needs_reconnect' then
        perform herald_private.emit_channel(v_owner, 'channel.needs_reconnect', p_channel_id,
                                            jsonb_build_object('reason', p_reason));
    end if;
end
$$;

-- As in 20261201000100_private_schema.sql, and: when settling the target finishes the post, its
-- outcome event is emitted (a person's answer is a transition like a run's).
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
        perform herald_private.emit_post(v_uid, 'post.' || v_status, p_post_id);
    end if;
    perform herald_private.log(v_uid, p_post_id, 'target.resolved',
                               jsonb_build_object('target_id', p_target_id, 'published', p_published));
    return herald_private.post_by_id(p_post_id);
end
$$;

-- --- delivering (the service) --------------------------------------------------------------------------

-- A delivery as the run sends it: with its endpoint (the secret still encrypted: only the
-- service role ever reads it) and its event. Null when there is no such delivery.
create function herald_private.delivery_json(p_delivery_id uuid) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object(
               'id', d.id, 'attempts', d.attempts, 'user_id', d.user_id,
               'endpoint', jsonb_build_object('id', w.id, 'url', w.url, 'secret_encrypted', w.secret_encrypted,
                                              'failing_since', w.failing_since),
               'event', jsonb_build_object('id', e.id, 'type', e.type, 'created_at', e.created_at,
                                           'subject', e.subject))
      from herald.webhook_deliveries d
      join herald.webhook_endpoints w on w.id = d.endpoint_id
      join herald.events e on e.id = d.event_id
     where d.id = p_delivery_id
$$;

-- Deliveries due at p_now to active endpoints, oldest first, at most p_per_endpoint to any one
-- endpoint (a dead receiver's backlog never crowds out the others), each leased for
-- p_lease_seconds so that overlapping runs never send the same one at once; with the endpoint and
-- the event.
create function public.herald_claim_deliveries_v1(p_now timestamptz, p_limit integer, p_lease_seconds integer,
                                                  p_per_endpoint integer default 10)
returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_ids uuid[];
begin
    with due as (
        select d.id, d.next_attempt_at,
               row_number() over (partition by d.endpoint_id order by d.next_attempt_at, d.id) as place
          from herald.webhook_deliveries d
          join herald.webhook_endpoints w on w.id = d.endpoint_id
         where d.status = 'pending' and d.next_attempt_at <= p_now
           and (d.lease_expires_at is null or d.lease_expires_at < p_now) and w.status = 'active'
    ), picked as materialized (
        select d.id from herald.webhook_deliveries d
         where d.id in (select due.id from due where due.place <= greatest(p_per_endpoint, 1))
         order by d.next_attempt_at, d.id
         limit greatest(p_limit, 0)
           for update of d skip locked
    ), leased as (
        update herald.webhook_deliveries d set lease_expires_at = p_now + make_interval(secs => p_lease_seconds)
          from picked where d.id = picked.id
        returning d.id
    )
    select coalesce(array_agg(leased.id), '{}') into v_ids from leased;

    -- Retention, a little at every run: events older than 30 days with nothing left to deliver go,
    -- their deliveries and delivery log with them.
    delete from herald.events e
     where e.id in (select old.id from herald.events old
                     where old.created_at < p_now - interval '30 days'
                       and not exists (select from herald.webhook_deliveries d
                                        where d.event_id = old.id and d.status = 'pending')
                     order by old.created_at
                     limit 500);
    return coalesce((select jsonb_agg(herald_private.delivery_json(d.id) order by d.next_attempt_at, d.id)
                       from herald.webhook_deliveries d where d.id = any (v_ids)), '[]'::jsonb);
end
$$;

-- One delivery leased to the caller (POST /webhooks/{id}/test sends its event at once), as the
-- claim answers it.
create function public.herald_delivery_v1(p_delivery_id uuid) returns jsonb
language sql stable set search_path = '' as $$
    select herald_private.delivery_json(p_delivery_id)
$$;

-- The attempts a run made: [{"delivery_id", "succeeded", "http_status", "duration_ms", "error",
-- "attempted_at", "next_attempt_at" (null: no more), "disable_reason" (set: the endpoint failed
-- for a day)}]. A success clears the endpoint's failing_since; a failure starts it.
create function public.herald_record_deliveries_v1(p_attempts jsonb, p_now timestamptz) returns void
language plpgsql volatile set search_path = '' as $$
declare
    v_attempt jsonb;
    v_delivery herald.webhook_deliveries;
    v_ok boolean;
begin
    for v_attempt in select value from jsonb_array_elements(coalesce(p_attempts, '[]'::jsonb))
                      order by value ->> 'delivery_id' loop
        update herald.webhook_deliveries d set attempts = d.attempts + 1 where d.id = (v_attempt ->> 'delivery_id')::uuid
        returning * into v_delivery;
        if not found then
            continue;  -- the endpoint (and its deliveries) was deleted meanwhile
        end if;
        v_ok := (v_attempt ->> 'succeeded')::boolean;
        insert into herald.webhook_attempts (delivery_id, endpoint_id, user_id, attempt, succeeded, http_status,
                                             duration_ms, error, attempted_at)
        values (v_delivery.id, v_delivery.endpoint_id, v_delivery.user_id, v_delivery.attempts, v_ok,
                (v_attempt ->> 'http_status')::integer, (v_attempt ->> 'duration_ms')::integer,
                left(v_attempt ->> 'error', 1000), coalesce((v_attempt ->> 'attempted_at')::timestamptz, p_now));
        update herald.webhook_deliveries d set
            status = case when v_ok then 'delivered'
                          when v_attempt ->> 'next_attempt_at' is null then 'failed' else 'pending' end,
            next_attempt_at = coalesce((v_attempt ->> 'next_attempt_at')::timestamptz, d.next_attempt_at),
            lease_expires_at = null,
            last_http_status = (v_attempt ->> 'http_status')::integer,
            last_error = case when v_ok then null else left(v_attempt ->> 'error', 1000) end,
            delivered_at = case when v_ok then p_now else d.delivered_at end
         where d.id = v_delivery.id;
        if v_ok then
            update herald.webhook_endpoints w set failing_since = null where w.id = v_delivery.endpoint_id;
        elsif v_attempt ->> 'disable_reason' is not null then
            update herald.webhook_endpoints w
               set status = 'disabled', disabled_reason = left(v_attempt ->> 'disable_reason', 1000), updated_at = p_now
             where w.id = v_delivery.endpoint_id and w.status = 'active';
        else
            update herald.webhook_endpoints w set failing_since = coalesce(w.failing_since, p_now)
             where w.id = v_delivery.endpoint_id;
        end if;
    end loop;
end
$$;

-- --- the user's endpoints -----------------------------------------------------------------------------

create function herald_private.endpoint_json(w herald.webhook_endpoints) returns jsonb
language sql stable set search_path = '' as $$
    select to_jsonb(w) - 'secret_encrypted'
$$;

create function public.herald_create_webhook_v1(
    p_url text, p_events text[], p_description text, p_secret_encrypted text
) returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_endpoint herald.webhook_endpoints;
begin
    if (select count(*) from herald.webhook_endpoints w where w.user_id = v_uid) >= 20 then
        raise exception 'at most 20 webhook endpoints per user' using errcode = 'HR422', hint = 'url';
    end if;
    insert into herald.webhook_endpoints (user_id, url, events, description, secret_encrypted)
    values (v_uid, p_url, p_events, p_description, p_secret_encrypted)
    returning * into v_endpoint;
    return herald_private.endpoint_json(v_endpoint);
end
$$;

create function public.herald_list_webhooks_v1() returns jsonb
language sql stable security invoker set search_path = '' as $$
    select coalesce(jsonb_agg(herald_private.endpoint_json(w) order by w.created_at, w.id), '[]'::jsonb)
      from herald.webhook_endpoints w where w.user_id = herald_private.current_user_id()
$$;

create function public.herald_get_webhook_v1(p_endpoint_id uuid) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
declare
    v_endpoint herald.webhook_endpoints;
begin
    select * into v_endpoint from herald.webhook_endpoints w
     where w.id = p_endpoint_id and w.user_id = herald_private.current_user_id();
    if not found then
        raise exception 'webhook endpoint not found' using errcode = 'HR404', hint = 'webhook_id';
    end if;
    return herald_private.endpoint_json(v_endpoint);
end
$$;

-- Change what an endpoint receives, or its status: 'active' re-enables one a day of failures
-- disabled (its failing clock starts again), 'disabled' pauses it. Null leaves a field as it is.
create function public.herald_update_webhook_v1(
    p_endpoint_id uuid, p_events text[] default null, p_description text default null, p_status text default null
) returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
    v_endpoint herald.webhook_endpoints;
begin
    update herald.webhook_endpoints w set
        events = coalesce(p_events, w.events),
        description = coalesce(p_description, w.description),
        status = coalesce(p_status, w.status),
        disabled_reason = case when p_status = 'active' then null
                               when p_status = 'disabled' then 'disabled by its owner' else w.disabled_reason end,
        failing_since = case when p_status = 'active' then null else w.failing_since end,
        updated_at = now()
     where w.id = p_endpoint_id and w.user_id = herald_private.current_user_id()
    returning * into v_endpoint;
    if not found then
        raise exception 'webhook endpoint not found' using errcode = 'HR404', hint = 'webhook_id';
    end if;
    return herald_private.endpoint_json(v_endpoint);
end
$$;

create function public.herald_delete_webhook_v1(p_endpoint_id uuid) returns void
language plpgsql volatile security invoker set search_path = '' as $$
begin
    delete from herald.webhook_endpoints w
     where w.id = p_endpoint_id and w.user_id = herald_private.current_user_id();
    if not found then
        raise exception 'webhook endpoint not found' using errcode = 'HR404', hint = 'webhook_id';
    end if;
end
$$;

-- A test event for one endpoint, its delivery leased to the caller, who sends it at once (a later
-- run retries it if that fails): answers {event_id, delivery_id}, never the endpoint's secret.
create function public.herald_test_webhook_v1(p_endpoint_id uuid) returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_event uuid;
    v_delivery uuid;
begin
    perform from herald.webhook_endpoints w where w.id = p_endpoint_id and w.user_id = v_uid;
    if not found then
        raise exception 'webhook endpoint not found' using errcode = 'HR404', hint = 'webhook_id';
    end if;
    insert into herald.events (user_id, type, subject)
    values (v_uid, 'webhook.test', jsonb_build_object('webhook_id', p_endpoint_id)) returning id into v_event;
    insert into herald.webhook_deliveries (event_id, endpoint_id, user_id, lease_expires_at)
    values (v_event, p_endpoint_id, v_uid, now() + interval '2 minutes') returning id into v_delivery;
    return jsonb_build_object('event_id', v_event, 'delivery_id', v_delivery);
end
$$;

-- The endpoint's delivery log, newest first: every attempt with its event.
create function public.herald_list_deliveries_v1(p_endpoint_id uuid, p_limit integer default 50,
                                                 p_offset integer default 0) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
begin
    perform from herald.webhook_endpoints w
     where w.id = p_endpoint_id and w.user_id = herald_private.current_user_id();
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

-- --- grants: each function to exactly one API role ------------------------------------------------------

-- herald_private (not exposed): for the functions that call them, as the rest of the schema is.
revoke all on function herald_private.emit(uuid, text, jsonb), herald_private.emit_post(uuid, text, uuid),
    herald_private.emit_channel(uuid, text, uuid, jsonb), herald_private.endpoint_json(herald.webhook_endpoints)
    from public, anon;
-- it carries the encrypted secret: the service role's functions alone may call it
revoke all on function herald_private.delivery_json(uuid) from public, anon, authenticated;
grant execute on function herald_private.delivery_json(uuid) to service_role;
grant execute on function herald_private.emit(uuid, text, jsonb), herald_private.emit_post(uuid, text, uuid),
    herald_private.emit_channel(uuid, text, uuid, jsonb), herald_private.endpoint_json(herald.webhook_endpoints)
    to authenticated, service_role;
revoke all on function public.herald_claim_deliveries_v1(timestamptz, integer, integer, integer),
    public.herald_delivery_v1(uuid), public.herald_record_deliveries_v1(jsonb, timestamptz)
    from public, anon, authenticated;
grant execute on function public.herald_claim_deliveries_v1(timestamptz, integer, integer, integer),
    public.herald_delivery_v1(uuid), public.herald_record_deliveries_v1(jsonb, timestamptz) to service_role;
revoke all on function public.herald_create_webhook_v1(text, text[], text, text), public.herald_list_webhooks_v1(),
    public.herald_get_webhook_v1(uuid), public.herald_update_webhook_v1(uuid, text[], text, text),
    public.herald_delete_webhook_v1(uuid), public.herald_test_webhook_v1(uuid),
    public.herald_list_deliveries_v1(uuid, integer, integer) from public, anon, service_role;
grant execute on function public.herald_create_webhook_v1(text, text[], text, text), public.herald_list_webhooks_v1(),
    public.herald_get_webhook_v1(uuid), public.herald_update_webhook_v1(uuid, text[], text, text),
    public.herald_delete_webhook_v1(uuid), public.herald_test_webhook_v1(uuid),
    public.herald_list_deliveries_v1(uuid, integer, integer) to authenticated;

-- --- Supabase Realtime ------------------------------------------------------------------------------------

-- Postgres Changes streams the tables in the supabase_realtime publication to subscribers, each
-- change checked against the subscriber's RLS policies (supabase.com/docs/guides/realtime/
-- postgres-changes): a dashboard subscribes to schema "herald", tables posts and post_targets,
-- and sees only its user's rows (posts_owner, post_targets_owner). Supabase creates the
-- publication; a plain PostgreSQL (local, tests) gets an empty one here.
do $$
begin
    if not exists (select from pg_publication where pubname = 'supabase_realtime') then
        create publication supabase_realtime;
    end if;
end
$$;
alter publication supabase_realtime add table herald.posts, herald.post_targets;
