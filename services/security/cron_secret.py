"""The publish endpoint's shared secret: two header forms, compared in constant time."""

from __future__ import annotations

import hmac

from services.errors import AuthenticationError, ServiceUnavailable


def presented_secret(x_cron_secret: str | None, authorization: str | None) -> str | None:
    """The secret a caller sent: ``X-Cron-Secret`` (cron-job.org) or ``Authorization: Bearer`` (Vercel)."""
    if x_cron_secret:
        return x_cron_secret
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def check_cron_secret(configured: str | None, presented: str | None) -> None:
    """Raise unless ``presented`` equals ``configured``; never open when nothing is configured."""
    if not configured:
        raise ServiceUnavailable("CRON_SECRET is not configured; the publish endpoint refuses to run without it")
    # compare_digest on equal-type bytes: time does not depend on where the strings differ.
    if presented is None or not hmac.compare_digest(presented.encode(), configured.encode()):
        raise AuthenticationError("missing or wrong cron secret", code="bad_cron_secret")
