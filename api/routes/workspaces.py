"""Workspaces: list, create, read, change and delete them; their members (role, approver flag,
removal, leaving) and invites (made, listed, revoked, accepted). Who may do what is decided by the
store's SQL functions: 404 for a workspace you are not in, 403 naming the role a change needs."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from api.deps import RuntimeDep, SignedInUser
from api.schemas.errors import error_responses
from api.schemas.workspaces import (
    InviteAccept,
    InviteCreate,
    InviteCreatedOut,
    InviteListOut,
    InviteOut,
    MemberListOut,
    MemberOut,
    MemberUpdate,
    WorkspaceCreate,
    WorkspaceListOut,
    WorkspaceOut,
    WorkspaceUpdate,
)
from services import workspaces

router = APIRouter(tags=["workspaces"], redirect_slashes=False)

AUTH = {401: "missing, expired or invalid access token"}
NOT_IN = {404: "no such workspace, or you are not a member of it"}
FORBIDDEN = {403: "your role here does not allow this: the message names the role it needs"}
LIST_ERRORS = error_responses(AUTH)
READ_ERRORS = error_responses({**AUTH, **NOT_IN})
CHANGE_ERRORS = error_responses({**AUTH, **FORBIDDEN, **NOT_IN})
DELETE_ERRORS = error_responses({**AUTH, **FORBIDDEN, **NOT_IN,
                                 409: "a personal workspace (`personal_workspace`), or one of its posts is being "
                                      "published (`workspace_publishing`)"})
MEMBER_ERRORS = error_responses({**AUTH, **FORBIDDEN, 404: "no such workspace or member",
                                 409: "the last owner (`last_owner`) or the user whose personal workspace it is "
                                      "(`personal_workspace`)"})
LEAVE_ERRORS = error_responses({**AUTH, **NOT_IN, 409: "you are its last owner (`last_owner`), or it is your "
                                                       "personal workspace (`personal_workspace`)"})
INVITE_ERRORS = error_responses({**AUTH, **FORBIDDEN, 404: "no such workspace or invite"})
REVOKE_ERRORS = error_responses({**AUTH, **FORBIDDEN, 404: "no such workspace or invite",
                                 409: "the invite has been accepted (`invite_used`)"})
ACCEPT_ERRORS = error_responses({**AUTH, 404: "no such invite, or it was revoked (`invite_not_found`)",
                                 409: "used already (`invite_used`), expired (`invite_expired`), or you are a member "
                                      "already (`already_member`, the invite stays unused)"})


def _no_content() -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- workspaces ---------------------------------------------------------------------------------

@router.get("/workspaces", response_model=WorkspaceListOut, responses=LIST_ERRORS)
async def list_workspaces(user: SignedInUser, rt: RuntimeDep) -> WorkspaceListOut:
    """Every workspace you belong to, your personal one first (made on first use), then by name."""
    found = await rt.store.list_workspaces(user)
    return WorkspaceListOut(items=[WorkspaceOut.of(w) for w in found], total=len(found))


@router.post("/workspaces", status_code=status.HTTP_201_CREATED, response_model=WorkspaceOut, responses=LIST_ERRORS)
async def create_workspace(body: WorkspaceCreate, user: SignedInUser, rt: RuntimeDep) -> WorkspaceOut:
    """A new workspace; you are its owner."""
    return WorkspaceOut.of(await rt.store.create_workspace(user, body.name))


@router.get("/workspaces/{workspace_id}", response_model=WorkspaceOut, responses=READ_ERRORS)
async def get_workspace(workspace_id: UUID, user: SignedInUser, rt: RuntimeDep) -> WorkspaceOut:
    return WorkspaceOut.of(await rt.store.get_workspace(user, workspace_id))


@router.patch("/workspaces/{workspace_id}", response_model=WorkspaceOut, responses=CHANGE_ERRORS)
async def update_workspace(workspace_id: UUID, body: WorkspaceUpdate, user: SignedInUser,
                           rt: RuntimeDep) -> WorkspaceOut:
    """Rename it or change its settings (admin or owner); a field left out (or null) stays as it is."""
    return WorkspaceOut.of(await rt.store.update_workspace(
        user, workspace_id, name=body.name, approval_required=body.approval_required,
        editors_connect_channels=body.editors_connect_channels))


@router.delete("/workspaces/{workspace_id}", status_code=status.HTTP_204_NO_CONTENT, responses=DELETE_ERRORS)
async def delete_workspace(workspace_id: UUID, user: SignedInUser, rt: RuntimeDep) -> Response:
    """Delete it and everything in it: channels, posts, webhooks, activity (owner). A personal workspace
    cannot be deleted."""
    await rt.store.delete_workspace(user, workspace_id)
    return _no_content()


# --- members ------------------------------------------------------------------------------------

@router.get("/workspaces/{workspace_id}/members", response_model=MemberListOut, responses=READ_ERRORS)
async def list_members(workspace_id: UUID, user: SignedInUser, rt: RuntimeDep) -> MemberListOut:
    """Owners first, then admins, editors and viewers, each by when they joined."""
    found = await rt.store.list_members(user, workspace_id)
    return MemberListOut(items=[MemberOut.of(m) for m in found], total=len(found))


@router.patch("/workspaces/{workspace_id}/members/{user_id}", response_model=MemberOut, responses=MEMBER_ERRORS)
async def update_member(workspace_id: UUID, user_id: UUID, body: MemberUpdate, user: SignedInUser,
                        rt: RuntimeDep) -> MemberOut:
    """Change a member's role or approver flag (admin or owner; only owners give or take `owner`). The
    last owner cannot be demoted."""
    return MemberOut.of(await rt.store.update_member(user, workspace_id, user_id, role=body.role,
                                                     approver=body.approver))


@router.delete("/workspaces/{workspace_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=MEMBER_ERRORS)
async def remove_member(workspace_id: UUID, user_id: UUID, user: SignedInUser, rt: RuntimeDep) -> Response:
    """Remove a member (admin; owner to remove an owner). Your own id means leaving, which any member may."""
    await rt.store.remove_member(user, workspace_id, user_id)
    return _no_content()


@router.post("/workspaces/{workspace_id}/leave", status_code=status.HTTP_204_NO_CONTENT, responses=LEAVE_ERRORS)
async def leave_workspace(workspace_id: UUID, user: SignedInUser, rt: RuntimeDep) -> Response:
    """Leave the workspace. The last owner cannot (make another member owner first), nor can anyone leave
    their personal workspace."""
    await rt.store.remove_member(user, workspace_id, user.id)
    return _no_content()


# --- invites ------------------------------------------------------------------------------------

@router.post("/workspaces/{workspace_id}/invites", status_code=status.HTTP_201_CREATED,
             response_model=InviteCreatedOut, responses=INVITE_ERRORS)
async def create_invite(workspace_id: UUID, body: InviteCreate, user: SignedInUser,
                        rt: RuntimeDep) -> InviteCreatedOut:
    """An invite to this workspace (admin or owner; only owners invite owners), single use and expiring.
    The answer carries its token, the only time it is shown: hand it (or `accept_url`) to the person
    you invite, who accepts it signed in with POST /invites/accept."""
    invite, token = await workspaces.create_invite(rt.store, user, workspace_id, role=body.role,
                                                   approver=body.approver, email=body.email,
                                                   expires_in_hours=body.expires_in_hours)
    return InviteCreatedOut(**InviteOut.of(invite).model_dump(), token=token,
                            accept_url=workspaces.accept_url(rt.settings.herald_dashboard_url, token))


@router.get("/workspaces/{workspace_id}/invites", response_model=InviteListOut, responses=INVITE_ERRORS)
async def list_invites(workspace_id: UUID, user: SignedInUser, rt: RuntimeDep) -> InviteListOut:
    """The invites still pending (not accepted, revoked or expired), oldest first, without their tokens
    (admin or owner)."""
    found = await rt.store.list_invites(user, workspace_id)
    return InviteListOut(items=[InviteOut.of(i) for i in found], total=len(found))


@router.delete("/workspaces/{workspace_id}/invites/{invite_id}", status_code=status.HTTP_204_NO_CONTENT,
               responses=REVOKE_ERRORS)
async def revoke_invite(workspace_id: UUID, invite_id: UUID, user: SignedInUser, rt: RuntimeDep) -> Response:
    """Revoke an invite: it can no longer be accepted (admin or owner)."""
    await rt.store.revoke_invite(user, workspace_id, invite_id)
    return _no_content()


@router.post("/invites/accept", response_model=WorkspaceOut, responses=ACCEPT_ERRORS)
async def accept_invite(body: InviteAccept, user: SignedInUser, rt: RuntimeDep) -> WorkspaceOut:
    """Join the invite's workspace with the role it names (any signed-in user, once per invite)."""
    return WorkspaceOut.of(await rt.store.accept_invite(user, body.token))
