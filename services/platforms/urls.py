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


#: IPv6 forms that carry an IPv4 address in their last 32 bits, which a gateway may reach: NAT64's
#: well-known prefix (RFC 6052), IPv4-compatible (RFC 4291, deprecated) and IPv4-translated (RFC 2765)
_LOW32_PREFIXES = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96"))
#: NAT64 local-use prefix (RFC 8215): the IPv4 address may sit anywhere in it, and it is never public
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
#: ISATAP interface ids (RFC 5214): ::0:5efe:a.b.c.d and ::200:5efe:a.b.c.d
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address embeds (mapped, 6to4, Teredo, NAT64, compatible,
    translated, ISATAP): a private one there reaches the private host through a gateway."""
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client), the client already de-obfuscated
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if any(ip in prefix for prefix in _LOW32_PREFIXES) or (int(ip) >> 32) & 0xFFFFFFFF in _ISATAP_IDS:
        found.append(low32)
    return found


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        elif ip in _LOCAL_NAT64 or not all(_is_public(str(v4)) for v4 in _embedded_ipv4(ip)):
            return False
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
