"""Platform name -> adapter. The only place that knows which platforms exist."""

from __future__ import annotations

from services.errors import ValidationError
from services.platforms.base import Platform
from services.platforms.sandbox import Outbox, SandboxPlatform
from services.platforms.webhook import WebhookPlatform


def build_platforms(
    *,
    outbox: Outbox,
    public_url: str,
    allow_private: bool = False,
    base_urls: dict[str, str] | None = None,
) -> dict[str, Platform]:
    """Every adapter, configured: ``base_urls`` maps platform -> API base URL (simulators in tests)."""
    del base_urls  # the real-platform adapters take theirs from here as they land
    return {
        "sandbox": SandboxPlatform(outbox, public_url=public_url),
        "webhook": WebhookPlatform(allow_private=allow_private),
    }


def platform_named(platforms: dict[str, Platform], name: str, *, field: str = "platform") -> Platform:
    try:
        return platforms[name]
    except KeyError:
        known = ", ".join(sorted(platforms))
        raise ValidationError(f"unknown platform {name!r}; supported: {known}", code="unknown_platform", field=field) from None
