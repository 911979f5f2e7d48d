"""Deliver the event outbox to the users' webhook endpoints: at least once, the same event id on
every attempt, signed (``signing.py``), with backoff, and never in the way of publishing.

A run delivers after it has recorded its results (so its own events go out within the run), with
what is left of its budget; what it cannot finish, and every failure, is retried by later runs:
1 min, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after the attempts before (about 28 hours in all),
then given up. An endpoint that has failed every attempt for a day is disabled, with the reason;
its owner re-enables it (``PATCH /webhooks/{id}``) and its pending deliveries resume. Deliveries
are leased when claimed, so overlapping runs never send one at once.

A delivery is a POST of ``{"id", "type", "timestamp", "data"}`` (``data`` is what ``render`` makes
of the event: the post or channel as the API shows it). 2xx is delivered; anything else,
a redirect included (redirects are not followed), a timeout or a refused connection is a failure.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from services import clock
from services.domain.events import ClaimedDelivery, DeliveryAttempt, Event
from services.errors import HeraldError
from services.events import signing
from services.logs import log_event
from services.platforms.base import PlatformError
from services.platforms.urls import check_public_url
from services.security.crypto import TokenCipher
from services.store.base import Store

#: the wait after each failed attempt; after the last, the delivery is given up
RETRY_SCHEDULE = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                  timedelta(hours=5), timedelta(hours=10), timedelta(hours=10))
#: an endpoint failing every attempt for this long is disabled
DISABLE_AFTER = timedelta(hours=24)
USER_AGENT = "Herald-Webhooks/1"

#: makes an event's ``data`` (the API's shape of its post or channel); given by the API layer
Render = Callable[[Event], dict[str, Any]]


@dataclass(frozen=True)
class DeliveryLimits:
    max_deliveries: int = 200  #: claimed per run
    #: at most this many to one endpoint per run: a dead receiver's backlog never crowds out the others
    per_endpoint: int = 50
    #: all at once, as a rule: each attempt only waits on its receiver
    concurrency: int = 100
    timeout_seconds: float = 10.0  #: per attempt: a receiver should answer at once and work later
    lease_seconds: int = 120


@dataclass
class DeliverySummary:
    claimed: int = 0
    delivered: int = 0
    failed: int = 0  #: will be retried
    given_up: int = 0
    disabled_endpoints: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def body_of(event: Event, render: Render) -> bytes:
    """The request body: the same bytes for every attempt at the same event."""
    payload = {"id": str(event.id), "type": event.type,
               "timestamp": event.created_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z"),
               "data": render(event)}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def deliver_due(store: Store, cipher: TokenCipher, http: httpx.AsyncClient, render: Render, *,
                      deadline: float, limits: DeliveryLimits = DeliveryLimits(), allow_private: bool = False,
                      monotonic: Callable[[], float] = time.monotonic) -> DeliverySummary:
    """Send what is due, until ``deadline`` (a ``monotonic()`` value); record every attempt in one call."""
    summary = DeliverySummary()
    if deadline - monotonic() < 1.0:
        return summary
    now = clock.utcnow()
    try:
        claimed = await store.claim_deliveries(now=now, limit=limits.max_deliveries, lease_seconds=limits.lease_seconds,
                                               per_endpoint=limits.per_endpoint)
    except HeraldError as exc:  # events wait in the outbox; publishing is done already
        log_event("events.claim_failed", error=exc.code)
        return summary
    summary.claimed = len(claimed)
    if not claimed:
        return summary
    gate = asyncio.Semaphore(max(1, limits.concurrency))

    async def one(delivery: ClaimedDelivery) -> DeliveryAttempt | None:
        async with gate:
            left = deadline - monotonic()
            if left < 1.0:
                return None  # out of time: the lease runs out and a later run sends it
            return await attempt(delivery, cipher, http, render, timeout=min(limits.timeout_seconds, left),
                                 allow_private=allow_private)

    attempts = [a for a in await asyncio.gather(*(one(d) for d in claimed)) if a is not None]
    for a in attempts:
        if a.succeeded:
            summary.delivered += 1
        elif a.next_attempt_at is None:
            summary.given_up += 1
        else:
            summary.failed += 1
        summary.disabled_endpoints += a.disable_reason is not None
    try:
        await store.record_deliveries(attempts, now=clock.utcnow())
    except HeraldError as exc:  # the leases run out and a later run sends them again: at least once
        log_event("events.record_failed", error=exc.code)
    return summary


async def attempt(delivery: ClaimedDelivery, cipher: TokenCipher, http: httpx.AsyncClient, render: Render, *,
                  timeout: float, allow_private: bool = False) -> DeliveryAttempt:
    """One attempt at one delivery, and what happens next."""
    started, began = clock.utcnow(), time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        url = await check_public_url(delivery.url, allow_private=allow_private, field="url")
        secret = str(cipher.decrypt(delivery.secret_encrypted)["secret"])
        body = body_of(delivery.event, render)
        headers = {"content-type": "application/json", "user-agent": USER_AGENT,
                   **signing.headers(secret, str(delivery.event.id), int(started.timestamp()), body)}
        response = await http.post(url, content=body, headers=headers, timeout=timeout, follow_redirects=False)
        status = response.status_code
        if not response.is_success:
            error = f"answered {status}" + (" (redirects are not followed)" if response.is_redirect else "")
    except PlatformError as exc:  # the URL now resolves to a private address, or does not resolve
        error = exc.message
    except httpx.TimeoutException:
        error = f"no answer within {timeout:.0f} s"
    except httpx.HTTPError as exc:
        error = f"could not connect: {type(exc).__name__}"
    except HeraldError as exc:  # the secret no longer decrypts (a key was removed)
        error = exc.message
    duration_ms = round((time.monotonic() - began) * 1000)
    if error is None:
        return DeliveryAttempt(delivery.id, True, started, duration_ms, http_status=status)
    log_event("events.delivery_failed", delivery_id=str(delivery.id), endpoint_id=str(delivery.endpoint_id),
              http_status=status, error=error)
    return _failed(delivery, started, duration_ms, status, error)


def _failed(delivery: ClaimedDelivery, at: datetime, duration_ms: int, status: int | None,
            error: str) -> DeliveryAttempt:
    number = delivery.attempts + 1
    nxt = at + RETRY_SCHEDULE[number - 1] if number <= len(RETRY_SCHEDULE) else None
    failing_for = at - delivery.failing_since if delivery.failing_since is not None else timedelta(0)
    disable = (f"every delivery failed for {failing_for.total_seconds() / 3600:.0f} hours; the last: {error}"
               if failing_for >= DISABLE_AFTER else None)
    return DeliveryAttempt(delivery.id, False, at, duration_ms, http_status=status, error=error,
                           next_attempt_at=nxt, disable_reason=disable)
