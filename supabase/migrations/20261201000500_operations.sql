-- Operations figures (issue 13): how publishing went over the last 24 hours and 7 days, and what
-- waits now, for a signed-in user (GET /api/v1/metrics with their token) or for the whole service
-- (the same with the cron secret, /api/v1/metrics/prometheus, and /cron/health's judgement).
--
-- Additive and read-only: new functions and one index; nothing that exists changes.
--
-- Definitions (the README's "Operations figures" says the same):
-- * A target *finishes* when it reaches a final state: published, failed (a permanent error, or its
--   retries spent) or unknown (sent, no answer, held for review). Its finish time is the end
--   (post_runs.finished_at) of its last attempt, the run numbered post_targets.attempts. A window
--   (since, until] counts every target that is in a final state now and whose last attempt ended in
--   it: a target retried by hand and pending again has not finished; one resolved by hand keeps the
--   time of the attempt whose answer was lost. Cancelled targets never count.
-- * success_ratio = published / finished; failure_ratio = (failed + unknown) / finished;
--   retry_ratio = retried / finished, where retried = finished targets that took more than one
--   attempt (a wait for a rate limit included). Null when nothing finished in the window.
-- * publish_lag: of the published targets in the window, publish_lag_ms (the end of the publishing
--   attempt minus when the target was due): count, p50 and p95 (percentile_cont, rounded to the
--   millisecond), max. A target resolved by hand has no lag and is left out.
-- * stuck: posts in 'publishing' whose lease expired before p_now (their run died and no claim has
--   recovered them yet), and the oldest such lease's expiry. A post waiting to look up a lost answer
--   holds a live lease: not stuck.
-- * due backlog: posts 'scheduled' and due (coalesce(next_attempt_at, scheduled_at) <= p_now), and
--   the oldest due time.

-- Every window reads the runs that ended in it. Without this index each call would read every run
-- ever recorded (one row per attempt, never pruned) to find the last 7 days'. The other reads use
-- indexes that exist: posts_lease (stuck), posts_due (backlog), post_targets' key (joined from runs).
-- A user's figures go through the same index and keep the caller's rows after the join: the whole
-- service's runs of the window are read, not a user's history.
create index post_runs_finished on herald.post_runs (finished_at);

-- The outcomes of the targets that finished in (p_since, p_until]: p_user_id's, or everyone's
-- (null). SECURITY INVOKER like its callers: for a user, RLS is the second wall behind p_user_id.
-- {"since", "until", "finished", "published", "failed", "unknown", "retried", "success_ratio",
--  "failure_ratio", "retry_ratio", "publish_lag": {"count", "p50_ms", "p95_ms", "max_ms"},
--  "by_platform": {platform: {"finished", "published", "failed", "unknown"}}}
create function herald_private.window_outcomes(p_since timestamptz, p_until timestamptz, p_user_id uuid)
returns jsonb
language sql stable set search_path = '' as $$
    with finished as materialized (
        -- each target once, by its last attempt (a duplicate run row written by hand counts once)
        select distinct on (t.id) t.id, t.platform, t.status, t.attempts, t.publish_lag_ms
          from herald.post_runs r
          join herald.post_targets t on t.id = r.target_id and t.attempts = r.attempt
         where r.finished_at > p_since and r.finished_at <= p_until
           and t.status in ('published', 'failed', 'unknown')
           and (p_user_id is null or t.user_id = p_user_id)
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

-- The figures at p_now for p_user_id, or for the whole service (null):
-- {"now", "windows": {"24h": window_outcomes, "7d": window_outcomes},
--  "stuck": {"count", "oldest_lease_expires_at"}, "due": {"count", "oldest_due_at"}}
create function herald_private.operations(p_now timestamptz, p_user_id uuid) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object(
        'now', p_now,
        'windows', jsonb_build_object(
            '24h', herald_private.window_outcomes(p_now - interval '24 hours', p_now, p_user_id),
            '7d', herald_private.window_outcomes(p_now - interval '7 days', p_now, p_user_id)),
        'stuck', (select jsonb_build_object('count', count(*), 'oldest_lease_expires_at', min(p.lease_expires_at))
                    from herald.posts p
                   where p.status = 'publishing' and p.lease_expires_at < p_now
                     and (p_user_id is null or p.user_id = p_user_id)),
        'due', (select jsonb_build_object('count', count(*),
                                          'oldest_due_at', min(coalesce(p.next_attempt_at, p.scheduled_at)))
                  from herald.posts p
                 where p.status = 'scheduled' and coalesce(p.next_attempt_at, p.scheduled_at) <= p_now
                   and (p_user_id is null or p.user_id = p_user_id)))
$$;

-- The caller's figures (Store.operations): only their posts and targets.
create function public.herald_operations_v1(p_now timestamptz) returns jsonb
language sql stable security invoker set search_path = '' as $$
    select herald_private.operations(p_now, herald_private.current_user_id())
$$;

-- The whole service's figures (Store.service_operations), and when the latest cron run started.
create function public.herald_service_operations_v1(p_now timestamptz) returns jsonb
language sql stable set search_path = '' as $$
    select herald_private.operations(p_now, null)
        || jsonb_build_object('last_run_at', (select max(r.started_at) from herald.cron_runs r))
$$;

-- As herald_cron_health_v1, and what /cron/health judges besides: "stuck_since" (the oldest expired
-- lease of a post still publishing) and "last_24h" (window_outcomes of the last 24 hours).
-- Not the service's full figures: an uptime monitor calls it every minute, and the 7 days' window
-- is the costly part.
create function public.herald_cron_health_v2(p_now timestamptz) returns jsonb
language sql stable set search_path = '' as $$
    select public.herald_cron_health_v1(p_now) || jsonb_build_object(
        'stuck_since', (select min(p.lease_expires_at) from herald.posts p
                         where p.status = 'publishing' and p.lease_expires_at < p_now),
        'last_24h', herald_private.window_outcomes(p_now - interval '24 hours', p_now, null))
$$;

-- --- privileges ------------------------------------------------------------------------------------

-- New functions are executable by PUBLIC until revoked (20261124000200_functions.sql granted the
-- helpers that existed then; these are new).
revoke all on function herald_private.window_outcomes(timestamptz, timestamptz, uuid) from public, anon;
grant execute on function herald_private.window_outcomes(timestamptz, timestamptz, uuid) to authenticated, service_role;
revoke all on function herald_private.operations(timestamptz, uuid) from public, anon;
grant execute on function herald_private.operations(timestamptz, uuid) to authenticated, service_role;

revoke all on function public.herald_operations_v1(timestamptz) from public, anon, service_role;
grant execute on function public.herald_operations_v1(timestamptz) to authenticated;

revoke all on function public.herald_service_operations_v1(timestamptz) from public, anon, authenticated;
grant execute on function public.herald_service_operations_v1(timestamptz) to service_role;
revoke all on function public.herald_cron_health_v2(timestamptz) from public, anon, authenticated;
grant execute on function public.herald_cron_health_v2(timestamptz) to service_role;
