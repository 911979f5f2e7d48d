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

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import httpx

from services.domain.models import Content, Outcome


@dataclass(frozen=True)
class Problem:
    """One reason a platform would reject content: ``field`` is a path in the post body."""

    field: str
    message: str


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
    #: time.monotonic() value after which the adapter must not start another request (polling)
    deadline: float | None = None


@dataclass(frozen=True)
class Published:
    platform_post_id: str
    url: str | None = None
    http_status: int | None = None


@dataclass(frozen=True)
class TokenSet:
    """New credentials after a refresh: the whole credentials object, to be stored atomically."""

    credentials: dict[str, Any]
    expires_at: datetime | None = None


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


class Platform(Protocol):
    """Optional attributes the engine reads: ``honours_idempotency_key = True`` when the platform
    dedupes on ``PublishRequest.idempotency_key`` (a maybe-sent call is then simply repeated).

    An adapter whose publish has steps that must not be repeated (a Meta container, messages to
    several recipients) may take a keyword ``resume`` in ``publish`` and ``lookup``: the engine
    saves a failed attempt's ``PlatformError.details`` with the target and passes them back there.
    """

    name: str
    #: credential fields a channel of this platform must provide
    required_credentials: tuple[str, ...]

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
