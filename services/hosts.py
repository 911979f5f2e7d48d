"""Every host the platform adapters call, by key, and how ``HERALD_PLATFORM_BASE_URLS`` moves them.

A key is a platform's name (its API host) or ``<platform>.<role>`` for another host of the same
platform (``linkedin.oauth``: LinkedIn's OAuth endpoints on www.linkedin.com). A host resolves to
its own key's override, else its platform's override, else its real default: pointing a platform
at one simulator moves every host of it (their paths differ), and a dotted key moves one alone.
A leaf: the settings validate the keys against this table and the registry reads hosts from it.
"""

from __future__ import annotations

from collections.abc import Mapping

#: key -> (the real base URL, what Herald calls there); the README's configuration table lists them
HOSTS: dict[str, tuple[str, str]] = {
    "facebook": ("https://graph.facebook.com", "Graph API: Pages, photos, tokens, insights"),
    "facebook.oauth": ("https://www.facebook.com", "Facebook Login dialog (the authorize URL)"),
    "facebook.video": ("https://graph-video.facebook.com", "Page video uploads"),
    "instagram": ("https://graph.facebook.com", "Graph API: containers, publishing, tokens, insights"),
    "instagram.oauth": ("https://www.facebook.com", "Facebook Login dialog (the authorize URL)"),
    "threads": ("https://graph.threads.net", "Threads API: containers, publishing, tokens, insights"),
    "threads.oauth": ("https://threads.net", "Threads authorization window (the authorize URL)"),
    "whatsapp": ("https://graph.facebook.com", "WhatsApp Cloud API"),
    "x": ("https://api.x.com", "X API v2: posts, media, token endpoint, users"),
    "x.oauth": ("https://x.com", "X OAuth 2.0 authorize page"),
    "linkedin": ("https://api.linkedin.com", "Posts, Images, Videos and Documents APIs, userinfo"),
    "linkedin.oauth": ("https://www.linkedin.com", "LinkedIn OAuth 2.0: authorize page and token endpoint"),
    "telegram": ("https://api.telegram.org", "Bot API"),
    "bluesky": ("https://bsky.social", "the default PDS (a channel's metadata.pds_url wins)"),
    "bluesky.video": ("https://video.bsky.app", "Bluesky video service: uploadVideo, getJobStatus"),
    "tiktok": ("https://open.tiktokapis.com", "Content Posting API, creator info, token endpoint"),
    "tiktok.oauth": ("https://www.tiktok.com", "Login Kit authorize page"),
    "youtube": ("https://www.googleapis.com", "YouTube Data API v3 and its resumable upload endpoint"),
    "youtube.oauth": ("https://accounts.google.com", "Google OAuth 2.0 consent screen (the authorize URL)"),
    "youtube.token": ("https://oauth2.googleapis.com", "Google OAuth 2.0 token endpoint"),
}

#: key -> its real base URL
DEFAULT_HOSTS: dict[str, str] = {key: url for key, (url, _) in HOSTS.items()}


def resolve_hosts(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every key's base URL (no trailing slash): its override, else its platform's, else the default.

    Unknown keys are ignored here (``invalid_keys`` reports them); resolving a resolved map gives it back.
    """
    given = {key: url.rstrip("/") for key, url in (overrides or {}).items()}
    return {key: given.get(key) or given.get(key.split(".", 1)[0]) or default
            for key, default in DEFAULT_HOSTS.items()}


def invalid_keys(overrides: Mapping[str, object]) -> list[str]:
    """Why ``overrides`` cannot be used, one sentence per bad entry; [] if it can."""
    problems = []
    for key, url in overrides.items():
        if key not in HOSTS:
            problems.append(f"unknown key {key!r} (known: {', '.join(sorted(HOSTS))})")
        elif not isinstance(url, str) or not url.startswith(("https://", "http://")):
            problems.append(f"{key!r} must be an http(s) base URL, not {url!r}")
    return problems
