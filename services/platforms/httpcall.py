"""Helpers every adapter shares: send a request with transport failures classified, read waits.

A request that never reached the platform (connection refused, DNS, pool timeout) is safe to
retry: TRANSIENT. One that may have reached it (read timeout, connection dropped mid-answer) is
TRANSIENT only when repeating it cannot publish twice (``idempotent=True``: a GET, or a POST with an
idempotency key the platform honours); otherwise UNKNOWN.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from services import clock
from services.domain.models import Outcome
from services.platforms.base import PlatformError

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


async def send(http: httpx.AsyncClient, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
    """``http.request(...)`` with transport failures turned into PlatformError."""
    try:
        return await http.request(method, url, **kwargs)
    except _NOT_SENT as exc:
        raise PlatformError(Outcome.TRANSIENT, "connect_failed", f"could not reach {_host(url)}: {type(exc).__name__}") from exc
    except httpx.TimeoutException as exc:
        outcome = Outcome.TRANSIENT if idempotent else Outcome.UNKNOWN
        raise PlatformError(outcome, "timeout", f"{_host(url)} did not answer in time") from exc
    except httpx.TransportError as exc:
        outcome = Outcome.TRANSIENT if idempotent else Outcome.UNKNOWN
        raise PlatformError(outcome, "connection_lost", f"connection to {_host(url)} failed: {type(exc).__name__}") from exc


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "the platform"
    except httpx.InvalidURL:
        return "the platform"


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header: delta-seconds or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or clock.utcnow())).total_seconds())


def seconds_until_epoch(value: str | None, *, now: datetime | None = None) -> float | None:
    """A reset header holding epoch seconds (X, Bluesky) as seconds from now."""
    if not value or not value.strip().isdigit():
        return None
    reset = datetime.fromtimestamp(int(value.strip()), tz=timezone.utc)
    return max(0.0, (reset - (now or clock.utcnow())).total_seconds())


def seconds_until_iso(value: str | None, *, now: datetime | None = None) -> float | None:
    """A reset header holding an ISO 8601 time (Mastodon) as seconds from now."""
    if not value:
        return None
    try:
        reset = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if reset.tzinfo is None:
        reset = reset.replace(tzinfo=timezone.utc)
    return max(0.0, (reset - (now or clock.utcnow())).total_seconds())


def json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"data": body}


def status_outcome(status: int) -> Outcome:
    """The default class of an HTTP error status, for platforms with nothing more specific."""
    if status == 429:
        return Outcome.RATE_LIMITED
    if status in (401, 403):
        return Outcome.AUTH
    if status >= 500 or status in (408, 425):
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


def check_deadline(deadline: float | None, platform: str) -> None:
    """TRANSIENT ``deadline_reached`` once ``deadline`` (a time.monotonic() value) has passed.

    For calls safe to repeat (reads): one not started is simply made again by a later run.
    """
    if deadline is not None and time.monotonic() >= deadline:
        raise PlatformError(Outcome.TRANSIENT, "deadline_reached", f"{platform}: this run's time ran out before the call")
