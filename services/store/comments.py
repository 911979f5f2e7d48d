"""The store's calls for a post's comments and history, over the SQL functions of
``20261201000800_post_comments.sql``; mixed into ``RpcStore``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.domain.discussion import Comment, HistoryEntry
from services.domain.models import User
from services.store.rows import required_time


class CommentCalls:
    """Store methods for comments and history; the class using it supplies ``_as_user``."""

    async def _as_user(self, user: User, fn: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    async def add_comment(self, user: User, post_id: UUID, body: str) -> Comment:
        return comment_from_row(await self._as_user(user, "herald_add_comment_v1", {
            "p_post_id": str(post_id), "p_body": body}))

    async def list_comments(self, user: User, post_id: UUID, *, limit: int = 50,
                            offset: int = 0) -> tuple[list[Comment], int]:
        page = await self._as_user(user, "herald_list_comments_v1", {
            "p_post_id": str(post_id), "p_limit": limit, "p_offset": offset})
        return [comment_from_row(r) for r in page["items"]], int(page["total"])

    async def post_history(self, user: User, post_id: UUID, *, limit: int = 50,
                           offset: int = 0) -> tuple[list[HistoryEntry], int]:
        page = await self._as_user(user, "herald_post_history_v1", {
            "p_post_id": str(post_id), "p_limit": limit, "p_offset": offset})
        return [history_from_row(r) for r in page["items"]], int(page["total"])


def comment_from_row(row: dict[str, Any]) -> Comment:
    return Comment(id=UUID(str(row["id"])), post_id=UUID(str(row["post_id"])),
                   author_id=UUID(str(row["author"]["user_id"])), body=row["body"],
                   created_at=required_time(row["created_at"]))


def history_from_row(row: dict[str, Any]) -> HistoryEntry:
    actor = row.get("actor")
    return HistoryEntry(id=int(row["id"]), at=required_time(row["at"]),
                        actor_id=UUID(str(actor["user_id"])) if actor else None, change=row["change"],
                        before=row.get("before"), after=row["after"])
