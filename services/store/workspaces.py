"""The store's workspace calls (workspaces, members, invites) over the SQL functions of
``20261201001100_workspace_api.sql``; mixed into ``RpcStore``. Every rule (who may do what, the last
owner, single-use invites) is the functions'; this only turns calls and answers into domain values."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from services.domain.models import User
from services.domain.workspaces import Invite, Member, Workspace
from services.store.rows import format_time, parse_time, required_time


class WorkspaceCalls:
    """Store methods for workspace management; the class using it supplies ``_as_user``."""

    async def _as_user(self, user: User, fn: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    async def list_workspaces(self, user: User) -> list[Workspace]:
        return [workspace_from_row(r) for r in await self._as_user(user, "herald_list_workspaces_v1")]

    async def create_workspace(self, user: User, name: str) -> Workspace:
        return workspace_from_row(await self._as_user(user, "herald_create_workspace_v1", {"p_name": name}))

    async def get_workspace(self, user: User, workspace_id: UUID) -> Workspace:
        return workspace_from_row(await self._as_user(user, "herald_get_workspace_v1",
                                                      {"p_workspace_id": str(workspace_id)}))

    async def update_workspace(self, user: User, workspace_id: UUID, *, name: str | None = None,
                               approval_required: bool | None = None,
                               editors_connect_channels: bool | None = None) -> Workspace:
        return workspace_from_row(await self._as_user(user, "herald_update_workspace_v1", {
            "p_workspace_id": str(workspace_id), "p_name": name, "p_approval_required": approval_required,
            "p_editors_connect_channels": editors_connect_channels}))

    async def delete_workspace(self, user: User, workspace_id: UUID) -> None:
        await self._as_user(user, "herald_delete_workspace_v1", {"p_workspace_id": str(workspace_id)})

    async def list_members(self, user: User, workspace_id: UUID) -> list[Member]:
        return [member_from_row(r) for r in await self._as_user(user, "herald_list_members_v1",
                                                                {"p_workspace_id": str(workspace_id)})]

    async def update_member(self, user: User, workspace_id: UUID, member_id: UUID, *, role: str | None = None,
                            approver: bool | None = None) -> Member:
        return member_from_row(await self._as_user(user, "herald_update_member_v1", {
            "p_workspace_id": str(workspace_id), "p_user_id": str(member_id), "p_role": role,
            "p_approver": approver}))

    async def remove_member(self, user: User, workspace_id: UUID, member_id: UUID) -> None:
        await self._as_user(user, "herald_remove_member_v1", {
            "p_workspace_id": str(workspace_id), "p_user_id": str(member_id)})

    async def create_invite(self, user: User, workspace_id: UUID, *, role: str, approver: bool, email: str | None,
                            token: str, expires_at: datetime) -> Invite:
        return invite_from_row(await self._as_user(user, "herald_create_invite_v1", {
            "p_workspace_id": str(workspace_id), "p_role": role, "p_approver": approver, "p_email": email,
            "p_token": token, "p_expires_at": format_time(expires_at)}))

    async def list_invites(self, user: User, workspace_id: UUID) -> list[Invite]:
        return [invite_from_row(r) for r in await self._as_user(user, "herald_list_invites_v1",
                                                                {"p_workspace_id": str(workspace_id)})]

    async def revoke_invite(self, user: User, workspace_id: UUID, invite_id: UUID) -> None:
        await self._as_user(user, "herald_revoke_invite_v1", {
            "p_workspace_id": str(workspace_id), "p_invite_id": str(invite_id)})

    async def accept_invite(self, user: User, token: str) -> Workspace:
        return workspace_from_row(await self._as_user(user, "herald_accept_invite_v1", {"p_token": token}))


def _uuid(value: Any) -> UUID | None:
    return UUID(str(value)) if value is not None else None


def workspace_from_row(row: dict[str, Any]) -> Workspace:
    return Workspace(
        id=UUID(str(row["id"])), name=row["name"], personal=bool(row["personal"]), role=row["role"],
        approver=bool(row["approver"]), approval_required=bool(row["approval_required"]),
        editors_connect_channels=bool(row["editors_connect_channels"]), member_count=int(row["member_count"]),
        created_at=required_time(row["created_at"]),
    )


def member_from_row(row: dict[str, Any]) -> Member:
    return Member(user_id=UUID(str(row["user_id"])), email=row.get("email"), role=row["role"],
                  approver=bool(row["approver"]), joined_at=required_time(row["joined_at"]),
                  invited_by=_uuid(row.get("invited_by")))


def invite_from_row(row: dict[str, Any]) -> Invite:
    return Invite(
        id=UUID(str(row["id"])), workspace_id=UUID(str(row["workspace_id"])), role=row["role"],
        approver=bool(row["approver"]), email=row.get("email"), created_by=_uuid(row.get("created_by")),
        created_at=required_time(row["created_at"]), expires_at=required_time(row["expires_at"]),
        status=row["status"], accepted_by=_uuid(row.get("accepted_by")),
        accepted_at=parse_time(row.get("accepted_at")), revoked_at=parse_time(row.get("revoked_at")),
    )
