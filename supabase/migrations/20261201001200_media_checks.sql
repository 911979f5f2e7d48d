-- Media checked before the post is due (services/media.py). When a post is written or scheduled the
-- API looks at its media files and refuses what a targeted platform would refuse; an hour before the
-- post's time the cron's pass looks again (files change, hosts go away) and keeps what it found on
-- the post as warnings, with a post.media_warning event. A warning informs: the publish run never
-- reads it, and the post goes out at its time whatever it says.

-- --- columns -----------------------------------------------------------------------------------------

alter table herald.posts
    -- [{"field", "code", "message", "platform"}] from the last check before the post's time
    add column media_warnings jsonb not null default '[]'::jsonb check (jsonb_typeof(media_warnings) = 'array'),
    -- when that check ran (null: not since the post's content or time last changed)
    add column media_checked_at timestamptz,
    -- the scheduled_at that check was claimed for: a post is claimed once per time it is due at
    add column media_checked_for timestamptz;

-- An edit of the content or the time makes the last check's findings stale: they go, and the post
-- is checked again before its (new) time. The request that edited it checked the new media already.
create function herald_private.forget_media_check() returns trigger
language plpgsql set search_path = '' as $$
begin
    new.media_warnings := '[]'::jsonb;
    new.media_checked_at := null;
    new.media_checked_for := null;
    return new;
end
$$;
create trigger posts_forget_media_check before update of content, scheduled_at on herald.posts
    for each row when (old.content is distinct from new.content or old.scheduled_at is distinct from new.scheduled_at)
    execute function herald_private.forget_media_check();

-- --- the event -------------------------------------------------------------------------------------

alter table herald.events drop constraint events_type_check;
alter table herald.events add constraint events_type_check
    check (type in ('post.published', 'post.partial', 'post.failed', 'post.needs_review', 'post.retry_scheduled',
                    'post.media_warning', 'channel.needs_reconnect', 'channel.rate_limited', 'webhook.test'));

-- --- the pass ----------------------------------------------------------------------------------------

-- Claim up to p_limit scheduled posts with media, due after p_now and within p_ahead_seconds of it,
-- that were not checked for their current time: soonest first, rows another pass holds skipped. A
-- claim marks the post checked for its time (media_checked_for), so overlapping passes never take
-- the same post; a pass that dies before recording leaves that post unchecked until its time or an
-- edit (a check only informs). Returns [{"post": post row, "checked_for", "targets": [{"platform",
-- "metadata"}]}]: the channels of the targets still to publish, whose limits apply.
-- VOLATILE: PostgREST runs STABLE functions read-only.
create function public.herald_claim_media_checks_v1(p_now timestamptz, p_ahead_seconds integer, p_limit integer)
returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
    v_ids uuid[];
begin
    with picked as materialized (
        select p.id from herald.posts p
         where p.status = 'scheduled'
           and coalesce(p.next_attempt_at, p.scheduled_at) > p_now
           and coalesce(p.next_attempt_at, p.scheduled_at) <= p_now + make_interval(secs => greatest(p_ahead_seconds, 0))
           and p.media_checked_for is distinct from p.scheduled_at
           and (jsonb_path_exists(p.content, '$.media[0]') or jsonb_path_exists(p.content, '$.platforms.*.media[0]'))
         order by coalesce(p.next_attempt_at, p.scheduled_at), p.id
         limit greatest(p_limit, 0)
           for update of p skip locked
    ), marked as (
        update herald.posts p set media_checked_for = p.scheduled_at
          from picked where p.id = picked.id
        returning p.id
    )
    select coalesce(array_agg(id), '{}') into v_ids from marked;

    return coalesce((
        select jsonb_agg(jsonb_build_object(
                   'post', herald_private.post_json(p),
                   'checked_for', p.scheduled_at,
                   'targets', coalesce((
                       select jsonb_agg(jsonb_build_object('platform', c.platform, 'metadata', c.metadata)
                                        order by c.platform, c.id)
                         from herald.post_targets t join herald.channels c on c.id = t.channel_id
                        where t.post_id = p.id and t.status not in ('published', 'cancelled')), '[]'::jsonb))
                   order by p.scheduled_at, p.id)
          from herald.posts p where p.id = any (v_ids)), '[]'::jsonb);
end
$$;

-- Record a pass's findings: p_checks [{"post_id", "checked_for", "warnings": [...] | null}]. A
-- finding is kept only while the post is still checked for that time (an edit since then made it
-- stale: the post is claimed again instead); a post with warnings emits post.media_warning, in the
-- same transaction. Warnings null: the pass ran out of time before it finished that post, which is
-- given back (claimable again). Returns how many findings were kept.
create function public.herald_record_media_checks_v1(p_checks jsonb, p_now timestamptz) returns integer
language plpgsql volatile set search_path = '' as $$
declare
    v_check jsonb;
    v_owner uuid;
    v_kept integer := 0;
begin
    for v_check in select value from jsonb_array_elements(coalesce(p_checks, '[]'::jsonb)) loop
        if coalesce(jsonb_typeof(v_check -> 'warnings'), 'null') = 'null' then
            update herald.posts p set media_checked_for = null
             where p.id = (v_check ->> 'post_id')::uuid
               and p.media_checked_for = (v_check ->> 'checked_for')::timestamptz;
            continue;
        end if;
        if jsonb_typeof(v_check -> 'warnings') <> 'array' then
            raise exception 'each check needs its "warnings" array (or null)' using errcode = 'HR422', hint = 'p_checks';
        end if;
        update herald.posts p
           set media_warnings = v_check -> 'warnings', media_checked_at = p_now
         where p.id = (v_check ->> 'post_id')::uuid
           and p.media_checked_for = (v_check ->> 'checked_for')::timestamptz
        returning p.user_id into v_owner;
        if found then
            v_kept := v_kept + 1;
            if jsonb_array_length(v_check -> 'warnings') > 0 then
                perform herald_private.emit_post(v_owner, 'post.media_warning', (v_check ->> 'post_id')::uuid);
            end if;
        end if;
    end loop;
    return v_kept;
end
$$;

-- --- privileges ------------------------------------------------------------------------------------

-- The trigger's function, like every helper: the functions' roles run it, never anon or PUBLIC.
revoke all on function herald_private.forget_media_check() from public, anon;
grant execute on function herald_private.forget_media_check() to authenticated, service_role;

-- Each function to the one role that may call it: the pass runs as the service role.
do $grants$
declare
    v_fn text;
begin
    foreach v_fn in array array[
        'public.herald_claim_media_checks_v1(timestamptz, integer, integer)',
        'public.herald_record_media_checks_v1(jsonb, timestamptz)'
    ] loop
        execute format('revoke all on function %s from public, anon, authenticated', v_fn);
        execute format('grant execute on function %s to service_role', v_fn);
    end loop;
end
$grants$;
