"""Workspaces, members and invites: request and response bodies. An invite's token comes out once,
when the invite is made."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Instant
from services.domain.workspaces import Invite, Member, Workspace
from services.workspaces import DEFAULT_INVITE_HOURS, MAX_INVITE_HOURS

Role = Literal["owner", "admin", "editor", "viewer"]
_ROLE_DOC = ("viewer reads; editor + posts; admin + channels, settings, members but owners, invites; "
             "owner: everything, owners and deleting the workspace included")
_NAME = Field(min_length=1, max_length=100, pattern=r"\S", description="1 to 100 characters, not only white space")


class WorkspaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = _NAME


class WorkspaceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"\S",
                             description="1 to 100 characters, not only white space")
    approval_required: bool | None = Field(
        default=None, description="an editor's scheduled post waits for an owner, admin or approver to approve it")
    editors_connect_channels: bool | None = Field(default=None, description="editors may connect channels too")


class WorkspaceOut(BaseModel):
    id: UUID = Field(description="send it as X-Workspace-Id to act in this workspace")
    name: str
    personal: bool = Field(description="a user's personal workspace: it cannot be deleted, nor left by that user")
    role: Role = Field(description=f"your role here: {_ROLE_DOC}")
    approver: bool = Field(description="you may approve posts here (owner, admin, or a member with the approver flag)")
    approval_required: bool
    editors_connect_channels: bool
    member_count: int
    created_at: Instant

    @classmethod
    def of(cls, workspace: Workspace) -> WorkspaceOut:
        return cls(**workspace.__dict__)


class WorkspaceListOut(BaseModel):
    items: list[WorkspaceOut]
    total: int


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = Field(default=None, description=f"{_ROLE_DOC}; only owners give or take `owner`")
    approver: bool | None = Field(default=None, description="an editor or viewer who may approve posts")


class MemberOut(BaseModel):
    user_id: UUID
    email: str | None
    role: Role
    approver: bool = Field(description="the approver flag as set (owners and admins approve whatever it says)")
    joined_at: Instant
    invited_by: UUID | None

    @classmethod
    def of(cls, member: Member) -> MemberOut:
        return cls(**member.__dict__)


class MemberListOut(BaseModel):
    items: list[MemberOut]
    total: int


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = Field(default="editor", description=f"the role the invited user gets: {_ROLE_DOC}; only owners "
                                                     "invite owners")
    approver: bool = Field(default=False, description="the invited user may approve posts")
    email: str | None = Field(default=None, max_length=320,
                              description="who it is meant for (a note: anyone holding the token may accept it)")
    expires_in_hours: int = Field(default=DEFAULT_INVITE_HOURS, ge=1, le=MAX_INVITE_HOURS,
                                  description="how long it can be accepted: 1 hour to 30 days (default 7 days)")


class InviteOut(BaseModel):
    id: UUID
    workspace_id: UUID
    role: Role
    approver: bool
    email: str | None
    created_by: UUID | None
    created_at: Instant
    expires_at: Instant
    status: Literal["pending", "accepted", "revoked", "expired"]

    @classmethod
    def of(cls, invite: Invite) -> InviteOut:
        return cls(id=invite.id, workspace_id=invite.workspace_id, role=invite.role, approver=invite.approver,
                   email=invite.email, created_by=invite.created_by, created_at=invite.created_at,
                   expires_at=invite.expires_at, status=invite.status)


class InviteCreatedOut(InviteOut):
    token: str = Field(description="the invite token: shown only now (Herald keeps only its hash); the invited "
                                   "user sends it to POST /invites/accept")
    accept_url: str = Field(description="the dashboard's page for accepting it (HERALD_DASHBOARD_URL), the token in "
                                        "the fragment")


class InviteListOut(BaseModel):
    items: list[InviteOut]
    total: int


class InviteAccept(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=256, description="the token from the invite")
