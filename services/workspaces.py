"""Workspace invites: the one part of workspace management that is not the store's, making the token.

The token is ``secrets.token_urlsafe(32)`` (256 random bits), handed to the store, which keeps only
its sha256, and shown to the inviter once; it is never logged. Every rule (who may invite whom,
single use, expiry) is the SQL functions' (``20261201001100_workspace_api.sql``).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import quote
from uuid import UUID

from services import clock
from services.domain.models import User
from services.domain.workspaces import Invite
from services.errors import ValidationError
from services.store.base import Store

#: an invite is valid for a week unless the inviter says otherwise, for 1 hour to 30 days
DEFAULT_INVITE_HOURS = 7 * 24
MAX_INVITE_HOURS = 30 * 24


def new_invite_token() -> str:
    return secrets.token_urlsafe(32)


async def create_invite(store: Store, user: User, workspace_id: UUID, *, role: str, approver: bool = False,
                        email: str | None = None, expires_in_hours: int = DEFAULT_INVITE_HOURS) -> tuple[Invite, str]:
    """The new invite and its token (shown now, never again: only its hash is stored)."""
    if not 1 <= expires_in_hours <= MAX_INVITE_HOURS:
        raise ValidationError(f"expires_in_hours must be between 1 and {MAX_INVITE_HOURS}", field="expires_in_hours")
    token = new_invite_token()
    invite = await store.create_invite(user, workspace_id, role=role, approver=approver, email=email, token=token,
                                       expires_at=clock.utcnow() + timedelta(hours=expires_in_hours))
    return invite, token


def accept_url(dashboard_url: str, token: str) -> str:
    """Where the invited user accepts: the dashboard's invite page, the token in the fragment (a
    fragment never reaches a server's logs or another site's Referer)."""
    return f"{dashboard_url.rstrip('/')}/invites/accept#token={quote(token, safe='')}"
