"""Token encryption at rest: Fernet with key rotation (the first key encrypts, all keys decrypt)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.errors import StoreError


class TokenCipher:
    """Encrypts a channel's credentials (a JSON object) into one opaque string, and back."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, credentials: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(credentials, separators=(",", ":")).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken as exc:
            # Never echo the token: the message says what to do, not what was stored.
            raise StoreError(
                "stored credentials cannot be decrypted with HERALD_ENCRYPTION_KEYS; was a key removed?",
                code="credentials_unreadable",
            ) from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the first (newest) key."""
        return self._fernet.rotate(token.encode()).decode()
