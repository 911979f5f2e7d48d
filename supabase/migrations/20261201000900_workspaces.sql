-- Workspaces (issue 14): every channel, post, webhook endpoint and record belongs to a workspace,
-- and a user reaches a workspace's rows by membership, with a role.
--
-- This migration adds the tables, moves every user's existing rows into that user's personal
-- workspace (one per user, the user its owner: nothing is lost or changes hands), puts
-- `workspace_id` on every owned table, and replaces the owner-only RLS policies with policies by
-- membership. The membership checks are SECURITY DEFINER functions with a fixed search_path: a
-- policy on workspace_members that read workspace_members itself would recurse, and a definer
-- function reads it without RLS (Supabase docs, "Row Level Security", "Use security definer
-- functions"; https://supabase.com/docs/guides/database/postgres/row-level-security).
-- 20261201001000_workspace_scope.sql then scopes every herald_*_v1 function to the request's
-- workspace (the `X-Workspace-Id` request header, or the caller's personal workspace).
--
-- `user_id` stays on every table and now means the user who made the row (author, connector, actor).

-- --- the tables -------------------------------------------------------------------------------

create table herald.workspaces (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(btrim(name)) between 1 and 100),
    -- set on a user's personal workspace (their default): one each
    personal_of uuid unique references auth.users (id) on delete cascade,
    approval_required boolean not null default false,
    editors_connect_channels boolean not null default false,
    created_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table herald.workspace_members (
    workspace_id uuid not null references herald.workspaces (id) on delete cascade,
    user_id uuid not null references auth.users (id) on delete cascade,
    role text not null check (role in ('owner', 'admin', 'editor', 'viewer')),
    -- an editor or viewer who may approve posts (owners and admins always may)
    approver boolean not null default false,
    invited_by uuid references auth.users (id) on delete set null,
    joined_at timestamptz not null default now(),
    primary key (workspace_id, user_id)
);
create index workspace_members_user on herald.workspace_members (user_id);

create table herald.workspace_invites (
    id uuid primary key default gen_random_uuid(),
    workspace_id uuid not null references herald.workspaces (id) on delete cascade,
    -- encode(sha256(convert_to(token, 'UTF8')), 'hex'): the token itself is shown once, never stored
    token_hash text not null unique,
    role text not null check (role in ('owner', 'admin', 'editor', 'viewer')),
    approver boolean not null default false,
    email text check (length(email) <= 320),
    created_by uuid references auth.users (id) on delete set null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    accepted_by uuid references auth.users (id) on delete set null,
    accepted_at timestamptz,
    revoked_at timestamptz
);
create index workspace_invites_workspace on herald.workspace_invites (workspace_id, created_at);

create trigger workspaces_updated_at before update on herald.workspaces
    for each row execute function herald_private.set_updated_at();

-- --- every user's personal workspace, and their rows moved into it -----------------------------

insert into herald.workspaces (name, personal_of, created_by, created_at)
select 'Personal', u.id, u.id, coalesce(u.created_at, now()) from auth.users u;
insert into herald.workspace_members (workspace_id, user_id, role, joined_at)
select w.id, w.personal_of, 'owner', w.created_at from herald.workspaces w;

alter table herald.channels add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.posts add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.post_targets add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.activity_logs add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.sandbox_outbox add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.idempotency_keys add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.webhook_endpoints add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.events add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.webhook_deliveries add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.webhook_attempts add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.post_analytics add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.post_comments add column workspace_id uuid references herald.workspaces (id) on delete cascade;
alter table herald.post_history add column workspace_id uuid references herald.workspaces (id) on delete cascade;

-- Posts waiting for approval, and who approved a post and when.
alter table herald.posts drop constraint posts_status_check;
alter table herald.posts add constraint posts_status_check check (status in (
    'draft', 'pending_approval', 'scheduled', 'publishing', 'published', 'partial', 'failed', 'cancelled',
    'needs_review'));
alter table herald.posts add column approved_by uuid references auth.users (id) on delete set null;
alter table herald.posts add column approved_at timestamptz;

-- Moving rows must not touch them otherwise: no updated_at bump, no history entry.
alter table herald.channels disable trigger channels_updated_at;
alter table herald.posts disable trigger posts_updated_at;
alter table herald.post_targets disable trigger post_targets_updated_at;

update herald.channels t set workspace_id = w.id from herald.workspaces w where w.personal_of = t.user_id;
update herald.posts t set workspace_id = w.id from herald.workspaces w where w.personal_of = t.user_id;
update herald.post_targets t set workspace_id = p.workspace_id from herald.posts p where p.id = t.post_id;
update herald.activity_logs t set workspace_id = w.id from herald.workspaces w where w.personal_of = t.user_id;
update herald.sandbox_outbox t set workspace_id = w.id from herald.workspaces w where w.personal_of = t.user_id;
update herald.idempotency_keys t set workspace_id = w.id from herald.workspaces w where w.personal_of = t.user_id;
update herald.webhook_endpoints t set workspace_id = w.id from herald.workspaces w where w.personal_of = t.user_id;
update herald.events t set workspace_id = w.id from herald.workspaces w where w.personal_of = t.user_id;
update herald.webhook_deliveries t set workspace_id = e.workspace_id from herald.webhook_endpoints e
 where e.id = t.endpoint_id;
update herald.webhook_attempts t set workspace_id = e.workspace_id from herald.webhook_endpoints e
 where e.id = t.endpoint_id;
update herald.post_analytics t set workspace_id = p.workspace_id from herald.posts p where p.id = t.post_id;
update herald.post_comments t set workspace_id = p.workspace_id from herald.posts p where p.id = t.post_id;
update herald.post_history t set workspace_id = p.workspace_id from herald.posts p where p.id = t.post_id;

alter table herald.channels enable trigger channels_updated_at;
alter table herald.posts enable trigger posts_updated_at;
alter table herald.post_targets enable trigger post_targets_updated_at;

-- activity_logs keeps rows of no workspace (a cron run, an app-wide platform pause).
alter table herald.channels alter column workspace_id set not null;
alter table herald.posts alter column workspace_id set not null;
alter table herald.post_targets alter column workspace_id set not null;
alter table herald.sandbox_outbox alter column workspace_id set not null;
alter table herald.idempotency_keys alter column workspace_id set not null;
alter table herald.webhook_endpoints alter column workspace_id set not null;
alter table herald.events alter column workspace_id set not null;
alter table herald.webhook_deliveries alter column workspace_id set not null;
alter table herald.webhook_attempts alter column workspace_id set not null;
alter table herald.post_analytics alter column workspace_id set not null;
alter table herald.post_comments alter column workspace_id set not null;
alter table herald.post_history alter column workspace_id set not null;

-- One account once per workspace (an agency and its client may both connect it); an idempotency
-- key per user and workspace.
alter table herald.channels drop constraint channels_one_per_account;
alter table herald.channels add constraint channels_one_per_account unique (workspace_id, platform, account_id);
alter table herald.idempotency_keys drop constraint idempotency_keys_pkey;
alter table herald.idempotency_keys add primary key (workspace_id, user_id, key);

-- Lists and figures are per workspace now.
drop index herald.posts_user_created;
drop index herald.posts_user_scheduled;
drop index herald.posts_user_updated;
drop index herald.post_targets_user;
drop index herald.post_targets_lag;
drop index herald.activity_user;
drop index herald.sandbox_outbox_user;
drop index herald.webhook_endpoints_user;
drop index herald.events_user;
create index posts_workspace_created on herald.posts (workspace_id, created_at desc, id desc);
create index posts_workspace_scheduled on herald.posts (workspace_id, scheduled_at);
create index posts_workspace_updated on herald.posts (workspace_id, updated_at);
create index posts_pending_approval on herald.posts (workspace_id, scheduled_at) where status = 'pending_approval';
create index channels_workspace on herald.channels (workspace_id, created_at);
create index post_targets_workspace on herald.post_targets (workspace_id, platform, status);
create index post_targets_lag on herald.post_targets (workspace_id, published_at) where publish_lag_ms is not null;
create index activity_workspace on herald.activity_logs (workspace_id, id desc);
create index sandbox_outbox_workspace on herald.sandbox_outbox (workspace_id, published_at desc);
create index webhook_endpoints_workspace on herald.webhook_endpoints (workspace_id, created_at);
create index events_workspace on herald.events (workspace_id, created_at);

-- --- membership: who may do what where ---------------------------------------------------------

create function herald_private.role_rank(p_role text) returns integer
language sql immutable set search_path = '' as $$
    select case p_role when 'viewer' then 1 when 'editor' then 2 when 'admin' then 3 when 'owner' then 4 else 0 end
$$;

-- The caller's (auth.uid()'s) role in the workspace, or null.
create function herald_private.caller_role(p_workspace_id uuid) returns text
language sql stable security definer set search_path = '' as $$
    select m.role from herald.workspace_members m where m.workspace_id = p_workspace_id and m.user_id = auth.uid()
$$;

-- The workspaces where the caller has at least this role: what the RLS policies admit.
create function herald_private.caller_workspaces(p_min_role text) returns setof uuid
language sql stable security definer set search_path = '' as $$
    select m.workspace_id from herald.workspace_members m
     where m.user_id = auth.uid() and herald_private.role_rank(m.role) >= herald_private.role_rank(p_min_role)
$$;

-- Owners and admins approve posts, and so does a member with the approver flag.
create function herald_private.is_approver(p_workspace_id uuid) returns boolean
language sql stable security definer set search_path = '' as $$
    select coalesce((select m.role in ('owner', 'admin') or m.approver from herald.workspace_members m
                      where m.workspace_id = p_workspace_id and m.user_id = auth.uid()), false)
$$;

-- Admins connect channels, and so do editors where the workspace allows it.
create function herald_private.caller_may_connect(p_workspace_id uuid) returns boolean
language sql stable security definer set search_path = '' as $$
    select coalesce((select m.role in ('owner', 'admin') or (m.role = 'editor' and w.editors_connect_channels)
                       from herald.workspace_members m join herald.workspaces w on w.id = m.workspace_id
                      where m.workspace_id = p_workspace_id and m.user_id = auth.uid()), false)
$$;

-- The caller's role, if it is at least p_min_role: else 404 for a workspace the caller is not in
-- (whether or not it exists), 403 naming the role it needs.
create function herald_private.require_role(p_workspace_id uuid, p_min_role text) returns text
language plpgsql stable security definer set search_path = '' as $$
declare
    v_uid uuid := auth.uid();
    v_role text;
begin
    if v_uid is null then
        raise exception 'this call needs a signed-in user' using errcode = 'HR401';
    end if;
    select m.role into v_role from herald.workspace_members m
     where m.workspace_id = p_workspace_id and m.user_id = v_uid;
    if v_role is null then
        raise exception 'workspace not found' using errcode = 'HR404', detail = 'workspace_not_found',
            hint = 'workspace_id';
    end if;
    if herald_private.role_rank(v_role) < herald_private.role_rank(p_min_role) then
        raise exception 'this needs the % role in this workspace; you are %', p_min_role,
            case when v_role in ('owner', 'admin', 'editor') then 'an ' else 'a ' end || v_role
            using errcode = 'HR403', detail = 'forbidden';
    end if;
    return v_role;
end
$$;

-- The workspace the request names in its X-Workspace-Id header: PostgREST hands every request
-- header to the transaction as the JSON object `request.headers`, names lower-cased (PostgREST
-- docs, "Transaction-Scoped Settings"); PostgresStore sets it the same way.
create function herald_private.requested_workspace() returns uuid
language plpgsql stable set search_path = '' as $$
declare
    v_raw text := nullif(current_setting('request.headers', true), '')::json ->> 'x-workspace-id';
begin
    if v_raw is null or btrim(v_raw) = '' then
        return null;
    end if;
    return btrim(v_raw)::uuid;
exception when invalid_text_representation then
    raise exception 'X-Workspace-Id must be a workspace id (a UUID)'
        using errcode = 'HR422', detail = 'invalid', hint = 'X-Workspace-Id';
end
$$;

-- The user's personal workspace, made (the user its owner) on first use.
create function herald_private.personal_workspace(p_user_id uuid) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_id uuid;
begin
    select w.id into v_id from herald.workspaces w where w.personal_of = p_user_id;
    if v_id is null then
        insert into herald.workspaces (name, personal_of, created_by) values ('Personal', p_user_id, p_user_id)
        on conflict (personal_of) do nothing
        returning id into v_id;
        if v_id is null then  -- made by a concurrent call, committed since
            select w.id into v_id from herald.workspaces w where w.personal_of = p_user_id;
        else
            insert into herald.workspace_members (workspace_id, user_id, role) values (v_id, p_user_id, 'owner');
        end if;
    end if;
    return v_id;
end
$$;

-- The request's workspace for a call that reads (at least p_min_role there): the header's, else the
-- caller's personal one, or null when the caller has none yet (so a read finds nothing).
create function herald_private.current_workspace_id(p_min_role text default 'viewer') returns uuid
language plpgsql stable security definer set search_path = '' as $$
declare
    v_ws uuid := herald_private.requested_workspace();
begin
    if auth.uid() is null then
        raise exception 'this call needs a signed-in user' using errcode = 'HR401';
    end if;
    if v_ws is null then
        select w.id into v_ws from herald.workspaces w where w.personal_of = auth.uid();
        if v_ws is null then
            return null;
        end if;
    end if;
    perform herald_private.require_role(v_ws, p_min_role);
    return v_ws;
end
$$;

-- The same for a call that writes: the caller's personal workspace is made if it has none yet.
create function herald_private.ensure_workspace_id(p_min_role text) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_ws uuid := herald_private.requested_workspace();
begin
    if auth.uid() is null then
        raise exception 'this call needs a signed-in user' using errcode = 'HR401';
    end if;
    v_ws := coalesce(v_ws, herald_private.personal_workspace(auth.uid()));
    perform herald_private.require_role(v_ws, p_min_role);
    return v_ws;
end
$$;

-- --- a row made without its workspace takes its parent's --------------------------------------
-- The publish run and the triggers write child rows (targets, attempts, analytics, deliveries,
-- history) that belong where their parent does. Definer: the parent's workspace is read whatever
-- the caller may see, and the row then faces the table's RLS check like any other.

create function herald_private.workspace_from_post() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if new.workspace_id is null then
        select p.workspace_id into new.workspace_id from herald.posts p where p.id = new.post_id;
    end if;
    return new;
end
$$;

-- A series' next occurrence: its parent's workspace, and its parent's approval (a series is approved once).
create function herald_private.workspace_from_parent_post() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if new.parent_post_id is not null and (new.workspace_id is null or new.approved_at is null) then
        select coalesce(new.workspace_id, p.workspace_id), coalesce(new.approved_by, p.approved_by),
               coalesce(new.approved_at, p.approved_at)
          into new.workspace_id, new.approved_by, new.approved_at
          from herald.posts p where p.id = new.parent_post_id;
    end if;
    return new;
end
$$;

create function herald_private.workspace_from_target() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if new.workspace_id is null then
        select t.workspace_id into new.workspace_id from herald.post_targets t where t.id = new.target_id;
    end if;
    return new;
end
$$;

create function herald_private.workspace_from_endpoint() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if new.workspace_id is null then
        select w.workspace_id into new.workspace_id from herald.webhook_endpoints w where w.id = new.endpoint_id;
    end if;
    return new;
end
$$;

-- An activity entry: its post's workspace, else its channel's (details.channel_id); entries of no
-- post or channel (a cron run) belong to no workspace.
create function herald_private.workspace_for_activity() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if new.workspace_id is null and new.post_id is not null then
        select p.workspace_id into new.workspace_id from herald.posts p where p.id = new.post_id;
    end if;
    if new.workspace_id is null and new.details ? 'channel_id' then
        select c.workspace_id into new.workspace_id from herald.channels c
         where c.id = (new.details ->> 'channel_id')::uuid;
    end if;
    return new;
end
$$;

-- A channel, post, key, endpoint or event made without a workspace goes to its author's personal
-- workspace: where it went before workspaces. So this migration alone changes no behaviour, and a
-- row written by direct SQL or an older version (supabase/seed.sql, a user's own script) still lands
-- somewhere its author sees it. Herald's functions name the workspace (20261201001000).
create function herald_private.workspace_of_author() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
    if new.workspace_id is null and new.user_id is not null then
        new.workspace_id := herald_private.personal_workspace(new.user_id);
    end if;
    return new;
end
$$;

create trigger channels_workspace_of_author before insert on herald.channels
    for each row execute function herald_private.workspace_of_author();
create trigger posts_workspace_of_author before insert on herald.posts
    for each row execute function herald_private.workspace_of_author();
create trigger idempotency_keys_workspace_of_author before insert on herald.idempotency_keys
    for each row execute function herald_private.workspace_of_author();
create trigger webhook_endpoints_workspace_of_author before insert on herald.webhook_endpoints
    for each row execute function herald_private.workspace_of_author();
create trigger events_workspace_of_author before insert on herald.events
    for each row execute function herald_private.workspace_of_author();

create trigger posts_workspace before insert on herald.posts
    for each row execute function herald_private.workspace_from_parent_post();
create trigger post_targets_workspace before insert on herald.post_targets
    for each row execute function herald_private.workspace_from_post();
create trigger post_comments_workspace before insert on herald.post_comments
    for each row execute function herald_private.workspace_from_post();
create trigger post_history_workspace before insert on herald.post_history
    for each row execute function herald_private.workspace_from_post();
create trigger sandbox_outbox_workspace before insert on herald.sandbox_outbox
    for each row execute function herald_private.workspace_from_target();
create trigger post_analytics_workspace before insert on herald.post_analytics
    for each row execute function herald_private.workspace_from_target();
create trigger webhook_deliveries_workspace before insert on herald.webhook_deliveries
    for each row execute function herald_private.workspace_from_endpoint();
create trigger webhook_attempts_workspace before insert on herald.webhook_attempts
    for each row execute function herald_private.workspace_from_endpoint();
create trigger activity_logs_workspace before insert on herald.activity_logs
    for each row execute function herald_private.workspace_for_activity();

-- Events go to the endpoints of their subject's workspace.
create or replace function herald_private.emit(p_user uuid, p_type text, p_subject jsonb) returns void
language sql volatile set search_path = '' as $$
    with e as (
        insert into herald.events (user_id, workspace_id, type, subject)
        values (p_user, coalesce((p_subject -> 'post' ->> 'workspace_id')::uuid,
                                 (p_subject -> 'channel' ->> 'workspace_id')::uuid,
                                 (p_subject -> 'endpoint' ->> 'workspace_id')::uuid),
                p_type, p_subject)
        returning id, user_id, workspace_id
    )
    insert into herald.webhook_deliveries (event_id, endpoint_id, user_id, workspace_id)
    select e.id, w.id, w.user_id, e.workspace_id
      from e join herald.webhook_endpoints w on w.workspace_id = e.workspace_id
     where w.status = 'active' and (p_type = any (w.events) or '*' = any (w.events))
$$;

-- --- row-level security by membership -----------------------------------------------------------
-- Every policy admits a row by its workspace: viewers read, editors write posts and what hangs off
-- them, admins write channels and webhook endpoints. The workspace tables themselves are read here
-- and written only by the checked SECURITY DEFINER functions of 20261201001100_workspace_api.sql.

alter table herald.workspaces enable row level security;
alter table herald.workspace_members enable row level security;
alter table herald.workspace_invites enable row level security;

create policy workspaces_members_read on herald.workspaces for select to authenticated
    using (id in (select herald_private.caller_workspaces('viewer')));
create policy workspace_members_read on herald.workspace_members for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));
create policy workspace_invites_admins_read on herald.workspace_invites for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('admin')));

drop policy channels_owner on herald.channels;
create policy channels_read on herald.channels for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));
create policy channels_connect on herald.channels for insert to authenticated
    with check (user_id = (select auth.uid()) and herald_private.caller_may_connect(workspace_id));
create policy channels_manage on herald.channels for update to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('admin')))
    with check (workspace_id in (select herald_private.caller_workspaces('admin')));
create policy channels_remove on herald.channels for delete to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('admin')));

drop policy posts_owner on herald.posts;
create policy posts_read on herald.posts for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));
create policy posts_write on herald.posts for insert to authenticated
    with check (workspace_id in (select herald_private.caller_workspaces('editor')));
create policy posts_edit on herald.posts for update to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('editor')))
    with check (workspace_id in (select herald_private.caller_workspaces('editor')));
create policy posts_remove on herald.posts for delete to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('editor')));

-- A target points only at a post and a channel of its own workspace.
drop policy post_targets_owner on herald.post_targets;
create policy post_targets_read on herald.post_targets for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));
create policy post_targets_write on herald.post_targets for all to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('editor')))
    with check (
        workspace_id in (select herald_private.caller_workspaces('editor'))
        and exists (select from herald.posts p where p.id = post_id and p.workspace_id = post_targets.workspace_id)
        and (channel_id is null or exists (
             select from herald.channels c where c.id = channel_id and c.workspace_id = post_targets.workspace_id)));

drop policy post_runs_read_through_post on herald.post_runs;
create policy post_runs_read_through_post on herald.post_runs for select to authenticated
    using (exists (select from herald.posts p where p.id = post_id
                    and p.workspace_id in (select herald_private.caller_workspaces('viewer'))));

drop policy activity_logs_read_own on herald.activity_logs;
drop policy activity_logs_append_own on herald.activity_logs;
create policy activity_logs_read on herald.activity_logs for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));
create policy activity_logs_append on herald.activity_logs for insert to authenticated
    with check (user_id = (select auth.uid())
                and workspace_id in (select herald_private.caller_workspaces('editor')));

drop policy sandbox_outbox_read_own on herald.sandbox_outbox;
create policy sandbox_outbox_read on herald.sandbox_outbox for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));

drop policy idempotency_keys_read_own on herald.idempotency_keys;
drop policy idempotency_keys_insert_own on herald.idempotency_keys;
create policy idempotency_keys_read_own on herald.idempotency_keys for select to authenticated
    using (user_id = (select auth.uid()) and workspace_id in (select herald_private.caller_workspaces('editor')));
create policy idempotency_keys_insert_own on herald.idempotency_keys for insert to authenticated
    with check (user_id = (select auth.uid())
                and workspace_id in (select herald_private.caller_workspaces('editor')));

drop policy webhook_endpoints_owner on herald.webhook_endpoints;
create policy webhook_endpoints_read on herald.webhook_endpoints for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));
create policy webhook_endpoints_manage on herald.webhook_endpoints for all to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('admin')))
    with check (workspace_id in (select herald_private.caller_workspaces('admin')));

drop policy events_owner on herald.events;
create policy events_read on herald.events for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));
create policy events_emit on herald.events for insert to authenticated
    with check (workspace_id in (select herald_private.caller_workspaces('editor')));

drop policy webhook_deliveries_owner on herald.webhook_deliveries;
create policy webhook_deliveries_read on herald.webhook_deliveries for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));
create policy webhook_deliveries_emit on herald.webhook_deliveries for insert to authenticated
    with check (workspace_id in (select herald_private.caller_workspaces('editor')));

drop policy webhook_attempts_read_own on herald.webhook_attempts;
create policy webhook_attempts_read on herald.webhook_attempts for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));

drop policy post_analytics_read_own on herald.post_analytics;
create policy post_analytics_read on herald.post_analytics for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));

drop policy post_comments_discuss on herald.post_comments;
drop policy post_comments_write on herald.post_comments;
create policy post_comments_read on herald.post_comments for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));
create policy post_comments_write on herald.post_comments for insert to authenticated
    with check (user_id = (select auth.uid())
                and workspace_id in (select herald_private.caller_workspaces('editor')));

-- History is appended by the posts' triggers only, in the name of whoever made the change.
drop policy post_history_read_own on herald.post_history;
drop policy post_history_recorded_by_trigger on herald.post_history;
create policy post_history_read on herald.post_history for select to authenticated
    using (workspace_id in (select herald_private.caller_workspaces('viewer')));
create policy post_history_recorded_by_trigger on herald.post_history for insert to authenticated
    with check (pg_trigger_depth() > 0 and actor = (select auth.uid())
                and workspace_id in (select herald_private.caller_workspaces('editor')));

-- --- privileges ---------------------------------------------------------------------------------

revoke all on herald.workspaces, herald.workspace_members, herald.workspace_invites
    from public, anon, authenticated, service_role;
grant select on herald.workspaces, herald.workspace_members, herald.workspace_invites to authenticated;
grant select, insert, update, delete on herald.workspaces, herald.workspace_members, herald.workspace_invites
    to service_role;

revoke all on function herald_private.role_rank(text), herald_private.caller_role(uuid),
    herald_private.caller_workspaces(text), herald_private.is_approver(uuid),
    herald_private.caller_may_connect(uuid), herald_private.require_role(uuid, text),
    herald_private.requested_workspace(), herald_private.personal_workspace(uuid),
    herald_private.current_workspace_id(text), herald_private.ensure_workspace_id(text),
    herald_private.workspace_from_post(), herald_private.workspace_from_parent_post(),
    herald_private.workspace_from_target(), herald_private.workspace_from_endpoint(),
    herald_private.workspace_for_activity(), herald_private.workspace_of_author()
    from public, anon;
grant execute on function herald_private.role_rank(text), herald_private.caller_role(uuid),
    herald_private.caller_workspaces(text), herald_private.is_approver(uuid),
    herald_private.caller_may_connect(uuid), herald_private.require_role(uuid, text),
    herald_private.requested_workspace(), herald_private.current_workspace_id(text),
    herald_private.ensure_workspace_id(text),
    herald_private.workspace_from_post(), herald_private.workspace_from_parent_post(),
    herald_private.workspace_from_target(), herald_private.workspace_from_endpoint(),
    herald_private.workspace_for_activity(), herald_private.workspace_of_author()
    to authenticated, service_role;
-- Making a personal workspace for any user id: the definer functions and the service role only.
grant execute on function herald_private.personal_workspace(uuid) to service_role;
