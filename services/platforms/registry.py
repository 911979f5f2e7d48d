"""Platform name -> adapter. The only place that knows which platforms exist."""

from __future__ import annotations

from typing import Any

from services.errors import ValidationError
from services.hosts import resolve_hosts
from services.platforms.base import Platform
from services.platforms.bluesky import BlueskyPlatform
from services.platforms.facebook import FacebookPlatform
from services.platforms.instagram import InstagramPlatform
from services.platforms.linkedin import LinkedInPlatform
from services.platforms.mastodon import MastodonPlatform
from services.platforms.sandbox import Outbox, SandboxPlatform
from services.platforms.telegram import TelegramPlatform
from services.platforms.threads import ThreadsPlatform
from services.platforms.tiktok import TikTokPlatform
from services.platforms.webhook import WebhookPlatform
from services.platforms.whatsapp import WhatsAppPlatform
from services.platforms.x import XPlatform
from services.platforms.youtube import INSERT_UNITS as YOUTUBE_INSERT_UNITS
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
    youtube_insert_units: int = YOUTUBE_INSERT_UNITS,
) -> dict[str, Platform]:
    """Every adapter, configured.

    ``base_urls`` maps host keys (services/hosts.py: ``linkedin``, ``linkedin.oauth``, ...) to base
    URLs, the real hosts unless a simulator stands in; ``host(key)`` below reads one, resolved.
    ``oauth_apps`` gives the OAuth client of the platforms connected through OAuth. Mastodon and
    Bluesky read their instance or PDS from the channel, checked like webhook URLs.
    ``youtube_insert_units`` is what a videos.insert costs of YouTube's daily quota (Herald's count).
    """
    hosts = resolve_hosts(base_urls)
    apps = oauth_apps or {}

    def host(key: str) -> str:
        """The base URL of host ``key``: ``"x"`` (the API) or ``"x.oauth"`` (another host of X)."""
        return hosts[key]

    def app(name: str) -> dict[str, Any]:
        client_id, client_secret = apps.get(name, (None, None))
        return {"client_id": client_id, "client_secret": client_secret}

    platforms: list[Platform] = [
        SandboxPlatform(outbox, public_url=public_url),
        WebhookPlatform(allow_private=allow_private),
        InstagramPlatform(host("instagram"), dialog_url=host("instagram.oauth"), **app("instagram")),
        FacebookPlatform(host("facebook"), dialog_url=host("facebook.oauth"), video_url=host("facebook.video"),
                         **app("facebook")),
        ThreadsPlatform(host("threads"), dialog_url=host("threads.oauth"), **app("threads")),
        WhatsAppPlatform(host("whatsapp"), **app("whatsapp")),
        XPlatform(host("x"), oauth_url=host("x.oauth"), **app("x"), allow_private=allow_private),
        LinkedInPlatform(host("linkedin"), oauth_url=host("linkedin.oauth"), **app("linkedin"),
                         allow_private=allow_private),
        TelegramPlatform(host("telegram")),
        BlueskyPlatform(host("bluesky"), video_url=host("bluesky.video"), allow_private=allow_private),
        MastodonPlatform(allow_private=allow_private),
        TikTokPlatform(host("tiktok"), authorize_url=f"{host('tiktok.oauth')}/v2/auth/authorize/", **app("tiktok"),
                       allow_private=allow_private),
        YouTubePlatform(host("youtube"), oauth_url=host("youtube.oauth"), token_url=host("youtube.token"),
                        **app("youtube"), allow_private=allow_private, insert_units=youtube_insert_units),
    ]
    return {platform.name: platform for platform in platforms}


def platform_named(platforms: dict[str, Platform], name: str, *, field: str = "platform") -> Platform:
    try:
        return platforms[name]
    except KeyError:
        known = ", ".join(sorted(platforms))
        raise ValidationError(f"unknown platform {name!r}; supported: {known}", code="unknown_platform", field=field) from None
