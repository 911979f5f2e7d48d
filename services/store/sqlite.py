"""SqliteStore: the embedded default store, held to the same contract as SupabaseStore.

One connection per store; every write is one ``BEGIN IMMEDIATE`` transaction, so two processes
(or two stores) on the same file serialise their claims and compare-and-set transitions exactly
as ``FOR UPDATE SKIP LOCKED`` and ``WHERE status IN (...)`` do in Postgres.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any
from uuid import UUID

from services.domain.models import (
    Activity,
    Channel,
    Claim,
    CronHealth,
    CronRun,
    OutboxEntry,
    Post,
    PostResult,
    PostStatus,
    Run,
    TargetStatus,
    User,
)
from services.domain.transitions import BLOCKED_WHEN_LIVE, LIVE, conflict_message, derive_post_status
from services.errors import ConflictError, NotFoundError, ValidationError
from services.store import rows
from services.store.base import NewChannel, NewPost, PostChanges, PostFilter, PostPage, Statistics

_fmt = rows.format_time


def _now() -> str:
    return _fmt(datetime.now(timezone.utc))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class SqliteStore:
    """The Store protocol on one SQLite file (or ``:memory:``)."""

    def __init__(self, path: str = "./herald.db"):
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA busy_timeout = 30000")
        schema = resources.files("services.store").joinpath("sqlite_schema.sql").read_text()
        with self._lock:
            self._db.executescript(schema)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute(f"BEGIN {mode}")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _log(db: sqlite3.Connection, user_id: Any, post_id: Any, event: str, details: dict | None = None) -> None:
        db.execute(
            "INSERT INTO activity_logs (user_id, post_id, event, details, created_at) VALUES (?, ?, ?, ?, ?)",
            (str(user_id) if user_id else None, str(post_id) if post_id else None, event, _json(details or {}), _now()),
        )

    @staticmethod
    def _channel_dict(row: sqlite3.Row, *, with_credentials: bool = False) -> dict[str, Any]:
        data = dict(row)
        data["metadata"] = json.loads(data["metadata"])
        if not with_credentials:
            data.pop("credentials_encrypted", None)
        return data

    def _post_dicts(self, db: sqlite3.Connection, post_rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
        if not post_rows:
            return []
        ids = [r["id"] for r in post_rows]
        marks = ",".join("?" * len(ids))
        targets: dict[str, list[dict]] = {i: [] for i in ids}
        for t in db.execute(f"SELECT * FROM post_targets WHERE post_id IN ({marks})", ids):
            targets[t["post_id"]].append(dict(t))
        out = []
        for r in post_rows:
            data = dict(r)
            data["content"] = json.loads(data["content"])
            data["targets"] = targets[r["id"]]
            out.append(data)
        return out

    def _load_post(self, db: sqlite3.Connection, user: User | None, post_id: UUID) -> Post:
        sql, args = "SELECT * FROM posts WHERE id = ?", [str(post_id)]
        if user is not None:
            sql, args = sql + " AND user_id = ?", args + [str(user.id)]
        row = db.execute(sql, args).fetchone()
        if row is None:
            raise NotFoundError("post not found", field="post_id")
        return rows.post_from_row(self._post_dicts(db, [row])[0])

    @staticmethod
    def _owned_channels(db: sqlite3.Connection, user: User, channel_ids: tuple[UUID, ...]) -> dict[str, sqlite3.Row]:
        ids = [str(c) for c in channel_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        found = {
            r["id"]: r
            for r in db.execute(f"SELECT * FROM channels WHERE user_id = ? AND id IN ({marks})", [str(user.id), *ids])
        }
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValidationError(f"channel {missing[0]} not found", code="unknown_channel", field="channel_ids")
        return found

    @staticmethod
    def _insert_targets(db: sqlite3.Connection, user: User, post_id: str, channels: dict[str, sqlite3.Row]) -> None:
        now = _now()
        db.executemany(
            "INSERT INTO post_targets (id, post_id, channel_id, user_id, platform, status, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            [(str(uuid.uuid4()), post_id, cid, str(user.id), ch["platform"], now, now) for cid, ch in channels.items()],
        )

    # --- health -------------------------------------------------------------------------------

    async def ping(self) -> None:
        with self._lock:
            self._db.execute("SELECT 1").fetchone()

    # --- channels -----------------------------------------------------------------------------

    async def create_channel(self, user: User, new: NewChannel) -> Channel:
        now = _now()
        channel_id = str(uuid.uuid4())
        try:
            with self._tx() as db:
                existing = db.execute(
                    "SELECT id, metadata FROM channels WHERE user_id = ? AND platform = ? AND account_id = ?",
                    (str(user.id), new.platform, new.account_id),
                ).fetchone() if new.reconnect else None
                if existing is not None:
                    channel_id = existing["id"]
                    db.execute(
                        "UPDATE channels SET name = ?, metadata = ?, credentials_encrypted = ?, token_expires_at = ?,"
                        " status = 'active', updated_at = ? WHERE id = ?",
                        (new.name, _json({**json.loads(existing["metadata"]), **new.metadata}), new.credentials_encrypted,
                         _fmt(new.token_expires_at), now, channel_id),
                    )
                    self._log(db, user.id, None, "channel.reconnected", {"channel_id": channel_id, "platform": new.platform})
                    return await self.get_channel(user, UUID(channel_id))
                db.execute(
                    "INSERT INTO channels (id, user_id, platform, account_id, name, metadata, credentials_encrypted,"
                    " token_expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (channel_id, str(user.id), new.platform, new.account_id, new.name, _json(new.metadata),
                     new.credentials_encrypted, _fmt(new.token_expires_at), now, now),
                )
                self._log(db, user.id, None, "channel.created", {"channel_id": channel_id, "platform": new.platform})
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" not in str(exc):
                raise
            raise ConflictError(
                f"this {new.platform} account is already connected", code="channel_exists", field="account_id"
            ) from exc
        return await self.get_channel(user, UUID(channel_id))

    async def list_channels(self, user: User) -> list[Channel]:
        with self._lock:
            found = self._db.execute(
                "SELECT * FROM channels WHERE user_id = ? ORDER BY created_at, id", (str(user.id),)
            ).fetchall()
        return [rows.channel_from_row(self._channel_dict(r)) for r in found]

    async def get_channel(self, user: User, channel_id: UUID) -> Channel:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM channels WHERE id = ? AND user_id = ?", (str(channel_id), str(user.id))
            ).fetchone()
        if row is None:
            raise NotFoundError("channel not found", field="channel_id")
        return rows.channel_from_row(self._channel_dict(row))

    async def delete_channel(self, user: User, channel_id: UUID, *, force: bool) -> None:
        cid = str(channel_id)
        with self._tx() as db:
            if db.execute("SELECT 1 FROM channels WHERE id = ? AND user_id = ?", (cid, str(user.id))).fetchone() is None:
                raise NotFoundError("channel not found", field="channel_id")
            busy = db.execute(
                "SELECT p.id, p.status FROM post_targets t JOIN posts p ON p.id = t.post_id"
                " WHERE t.channel_id = ? AND t.status IN ('pending', 'publishing')"
                " AND p.status IN ('scheduled', 'publishing')",
                (cid,),
            ).fetchall()
            if any(r["status"] == "publishing" for r in busy):
                raise ConflictError("a post to this channel is being published right now; try again in a minute")
            if busy and not force:
                raise ConflictError(
                    f"{len(busy)} scheduled post(s) still target this channel; unschedule them or pass force=true",
                    code="channel_in_use",
                )
            now = _now()
            post_ids = [r["id"] for r in busy]
            db.execute(
                "DELETE FROM post_targets WHERE channel_id = ? AND status = 'pending' AND attempts = 0"
                " AND post_id IN (SELECT id FROM posts WHERE status NOT IN ('scheduled', 'publishing'))",
                (cid,),
            )
            db.execute(
                "UPDATE post_targets SET status = 'cancelled', error = 'channel deleted', updated_at = ?"
                " WHERE channel_id = ? AND status = 'pending'",
                (now, cid),
            )
            for pid in post_ids:
                live = db.execute(
                    "SELECT count(*) FROM post_targets WHERE post_id = ? AND status <> 'cancelled'", (pid,)
                ).fetchone()[0]
                if live == 0:
                    db.execute(
                        "UPDATE posts SET status = 'cancelled', error = 'its channel was deleted', updated_at = ?"
                        " WHERE id = ?",
                        (now, pid),
                    )
                self._log(db, user.id, pid, "target.cancelled", {"channel_id": cid, "reason": "channel deleted"})
            db.execute("DELETE FROM channels WHERE id = ?", (cid,))
            self._log(db, user.id, None, "channel.deleted", {"channel_id": cid, "cancelled_posts": len(post_ids)})

    # --- posts --------------------------------------------------------------------------------

    def _insert_post(self, db: sqlite3.Connection, user: User, new: NewPost) -> str:
        post_id = str(uuid.uuid4())
        now = _now()
        channels = self._owned_channels(db, user, new.channel_ids)
        recurring = bool(new.rrule)
        db.execute(
            "INSERT INTO posts (id, user_id, content, scheduled_at, timezone, rrule, status, series_id,"
            " series_start_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (post_id, str(user.id), _json(rows.content_to_dict(new.content)), _fmt(new.scheduled_at),
             new.timezone, new.rrule, new.status.value, post_id if recurring else None,
             _fmt(new.scheduled_at) if recurring else None, now, now),
        )
        self._insert_targets(db, user, post_id, channels)
        self._log(db, user.id, post_id, "post.created", {"status": new.status.value})
        return post_id

    async def create_post(self, user: User, new: NewPost) -> Post:
        with self._tx() as db:
            return self._load_post(db, user, UUID(self._insert_post(db, user, new)))

    async def create_posts(
        self, user: User, news: list[NewPost], *, idempotency_key: str | None = None, request_hash: str | None = None
    ) -> tuple[list[Post], bool]:
        with self._tx() as db:
            if idempotency_key is not None:
                seen = db.execute(
                    "SELECT request_hash, post_ids FROM idempotency_keys WHERE user_id = ? AND key = ?",
                    (str(user.id), idempotency_key),
                ).fetchone()
                if seen is not None:
                    if seen["request_hash"] != request_hash:
                        raise ConflictError("this Idempotency-Key was used for a different request",
                                            code="idempotency_key_reused", field="Idempotency-Key")
                    found = [self._load_post(db, user, UUID(i)) for i in json.loads(seen["post_ids"])
                             if db.execute("SELECT 1 FROM posts WHERE id = ?", (i,)).fetchone()]
                    return found, True
            ids = []
            for index, new in enumerate(news):
                try:
                    ids.append(self._insert_post(db, user, new))
                except ValidationError as exc:
                    if len(news) > 1:
                        exc.field = f"posts.{index}.{exc.field}"
                    raise
            if idempotency_key is not None:
                db.execute(
                    "INSERT INTO idempotency_keys (user_id, key, request_hash, post_ids, created_at) VALUES (?, ?, ?, ?, ?)",
                    (str(user.id), idempotency_key, request_hash, _json(ids), _now()),
                )
            return [self._load_post(db, user, UUID(i)) for i in ids], False

    async def resolve_target(
        self, user: User, post_id: UUID, target_id: UUID, *, published: bool, url: str | None
    ) -> Post:
        pid, tid = str(post_id), str(target_id)
        with self._tx() as db:
            self._load_post(db, user, post_id)
            target = db.execute("SELECT status FROM post_targets WHERE id = ? AND post_id = ?", (tid, pid)).fetchone()
            if target is None:
                raise NotFoundError("target not found", field="target_id")
            if target["status"] != "unknown":
                raise ConflictError(f"only an unknown target can be resolved; this one is {target['status']}",
                                    code="invalid_state", field="target_id")
            now = _now()
            db.execute(
                "UPDATE post_targets SET status = ?, platform_post_url = coalesce(?, platform_post_url),"
                " error = CASE WHEN ? THEN NULL ELSE 'marked failed by the user' END,"
                " published_at = CASE WHEN ? THEN ? ELSE published_at END, updated_at = ? WHERE id = ?",
                ("published" if published else "failed", url, published, published, now, now, tid),
            )
            statuses = [TargetStatus(r[0]) for r in db.execute("SELECT status FROM post_targets WHERE post_id = ?", (pid,))]
            status = derive_post_status(statuses)
            if status is PostStatus.NEEDS_REVIEW or status is PostStatus.SCHEDULED:
                db.execute("UPDATE posts SET updated_at = ? WHERE id = ?", (now, pid))
            else:
                db.execute(
                    "UPDATE posts SET status = ?, updated_at = ?, error = CASE WHEN ? = 'published' THEN NULL ELSE error END,"
                    " published_at = CASE WHEN ? IN ('published', 'partial') THEN coalesce(published_at, ?) ELSE published_at END"
                    " WHERE id = ?",
                    (status.value, now, status.value, status.value, now, pid),
                )
            self._log(db, user.id, pid, "target.resolved", {"target_id": tid, "published": published})
            return self._load_post(db, user, post_id)

    async def get_post(self, user: User, post_id: UUID) -> Post:
        with self._tx("DEFERRED") as db:
            return self._load_post(db, user, post_id)

    async def list_posts(self, user: User, query: PostFilter) -> PostPage:
        where, args = ["p.user_id = ?"], [str(user.id)]
        if query.statuses:
            where.append(f"p.status IN ({','.join('?' * len(query.statuses))})")
            args += [s.value for s in query.statuses]
        if query.platform:
            where.append("EXISTS (SELECT 1 FROM post_targets t WHERE t.post_id = p.id AND t.platform = ?)")
            args.append(query.platform)
        if query.channel_id:
            where.append("EXISTS (SELECT 1 FROM post_targets t WHERE t.post_id = p.id AND t.channel_id = ?)")
            args.append(str(query.channel_id))
        if query.scheduled_from:
            where.append("p.scheduled_at >= ?")
            args.append(_fmt(query.scheduled_from))
        if query.scheduled_to:
            where.append("p.scheduled_at <= ?")
            args.append(_fmt(query.scheduled_to))
        if query.updated_since:
            where.append("p.updated_at >= ?")
            args.append(_fmt(query.updated_since))
        if query.recurring is not None:
            where.append("p.rrule IS NOT NULL" if query.recurring else "p.rrule IS NULL")
        clause = " AND ".join(where)
        with self._tx("DEFERRED") as db:
            total = db.execute(f"SELECT count(*) FROM posts p WHERE {clause}", args).fetchone()[0]
            found = db.execute(
                f"SELECT * FROM posts p WHERE {clause} ORDER BY p.created_at DESC, p.id DESC LIMIT ? OFFSET ?",
                [*args, query.limit, query.offset],
            ).fetchall()
            items = [rows.post_from_row(d) for d in self._post_dicts(db, found)]
        return PostPage(items=items, total=total)

    async def update_post(
        self,
        user: User,
        post_id: UUID,
        changes: PostChanges,
        *,
        allowed_from: frozenset[PostStatus],
        action: str,
    ) -> Post:
        pid = str(post_id)
        values = changes.values()
        with self._tx() as db:
            row = db.execute("SELECT status FROM posts WHERE id = ? AND user_id = ?", (pid, str(user.id))).fetchone()
            if row is None:
                raise NotFoundError("post not found", field="post_id")
            if PostStatus(row["status"]) not in allowed_from:
                raise ConflictError(conflict_message(action, row["status"]), code="invalid_state")
            self._refuse_if_live(db, pid, action)
            now = _now()
            if "channel_ids" in values:
                channels = self._owned_channels(db, user, values["channel_ids"])
                keep = list(channels)
                marks = ",".join("?" * len(keep))
                db.execute(
                    f"DELETE FROM post_targets WHERE post_id = ? AND status <> 'published'"
                    f" AND (channel_id IS NULL OR channel_id NOT IN ({marks}))",
                    [pid, *keep],
                )
                present = {r[0] for r in db.execute("SELECT channel_id FROM post_targets WHERE post_id = ?", (pid,))}
                self._insert_targets(db, user, pid, {c: ch for c, ch in channels.items() if c not in present})
            sets: dict[str, Any] = {"updated_at": now}
            if "content" in values:
                sets["content"] = _json(rows.content_to_dict(values["content"]))
                if values.get("occurrence_only"):
                    # later occurrences keep the series' content: remember it before this edit
                    sets["series_content"] = db.execute(
                        "SELECT coalesce(series_content, content) FROM posts WHERE id = ?", (pid,)).fetchone()[0]
                else:
                    sets["series_content"] = None
            if "scheduled_at" in values:
                sets["scheduled_at"] = _fmt(values["scheduled_at"])
            for key in ("timezone", "rrule"):
                if key in values:
                    sets[key] = values[key]
            if "rrule" in values or "scheduled_at" in values or "timezone" in values:
                # a changed rule, time or zone starts the series afresh from this occurrence
                current = db.execute("SELECT rrule, scheduled_at, series_id FROM posts WHERE id = ?", (pid,)).fetchone()
                rule = values.get("rrule", current["rrule"])
                anchor = sets.get("scheduled_at", current["scheduled_at"])
                if not values.get("occurrence_only"):
                    sets["series_id"] = (current["series_id"] or pid) if rule else None
                    sets["series_start_at"] = anchor if rule else None
            status = values.get("status")
            if status is not None:
                sets["status"] = status.value
                if status is PostStatus.SCHEDULED:
                    sets.update(error=None, next_attempt_at=_fmt(values.get("next_attempt_at")))
                    db.execute(
                        "UPDATE post_targets SET status = 'pending', error = NULL, updated_at = ?"
                        " WHERE post_id = ? AND status IN ('failed', 'cancelled') AND channel_id IS NOT NULL",
                        (now, pid),
                    )
                elif status is PostStatus.CANCELLED:
                    db.execute(
                        "UPDATE post_targets SET status = 'cancelled', updated_at = ? WHERE post_id = ? AND status = 'pending'",
                        (now, pid),
                    )
            assignments = ", ".join(f"{k} = ?" for k in sets)
            db.execute(f"UPDATE posts SET {assignments} WHERE id = ?", [*sets.values(), pid])
            self._log(db, user.id, pid, f"post.{action}", {"fields": sorted(k for k in values if k not in (
                "status", "next_attempt_at", "occurrence_only")),
                                                         "status": sets.get("status", row["status"])})
            return self._load_post(db, user, post_id)

    async def delete_post(self, user: User, post_id: UUID, *, allowed_from: frozenset[PostStatus]) -> None:
        pid = str(post_id)
        with self._tx() as db:
            row = db.execute("SELECT status FROM posts WHERE id = ? AND user_id = ?", (pid, str(user.id))).fetchone()
            if row is None:
                raise NotFoundError("post not found", field="post_id")
            if PostStatus(row["status"]) not in allowed_from:
                raise ConflictError(conflict_message("delete", row["status"]), code="invalid_state")
            self._refuse_if_live(db, pid, "delete")
            db.execute("DELETE FROM posts WHERE id = ?", (pid,))
            self._log(db, user.id, pid, "post.deleted", {"status": row["status"]})

    @staticmethod
    def _refuse_if_live(db: sqlite3.Connection, post_id: str, action: str) -> None:
        if action in BLOCKED_WHEN_LIVE and db.execute(
            "SELECT 1 FROM post_targets WHERE post_id = ? AND status IN ('published', 'unknown') LIMIT 1", (post_id,)
        ).fetchone():
            raise ConflictError(conflict_message(action, LIVE), code="invalid_state")

    async def list_runs(self, user: User, post_id: UUID) -> list[Run]:
        with self._tx("DEFERRED") as db:
            self._load_post(db, user, post_id)
            found = db.execute(
                "SELECT * FROM post_runs WHERE post_id = ? ORDER BY started_at, attempt, id", (str(post_id),)
            ).fetchall()
        return [rows.run_from_row(dict(r)) for r in found]

    async def list_activity(self, user: User, *, post_id: UUID | None = None, limit: int = 50) -> list[Activity]:
        sql, args = "SELECT * FROM activity_logs WHERE user_id = ?", [str(user.id)]
        if post_id is not None:
            sql, args = sql + " AND post_id = ?", args + [str(post_id)]
        with self._lock:
            found = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
        return [rows.activity_from_row({**dict(r), "details": json.loads(r["details"])}) for r in found]

    async def post_statistics(self, user: User) -> Statistics:
        uid = str(user.id)
        with self._tx("DEFERRED") as db:
            by_status = {r[0]: r[1] for r in db.execute(
                "SELECT status, count(*) FROM posts WHERE user_id = ? GROUP BY status", (uid,))}
            by_platform: dict[str, dict[str, int]] = {}
            for platform, status, n in db.execute(
                "SELECT platform, status, count(*) FROM post_targets WHERE user_id = ? GROUP BY platform, status", (uid,)
            ):
                counts = by_platform.setdefault(platform, {"targets": 0})
                counts["targets"] += n
                counts[status] = n
        return Statistics(total=sum(by_status.values()), by_status=by_status, by_platform=by_platform)

    async def list_outbox(self, user: User, *, limit: int = 50) -> list[OutboxEntry]:
        with self._lock:
            found = self._db.execute(
                "SELECT * FROM sandbox_outbox WHERE user_id = ? ORDER BY published_at DESC, id LIMIT ?",
                (str(user.id), limit),
            ).fetchall()
        return [rows.outbox_from_row({**dict(r), "media": json.loads(r["media"])}) for r in found]

    # --- the publish run ----------------------------------------------------------------------

    async def claim_due_posts(
        self, *, now: datetime, limit: int, lease_seconds: int, post_ids: tuple[UUID, ...] | None = None
    ) -> Claim:
        at = _fmt(now)
        expires = _fmt(now + timedelta(seconds=lease_seconds))
        only = [str(p) for p in post_ids] if post_ids is not None else None
        scope, scope_args = "", []
        if only is not None:
            scope, scope_args = f" AND id IN ({','.join('?' * len(only))})", only
        with self._tx() as db:
            recovered = [r["id"] for r in db.execute(
                f"SELECT id FROM posts WHERE status = 'publishing' AND lease_expires_at < ?{scope}"
                " ORDER BY lease_expires_at, id LIMIT ?", [at, *scope_args, limit])]
            due = [r["id"] for r in db.execute(
                f"SELECT id FROM posts WHERE status = 'scheduled' AND coalesce(next_attempt_at, scheduled_at) <= ?{scope}"
                " ORDER BY coalesce(next_attempt_at, scheduled_at), id LIMIT ?",
                [at, *scope_args, limit - len(recovered)],
            )] if limit > len(recovered) else []
            leases = {pid: str(uuid.uuid4()) for pid in recovered + due}
            for pid, lease in leases.items():
                db.execute(
                    "UPDATE posts SET status = 'publishing', lease_id = ?, lease_expires_at = ?,"
                    " attempts = attempts + 1, updated_at = ? WHERE id = ?",
                    (lease, expires, at, pid),
                )
            maybe_sent = {pid: [r[0] for r in db.execute(
                "SELECT id FROM post_targets WHERE post_id = ? AND status = 'publishing'", (pid,))] for pid in leases}
            claimed_rows = [db.execute("SELECT * FROM posts WHERE id = ?", (pid,)).fetchone() for pid in leases]
            posts = self._post_dicts(db, claimed_rows)
            channel_ids = {t["channel_id"] for p in posts for t in p["targets"] if t["channel_id"]}
            marks = ",".join("?" * len(channel_ids))
            channels = {
                r["id"]: self._channel_dict(r, with_credentials=True)
                for r in db.execute(f"SELECT * FROM channels WHERE id IN ({marks})", list(channel_ids))
            } if channel_ids else {}
            for p in posts:
                event = "post.recovered" if p["id"] in recovered else "post.claimed"
                self._log(db, p["user_id"], p["id"], event, {"attempt": p["attempts"]})
        return rows.claim_from_row({
            "posts": [
                {
                    "post": p,
                    "lease_id": leases[p["id"]],
                    "channels": [channels[c] for c in {t["channel_id"] for t in p["targets"]} if c in channels],
                    "maybe_sent": maybe_sent.get(p["id"], []),
                }
                for p in posts
            ],
            "recovered": recovered,
        })

    async def mark_sending(self, target_ids: list[UUID], *, now: datetime) -> None:
        ids = [str(t) for t in target_ids]
        if not ids:
            return
        with self._tx() as db:
            db.execute(
                f"UPDATE post_targets SET status = 'publishing', updated_at = ? WHERE status = 'pending'"
                f" AND id IN ({','.join('?' * len(ids))})"
                " AND post_id IN (SELECT id FROM posts WHERE status = 'publishing')",
                [_fmt(now), *ids],
            )

    async def save_channel_credentials(
        self, channel_id: UUID, credentials_encrypted: str, *, token_expires_at: datetime | None
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE channels SET credentials_encrypted = ?, token_expires_at = ?, status = 'active', updated_at = ?"
                " WHERE id = ?",
                (credentials_encrypted, _fmt(token_expires_at), _now(), str(channel_id)),
            )

    async def mark_channel_needs_reconnect(self, channel_id: UUID, *, reason: str) -> None:
        with self._tx() as db:
            row = db.execute("SELECT user_id FROM channels WHERE id = ?", (str(channel_id),)).fetchone()
            if row is None:
                return
            db.execute("UPDATE channels SET status = 'needs_reconnect', updated_at = ? WHERE id = ?",
                       (_now(), str(channel_id)))
            self._log(db, row[0], None, "channel.needs_reconnect", {"channel_id": str(channel_id), "reason": reason})

    async def list_due(self, *, now: datetime, limit: int) -> list[Post]:
        with self._tx("DEFERRED") as db:
            found = db.execute(
                "SELECT * FROM posts WHERE status = 'scheduled' AND coalesce(next_attempt_at, scheduled_at) <= ?"
                " ORDER BY coalesce(next_attempt_at, scheduled_at), id LIMIT ?",
                (_fmt(now), limit),
            ).fetchall()
            return [rows.post_from_row(d) for d in self._post_dicts(db, found)]

    async def cron_health(self, *, now: datetime) -> CronHealth:
        at = _fmt(now)
        with self._tx("DEFERRED") as db:
            last = db.execute("SELECT * FROM cron_runs ORDER BY started_at DESC LIMIT 1").fetchone()
            due, oldest = db.execute(
                "SELECT count(*), min(coalesce(next_attempt_at, scheduled_at)) FROM posts"
                " WHERE status = 'scheduled' AND coalesce(next_attempt_at, scheduled_at) <= ?", (at,)).fetchone()
            stuck = db.execute(
                "SELECT count(*) FROM posts WHERE status = 'publishing' AND lease_expires_at < ?", (at,)).fetchone()[0]
        return CronHealth(last_run=rows.cron_run_from_row(dict(last)) if last else None, due_now=due,
                          oldest_due_at=rows.parse_time(oldest), stuck=stuck)

    async def deliver_to_outbox(self, entry: OutboxEntry) -> None:
        with self._tx() as db:
            owner = db.execute("SELECT user_id FROM post_targets WHERE id = ?", (str(entry.target_id),)).fetchone()
            if owner is None:
                raise NotFoundError("target not found", field="target_id")
            db.execute(
                "INSERT INTO sandbox_outbox (id, user_id, channel_id, target_id, text, media, published_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (str(entry.id), owner[0], str(entry.channel_id) if entry.channel_id else None, str(entry.target_id),
                 entry.text, _json([rows.media_to_dict(m) for m in entry.media]), _fmt(entry.published_at)),
            )

    async def record_results(self, results: list[PostResult], *, now: datetime, cron_run: CronRun | None = None) -> int:
        at = _fmt(now)
        with self._tx() as db:
            for result in rows.results_to_rows(results):
                held = db.execute(
                    "SELECT user_id FROM posts WHERE id = ? AND status = 'publishing' AND lease_id = ?",
                    (result["post_id"], result["lease_id"]),
                ).fetchone()
                if held is None:
                    continue  # the lease expired and another run recovered the post
                for t in result["targets"]:
                    published = t["status"] == "published"
                    db.execute(
                        "UPDATE post_targets SET status = ?, attempts = ?, error = ?,"
                        " rate_limited = rate_limited + (? = 'rate_limited'),"
                        " platform_post_id = coalesce(?, platform_post_id),"
                        " platform_post_url = coalesce(?, platform_post_url), resume = coalesce(?, resume),"
                        " published_at = CASE WHEN ? THEN ? ELSE published_at END, updated_at = ?"
                        " WHERE id = ? AND post_id = ? AND status <> 'published'",
                        (t["status"], t["attempt"], _target_error(t), t["outcome"], t["platform_post_id"],
                         t["platform_post_url"], json.dumps(t["resume"]) if t["resume"] is not None else None,
                         published, t["finished_at"], at, t["target_id"], result["post_id"]),
                    )
                    db.execute(
                        "INSERT INTO post_runs (id, post_id, target_id, attempt, outcome, http_status, error_code,"
                        " error_message, idempotency_key, started_at, finished_at, duration_ms)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (str(uuid.uuid4()), result["post_id"], t["target_id"], t["attempt"], t["outcome"],
                         t["http_status"], t["error_code"], t["error_message"], t["idempotency_key"], t["started_at"],
                         t["finished_at"], t["duration_ms"]),
                    )
                    self._log(db, held[0], result["post_id"], f"target.{t['status']}",
                              {"target_id": t["target_id"], "outcome": t["outcome"], "attempt": t["attempt"],
                               "error_code": t["error_code"]})
                # Marked sending but never started: back in the queue, untouched.
                db.executemany(
                    "UPDATE post_targets SET status = 'pending', updated_at = ? WHERE id = ? AND post_id = ?"
                    " AND status = 'publishing'",
                    [(at, t, result["post_id"]) for t in result["released"]],
                )
                is_live = result["status"] in ("published", "partial")
                db.execute(
                    "UPDATE posts SET status = ?, error = ?, next_attempt_at = ?, lease_id = NULL,"
                    " lease_expires_at = NULL, published_at = CASE WHEN ? THEN ? ELSE published_at END,"
                    " updated_at = ? WHERE id = ?",
                    (result["status"], result["error"], result["next_attempt_at"], is_live, at, at, result["post_id"]),
                )
                self._log(db, held[0], result["post_id"], f"post.{result['status']}", {"error": result["error"]})
                if result["next_occurrence_at"]:
                    self._create_next_occurrence(db, result["post_id"], result["next_occurrence_at"], at)
            remaining = db.execute(
                "SELECT count(*) FROM posts WHERE status = 'scheduled' AND coalesce(next_attempt_at, scheduled_at) <= ?",
                (at,),
            ).fetchone()[0]
            if cron_run is not None:
                run = rows.cron_run_to_dict(cron_run)
                run["remaining_due"] = remaining
                db.execute(
                    f"INSERT INTO cron_runs ({', '.join(run)}) VALUES ({', '.join('?' * len(run))})", list(run.values())
                )
                self._log(db, None, None, "cron.run", {k: run[k] for k in ("id", "trigger", "claimed", "published", "failed")})
        return remaining

    def _create_next_occurrence(self, db: sqlite3.Connection, parent_id: str, when: str, at: str) -> None:
        parent = db.execute("SELECT * FROM posts WHERE id = ?", (parent_id,)).fetchone()
        child_id = str(uuid.uuid4())
        inserted = db.execute(
            "INSERT OR IGNORE INTO posts (id, user_id, content, scheduled_at, timezone, rrule, status, series_id,"
            " series_start_at, parent_post_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?)",
            (child_id, parent["user_id"], parent["series_content"] or parent["content"], when, parent["timezone"],
             parent["rrule"], parent["series_id"] or parent_id, parent["series_start_at"] or parent["scheduled_at"],
             parent_id, at, at),
        ).rowcount
        if not inserted:
            return  # this occurrence already has its successor
        db.execute(
            "INSERT INTO post_targets (id, post_id, channel_id, user_id, platform, status, created_at, updated_at)"
            " SELECT lower(hex(randomblob(16))), ?, channel_id, user_id, platform, 'pending', ?, ?"
            " FROM post_targets WHERE post_id = ? AND channel_id IS NOT NULL AND status <> 'cancelled'",
            (child_id, at, at, parent_id),
        )
        for (target_id,) in db.execute("SELECT id FROM post_targets WHERE post_id = ?", (child_id,)).fetchall():
            db.execute("UPDATE post_targets SET id = ? WHERE id = ?", (str(uuid.UUID(target_id)), target_id))
        self._log(db, parent["user_id"], child_id, "post.next_occurrence", {"parent_post_id": parent_id,
                                                                             "scheduled_at": when})

    async def count_due(self, *, now: datetime) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT count(*) FROM posts WHERE status = 'scheduled' AND coalesce(next_attempt_at, scheduled_at) <= ?",
                (_fmt(now),),
            ).fetchone()[0]

    async def last_cron_run(self) -> CronRun | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM cron_runs ORDER BY started_at DESC LIMIT 1").fetchone()
        return rows.cron_run_from_row(dict(row)) if row else None


def _target_error(target: dict[str, Any]) -> str | None:
    if target["status"] == "published":
        return None
    return target["error_message"] or target["error_code"]
