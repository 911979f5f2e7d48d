"""The platform adapter contract: validate content, publish it, refresh tokens, classify failures.

An adapter knows HTTP (httpx) and its platform; it knows nothing of stores. Every failure leaves
an adapter as a ``PlatformError`` carrying an ``Outcome``, so the publish run can decide what to
do without knowing the platform:

    Outcome.PUBLISHED     (not an error: ``publish`` returned ``Published``)
    Outcome.TRANSIENT     5xx, connection refused, a timeout on a request that is safe to repeat
    Outcome.RATE_LIMITED  429 or the platform's own quota code; ``retry_after_seconds`` when known
    Outcome.AUTH          expired or revoked token: the run refreshes once, else "reconnect"
    Outcome.PERMANENT     content rejected, bad configuration, other 4xx: fail now, say why
    Outcome.UNKNOWN       the request may have been applied but the answer was lost
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import httpx

from services import clock
from services.domain.models import Content, Outcome


@dataclass(frozen=True)
class Problem:
    """One reason a platform would reject content: ``field`` is a path in the post body."""

    field: str
    message: str


@dataclass(frozen=True)
class QuotaSpend:
    """The answer of ``PublishRequest.spend_quota``: true when the units were spent. ``used`` is the
    day's count after the call (without the units when refused), ``limit`` the daily quota."""

    spent: bool
    used: int
    limit: int

    def __bool__(self) -> bool:
        return self.spent


@dataclass(frozen=True)
class PublishRequest:
    post_id: UUID
    target_id: UUID
    content: Content  #: already resolved for this platform (overrides applied)
    scheduled_at: datetime | None
    timezone: str
    channel_id: UUID
    account_id: str
    metadata: dict[str, Any]
    credentials: dict[str, Any]  #: decrypted; never log
    #: stable per target across retries; adapters send it where the platform honours one
    idempotency_key: str
    #: time.monotonic() value by which this call must have returned: the earlier of the call's
    #: REQUEST_TIMEOUT and the run's budget. An adapter that polls stops before it and raises a
    #: resumable PlatformError; past it the run stops the call and keeps ``progress``.
    deadline: float | None = None
    #: where this target's previous attempt stopped (its PlatformError.details, or the ``progress``
    #: of a call that was cut off): a Meta container id, the WhatsApp recipients already sent to
    resume: dict[str, Any] | None = None
    #: when the target was first handed to the platform (the first run that marked it sending);
    #: the same on every retry, for keys that must be both stable and time-based (Bluesky TIDs)
    first_attempt_at: datetime | None = None
    #: filled by the adapter as it goes (e.g. ``container_id`` once a container exists), so that a
    #: call the run had to cut off still leaves what the next attempt needs to resume
    progress: dict[str, Any] = field(default_factory=dict, compare=False)
    #: saves what it is given with the target at once (as ``resume`` for the next attempt), for a step
    #: a run killed mid-call must not lose: a YouTube upload session before its first byte. None:
    #: nothing can be saved mid-call (the adapter relies on ``progress`` and ``details`` alone)
    checkpoint: Callable[[dict[str, Any]], Awaitable[None]] | None = field(default=None, compare=False)
    #: counts ``units`` of the platform's daily API quota (Herald's own count, per day as the platform
    #: counts them: YouTube's videos.insert, per Pacific day) before the call that costs them: a true
    #: QuotaSpend if spent, a false one if they would take the day past the quota (the call must not be
    #: made). None: the run keeps no count for this platform (the platform's own refusal is the only one)
    spend_quota: Callable[[int], Awaitable[QuotaSpend]] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Published:
    platform_post_id: str
    url: str | None = None
    http_status: int | None = None
    #: a post in several steps (``steps.publish``): each step with its platform id, in order
    steps: tuple[dict[str, Any], ...] = ()
    #: the post is live, its first comment is not: why
    first_comment_error: str | None = None


@dataclass(frozen=True)
class TokenSet:
    """New credentials after a refresh: the whole credentials object, to be stored atomically."""

    credentials: dict[str, Any]
    expires_at: datetime | None = None

    @classmethod
    def from_answer(cls, previous: dict[str, Any], body: dict[str, Any], *,
                    keep: tuple[str, ...] = ("refresh_token",)) -> TokenSet:
        """The whole credentials object after an OAuth token answer (RFC 6749 5.1): earlier fields
        kept, the access token replaced, and each of ``keep`` the answer carries (a refresh token
        left out keeps the old one); ``expires_in`` (seconds, a number or digits) dates it."""
        credentials = {**previous, "access_token": body["access_token"]}
        for key in keep:
            if body.get(key):
                credentials[key] = body[key]
        expires_in = body.get("expires_in")
        seconds = (expires_in if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool)
                   else int(expires_in) if isinstance(expires_in, str) and expires_in.isdigit() else None)
        return cls(credentials=credentials,
                   expires_at=clock.utcnow() + timedelta(seconds=seconds) if seconds is not None else None)


@dataclass(frozen=True)
class AccountInfo:
    """Who a set of credentials belongs to, as the platform says (checked when connecting)."""

    account_id: str
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)


ACCOUNT, APP = "account", "app"  #: PlatformError.limit_scope


@dataclass
class PlatformError(Exception):
    """A publish that did not succeed, classified."""

    outcome: Outcome
    code: str
    message: str
    http_status: int | None = None
    #: with RATE_LIMITED: seconds to wait, counted from the moment this answer arrived
    retry_after_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    #: with RATE_LIMITED: whose limit ran out. ``ACCOUNT`` (the default): this channel's account
    #: pauses; ``APP``: the platform documents the limit as the whole app's (every account it
    #: publishes for), so every channel of the platform pauses until the reset.
    limit_scope: str = "account"

    def __post_init__(self) -> None:
        super().__init__(self.message)


class Feature(str, enum.Enum):
    """What an adapter can do beyond ``validate`` and ``publish``; it declares each in ``features``
    and implements the protocol named (tests/platforms/test_features.py holds every adapter to it)."""

    REFRESH = "refresh"  #: ``RefreshablePlatform.refresh``: renew an expiring or refused token
    LOOKUP = "lookup"  #: ``ReconcilingPlatform.lookup``: tell whether a lost answer's post is live
    VERIFY = "verify"  #: ``VerifyingPlatform.verify``: check credentials when a channel is connected
    OAUTH = "oauth"  #: ``OAuthPlatform``: connect through OAuth 2.0
    #: the platform dedupes on ``PublishRequest.idempotency_key``: a maybe-sent call is simply repeated
    IDEMPOTENCY_KEY = "idempotency_key"
    METRICS = "metrics"  #: ``MeasuringPlatform.metrics``: read a live post's engagement
    THREAD = "thread"  #: ``ThreadingPlatform.reply``: publish ``content.thread`` as a reply chain
    FIRST_COMMENT = "first_comment"  #: ``CommentingPlatform.comment``: post ``content.first_comment``
    #: every step after the first is written under a key of its own (an idempotency key, a record
    #: key), so a step whose answer was lost is simply repeated, never posted twice
    REPEATABLE_STEPS = "repeatable_steps"


class Platform(Protocol):
    """An adapter: ``validate`` and ``publish``, plus the ``features`` it declares.

    An adapter whose publish has steps that must not be repeated (a Meta container, messages to
    several recipients) reads ``PublishRequest.resume``: the engine saves a failed attempt's
    ``PlatformError.details`` (or a cut-off call's ``PublishRequest.progress``) with the target and
    hands them back on the next attempt.
    """

    name: str
    #: credential fields a channel of this platform must provide
    required_credentials: tuple[str, ...]
    #: the optional protocols below that this adapter implements
    features: frozenset[Feature]

    def validate(self, content: Content, metadata: dict[str, Any] | None = None) -> list[Problem]:
        """What this platform would reject in ``content`` (for a channel with ``metadata``); [] if fine.

        Pure: no I/O. Counts text the platform's own way and checks media count, types and
        required media. Messages start with the platform name and give the limit.
        """

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        """Publish, or raise PlatformError with the outcome class."""


class RefreshablePlatform(Platform, Protocol):
    async def refresh(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> TokenSet:
        """Exchange the refresh token (or equivalent) for new credentials; PlatformError(AUTH) if refused."""


class ReconcilingPlatform(Platform, Protocol):
    async def lookup(self, request: PublishRequest, http: httpx.AsyncClient) -> Published | None:
        """Find the post a lost answer may have created: Published if live, None if certainly not."""


class ThreadingPlatform(Platform, Protocol):
    async def reply(self, request: PublishRequest, http: httpx.AsyncClient, *, parent: dict[str, Any],
                    root: dict[str, Any], key: str) -> dict[str, Any]:
        """Publish ``request.content`` (one thread part) as a reply to ``parent`` in the thread that
        starts at ``root`` (both steps as recorded: ``{"id", "url", ...}``); the new step, at least
        ``{"id", "url"}`` plus what a later reply to it needs. ``key`` is stable for this step
        across attempts. PlatformError as ``publish``."""


class CommentingPlatform(Platform, Protocol):
    async def comment(self, request: PublishRequest, http: httpx.AsyncClient, *, text: str,
                      post: dict[str, Any], key: str) -> dict[str, Any]:
        """Post ``text`` as the first comment under ``post`` (the post's step); the comment's step
        ``{"id", "url"?}``. PlatformError as ``publish``."""


@dataclass(frozen=True)
class MetricsRequest:
    """One live post to measure: what the run stored when it was published, and the channel."""

    platform_post_id: str
    platform_post_url: str | None
    published_at: datetime | None
    channel_id: UUID
    account_id: str
    metadata: dict[str, Any]
    credentials: dict[str, Any]  #: decrypted; never log
    #: time.monotonic() value by which the call must have returned (as PublishRequest.deadline)
    deadline: float | None = None


@dataclass(frozen=True)
class Metrics:
    """A live post's engagement as its platform counts it at one moment. A figure the platform
    does not give is None (not 0): "no shares counted" and "shares unknown" differ."""

    likes: int | None = None  #: likes, favourites, reactions
    comments: int | None = None  #: comments, replies
    shares: int | None = None  #: shares, reposts, retweets, boosts, quotes
    impressions: int | None = None  #: impressions or views, whichever the platform counts
    clicks: int | None = None  #: link or post clicks
    saves: int | None = None  #: saves, bookmarks
    #: the platform's own figures as it named them (for what the columns above do not hold)
    raw: dict[str, Any] = field(default_factory=dict)


class MeasuringPlatform(Platform, Protocol):
    async def metrics(self, request: MetricsRequest, http: httpx.AsyncClient) -> Metrics:
        """The post's current figures; PlatformError (RATE_LIMITED, AUTH, PERMANENT when the post
        is gone or the app may not read them) otherwise. Reads only: never spends a publish quota."""


class VerifyingPlatform(Platform, Protocol):
    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        """Check credentials against the platform at connection time; PlatformError if refused."""


class OAuthPlatform(Platform, Protocol):
    """Platforms connected through OAuth 2.0 (authorization code, with PKCE where required)."""

    uses_pkce: bool

    def authorize_url(self, *, state: str, redirect_uri: str, code_challenge: str | None) -> str:
        """Where to send the user to grant access."""

    async def exchange_code(
        self, *, code: str, redirect_uri: str, code_verifier: str | None, http: httpx.AsyncClient
    ) -> tuple[TokenSet, AccountInfo]:
        """Trade the callback's code for tokens, and read who they belong to."""


def supports(platform: Platform, feature: Feature) -> bool:
    return feature in platform.features
