"""Channel request and response bodies. Credentials go in and never come out."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.schemas.common import Instant, InstantIn
from services.domain.models import Channel

MAX_METADATA_BYTES = 16 * 1024
MAX_CREDENTIALS_BYTES = 32 * 1024  # two 8 KiB tokens and a few platform fields
MAX_DEPTH = 32


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest in a JSON value (without recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            todo.extend((child, level + 1) for child in children)
    return deepest


def _small_json(value: Any, max_bytes: int) -> Any:
    if _depth(value) > MAX_DEPTH:  # deeper than the JSON encoders can write back
        raise ValueError(f"must be nested at most {MAX_DEPTH} levels deep")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise ValueError(f"must be at most {max_bytes // 1024} KiB of JSON (got {size} bytes)")
    return value


class CredentialsIn(BaseModel):
    """Secret: encrypted before storage, never returned or logged. Platform-specific fields are allowed."""

    model_config = ConfigDict(extra="allow")
    access_token: str | None = Field(None, max_length=8192)
    refresh_token: str | None = Field(None, max_length=8192)
    expires_at: InstantIn | None = None

    @model_validator(mode="after")
    def _small(self) -> CredentialsIn:
        extra = self.__pydantic_extra__ or {}
        _small_json({**extra, "access_token": self.access_token, "refresh_token": self.refresh_token},
                    MAX_CREDENTIALS_BYTES)
        return self

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return "CredentialsIn(***)"

    __str__ = __repr__


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str = Field(min_length=1, max_length=40, examples=["sandbox"])
    name: str | None = Field(None, min_length=1, max_length=200, description="defaults to the platform's account name")
    account_id: str | None = Field(None, min_length=1, max_length=200,
                                   description="defaults to the id the platform reports for these credentials")
    credentials: CredentialsIn = Field(default_factory=CredentialsIn)
    metadata: dict[str, Any] = Field(default_factory=dict, description="free-form JSON, at most 16 KiB")

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _small_json(value, MAX_METADATA_BYTES)


class ChannelUpdate(BaseModel):
    """Only the fields sent change. `metadata` is merged into the channel's: a key sent as null is removed."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=200)
    metadata: dict[str, Any] | None = Field(None, description=(
        "merged into the channel's metadata (top-level keys; null removes a key), checked as at connection"))
    active: bool | None = Field(None, description=(
        "false pauses publishing to this channel: its posts' targets wait (no retry spent) until it is true again"))

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _small_json(value, MAX_METADATA_BYTES)


class ChannelOut(BaseModel):
    id: UUID
    platform: str
    name: str
    account_id: str
    metadata: dict[str, Any]
    status: str
    active: bool = Field(description="false: publishing to it is paused (PATCH `active`, a workspace admin)")
    token_expires_at: Instant | None
    rate_limited_until: Instant | None = Field(description=(
        "the account hit its platform's rate limit: its posts wait until then (no retry is spent); "
        "null when not limited"))
    created_at: Instant
    updated_at: Instant
    workspace_id: UUID | None = Field(None, description="the workspace the channel belongs to")

    @classmethod
    def of(cls, channel: Channel, *, now: datetime) -> ChannelOut:
        paused = channel.rate_limited_until if channel.rate_limited_until and channel.rate_limited_until > now else None
        return cls(id=channel.id, platform=channel.platform, name=channel.name, account_id=channel.account_id,
                   metadata=channel.metadata, status=channel.status, active=channel.active,
                   workspace_id=channel.workspace_id,
                   token_expires_at=channel.token_expires_at,
                   rate_limited_until=paused, created_at=channel.created_at, updated_at=channel.updated_at)


class ChannelListOut(BaseModel):
    items: list[ChannelOut]
    total: int


class ConnectOut(BaseModel):
    platform: str
    authorize_url: str = Field(description="send the user's browser here; the platform sends it back to the callback")
    expires_in: int = Field(description="seconds the signed state in the URL stays valid")
