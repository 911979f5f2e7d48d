"""Post request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from api.schemas.common import Instant, InstantIn
from services.domain.models import Content, Media, Post, Run, ThreadPart
from services.scheduling.calendar import MAX_ITEMS, MAX_PER_SERIES, Calendar
from services.scheduling.occurrences import MAX_COUNT_WALK
from services.scheduling.recurrence import local_time

MAX_TEXT = 100_000
MAX_THREAD = 24  #: parts after the first: 25 posts in all
MAX_COMMENT = 10_000


class MediaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["image", "video", "document"]  #: document: a PDF, PPT(X) or DOC(X) (LinkedIn)
    url: str = Field(min_length=1, max_length=2048, json_schema_extra={"pattern": "^https?://"})  # _http_url
    alt: str | None = Field(None, max_length=1500)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value


class OverrideIn(BaseModel):
    """`content.platforms.<name>`: what replaces the shared text or media for one platform."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, max_length=MAX_TEXT)
    media: list[MediaIn] | None = Field(None, max_length=20)


class TikTokOverrideIn(OverrideIn):
    """`content.platforms.tiktok`: TikTok's post options too, checked against the creator's settings when due."""

    privacy_level: str | None = Field(None, max_length=40, description="PUBLIC_TO_EVERYONE, "
                                      "MUTUAL_FOLLOW_FRIENDS, FOLLOWER_OF_CREATOR or SELF_ONLY (the default)")
    disable_comment: bool | None = None
    disable_duet: bool | None = Field(None, description="videos only")
    disable_stitch: bool | None = Field(None, description="videos only")
    title: str | None = Field(None, max_length=200, description="a photo post's title (90 characters)")
    video_cover_timestamp_ms: int | None = Field(None, ge=0, description="the video frame used as cover")
    brand_content_toggle: bool | None = Field(None, description="a paid partnership")
    brand_organic_toggle: bool | None = Field(None, description="promotes the creator's own business")
    is_aigc: bool | None = Field(None, description="AI-generated content label (videos)")
    auto_add_music: bool | None = Field(None, description="photo posts")


class YouTubeOverrideIn(OverrideIn):
    """`content.platforms.youtube`: the video's options too (services/platforms/youtube.py checks
    them against YouTube's limits)."""

    title: str | None = Field(None, max_length=MAX_TEXT, description="the video's title (default: the text's first line)")
    description: str | None = Field(None, max_length=MAX_TEXT, description="the video's description (default: the text)")
    tags: list[str] | None = Field(None, max_length=500, description="the video's tags")
    privacy_status: Literal["public", "unlisted", "private"] | None = Field(
        None, description="public (default), unlisted or private")
    publish_at: str | None = Field(None, max_length=64, description=(
        "ISO 8601 time at which YouTube makes the private video public (needs privacy_status private)"))
    made_for_kids: bool | None = Field(None, description="selfDeclaredMadeForKids (default false)")
    category_id: str | None = Field(None, max_length=8, description="the video category id, e.g. 22")


class OverridesIn(BaseModel):
    """`content.platforms`: per platform name, what replaces the shared text or media for it; TikTok
    and YouTube also take their own options (under their own name only)."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, OverrideIn] = Field(init=False)
    tiktok: TikTokOverrideIn | None = None
    youtube: YouTubeOverrideIn | None = None

    def to_domain(self) -> dict[str, dict[str, Any]]:
        found = {name: o.model_dump(exclude_none=True) for name, o in (self.__pydantic_extra__ or {}).items()}
        for name, override in (("tiktok", self.tiktok), ("youtube", self.youtube)):
            if override is not None:
                found[name] = override.model_dump(exclude_none=True)
        return found


class ThreadPartIn(BaseModel):
    """One post of a thread after the first: text, media, or both."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["text"], "properties": {"text": {"pattern": r"\S"}}},
        {"required": ["media"], "properties": {"media": {"minItems": 1}}},
    ]})

    text: str = Field("", max_length=MAX_TEXT)
    media: list[MediaIn] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _not_empty(self) -> ThreadPartIn:
        if not self.text.strip() and not self.media:
            raise ValueError("a thread part needs text or media")
        return self


class ContentIn(BaseModel):
    # the OpenAPI states _not_empty: text with something other than white space, or a medium
    model_config = ConfigDict(extra="forbid", json_schema_extra={"anyOf": [
        {"required": ["text"], "properties": {"text": {"pattern": r"\S"}}},
        {"required": ["media"], "properties": {"media": {"minItems": 1}}},
    ]})

    text: str = Field("", max_length=MAX_TEXT)
    media: list[MediaIn] = Field(default_factory=list, max_length=20)
    platforms: OverridesIn = Field(default_factory=OverridesIn)
    thread: list[ThreadPartIn] = Field(default_factory=list, max_length=MAX_THREAD, description=(
        "the thread's further posts (x, threads, bluesky, mastodon): published in order, each a reply to the one "
        "before, under the post made of `text` and `media`; each part is checked against the platform's limits"))
    first_comment: str | None = Field(None, min_length=1, max_length=MAX_COMMENT, pattern=r"\S", description=(
        "posted under the post right after it (instagram, facebook, linkedin; a reply on x and threads); if it "
        "fails the post stays published and the target says why in `first_comment_error`"))

    @model_validator(mode="after")
    def _not_empty(self) -> ContentIn:
        if not self.text.strip() and not self.media:
            raise ValueError("content needs text or media")
        return self

    def to_domain(self) -> Content:
        return Content(
            text=self.text,
            media=tuple(Media(m.type, m.url, m.alt) for m in self.media),
            platforms=self.platforms.to_domain(),
            thread=tuple(ThreadPart(text=p.text, media=tuple(Media(m.type, m.url, m.alt) for m in p.media))
                         for p in self.thread),
            first_comment=self.first_comment,
        )


class PostCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: ContentIn
    channel_ids: list[UUID] = Field(default_factory=list, max_length=50)
    scheduled_at: InstantIn | None = Field(None, description="ISO 8601; without an offset it is read in `timezone`")
    timezone: str = Field("UTC", description="IANA time zone name", min_length=1, max_length=64)
    rrule: str | None = Field(None, description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO", min_length=1,
                              max_length=500)


class PostReplace(PostCreate):
    """`PUT /posts/{id}`: a `POST /posts` body, or the whole post as `GET` answers it (aliases: its
    read-only fields are accepted and ignored, and `status` moves it: `scheduled` schedules it at
    its time, `draft` unschedules it; the status it has changes nothing)."""

    model_config = ConfigDict(json_schema_extra=lambda schema: _document_read_only(schema))

    status: str | None = Field(None, max_length=20, description=(
        '"scheduled" schedules the post at `scheduled_at`, "draft" unschedules it; its current status changes nothing'))

    @model_validator(mode="before")
    @classmethod
    def _read_only_fields(cls, data: Any) -> Any:
        # the whole post as GET answers it: what only Herald sets is dropped, an unknown field is not
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in PUT_READ_ONLY}
        return data


def _document_read_only(schema: dict[str, Any]) -> None:
    """PUT's OpenAPI names the read-only fields it accepts and ignores (any value: none is read)."""
    for name in sorted(PUT_READ_ONLY):
        schema["properties"].setdefault(name, {"description": "read-only: accepted and ignored"})


def _not_null(schema: dict[str, Any]) -> None:
    """The OpenAPI of a field that may be left out but not sent as null (see PostPatch._not_null)."""
    schema.pop("default", None)
    kinds = [kind for kind in schema.pop("anyOf", []) if kind != {"type": "null"}]
    if kinds:
        schema.update(kinds[0])


class PostPatch(BaseModel):
    """Only the fields sent are changed; `scheduled_at: null` turns a scheduled post into a draft."""

    model_config = ConfigDict(extra="forbid")

    content: ContentIn | None = Field(None, json_schema_extra=_not_null)
    channel_ids: list[UUID] | None = Field(None, max_length=50, json_schema_extra=_not_null)
    scheduled_at: InstantIn | None = None
    timezone: str | None = Field(None, min_length=1, max_length=64, json_schema_extra=_not_null)
    rrule: str | None = Field(None, min_length=1, max_length=500)

    @field_validator("content", "channel_ids", "timezone")
    @classmethod
    def _not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # runs only for fields the client sent: an explicit null cannot clear these
        if value is None:
            raise ValueError(f"{info.field_name} cannot be null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, as domain values."""
        fields = {name: getattr(self, name) for name in self.model_fields_set}
        if "content" in fields and self.content is not None:
            fields["content"] = self.content.to_domain()
        if "channel_ids" in fields and self.channel_ids is not None:
            fields["channel_ids"] = tuple(self.channel_ids)
        return fields


class BulkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    posts: list[PostCreate] = Field(min_length=1, max_length=100)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_id: UUID
    outcome: Literal["published", "failed"]
    platform_post_url: str | None = Field(None, max_length=2048)


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    publish_now: bool = Field(False, description="publish at the next run instead of at its time; required (true) "
                                                 "when its time has passed")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(max_length=10000, description="why: added to the post's comments")


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheduled_at: InstantIn | None = None
    timezone: str | None = Field(None, min_length=1, max_length=64)


class MediaOut(BaseModel):
    type: str
    url: str
    alt: str | None = None


class ThreadPartOut(BaseModel):
    text: str
    media: list[MediaOut]


class ContentOut(BaseModel):
    text: str
    media: list[MediaOut]
    platforms: dict[str, dict[str, Any]]
    thread: list[ThreadPartOut] = Field(default_factory=list)
    first_comment: str | None = None


class StepOut(BaseModel):
    kind: Literal["post", "thread", "first_comment"] = Field(description=(
        "the post itself, a part of its thread (`index` into `content.thread`), or its first comment"))
    index: int | None = None
    id: str = Field(description="the platform's id of what this step published")
    url: str | None = None


class TargetOut(BaseModel):
    id: UUID
    channel_id: UUID | None
    platform: str
    status: str
    platform_post_id: str | None
    platform_post_url: str | None
    error: str | None
    error_code: str | None = Field(description=(
        "what kind of failure `error` is, for a UI to act on without parsing text: rate_limited, transient, "
        "permanent, unknown, reconnect_required, timeout, channel_deleted, channel_paused, maybe_sent, unreadable_post, ..."))
    attempts: int
    published_at: Instant | None
    publish_lag_ms: int | None = Field(description="published_at minus when it was due, in milliseconds")
    steps: list[StepOut] = Field(default_factory=list, description=(
        "a thread or first comment publishes in steps: each one live so far, in order, with its platform id "
        "(a failed thread resumes after the last of them)"))
    first_comment_error: str | None = Field(None, description=(
        "the post is published but its first comment could not be posted: why"))


class MediaWarningOut(BaseModel):
    field: str = Field(description="the media item, as in the request: content.media[1].url")
    code: str = Field("media_warning", description="media_unavailable, media_rejected, media_type_mismatch, private_address, ...")
    message: str = ""
    platform: str | None = Field(None, description="the platform whose limit it breaks; null: every platform's")


class PostOut(BaseModel):
    id: UUID
    status: str
    content: ContentOut
    channel_ids: list[UUID]
    scheduled_at: Instant | None
    timezone: str
    local_scheduled_at: Instant | None = Field(description="scheduled_at as wall-clock time in `timezone`")
    rrule: str | None
    series_id: UUID | None
    parent_post_id: UUID | None
    attempts: int
    next_attempt_at: Instant | None
    error: str | None
    published_at: Instant | None
    created_at: Instant
    updated_at: Instant
    targets: list[TargetOut]
    workspace_id: UUID | None = Field(None, description="the workspace the post belongs to")
    approved_by: UUID | None = Field(None, description="who approved it, where the workspace asks for approval")
    approved_at: Instant | None = None
    media_warnings: list[MediaWarningOut] = Field([], description=(
        "what the media check an hour before the post's time found (a file gone, grown past a platform's "
        "limit, ...); the post still goes out at its time. Cleared when the content or time is edited"))
    media_checked_at: Instant | None = Field(None, description="when that check ran; null: not since the last edit")

    @classmethod
    def of(cls, post: Post) -> PostOut:
        return cls(
            id=post.id,
            status=post.status.value,
            content=ContentOut(
                text=post.content.text,
                media=[MediaOut(type=m.type, url=m.url, alt=m.alt) for m in post.content.media],
                platforms=post.content.platforms,
                thread=[ThreadPartOut(text=p.text, media=[MediaOut(type=m.type, url=m.url, alt=m.alt) for m in p.media])
                        for p in post.content.thread],
                first_comment=post.content.first_comment,
            ),
            channel_ids=[t.channel_id for t in post.targets if t.channel_id is not None],
            scheduled_at=post.scheduled_at,
            timezone=post.timezone,
            local_scheduled_at=_local(post.scheduled_at, post.timezone),
            rrule=post.rrule,
            series_id=post.series_id,
            parent_post_id=post.parent_post_id,
            attempts=post.attempts,
            next_attempt_at=post.next_attempt_at,
            error=post.error,
            published_at=post.published_at,
            created_at=post.created_at,
            updated_at=post.updated_at,
            targets=[
                TargetOut(id=t.id, channel_id=t.channel_id, platform=t.platform, status=t.status.value,
                          platform_post_id=t.platform_post_id, platform_post_url=t.platform_post_url, error=t.error,
                          error_code=t.error_code, attempts=t.attempts, published_at=t.published_at,
                          publish_lag_ms=t.publish_lag_ms, steps=[_step(s) for s in t.steps],
                          first_comment_error=t.first_comment_error)
                for t in post.targets
            ],
            workspace_id=post.workspace_id,
            approved_by=post.approved_by,
            approved_at=post.approved_at,
            media_warnings=[MediaWarningOut.model_validate(w) for w in post.media_warnings],
            media_checked_at=post.media_checked_at,
        )


def _local(moment: datetime | None, tz_name: str) -> datetime | None:
    """Wall-clock time in the post's zone; None for a time outside what datetime can show there."""
    try:
        return local_time(moment, tz_name) if moment else None
    except OverflowError:  # a post stored before instants were range-checked (e.g. 9999-12-31 in UTC+14)
        return None


class PostPageOut(BaseModel):
    items: list[PostOut]
    total: int
    limit: int
    offset: int


class RunOut(BaseModel):
    id: UUID
    target_id: UUID
    attempt: int
    outcome: str
    http_status: int | None
    error_code: str | None
    error_message: str | None
    started_at: Instant
    finished_at: Instant
    duration_ms: int

    @classmethod
    def of(cls, run: Run) -> RunOut:
        return cls(id=run.id, target_id=run.target_id, attempt=run.attempt, outcome=run.outcome.value,
                   http_status=run.http_status, error_code=run.error_code, error_message=run.error_message,
                   started_at=run.started_at, finished_at=run.finished_at, duration_ms=run.duration_ms)


class RunListOut(BaseModel):
    items: list[RunOut]


class PublishLagOut(BaseModel):
    since: Instant
    count: int = Field(description="targets published since `since`")
    p50_ms: int | None
    p95_ms: int | None
    max_ms: int | None


class StatisticsOut(BaseModel):
    total: int
    by_status: dict[str, int]
    by_platform: dict[str, dict[str, int]]
    publish_lag: PublishLagOut = Field(description="how late targets went out: published_at minus when they were due")


class PostListOut(BaseModel):
    items: list[PostOut]


class CalendarItemOut(BaseModel):
    post_id: UUID
    occurrence_at: str
    local_time: str
    status: str
    virtual: bool
    text: str


class CalendarDayOut(BaseModel):
    date: str
    items: list[CalendarItemOut]


class CappedSeriesOut(BaseModel):
    post_id: UUID
    reason: Literal["max_per_series", "count_unresolved"] = Field(description=(
        f"max_per_series: the series has more than {MAX_PER_SERIES} occurrences in the range, and the first "
        f"{MAX_PER_SERIES} are listed; count_unresolved: the series has a COUNT that may end it in the range, and "
        f"counting its occurrences before the range would take this request past {MAX_COUNT_WALK:,} occurrences "
        "walked (over all the series it expands), so none is listed"))
    next_at: Instant | None = Field(description="the first occurrence left out (max_per_series)")


class CalendarOut(BaseModel):
    timezone: str
    days: list[CalendarDayOut]
    truncated: bool = Field(description="true when items in the range are left out: see next_from and capped_series")
    next_from: Instant | None = Field(description=(
        f"when the range holds more than {MAX_ITEMS} items: the first {MAX_ITEMS} are listed, and this is the "
        "instant of the first left out; ask again with it as `from` (items at that very instant may be listed twice)"))
    capped_series: list[CappedSeriesOut] = Field(description="series whose occurrences in the range are not all listed")

    @classmethod
    def of(cls, timezone: str, calendar: Calendar) -> CalendarOut:
        return cls(timezone=timezone, days=calendar.days, truncated=calendar.is_truncated,
                   next_from=calendar.next_from, capped_series=calendar.capped_series)


#: what GET /posts/{id} answers beyond a POST /posts body and `status`: PUT takes the whole post back
#: and ignores these (documented aliases; any other unknown field is a 422 naming it)
PUT_READ_ONLY = frozenset(PostOut.model_fields) - frozenset(PostReplace.model_fields)


def _step(step: dict[str, Any]) -> StepOut:
    """A step as the API shows it: what it is and its platform id (an adapter's own fields left out)."""
    kind = step.get("kind")
    index = step.get("index")
    return StepOut(kind=kind if kind in ("post", "thread", "first_comment") else "post",
                   index=index if isinstance(index, int) else None, id=str(step.get("id")),
                   url=step.get("url") if isinstance(step.get("url"), str) else None)
