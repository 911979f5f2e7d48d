"""The cron secret that guards the publish endpoint and the service's metrics: two header forms,
compared in constant time."""

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


def is_cron_secret(configured: str | None, presented: str | None) -> bool:
    """``presented`` equals ``configured``; never when nothing is configured or presented."""
    if not configured or presented is None:
        return False
    # compare_digest on equal-type bytes: time does not depend on where the strings differ.
    return hmac.compare_digest(presented.encode(), configured.encode())


def check_cron_secret(configured: str | None, presented: str | None) -> None:
    """Raise unless ``presented`` equals ``configured``; never open when nothing is configured."""
    if not configured:
        raise ServiceUnavailable("CRON_SECRET is not configured; the endpoints it guards (publishing, the service's"
                                 " metrics) refuse to run without it")
    if not is_cron_secret(configured, presented):
        raise AuthenticationError("missing or wrong cron secret", code="bad_cron_secret")
