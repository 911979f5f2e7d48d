"""Channels: connect (credentials encrypted, never returned), list, read, delete."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from api.deps import CurrentUser, RuntimeDep
from api.schemas.channels import ChannelCreate, ChannelListOut, ChannelOut
from services import channels

router = APIRouter(prefix="/channels", tags=["channels"])

ERRORS = {401: {"description": "missing or invalid token"}, 404: {"description": "no such channel"},
          409: {"description": "already connected, or still in use"}, 422: {"description": "invalid input"}}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ChannelOut, responses=ERRORS)
async def create_channel(body: ChannelCreate, user: CurrentUser, rt: RuntimeDep) -> ChannelOut:
    """Connect an account; its credentials are encrypted before they reach the store."""
    creds = body.credentials.model_dump(exclude={"expires_at"}, exclude_none=True)
    data = channels.ChannelInput(platform=body.platform, name=body.name, account_id=body.account_id,
                                 credentials=creds, metadata=body.metadata, expires_at=body.credentials.expires_at)
    return ChannelOut.of(await channels.connect_channel(rt.store, rt.platforms, rt.cipher, user, data, http=rt.http))


@router.get("", response_model=ChannelListOut, responses=ERRORS)
async def list_channels(user: CurrentUser, rt: RuntimeDep) -> ChannelListOut:
    """The caller's channels, oldest first."""
    found = await rt.store.list_channels(user)
    return ChannelListOut(items=[ChannelOut.of(c) for c in found], total=len(found))


@router.get("/{channel_id}", response_model=ChannelOut, responses=ERRORS)
async def get_channel(channel_id: UUID, user: CurrentUser, rt: RuntimeDep) -> ChannelOut:
    return ChannelOut.of(await rt.store.get_channel(user, channel_id))


@router.delete("/{channel_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def delete_channel(
    channel_id: UUID,
    user: CurrentUser,
    rt: RuntimeDep,
    force: Annotated[bool, Query(description="cancel the scheduled posts' targets on this channel")] = False,
) -> Response:
    """Disconnect a channel; 409 while scheduled posts target it, unless `force=true`."""
    await channels.disconnect_channel(rt.store, user, channel_id, force=force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
