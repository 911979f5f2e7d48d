"""Platform name -> adapter. The only place that knows which platforms exist."""

from __future__ import annotations

from services.errors import ValidationError
from services.platforms.base import Platform
from services.platforms.sandbox import Outbox, SandboxPlatform


def build_platforms(*, outbox: Outbox, public_url: str) -> dict[str, Platform]:
    return {"sandbox": SandboxPlatform(outbox, public_url=public_url)}


def platform_named(platforms: dict[str, Platform], name: str, *, field: str = "platform") -> Platform:
    try:
        return platforms[name]
    except KeyError:
        known = ", ".join(sorted(platforms))
        raise ValidationError(f"unknown platform {name!r}; supported: {known}", code="unknown_platform", field=field) from None
