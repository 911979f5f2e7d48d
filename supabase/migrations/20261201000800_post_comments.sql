-- Comments and history on a post (issue 14 "Teams", item 4): what a reviewer needs. Today a post has
-- one owner, who reads and writes its comments and reads its history; workspaces come later.
--
-- Comments: herald.post_comments, written and read through herald_add_comment_v1 and
-- herald_list_comments_v1. Who may discuss a post is decided in one place,
-- herald_private.can_discuss_post(post_id): the functions and the RLS policies both ask it, so a
-- later "workspace members" rule replaces that function (or the policies) and nothing else.
--
-- History: herald.post_history, one row per change of a post's content, time (scheduled_at,
-- timezone, rrule) or status, written by triggers on herald.posts whoever changes the row: the
-- owner's functions (actor = auth.uid()) or Herald itself (the publish run, the service role:
-- actor null). Append-only: nobody holds UPDATE or DELETE; rows go with their post (on delete
-- cascade) or their user. Volume: every run moves a post twice (scheduled -> publishing ->
-- published) and every occurrence of a series is a new post, so a row holds only the fields that
-- changed (a status change is {"status": ...}), and one index serves the one read (a post's
-- history in order).
--
-- The triggers run as the caller (no SECURITY DEFINER anywhere: tests/postgres/test_migrations.py),
-- so `authenticated` holds INSERT on the history; the RLS policy admits a row only from inside a
-- trigger (pg_trigger_depth() > 0), for the caller's own post, with the caller as actor: a direct
-- INSERT by a user is refused.
--
-- Additive: new tables, triggers and functions; nothing an earlier release calls changes.

-- --- tables ---------------------------------------------------------------------------------------

create table herald.post_comments (
    id uuid primary key default gen_random_uuid(),
    post_id uuid not null references herald.posts (id) on delete cascade,
    -- the author (today always the post's owner; with workspaces, any member)
    user_id uuid not null references auth.users (id) on delete cascade,
    body text not null check (length(body) between 1 and 10000),
    created_at timestamptz not null default now()
);
-- A post's comments, oldest first.
create index post_comments_post on herald.post_comments (post_id, created_at, id);

create table herald.post_history (
    id bigint generated always as identity primary key,
    post_id uuid not null references herald.posts (id) on delete cascade,
    -- the post's owner (the RLS key)
    user_id uuid not null references auth.users (id) on delete cascade,
    -- who made the change; null: Herald itself (the publish run, the service role)
    actor uuid,
    at timestamptz not null default now(),
    change text not null check (change in ('created', 'content', 'schedule', 'status')),
    -- the fields that changed, before and after (before is null for 'created')
    before jsonb check (jsonb_typeof(before) = 'object'),
    after jsonb not null check (jsonb_typeof(after) = 'object')
);
-- A post's history, in order (paged).
create index post_history_post on herald.post_history (post_id, id);

alter table herald.post_comments enable row level security;
alter table herald.post_history enable row level security;

-- --- who may discuss a post -------------------------------------------------------------------------

-- True when the signed-in caller may read and comment on the post: today, its owner. The workspace
-- release replaces this function (same signature) to admit the post's workspace members as well.
create function herald_private.can_discuss_post(p_post_id uuid) returns boolean
language sql stable set search_path = '' as $$
    select exists (select from herald.posts p where p.id = p_post_id and p.user_id = (select auth.uid()))
$$;

create policy post_comments_discuss on herald.post_comments for select to authenticated
    using (herald_private.can_discuss_post(post_id));
create policy post_comments_write on herald.post_comments for insert to authenticated
    with check (user_id = (select auth.uid()) and herald_private.can_discuss_post(post_id));

create policy post_history_read_own on herald.post_history for select to authenticated
    using (user_id = (select auth.uid()));
-- Only the triggers below write history: from inside a trigger, for the caller's own post, as the actor.
create policy post_history_recorded_by_trigger on herald.post_history for insert to authenticated
    with check (pg_trigger_depth() > 0 and user_id = (select auth.uid()) and actor = (select auth.uid()));

-- --- history ----------------------------------------------------------------------------------------

-- The keys of p_keys whose values differ between p_old and p_new, with p_old's values.
create function herald_private.changed_fields(p_old jsonb, p_new jsonb, p_keys text[]) returns jsonb
language sql immutable set search_path = '' as $$
    select jsonb_object_agg(k, p_old -> k) from unnest(p_keys) k where p_old -> k is distinct from p_new -> k
$$;

-- One row per kind of change, in a fixed order (content, schedule, status), each with only its fields.
create function herald_private.record_post_history() returns trigger
language plpgsql set search_path = '' as $$
declare
    -- a user's function acts as `authenticated` with the user's claims; the service role is Herald
    v_actor uuid := case when current_user = 'service_role' then null else auth.uid() end;
    v_old jsonb;
    v_new jsonb := to_jsonb(new);
    v_kind record;
begin
    if tg_op = 'INSERT' then
        insert into herald.post_history (post_id, user_id, actor, change, before, after)
        values (new.id, new.user_id, v_actor, 'created', null, jsonb_strip_nulls(jsonb_build_object(
            'status', new.status, 'scheduled_at', new.scheduled_at, 'timezone', new.timezone,
            'rrule', new.rrule, 'parent_post_id', new.parent_post_id)));
        return null;
    end if;
    v_old := to_jsonb(old);
    for v_kind in
        select * from (values (1, 'content', array['content']),
                              (2, 'schedule', array['scheduled_at', 'timezone', 'rrule']),
                              (3, 'status', array['status'])) k (n, change, keys) order by n
    loop
        if herald_private.changed_fields(v_old, v_new, v_kind.keys) is not null then
            insert into herald.post_history (post_id, user_id, actor, change, before, after)
            values (new.id, new.user_id, v_actor, v_kind.change,
                    herald_private.changed_fields(v_old, v_new, v_kind.keys),
                    herald_private.changed_fields(v_new, v_old, v_kind.keys));
        end if;
    end loop;
    return null;
end
$$;

create trigger posts_history_created after insert on herald.posts
    for each row execute function herald_private.record_post_history();
-- Only the tracked columns: a lease, an attempt count or updated_at alone writes nothing.
create trigger posts_history_changed after update of content, scheduled_at, timezone, rrule, status on herald.posts
    for each row
    when (old.content is distinct from new.content or old.scheduled_at is distinct from new.scheduled_at
          or old.timezone is distinct from new.timezone or old.rrule is distinct from new.rrule
          or old.status is distinct from new.status)
    execute function herald_private.record_post_history();

-- --- the user functions -----------------------------------------------------------------------------

-- Raise HR404 unless the caller may discuss the post (HR401 without a signed-in user).
create function herald_private.require_discussable_post(p_post_id uuid) returns void
language plpgsql stable set search_path = '' as $$
begin
    perform herald_private.current_user_id();
    if not herald_private.can_discuss_post(p_post_id) then
        raise exception 'post not found' using errcode = 'HR404', hint = 'post_id';
    end if;
end
$$;

-- A comment as the API shows it.
create function herald_private.comment_json(c herald.post_comments) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object('id', c.id, 'post_id', c.post_id, 'author', jsonb_build_object('user_id', c.user_id),
                              'body', c.body, 'created_at', c.created_at)
$$;

-- Add the caller's comment to the post (and to the activity log); HR422 (field body) for a blank or
-- over-long body.
create function public.herald_add_comment_v1(p_post_id uuid, p_body text) returns jsonb
language plpgsql volatile security invoker set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_comment herald.post_comments;
begin
    perform herald_private.require_discussable_post(p_post_id);
    if p_body is null or btrim(p_body, E' \t\r\n') = '' then
        raise exception 'a comment needs some text' using errcode = 'HR422', hint = 'body';
    end if;
    if length(p_body) > 10000 then
        raise exception 'a comment is at most 10000 characters' using errcode = 'HR422', hint = 'body';
    end if;
    insert into herald.post_comments (post_id, user_id, body) values (p_post_id, v_uid, p_body)
    returning * into v_comment;
    perform herald_private.log(v_uid, p_post_id, 'post.commented', jsonb_build_object('comment_id', v_comment.id));
    return herald_private.comment_json(v_comment);
end
$$;

-- The post's comments, oldest first, and how many there are.
create function public.herald_list_comments_v1(p_post_id uuid, p_limit integer default 50,
                                               p_offset integer default 0) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
begin
    perform herald_private.require_discussable_post(p_post_id);
    return jsonb_build_object(
        'total', (select count(*) from herald.post_comments c where c.post_id = p_post_id),
        'items', coalesce((
            select jsonb_agg(herald_private.comment_json(x) order by x.created_at, x.id) from (
                select * from herald.post_comments c where c.post_id = p_post_id
                 order by c.created_at, c.id
                 limit greatest(least(p_limit, 200), 0) offset greatest(p_offset, 0)) x), '[]'::jsonb));
end
$$;

-- The post's changes, oldest first, and how many there are.
create function public.herald_post_history_v1(p_post_id uuid, p_limit integer default 50,
                                              p_offset integer default 0) returns jsonb
language plpgsql stable security invoker set search_path = '' as $$
begin
    perform herald_private.require_discussable_post(p_post_id);
    return jsonb_build_object(
        'total', (select count(*) from herald.post_history h where h.post_id = p_post_id),
        'items', coalesce((
            select jsonb_agg(jsonb_build_object(
                       'id', x.id, 'at', x.at, 'change', x.change, 'before', x.before, 'after', x.after,
                       'actor', case when x.actor is null then null else jsonb_build_object('user_id', x.actor) end)
                   order by x.id) from (
                select * from herald.post_history h where h.post_id = p_post_id
                 order by h.id
                 limit greatest(least(p_limit, 200), 0) offset greatest(p_offset, 0)) x), '[]'::jsonb));
end
$$;

-- --- privileges -------------------------------------------------------------------------------------

revoke all on herald.post_comments, herald.post_history from public, anon, authenticated, service_role;
-- Comments: read and added (no edits yet); history: read, and appended by the triggers only.
grant select, insert on herald.post_comments, herald.post_history to authenticated;
grant select, insert on herald.post_comments, herald.post_history to service_role;
revoke truncate, references, trigger on herald.post_comments, herald.post_history from anon, authenticated;

revoke all on function herald_private.can_discuss_post(uuid), herald_private.changed_fields(jsonb, jsonb, text[]),
    herald_private.record_post_history(), herald_private.require_discussable_post(uuid),
    herald_private.comment_json(herald.post_comments)
    from public, anon;
grant execute on function herald_private.can_discuss_post(uuid), herald_private.changed_fields(jsonb, jsonb, text[]),
    herald_private.record_post_history(), herald_private.require_discussable_post(uuid),
    herald_private.comment_json(herald.post_comments)
    to authenticated, service_role;

do $grants$
declare
    v_fn text;
begin
    foreach v_fn in array array[
        'public.herald_add_comment_v1(uuid, text)',
        'public.herald_list_comments_v1(uuid, integer, integer)',
        'public.herald_post_history_v1(uuid, integer, integer)'
    ] loop
        execute format('revoke all on function %s from public, anon, service_role', v_fn);
        execute format('grant execute on function %s to authenticated', v_fn);
    end loop;
end
$grants$;
