"""What a reviewer reads on a post: its comments and its history of changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

#: every kind of change a post's history records
HISTORY_CHANGES = ("created", "content", "schedule", "status")


@dataclass(frozen=True)
class Comment:
    id: UUID
    post_id: UUID
    author_id: UUID  #: the user who wrote it
    body: str
    created_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a post: ``before`` and ``after`` hold only the fields that changed (``before`` is
    None for ``created``); ``actor_id`` None means Herald itself (the publish run)."""

    id: int
    at: datetime
    actor_id: UUID | None
    change: str  #: one of HISTORY_CHANGES
    before: dict[str, Any] | None
    after: dict[str, Any]
