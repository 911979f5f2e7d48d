"""Channel use cases: connect an account with its credentials encrypted before any store sees them;
rename it, change its metadata (checked as at connection), pause and resume publishing to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import httpx

from services.domain.models import Channel, Content, User
from services.errors import ValidationError
from services.platforms.base import Feature, Platform, PlatformError, VerifyingPlatform, supports
from services.platforms.registry import platform_named
from services.security.crypto import TokenCipher
from services.store.base import ChannelChanges, NewChannel, Store


@dataclass(frozen=True)
class ChannelInput:
    platform: str
    name: str | None
    account_id: str | None
    credentials: dict[str, Any]  #: access_token, refresh_token, platform-specific fields; secret
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None


async def connect_channel(
    store: Store, platforms: dict[str, Platform], cipher: TokenCipher, user: User, data: ChannelInput,
    *, http: httpx.AsyncClient,
) -> Channel:
    """Check the credentials (with the platform itself where it can tell), encrypt them, store the channel."""
    platform = platform_named(platforms, data.platform)
    for credential in platform.required_credentials:
        if not data.credentials.get(credential):
            raise ValidationError(f"{data.platform} channels need credentials.{credential}",
                                  field=f"credentials.{credential}")
    account_id, name, metadata = data.account_id, data.name, dict(data.metadata)
    if supports(platform, Feature.VERIFY):
        try:
            account = await cast(VerifyingPlatform, platform).verify(data.credentials, data.metadata, http)
        except PlatformError as exc:
            # A wrong token is a 422 now, not a failed post next week.
            raise ValidationError(f"{data.platform}: {exc.message}", code=exc.code,
                                  field=exc.details.get("field", "credentials")) from exc
        # What the platform says wins over what was typed (limits, handles, the real account id).
        account_id, name = account.account_id or account_id, name or account.name
        metadata.update(account.metadata)
    if not account_id:
        raise ValidationError(f"{data.platform} channels need account_id", field="account_id")
    if not name:
        raise ValidationError(f"{data.platform} channels need a name", field="name")
    secret = {k: v for k, v in data.credentials.items() if v is not None}
    return await store.create_channel(
        user,
        NewChannel(platform=platform.name, account_id=account_id, name=name,
                   credentials_encrypted=cipher.encrypt(secret), metadata=metadata,
                   token_expires_at=data.expires_at),
    )


async def disconnect_channel(store: Store, user: User, channel_id: UUID, *, force: bool) -> None:
    await store.delete_channel(user, channel_id, force=force)


async def update_channel(
    store: Store, platforms: dict[str, Platform], user: User, channel_id: UUID, changes: ChannelChanges,
    *, http: httpx.AsyncClient,
) -> Channel:
    """Rename, change metadata (merged: a key sent as None is removed), pause or resume a channel.

    The metadata the channel would have is checked as connecting checks it, before anything is
    stored: ValidationError naming ``metadata.<field>``. NotFoundError for a channel that is not
    the user's. A check that needs the platform and the stored credentials is not repeated.
    """
    if changes.metadata is not None:
        current = await store.get_channel(user, channel_id)
        merged = {**current.metadata, **changes.metadata}
        await check_metadata(platform_named(platforms, current.platform),
                             {k: v for k, v in merged.items() if v is not None}, http=http)
    return await store.update_channel(user, channel_id, changes)


async def check_metadata(platform: Platform, metadata: dict[str, Any], *, http: httpx.AsyncClient) -> None:
    """Raise ValidationError (field ``metadata.<name>``) for metadata the platform would refuse: what
    its ``validate`` says of the channel's metadata, and, for a platform that needs no credentials
    (webhook, sandbox), its connection check (``verify``), which then looks at the metadata alone."""
    problems = [p for p in platform.validate(Content(text="metadata check"), metadata) if p.field.startswith("metadata")]
    if problems:
        raise ValidationError(problems[0].message, field=problems[0].field)
    if supports(platform, Feature.VERIFY) and not platform.required_credentials:
        try:
            await cast(VerifyingPlatform, platform).verify({}, metadata, http)
        except PlatformError as exc:
            raise ValidationError(f"{platform.name}: {exc.message}", code=exc.code,
                                  field=exc.details.get("field", "metadata")) from exc
