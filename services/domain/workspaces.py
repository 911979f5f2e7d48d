"""Workspaces: where channels, posts and records live, the members who share them, and invites."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

#: the roles, weakest first: viewer reads; editor + posts; admin + channels, settings, members but
#: owners, invites; owner: everything, owners and deleting the workspace included
ROLES = ("viewer", "editor", "admin", "owner")


@dataclass(frozen=True)
class Workspace:
    """A workspace as the calling user sees it: ``role`` and ``approver`` are the caller's."""

    id: UUID
    name: str
    personal: bool  #: a user's personal workspace: never deleted, never left by that user
    role: str  #: the caller's role here (one of ROLES)
    approver: bool  #: the caller may approve posts here (owner, admin, or a member with the approver flag)
    approval_required: bool
    editors_connect_channels: bool
    member_count: int
    created_at: datetime


@dataclass(frozen=True)
class Member:
    user_id: UUID
    email: str | None
    role: str
    approver: bool  #: the approver flag as set (owners and admins approve whatever it says)
    joined_at: datetime
    invited_by: UUID | None


@dataclass(frozen=True)
class Invite:
    """An invitation to join a workspace; its token is never stored (only its hash) nor shown again."""

    id: UUID
    workspace_id: UUID
    role: str
    approver: bool
    email: str | None  #: who it was meant for (informational: anyone holding the token may accept it)
    created_by: UUID | None
    created_at: datetime
    expires_at: datetime
    status: str  #: pending, accepted, revoked or expired
    accepted_by: UUID | None = None
    accepted_at: datetime | None = None
    revoked_at: datetime | None = None
