"""Standard Webhooks signatures (standardwebhooks.com, spec v1.0.0), so that receivers can verify
with that specification's libraries (``standardwebhooks`` for Python, ``standardwebhooks`` /
``svix`` for JavaScript) instead of code of their own.

A secret is ``whsec_`` followed by base64 of 32 random bytes; the HMAC key is those bytes. Each
request carries ``webhook-id`` (the event id: the same on every attempt, so receivers dedupe on
it), ``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``:
``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
