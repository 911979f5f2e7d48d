-- Channel management (issue 14, item 5): a channel can be renamed, its metadata changed, and
-- publishing to it paused and resumed (PATCH /channels/{id}).
--
-- The switch is `active` (true by default) rather than a `paused` flag: the domain already speaks
-- of a channel's "active flag" (DESIGN.md), and `active = false` reads as what the user did. It is
-- apart from `status` (active | needs_reconnect), which Herald sets when a token stops working:
-- reconnecting clears that, and never the owner's pause.
--
-- What a pause does. The claim is unchanged: a due post is claimed as before, and the run holds its
-- targets on inactive channels exactly as it holds a rate-limited account's (not started, not
-- failed, no retry spent; services/publishing/run.py), with a re-check a while later
-- (INACTIVE_RECHECK) as the post's next_attempt_at, so the post does not come back every minute.
-- Pausing marks the channel's pending targets with error_code 'channel_paused' and says so in their
-- error; resuming clears that and makes the posts held only by paused channels due at once
-- (next_attempt_at back to their scheduled time, or now), so they go out on the next tick rather
-- than at the re-check. A post with another target waiting on a retry keeps its retry time.
--
-- Additive: one nullable-free column with a default (no rewrite on PostgreSQL 11+), one new
-- function; the channel's JSON (herald_private.channel_json, the claim's "channels") gains "active".

alter table herald.channels add column active boolean not null default true;

-- Rename a channel, merge into its metadata (top-level keys; a key sent as null is removed), and
-- pause (p_active false) or resume (true) publishing to it. Null leaves a field as it is. HR404 for
-- a channel that is missing or not the caller's. Credentials are never touched nor returned.
create function public.herald_update_channel_v1(
    p_channel_id uuid, p_name text default null, p_metadata jsonb default null, p_active boolean default null
) returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_before herald.channels;
    v_channel herald.channels;
begin
    select * into v_before from herald.channels c
     where c.id = p_channel_id and c.user_id = v_uid
       for update;
    if not found then
        raise exception 'channel not found' using errcode = 'HR404', hint = 'channel_id';
    end if;
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
        perform herald_private.log(v_uid, null, 'channel.paused', jsonb_build_object('channel_id', p_channel_id));
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
        perform herald_private.log(v_uid, null, 'channel.resumed', jsonb_build_object('channel_id', p_channel_id));
    end if;
    if p_name is not null or p_metadata is not null then
        perform herald_private.log(v_uid, null, 'channel.updated', jsonb_build_object(
            'channel_id', p_channel_id, 'fields', to_jsonb(array_remove(array[
                case when p_name is not null then 'name' end,
                case when p_metadata is not null then 'metadata' end], null))));
    end if;
    return herald_private.channel_json(v_channel);
end
$$;

revoke all on function public.herald_update_channel_v1(uuid, text, jsonb, boolean) from public, anon, service_role;
grant execute on function public.herald_update_channel_v1(uuid, text, jsonb, boolean) to authenticated;
