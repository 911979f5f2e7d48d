"""Verify Supabase user JWTs locally: HS256 with the project secret, or ES256/RS256 via its JWKS.

The algorithm is chosen from the token header, never by trying keys in turn. ``exp`` and
``aud == "authenticated"`` are required; ``sub`` is the user id.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import httpx
import jwt

from services import clock
from services.domain.models import User
from services.errors import AuthenticationError

AUDIENCE = "authenticated"
JWKS_TTL_SECONDS = 600
_ASYMMETRIC = {"ES256", "RS256"}


class TokenVerifier:
    """Turns a bearer token into a ``User``; one per process (it caches the JWKS)."""

    def __init__(self, *, secret: str | None, supabase_url: str | None, http: httpx.AsyncClient | None = None):
        self._secret = secret
        self._jwks_url = f"{supabase_url.rstrip('/')}/auth/v1/.well-known/jwks.json" if supabase_url else None
        self._http = http
        self._jwks: jwt.PyJWKSet | None = None
        self._jwks_fetched_at = 0.0

    async def verify(self, token: str) -> User:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError("malformed bearer token") from exc
        alg = header.get("alg")
        if alg == "HS256":
            if not self._secret:
                raise AuthenticationError("HS256 tokens are not accepted: SUPABASE_JWT_SECRET is not set")
            key: Any = self._secret
        elif alg in _ASYMMETRIC:
            key = await self._signing_key(header.get("kid"))
        else:
            raise AuthenticationError(f"unsupported token algorithm {alg!r}")
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=AUDIENCE, options={"require": ["exp", "sub", "aud"]}
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("token expired", code="token_expired") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid token: {exc}") from exc
        try:
            return User(id=UUID(claims["sub"]), token=token)
        except ValueError as exc:
            raise AuthenticationError("token subject is not a user id") from exc

    async def _signing_key(self, kid: str | None) -> Any:
        if not self._jwks_url:
            raise AuthenticationError("asymmetric tokens need SUPABASE_URL to find the project's JWKS")
        jwks = await self._load_jwks(force=False)
        key = _find(jwks, kid)
        if key is None:  # a rotated key: refetch once before refusing
            key = _find(await self._load_jwks(force=True), kid)
        if key is None:
            raise AuthenticationError("token signed by an unknown key")
        return key

    async def _load_jwks(self, *, force: bool) -> jwt.PyJWKSet:
        fresh = time.monotonic() - self._jwks_fetched_at < JWKS_TTL_SECONDS
        if self._jwks is not None and fresh and not force:
            return self._jwks
        http = self._http or httpx.AsyncClient(timeout=10)
        try:
            if self._jwks_url is None:
                raise AuthenticationError("no JWKS URL is configured for asymmetric tokens")
            response = await http.get(self._jwks_url)
            response.raise_for_status()
            self._jwks = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            raise AuthenticationError("cannot load the project's signing keys") from exc
        finally:
            if self._http is None:
                await http.aclose()
        self._jwks_fetched_at = time.monotonic()
        return self._jwks


def _find(jwks: jwt.PyJWKSet, kid: str | None) -> Any:
    for key in jwks.keys:
        if kid is None or key.key_id == kid:
            return key.key
    return None


def issue_token(user_id: UUID | str, secret: str, *, ttl_seconds: int = 3600, now: float | None = None) -> str:
    """An HS256 token shaped like Supabase's: for local development and tests only."""
    issued = int(now if now is not None else clock.utcnow().timestamp())
    claims = {"sub": str(user_id), "aud": AUDIENCE, "role": "authenticated", "iat": issued, "exp": issued + ttl_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")
