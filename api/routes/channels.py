"""Channels: connect (credentials encrypted, never returned), list, read, change (name, metadata,
pause and resume), delete."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from api.deps import CurrentUser, RuntimeDep
from api.schemas.channels import ChannelCreate, ChannelListOut, ChannelOut, ChannelUpdate, ConnectOut
from api.schemas.errors import error_responses
from services import channels, clock, oauth
from services.errors import HeraldError
from services.store.base import ChannelChanges

router = APIRouter(prefix="/channels", tags=["channels"], redirect_slashes=False)

AUTH = {401: "missing, expired or invalid access token",
        403: "your role in this workspace does not allow this (the message names the role it needs)"}
ERRORS = error_responses({**AUTH, 404: "no such channel"})
UPDATE_ERRORS = error_responses({**AUTH, 404: "no such channel"})
LIST_ERRORS = error_responses(AUTH)
CREATE_ERRORS = error_responses({**AUTH, 409: "this account is already connected"})
DELETE_ERRORS = error_responses({**AUTH, 404: "no such channel", 409: "scheduled posts still target it (see `force`)"})


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ChannelOut, responses=CREATE_ERRORS)
async def create_channel(body: ChannelCreate, user: CurrentUser, rt: RuntimeDep) -> ChannelOut:
    """Connect an account; its credentials are encrypted before they reach the store."""
    creds = body.credentials.model_dump(exclude={"expires_at"}, exclude_none=True)
    data = channels.ChannelInput(platform=body.platform, name=body.name, account_id=body.account_id,
                                 credentials=creds, metadata=body.metadata, expires_at=body.credentials.expires_at)
    return ChannelOut.of(await channels.connect_channel(rt.store, rt.platforms, rt.cipher, user, data, http=rt.http),
                         now=clock.utcnow())


@router.get("", response_model=ChannelListOut, responses=LIST_ERRORS)
async def list_channels(user: CurrentUser, rt: RuntimeDep) -> ChannelListOut:
    """The caller's channels, oldest first."""
    found, now = await rt.store.list_channels(user), clock.utcnow()
    return ChannelListOut(items=[ChannelOut.of(c, now=now) for c in found], total=len(found))


@router.get("/connect/{platform}", response_model=ConnectOut, responses=LIST_ERRORS)
async def connect_url(platform: str, request: Request, user: CurrentUser, rt: RuntimeDep) -> ConnectOut:
    """The authorize URL to send the user's browser to (signed, expiring state; PKCE where needed)."""
    url = oauth.authorize_url(rt.platforms, rt.settings.herald_encryption_keys, user, platform,
                              redirect_uri=_callback_uri(request, rt, platform))
    return ConnectOut(platform=platform, authorize_url=url, expires_in=oauth.STATE_TTL_SECONDS)


@router.get("/callback/{platform}", include_in_schema=True, responses={307: {"description": "back to the dashboard"}})
async def oauth_callback(
    platform: str, request: Request, rt: RuntimeDep, state: str | None = None, code: str | None = None,
    error: str | None = None,
) -> RedirectResponse:
    """Where the platform sends the browser back: store the channel, then return to the dashboard."""
    dashboard = rt.settings.herald_dashboard_url.rstrip("/")
    # A browser lands here: every failure goes back to the dashboard with the reason, never a JSON error page.
    if error or not code or not state:
        reason = error or ("no code" if not code else "no state: start the connection again")
        return RedirectResponse(f"{dashboard}/?{urlencode({'connect_error': reason, 'platform': platform})}")
    try:
        channel = await oauth.complete(rt.store, rt.platforms, rt.cipher, rt.settings.herald_encryption_keys, platform,
                                       code=code, state=state, redirect_uri=_callback_uri(request, rt, platform),
                                       http=rt.http)
    except HeraldError as exc:
        return RedirectResponse(f"{dashboard}/?{urlencode({'connect_error': exc.message, 'platform': platform})}")
    return RedirectResponse(f"{dashboard}/?{urlencode({'connected': platform, 'channel_id': str(channel.id)})}")


def _callback_uri(request: Request, rt: RuntimeDep, platform: str) -> str:
    base = (rt.settings.herald_public_url or str(request.base_url)).rstrip("/")
    return f"{base}/api/v1/channels/callback/{platform}"


@router.get("/{channel_id:uuid}", response_model=ChannelOut, responses=ERRORS)
async def get_channel(channel_id: UUID, user: CurrentUser, rt: RuntimeDep) -> ChannelOut:
    return ChannelOut.of(await rt.store.get_channel(user, channel_id), now=clock.utcnow())


@router.patch("/{channel_id:uuid}", response_model=ChannelOut, responses=UPDATE_ERRORS)
async def update_channel(channel_id: UUID, body: ChannelUpdate, user: CurrentUser, rt: RuntimeDep) -> ChannelOut:
    """Rename, change metadata (checked as at connection; 422 names `metadata.<field>`), or pause
    (`active: false`) and resume publishing to it."""
    changes = ChannelChanges(name=body.name, metadata=body.metadata, active=body.active)
    channel = await channels.update_channel(rt.store, rt.platforms, user, channel_id, changes, http=rt.http)
    return ChannelOut.of(channel, now=clock.utcnow())


@router.delete("/{channel_id:uuid}", status_code=status.HTTP_204_NO_CONTENT, responses=DELETE_ERRORS)
async def delete_channel(
    channel_id: UUID,
    user: CurrentUser,
    rt: RuntimeDep,
    force: Annotated[bool, Query(description="cancel the scheduled posts' targets on this channel")] = False,
) -> Response:
    """Disconnect a channel; 409 while scheduled posts target it, unless `force=true`."""
    await channels.disconnect_channel(rt.store, user, channel_id, force=force)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


