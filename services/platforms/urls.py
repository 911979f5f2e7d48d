"""User-supplied URLs (webhooks, Mastodon instances, Bluesky PDSes) must be https and public.

Checked when a channel is connected and again before every call, since DNS can change between the
two. ``allow_private`` (HERALD_ALLOW_PRIVATE_HOSTS) lifts both rules, for local testing only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

from services.domain.models import Outcome
from services.platforms.base import PlatformError


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_public_url(url: str, *, allow_private: bool, field: str = "metadata.url") -> str:
    """Return ``url`` if Herald may call it; PlatformError(PERMANENT) saying why not otherwise."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise PlatformError(Outcome.PERMANENT, "invalid_url", f"{field} is not a valid URL", details={"field": field}) from exc
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise PlatformError(Outcome.PERMANENT, "invalid_url", f"{field} must be an https URL", details={"field": field})
    if allow_private:
        return url
    if parsed.scheme != "https":
        raise PlatformError(Outcome.PERMANENT, "insecure_url", f"{field} must use https", details={"field": field})
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parsed.host, parsed.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PlatformError(Outcome.TRANSIENT, "dns_failed", f"cannot resolve {parsed.host}", details={"field": field}) from exc
    addresses = {info[4][0] for info in infos}
    if not addresses or not all(_is_public(a) for a in addresses):
        raise PlatformError(Outcome.PERMANENT, "private_address",
                            f"{field} resolves to a private or local address; Herald only calls public hosts",
                            details={"field": field})
    return url
