"""Platform name -> adapter. The only place that knows which platforms exist."""

from __future__ import annotations

from typing import Any

from services.errors import ValidationError
from services.platforms.base import Platform
from services.platforms.bluesky import BlueskyPlatform
from services.platforms.facebook import FacebookPlatform
from services.platforms.instagram import InstagramPlatform
from services.platforms.linkedin import LinkedInPlatform
from services.platforms.mastodon import MastodonPlatform
from services.platforms.sandbox import Outbox, SandboxPlatform
from services.platforms.telegram import TelegramPlatform
from services.platforms.threads import ThreadsPlatform
from services.platforms.webhook import WebhookPlatform
from services.platforms.whatsapp import WhatsAppPlatform
from services.platforms.x import XPlatform
from services.platforms.youtube import YouTubePlatform

#: (client id, client secret) of an OAuth app, per platform; (None, None) when not configured
OAuthApps = dict[str, tuple[str | None, str | None]]


def build_platforms(
    *,
    outbox: Outbox,
    public_url: str,
    allow_private: bool = False,
    base_urls: dict[str, str] | None = None,
    oauth_apps: OAuthApps | None = None,
) -> dict[str, Platform]:
    """Every adapter, configured.

    ``base_urls`` maps platform -> API base URL (the real hosts unless a simulator stands in);
    ``oauth_apps`` gives the OAuth client of the platforms connected through OAuth. Mastodon and
    Bluesky read their instance or PDS from the channel, checked like webhook URLs.
    """
    urls = base_urls or {}
    apps = oauth_apps or {}

    def base(name: str) -> dict[str, Any]:
        return {"base_url": urls[name]} if name in urls else {}

    def app(name: str) -> dict[str, Any]:
        client_id, client_secret = apps.get(name, (None, None))
        return {"client_id": client_id, "client_secret": client_secret}

    platforms: list[Platform] = [
        SandboxPlatform(outbox, public_url=public_url),
        WebhookPlatform(allow_private=allow_private),
        InstagramPlatform(**base("instagram"), **app("instagram")),
        FacebookPlatform(**base("facebook"), **app("facebook")),
        ThreadsPlatform(**base("threads"), **app("threads")),
        WhatsAppPlatform(**base("whatsapp"), **app("whatsapp")),
        XPlatform(**base("x"), **app("x"), allow_private=allow_private),
        LinkedInPlatform(**base("linkedin"), **app("linkedin"), allow_private=allow_private),
        TelegramPlatform(**base("telegram")),
        BlueskyPlatform(**base("bluesky"), allow_private=allow_private),
        MastodonPlatform(allow_private=allow_private),
        YouTubePlatform(**base("youtube"), **app("youtube"), allow_private=allow_private),
    ]
    return {platform.name: platform for platform in platforms}


def platform_named(platforms: dict[str, Platform], name: str, *, field: str = "platform") -> Platform:
    try:
        return platforms[name]
    except KeyError:
        known = ", ".join(sorted(platforms))
        raise ValidationError(f"unknown platform {name!r}; supported: {known}", code="unknown_platform", field=field) from None
