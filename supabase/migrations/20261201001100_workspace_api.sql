-- Workspace management (issue 14 "Teams", item 1): the user functions behind /api/v1/workspaces and
-- /api/v1/invites. The tables and the membership helpers are 20261201000900_workspaces.sql's
-- (herald.workspaces, herald.workspace_members, herald.workspace_invites; herald_private.require_role,
-- role_rank, is_approver, personal_workspace).
--
-- Every function here is SECURITY DEFINER with an empty search_path, and every one starts with its
-- caller check: herald_private.require_role(workspace, minimum role) (HR404 `workspace_not_found` for
-- a workspace the caller is not in, HR403 `forbidden` naming the missing role), or the signed-in
-- user (herald_private.current_user_id, HR401) for the calls that name no workspace (list, create,
-- accept). The rules are checked explicitly below, in one place each:
--   - viewer+: read the workspace and its members; admin+: settings, members except owners, invites;
--     owner: owners (grant, change, remove, invite) and deleting the workspace.
--   - the last owner can neither be demoted, nor removed, nor leave (HR409 `last_owner`); a personal
--     workspace is never deleted and its user never demoted, removed or gone (HR409 `personal_workspace`).
--   - invites: only the sha256 of the token is stored; single use, expiring, revocable; accepting locks
--     the invite row, so two accepts of one token cannot both win.
-- Who-may-change-members checks take the workspace row's lock first (after the caller is known to be a
-- member), so two owners demoting each other at once cannot leave the workspace without an owner.
-- Membership, invite and settings changes are written to the workspace's activity log
-- (herald_private.log_in of 20261201001000, post_id null: about the workspace itself).
--
-- Additive: new functions only.

-- --- helpers ------------------------------------------------------------------------------------

-- The workspace as p_user_id sees it (the shape herald_list_workspaces_v1 lists); `approver` says
-- whether that user may approve posts there (owner, admin, or a member with the approver flag).
create function herald_private.workspace_json(p_workspace herald.workspaces, p_user_id uuid) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object(
        'id', p_workspace.id, 'name', p_workspace.name, 'personal', p_workspace.personal_of is not null,
        'role', m.role, 'approver', m.role in ('owner', 'admin') or m.approver,
        'approval_required', p_workspace.approval_required,
        'editors_connect_channels', p_workspace.editors_connect_channels,
        'member_count', (select count(*) from herald.workspace_members c where c.workspace_id = p_workspace.id),
        'created_at', p_workspace.created_at)
      from herald.workspace_members m
     where m.workspace_id = p_workspace.id and m.user_id = p_user_id
$$;

-- A member as the API shows it (the approver flag as set; owners and admins approve anyway).
create function herald_private.member_json(p_member herald.workspace_members) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object(
        'user_id', p_member.user_id, 'email', (select u.email from auth.users u where u.id = p_member.user_id),
        'role', p_member.role, 'approver', p_member.approver, 'joined_at', p_member.joined_at,
        'invited_by', p_member.invited_by)
$$;

-- An invite as the API shows it: never its token (only the token's hash is stored anyway).
create function herald_private.invite_json(p_invite herald.workspace_invites) returns jsonb
language sql stable set search_path = '' as $$
    select jsonb_build_object(
        'id', p_invite.id, 'workspace_id', p_invite.workspace_id, 'role', p_invite.role,
        'approver', p_invite.approver, 'email', p_invite.email, 'created_by', p_invite.created_by,
        'created_at', p_invite.created_at, 'expires_at', p_invite.expires_at,
        'accepted_by', p_invite.accepted_by, 'accepted_at', p_invite.accepted_at,
        'revoked_at', p_invite.revoked_at,
        'status', case when p_invite.accepted_at is not null then 'accepted'
                       when p_invite.revoked_at is not null then 'revoked'
                       when p_invite.expires_at <= now() then 'expired'
                       else 'pending' end)
$$;

-- How an invite token is kept: its sha256, hex.
create function herald_private.invite_token_hash(p_token text) returns text
language sql immutable set search_path = '' as $$
    select encode(sha256(convert_to(p_token, 'UTF8')), 'hex')
$$;

-- require_role, then the workspace row's lock (serialising membership changes), then require_role
-- again: what the caller may do is judged after anything committed before the lock.
create function herald_private.lock_workspace(p_workspace_id uuid, p_min_role text) returns text
language plpgsql volatile set search_path = '' as $$
begin
    perform herald_private.require_role(p_workspace_id, p_min_role);
    perform from herald.workspaces w where w.id = p_workspace_id for update;
    return herald_private.require_role(p_workspace_id, p_min_role);
end
$$;

-- HR422 (field role) unless p_role names a role.
create function herald_private.check_role_name(p_role text) returns void
language plpgsql immutable set search_path = '' as $$
begin
    if p_role is null or p_role not in ('owner', 'admin', 'editor', 'viewer') then
        raise exception 'role must be one of owner, admin, editor, viewer'
            using errcode = 'HR422', detail = 'invalid', hint = 'role';
    end if;
end
$$;

-- The workspace name as stored (trimmed); HR422 (field name) for a blank or over-long one.
create function herald_private.check_workspace_name(p_name text) returns text
language plpgsql immutable set search_path = '' as $$
begin
    if p_name is null or btrim(p_name) = '' then
        raise exception 'a workspace needs a name' using errcode = 'HR422', detail = 'invalid', hint = 'name';
    end if;
    if length(btrim(p_name)) > 100 then
        raise exception 'a workspace name is at most 100 characters'
            using errcode = 'HR422', detail = 'invalid', hint = 'name';
    end if;
    return btrim(p_name);
end
$$;

-- HR409 last_owner when p_user_id is the workspace's only owner (call with the workspace locked).
create function herald_private.refuse_last_owner(p_workspace_id uuid, p_user_id uuid, p_message text) returns void
language plpgsql stable set search_path = '' as $$
begin
    if exists (select from herald.workspace_members m
                where m.workspace_id = p_workspace_id and m.user_id = p_user_id and m.role = 'owner')
       and (select count(*) from herald.workspace_members m
             where m.workspace_id = p_workspace_id and m.role = 'owner') = 1 then
        raise exception '%', p_message using errcode = 'HR409', detail = 'last_owner', hint = 'user_id';
    end if;
end
$$;

-- HR409 personal_workspace when p_user_id is the one whose personal workspace this is.
create function herald_private.refuse_personal_owner(p_workspace_id uuid, p_user_id uuid, p_message text)
returns void
language plpgsql stable set search_path = '' as $$
begin
    if exists (select from herald.workspaces w where w.id = p_workspace_id and w.personal_of = p_user_id) then
        raise exception '%', p_message using errcode = 'HR409', detail = 'personal_workspace', hint = 'user_id';
    end if;
end
$$;

-- The role a change to p_user_id's membership needs: owner where `owner` is given or taken
-- (p_new_role, or the member's present role), else admin.
create function herald_private.role_to_change_member(p_workspace_id uuid, p_user_id uuid, p_new_role text)
returns text
language sql stable set search_path = '' as $$
    select case when p_new_role = 'owner' or exists (
                    select from herald.workspace_members m
                     where m.workspace_id = p_workspace_id and m.user_id = p_user_id and m.role = 'owner')
                then 'owner' else 'admin' end
$$;

-- The member row, locked; HR404 member_not_found when p_user_id is not a member.
create function herald_private.member_for_update(p_workspace_id uuid, p_user_id uuid)
returns herald.workspace_members
language plpgsql volatile set search_path = '' as $$
declare
    v_member herald.workspace_members;
begin
    select * into v_member from herald.workspace_members m
     where m.workspace_id = p_workspace_id and m.user_id = p_user_id for update;
    if not found then
        raise exception 'no such member in this workspace' using errcode = 'HR404', detail = 'member_not_found',
            hint = 'user_id';
    end if;
    return v_member;
end
$$;

-- --- workspaces -----------------------------------------------------------------------------------

-- Every workspace the caller belongs to (their personal one first, made on first use), then by name.
create function public.herald_list_workspaces_v1() returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
begin
    perform herald_private.personal_workspace(v_uid);
    return coalesce((
        select jsonb_agg(herald_private.workspace_json(w, v_uid)
                         order by w.personal_of is not distinct from v_uid desc, w.name, w.id)
          from herald.workspaces w
          join herald.workspace_members m on m.workspace_id = w.id and m.user_id = v_uid), '[]'::jsonb);
end
$$;

-- A new (team) workspace; the caller is its owner.
create function public.herald_create_workspace_v1(p_name text) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_name text := herald_private.check_workspace_name(p_name);
    v_workspace herald.workspaces;
begin
    insert into herald.workspaces (name, created_by) values (v_name, v_uid) returning * into v_workspace;
    insert into herald.workspace_members (workspace_id, user_id, role) values (v_workspace.id, v_uid, 'owner');
    perform herald_private.log_in(v_workspace.id, v_uid, null, 'workspace.created', jsonb_build_object('name', v_name));
    return herald_private.workspace_json(v_workspace, v_uid);
end
$$;

-- The workspace as the caller sees it (viewer+).
create function public.herald_get_workspace_v1(p_workspace_id uuid) returns jsonb
language plpgsql stable security definer set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
begin
    perform herald_private.require_role(p_workspace_id, 'viewer');
    return (select herald_private.workspace_json(w, v_uid) from herald.workspaces w where w.id = p_workspace_id);
end
$$;

-- Rename it or change its settings (admin+); a null keeps that field.
create function public.herald_update_workspace_v1(p_workspace_id uuid, p_name text default null,
                                                  p_approval_required boolean default null,
                                                  p_editors_connect_channels boolean default null) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_before herald.workspaces;
    v_after herald.workspaces;
    v_changed jsonb;
    v_keys text[] := array['name', 'approval_required', 'editors_connect_channels'];
begin
    perform herald_private.lock_workspace(p_workspace_id, 'admin');
    select * into v_before from herald.workspaces w where w.id = p_workspace_id;
    v_after := v_before;
    if p_name is not null then
        v_after.name := herald_private.check_workspace_name(p_name);
    end if;
    v_after.approval_required := coalesce(p_approval_required, v_before.approval_required);
    v_after.editors_connect_channels := coalesce(p_editors_connect_channels, v_before.editors_connect_channels);
    v_changed := herald_private.changed_fields(to_jsonb(v_before), to_jsonb(v_after), v_keys);
    if v_changed is not null then
        update herald.workspaces w
           set name = v_after.name, approval_required = v_after.approval_required,
               editors_connect_channels = v_after.editors_connect_channels, updated_at = now()
         where w.id = p_workspace_id
        returning * into v_after;
        perform herald_private.log_in(p_workspace_id, v_uid, null, 'workspace.settings_changed', jsonb_build_object(
            'before', v_changed, 'after', herald_private.changed_fields(to_jsonb(v_after), to_jsonb(v_before), v_keys)));
    end if;
    return herald_private.workspace_json(v_after, v_uid);
end
$$;

-- Delete the workspace and everything in it (owner). Refused for a personal workspace and while any of
-- its posts is being published (its posts are locked first, so a run cannot claim one meanwhile).
create function public.herald_delete_workspace_v1(p_workspace_id uuid) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_publishing bigint;
begin
    perform herald_private.lock_workspace(p_workspace_id, 'owner');
    if exists (select from herald.workspaces w where w.id = p_workspace_id and w.personal_of is not null) then
        raise exception 'a personal workspace cannot be deleted' using errcode = 'HR409',
            detail = 'personal_workspace', hint = 'workspace_id';
    end if;
    select count(*) filter (where x.status = 'publishing') into v_publishing
      from (select p.status from herald.posts p where p.workspace_id = p_workspace_id for update) x;
    if v_publishing > 0 then
        raise exception 'cannot delete this workspace: % of its posts % being published right now; try again in a minute',
            v_publishing, case when v_publishing = 1 then 'is' else 'are' end
            using errcode = 'HR409', detail = 'workspace_publishing', hint = 'workspace_id';
    end if;
    delete from herald.workspaces w where w.id = p_workspace_id;
end
$$;

-- --- members --------------------------------------------------------------------------------------

-- The workspace's members (viewer+): owners first, then admins, editors, viewers, each by joining time.
create function public.herald_list_members_v1(p_workspace_id uuid) returns jsonb
language plpgsql stable security definer set search_path = '' as $$
begin
    perform herald_private.current_user_id();
    perform herald_private.require_role(p_workspace_id, 'viewer');
    return coalesce((
        select jsonb_agg(herald_private.member_json(m)
                         order by herald_private.role_rank(m.role) desc, m.joined_at, m.user_id)
          from herald.workspace_members m where m.workspace_id = p_workspace_id), '[]'::jsonb);
end
$$;

-- Change a member's role or approver flag (admin+; a null keeps it). Only owners grant, change or take
-- away `owner`; the last owner is never demoted, nor the user whose personal workspace it is.
create function public.herald_update_member_v1(p_workspace_id uuid, p_user_id uuid, p_role text default null,
                                               p_approver boolean default null) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_before herald.workspace_members;
    v_after herald.workspace_members;
begin
    perform herald_private.lock_workspace(p_workspace_id, 'viewer');
    perform herald_private.require_role(p_workspace_id,
                                        herald_private.role_to_change_member(p_workspace_id, p_user_id, p_role));
    if p_role is not null then
        perform herald_private.check_role_name(p_role);
    end if;
    v_before := herald_private.member_for_update(p_workspace_id, p_user_id);
    if v_before.role = 'owner' and coalesce(p_role, 'owner') <> 'owner' then
        perform herald_private.refuse_personal_owner(p_workspace_id, p_user_id,
            'the owner of a personal workspace stays its owner');
        perform herald_private.refuse_last_owner(p_workspace_id, p_user_id,
            'the last owner cannot be demoted: make another member owner first');
    end if;
    update herald.workspace_members m
       set role = coalesce(p_role, m.role), approver = coalesce(p_approver, m.approver)
     where m.workspace_id = p_workspace_id and m.user_id = p_user_id
    returning * into v_after;
    if (v_before.role, v_before.approver) is distinct from (v_after.role, v_after.approver) then
        perform herald_private.log_in(p_workspace_id, v_uid, null, 'workspace.member_role_changed', jsonb_build_object(
            'user_id', p_user_id,
            'before', jsonb_build_object('role', v_before.role, 'approver', v_before.approver),
            'after', jsonb_build_object('role', v_after.role, 'approver', v_after.approver)));
    end if;
    return herald_private.member_json(v_after);
end
$$;

-- Remove a member (admin+ for a non-owner, owner for an owner); removing yourself is leaving, which any
-- member may. The last owner, and the user whose personal workspace it is, are never removed.
create function public.herald_remove_member_v1(p_workspace_id uuid, p_user_id uuid) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_leaving boolean := p_user_id = v_uid;
    v_member herald.workspace_members;
begin
    perform herald_private.lock_workspace(p_workspace_id, 'viewer');
    if not v_leaving then
        perform herald_private.require_role(p_workspace_id,
                                            herald_private.role_to_change_member(p_workspace_id, p_user_id, null));
    end if;
    v_member := herald_private.member_for_update(p_workspace_id, p_user_id);
    perform herald_private.refuse_personal_owner(p_workspace_id, p_user_id, case when v_leaving
        then 'you cannot leave your personal workspace'
        else 'the user whose personal workspace this is cannot be removed from it' end);
    perform herald_private.refuse_last_owner(p_workspace_id, p_user_id, case when v_leaving
        then 'the last owner cannot leave: make another member owner first, or delete the workspace'
        else 'the last owner cannot be removed' end);
    delete from herald.workspace_members m where m.workspace_id = p_workspace_id and m.user_id = p_user_id;
    perform herald_private.log_in(p_workspace_id, v_uid, null,
        case when v_leaving then 'workspace.member_left' else 'workspace.member_removed' end,
        jsonb_build_object('user_id', p_user_id, 'role', v_member.role));
end
$$;

-- --- invites --------------------------------------------------------------------------------------

-- An invite (admin+; only owners invite owners) that whoever holds p_token may accept once before
-- p_expires_at (at most 30 days ahead). Only the token's sha256 is stored; the answer has no token.
create function public.herald_create_invite_v1(p_workspace_id uuid, p_role text, p_approver boolean default false,
                                               p_email text default null, p_token text default null,
                                               p_expires_at timestamptz default null) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_email text := nullif(btrim(p_email), '');
    v_invite herald.workspace_invites;
begin
    perform herald_private.require_role(p_workspace_id, case when p_role = 'owner' then 'owner' else 'admin' end);
    perform herald_private.check_role_name(p_role);
    if v_email is not null and (length(v_email) > 320 or v_email !~ '^[^@\s]+@[^@\s]+$') then
        raise exception 'email must be an email address' using errcode = 'HR422', detail = 'invalid', hint = 'email';
    end if;
    if p_token is null or length(p_token) < 32 or length(p_token) > 256 then
        raise exception 'an invite token is 32 to 256 characters' using errcode = 'HR422', detail = 'invalid',
            hint = 'token';
    end if;
    if p_expires_at is null or p_expires_at <= now() or p_expires_at > now() + interval '720 hours 5 minutes' then
        raise exception 'an invite expires in the next 30 days' using errcode = 'HR422', detail = 'invalid',
            hint = 'expires_at';
    end if;
    insert into herald.workspace_invites (workspace_id, token_hash, role, approver, email, created_by, expires_at)
    values (p_workspace_id, herald_private.invite_token_hash(p_token), p_role, coalesce(p_approver, false), v_email,
            v_uid, p_expires_at)
    returning * into v_invite;
    perform herald_private.log_in(p_workspace_id, v_uid, null, 'workspace.invite_created', jsonb_build_object(
        'invite_id', v_invite.id, 'role', v_invite.role, 'approver', v_invite.approver, 'email', v_invite.email,
        'expires_at', v_invite.expires_at));
    return herald_private.invite_json(v_invite);
end
$$;

-- The workspace's pending invites (admin+): not accepted, not revoked, not expired; oldest first.
create function public.herald_list_invites_v1(p_workspace_id uuid) returns jsonb
language plpgsql stable security definer set search_path = '' as $$
begin
    perform herald_private.current_user_id();
    perform herald_private.require_role(p_workspace_id, 'admin');
    return coalesce((
        select jsonb_agg(herald_private.invite_json(i) order by i.created_at, i.id)
          from herald.workspace_invites i
         where i.workspace_id = p_workspace_id and i.accepted_at is null and i.revoked_at is null
           and i.expires_at > now()), '[]'::jsonb);
end
$$;

-- Revoke an invite (admin+): it can no longer be accepted. HR404 invite_not_found for one of another
-- workspace; HR409 invite_used once accepted; revoking a revoked invite changes nothing.
create function public.herald_revoke_invite_v1(p_workspace_id uuid, p_invite_id uuid) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_invite herald.workspace_invites;
begin
    perform herald_private.require_role(p_workspace_id, 'admin');
    select * into v_invite from herald.workspace_invites i
     where i.id = p_invite_id and i.workspace_id = p_workspace_id for update;
    if not found then
        raise exception 'no such invite in this workspace' using errcode = 'HR404', detail = 'invite_not_found',
            hint = 'invite_id';
    end if;
    if v_invite.accepted_at is not null then
        raise exception 'this invite has been accepted already; remove the member instead'
            using errcode = 'HR409', detail = 'invite_used', hint = 'invite_id';
    end if;
    if v_invite.revoked_at is null then
        update herald.workspace_invites i set revoked_at = now() where i.id = p_invite_id;
        perform herald_private.log_in(p_workspace_id, v_uid, null, 'workspace.invite_revoked',
                                             jsonb_build_object('invite_id', p_invite_id));
    end if;
end
$$;

-- Accept an invite (any signed-in user): the caller joins its workspace with its role and approver flag,
-- once. HR404 invite_not_found (unknown or revoked), HR409 invite_used, invite_expired, or
-- already_member (the invite stays unused). The invite row is locked: of two accepts, one wins.
create function public.herald_accept_invite_v1(p_token text) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
    v_uid uuid := herald_private.current_user_id();
    v_invite herald.workspace_invites;
begin
    select * into v_invite from herald.workspace_invites i
     where i.token_hash = herald_private.invite_token_hash(coalesce(p_token, '')) for update;
    if not found or v_invite.revoked_at is not null then
        raise exception 'no such invite: it may have been revoked, or the link is incomplete'
            using errcode = 'HR404', detail = 'invite_not_found', hint = 'token';
    end if;
    if v_invite.accepted_at is not null then
        raise exception 'this invite has been used already; ask for a new one'
            using errcode = 'HR409', detail = 'invite_used', hint = 'token';
    end if;
    if v_invite.expires_at <= now() then
        raise exception 'this invite has expired; ask for a new one'
            using errcode = 'HR409', detail = 'invite_expired', hint = 'token';
    end if;
    if exists (select from herald.workspace_members m
                where m.workspace_id = v_invite.workspace_id and m.user_id = v_uid) then
        raise exception 'you are a member of this workspace already'
            using errcode = 'HR409', detail = 'already_member', hint = 'token';
    end if;
    -- An invite is as good as its maker's standing now: one made by an owner since demoted, or by an
    -- admin since removed, grants nothing.
    if not exists (select from herald.workspace_members m
                    where m.workspace_id = v_invite.workspace_id and m.user_id = v_invite.created_by
                      and (m.role = 'owner' or (m.role = 'admin' and v_invite.role <> 'owner'))) then
        raise exception 'this invite is no longer valid: whoever made it may no longer invite to this role; ask for a new one'
            using errcode = 'HR409', detail = 'invite_withdrawn', hint = 'token';
    end if;
    insert into herald.workspace_members (workspace_id, user_id, role, approver, invited_by)
    values (v_invite.workspace_id, v_uid, v_invite.role, v_invite.approver, v_invite.created_by);
    update herald.workspace_invites i set accepted_by = v_uid, accepted_at = now() where i.id = v_invite.id;
    perform herald_private.log_in(v_invite.workspace_id, v_uid, null, 'workspace.member_added', jsonb_build_object(
        'user_id', v_uid, 'role', v_invite.role, 'approver', v_invite.approver, 'invite_id', v_invite.id,
        'invited_by', v_invite.created_by));
    return (select herald_private.workspace_json(w, v_uid) from herald.workspaces w where w.id = v_invite.workspace_id);
end
$$;

-- --- privileges -----------------------------------------------------------------------------------

-- The helpers run only inside the functions above (as their owner): nobody else executes them.
revoke all on function
    herald_private.workspace_json(herald.workspaces, uuid), herald_private.member_json(herald.workspace_members),
    herald_private.invite_json(herald.workspace_invites), herald_private.invite_token_hash(text),
    herald_private.lock_workspace(uuid, text),
    herald_private.check_role_name(text), herald_private.check_workspace_name(text),
    herald_private.refuse_last_owner(uuid, uuid, text), herald_private.refuse_personal_owner(uuid, uuid, text),
    herald_private.role_to_change_member(uuid, uuid, text), herald_private.member_for_update(uuid, uuid)
    from public, anon, authenticated, service_role;

do $grants$
declare
    v_fn text;
begin
    foreach v_fn in array array[
        'public.herald_list_workspaces_v1()',
        'public.herald_create_workspace_v1(text)',
        'public.herald_get_workspace_v1(uuid)',
        'public.herald_update_workspace_v1(uuid, text, boolean, boolean)',
        'public.herald_delete_workspace_v1(uuid)',
        'public.herald_list_members_v1(uuid)',
        'public.herald_update_member_v1(uuid, uuid, text, boolean)',
        'public.herald_remove_member_v1(uuid, uuid)',
        'public.herald_create_invite_v1(uuid, text, boolean, text, text, timestamptz)',
        'public.herald_list_invites_v1(uuid)',
        'public.herald_revoke_invite_v1(uuid, uuid)',
        'public.herald_accept_invite_v1(text)'
    ] loop
        execute format('revoke all on function %s from public, anon, service_role', v_fn);
        execute format('grant execute on function %s to authenticated', v_fn);
    end loop;
end
$grants$;
