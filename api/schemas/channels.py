"""Channel request and response bodies. Credentials go in and never come out."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import Instant
from services.domain.models import Channel


class CredentialsIn(BaseModel):
    """Secret: encrypted before storage, never returned or logged. Platform-specific fields are allowed."""

    model_config = ConfigDict(extra="allow")
    access_token: str | None = Field(None, max_length=8192)
    refresh_token: str | None = Field(None, max_length=8192)
    expires_at: Instant | None = None

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return "CredentialsIn(***)"

    __str__ = __repr__


class ChannelCreate(BaseModel):
    platform: str = Field(min_length=1, max_length=40, examples=["sandbox"])
    name: str | None = Field(None, min_length=1, max_length=200, description="defaults to the platform's account name")
    account_id: str | None = Field(None, min_length=1, max_length=200,
                                   description="defaults to the id the platform reports for these credentials")
    credentials: CredentialsIn = Field(default_factory=CredentialsIn)
    metadata: dict[str, Any] = Field(default_factory=dict)


class ChannelOut(BaseModel):
    id: UUID
    platform: str
    name: str
    account_id: str
    metadata: dict[str, Any]
    status: str
    token_expires_at: Instant | None
    created_at: Instant
    updated_at: Instant

    @classmethod
    def of(cls, channel: Channel) -> ChannelOut:
        return cls(id=channel.id, platform=channel.platform, name=channel.name, account_id=channel.account_id,
                   metadata=channel.metadata, status=channel.status, token_expires_at=channel.token_expires_at,
                   created_at=channel.created_at, updated_at=channel.updated_at)


class ChannelListOut(BaseModel):
    items: list[ChannelOut]
    total: int
