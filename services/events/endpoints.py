"""The user's webhook endpoints: checked like the webhook platform's URLs, each with its own
signing secret (encrypted at rest, shown once)."""

from __future__ import annotations

from services.domain.events import EVENT_TYPES, WebhookEndpoint
from services.domain.models import User
from services.errors import ValidationError
from services.events import signing
from services.platforms.urls import check_given_url
from services.security.crypto import TokenCipher
from services.store.base import Store

ALL = "*"


def check_events(events: list[str] | tuple[str, ...], *, field: str = "events") -> tuple[str, ...]:
    """The event types, each known (or "*" for all), no repeats, at least one."""
    if not events:
        raise ValidationError("events must name at least one event type (or \"*\" for all)", field=field)
    unknown = [e for e in events if e not in EVENT_TYPES and e != ALL]
    if unknown:
        raise ValidationError(f"unknown event type {unknown[0]!r}; use {', '.join(EVENT_TYPES)} or \"*\"", field=field)
    return tuple(dict.fromkeys(events))


async def create_endpoint(store: Store, cipher: TokenCipher, user: User, *, url: str, events: list[str],
                          description: str | None, allow_private: bool) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its signing secret (which is never shown again)."""
    # the webhook platform's rule, checked again before every delivery
    checked_url = await check_given_url(url, allow_private=allow_private, field="url")
    secret = signing.new_secret()
    endpoint = await store.create_webhook(user, url=checked_url, events=check_events(events), description=description,
                                          secret_encrypted=cipher.encrypt({"secret": secret}))
    return endpoint, secret
