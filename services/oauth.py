"""Connecting accounts through OAuth: a signed, expiring state bound to the user, and PKCE.

The state is a Fernet token (encrypted and authenticated with HERALD_ENCRYPTION_KEYS, with its
own timestamp) holding the user, the platform and the PKCE verifier, so the callback, which
arrives from the user's browser without our API token, can trust who is connecting and nothing
is kept server-side between the two requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import cast
from uuid import UUID

import httpx
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.domain.models import Channel, User
from services.errors import ServiceUnavailable, ValidationError
from services.platforms.base import Feature, OAuthPlatform, Platform, PlatformError, supports
from services.platforms.registry import platform_named
from services.security.crypto import TokenCipher
from services.settings import OAUTH_APP_SETTINGS
from services.store.base import NewChannel, Store

STATE_TTL_SECONDS = 600


@dataclass(frozen=True)
class OAuthState:
    user_id: UUID
    platform: str
    code_verifier: str | None
    #: the workspace the connect began in (None: the user's personal one)
    workspace_id: UUID | None = None


def _fernet(keys: list[str]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def oauth_platform(platforms: dict[str, Platform], name: str) -> OAuthPlatform:
    platform = platform_named(platforms, name)
    if not supports(platform, Feature.OAUTH):
        raise ValidationError(f"{name} accounts are connected with POST /channels and their credentials, not OAuth",
                              code="not_oauth", field="platform")
    return cast(OAuthPlatform, platform)


def _not_configured(name: str, exc: PlatformError) -> ServiceUnavailable:
    """A 503 naming the settings to set: the adapter only knows its OAuth app is missing."""
    names = " and ".join(setting.upper() for setting in OAUTH_APP_SETTINGS.get(name, ()))
    message = f"connecting {name} accounts needs its OAuth app: set {names}" if names else exc.message
    return ServiceUnavailable(message, code="oauth_not_configured", field="platform")


def authorize_url(platforms: dict[str, Platform], keys: list[str], user: User, name: str, *, redirect_uri: str) -> str:
    """Where to send the user's browser to connect a ``name`` account."""
    platform = oauth_platform(platforms, name)
    verifier, challenge = pkce_pair() if platform.uses_pkce else (None, None)
    state = _fernet(keys).encrypt(json.dumps({
        "u": str(user.id), "w": str(user.workspace_id) if user.workspace_id else None, "p": name, "v": verifier,
        "n": secrets.token_urlsafe(8),
    }).encode()).decode()
    try:
        return platform.authorize_url(state=state, redirect_uri=redirect_uri, code_challenge=challenge)
    except PlatformError as exc:
        if exc.code == "oauth_not_configured":
            raise _not_configured(name, exc) from exc
        raise ValidationError(exc.message, code=exc.code, field="platform") from exc


def read_state(keys: list[str], state: str, *, platform: str) -> OAuthState:
    try:
        data = json.loads(_fernet(keys).decrypt(state.encode(), ttl=STATE_TTL_SECONDS))
    except (InvalidToken, ValueError) as exc:
        raise ValidationError("the connection request expired or was tampered with; start again",
                              code="bad_oauth_state", field="state") from exc
    if data.get("p") != platform:
        raise ValidationError("the connection request was for another platform", code="bad_oauth_state", field="state")
    return OAuthState(user_id=UUID(data["u"]), platform=platform, code_verifier=data.get("v"),
                      workspace_id=UUID(data["w"]) if data.get("w") else None)


async def complete(
    store: Store, platforms: dict[str, Platform], cipher: TokenCipher, keys: list[str], name: str,
    *, code: str, state: str, redirect_uri: str, http: httpx.AsyncClient,
) -> Channel:
    """Trade the callback's code for tokens and store the channel with them encrypted."""
    checked = read_state(keys, state, platform=name)
    platform = oauth_platform(platforms, name)
    try:
        tokens, account = await platform.exchange_code(code=code, redirect_uri=redirect_uri,
                                                       code_verifier=checked.code_verifier, http=http)
    except PlatformError as exc:
        if exc.code == "oauth_not_configured":
            raise _not_configured(name, exc) from exc
        raise ValidationError(f"{name} refused the connection: {exc.message}", code=exc.code, field="code") from exc
    return await store.create_channel(
        User(id=checked.user_id, workspace_id=checked.workspace_id),
        NewChannel(platform=name, account_id=account.account_id, name=account.name, metadata=account.metadata,
                   credentials_encrypted=cipher.encrypt(tokens.credentials), token_expires_at=tokens.expires_at,
                   reconnect=True),
    )
