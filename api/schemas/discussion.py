"""A post's comments and history: request and response bodies."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Instant
from services.domain.discussion import Comment, HistoryEntry

MAX_COMMENT = 10_000


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=MAX_COMMENT, pattern=r"\S",
                      description="the comment, 1 to 10000 characters, not only white space")


class UserRef(BaseModel):
    user_id: UUID


class CommentOut(BaseModel):
    id: UUID
    post_id: UUID
    author: UserRef
    body: str
    created_at: Instant

    @classmethod
    def of(cls, comment: Comment) -> CommentOut:
        return cls(id=comment.id, post_id=comment.post_id, author=UserRef(user_id=comment.author_id),
                   body=comment.body, created_at=comment.created_at)


class CommentPageOut(BaseModel):
    items: list[CommentOut]
    total: int


class HistoryEntryOut(BaseModel):
    at: Instant
    actor: UserRef | None = Field(description="who made the change; null for Herald itself (a publish run)")
    change: Literal["created", "content", "schedule", "status"] = Field(
        description="schedule covers scheduled_at, timezone and rrule")
    before: dict[str, Any] | None = Field(description="the changed fields before (null for created)")
    after: dict[str, Any] = Field(description="the changed fields after")

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryEntryOut:
        return cls(at=entry.at, actor=UserRef(user_id=entry.actor_id) if entry.actor_id else None,
                   change=entry.change, before=entry.before, after=entry.after)


class HistoryPageOut(BaseModel):
    items: list[HistoryEntryOut]
    total: int
