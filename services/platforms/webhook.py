"""The webhook platform: POST each post as JSON to the user's URL (Zapier, Make, n8n, your service).

Channel: ``metadata.url`` (https, public), optional ``credentials.secret``. Every request carries
``Idempotency-Key`` (stable per target across retries), so a timed-out call is safe to retry; with a
secret, ``X-Herald-Timestamp`` and ``X-Herald-Signature: sha256=<hex HMAC-SHA256 of "timestamp.body">``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from services import clock
from services.domain.models import Content, Outcome
from services.platforms.base import AccountInfo, Feature, PlatformError, Problem, Published, PublishRequest
from services.platforms.httpcall import json_or_empty, retry_after_seconds, send, status_outcome
from services.platforms.medialimits import MediaLimits
from services.platforms.urls import check_public_url

MAX_TEXT = 100_000


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What a receiver recomputes to trust a request: ``sha256=`` + hex HMAC of ``timestamp.body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


#: hands the URL on: no limit
_MEDIA_LIMITS = MediaLimits("Webhook")


class WebhookPlatform:
    name = "webhook"
    features = frozenset({Feature.VERIFY, Feature.IDEMPOTENCY_KEY})
    required_credentials: tuple[str, ...] = ()
    #: receivers dedupe on Idempotency-Key, so a call that may have been sent is safe to repeat

    def __init__(self, *, allow_private: bool = False):
        self._allow_private = allow_private

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return _MEDIA_LIMITS

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        if len(content.text) > MAX_TEXT:
            return [Problem("content.text", f"webhook: text is {len(content.text)} characters; the limit is {MAX_TEXT}")]
        return []

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        url = metadata.get("url")
        if not isinstance(url, str) or not url:
            raise PlatformError(Outcome.PERMANENT, "missing_url", "webhook channels need metadata.url",
                                details={"field": "metadata.url"})
        await check_public_url(url, allow_private=self._allow_private)
        return AccountInfo(account_id=url, name=httpx.URL(url).host)

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        url = await check_public_url(request.metadata.get("url") or "", allow_private=self._allow_private)
        body = json.dumps({
            "post_id": str(request.post_id),
            "target_id": str(request.target_id),
            "text": request.content.text,
            "media": [{"type": m.type, "url": m.url, "alt": m.alt} for m in request.content.media],
            "scheduled_at": request.scheduled_at.isoformat() if request.scheduled_at else None,
            "timezone": request.timezone,
        }, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": request.idempotency_key,
                   "User-Agent": "Herald-Webhook/1"}
        secret = request.credentials.get("secret")
        if secret:
            timestamp = str(int(clock.utcnow().timestamp()))
            headers["X-Herald-Timestamp"] = timestamp
            headers["X-Herald-Signature"] = signature(secret, timestamp, body)
        response = await send(http, "POST", url, idempotent=True, content=body, headers=headers)
        answer = json_or_empty(response)
        if response.is_success:
            return Published(platform_post_id=str(answer.get("id") or request.idempotency_key),
                             url=answer.get("url") if isinstance(answer.get("url"), str) else None,
                             http_status=response.status_code)
        message = answer.get("error") or answer.get("message") or response.text[:300] or response.reason_phrase
        if isinstance(message, dict):
            message = message.get("message") or json.dumps(message)[:300]
        raise PlatformError(
            status_outcome(response.status_code), f"http_{response.status_code}",
            f"webhook answered {response.status_code}: {message}", http_status=response.status_code,
            retry_after_seconds=retry_after_seconds(response.headers.get("retry-after")),
        )
