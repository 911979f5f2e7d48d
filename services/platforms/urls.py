"""User-supplied URLs (webhooks, Mastodon instances, Bluesky PDSes, media) must be https and public.

Checked when a channel is connected or a post is written, and again before every call, since DNS
can change in between. ``allow_private`` (HERALD_ALLOW_PRIVATE_HOSTS) lifts both rules, for local
testing only. Names are resolved in the event loop's executor (getaddrinfo blocks), each lookup
bounded by ``DNS_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

import httpx

from services.domain.models import Outcome
from services.errors import ValidationError
from services.platforms.base import PlatformError

#: how long one name may take to resolve: a stuck resolver must hold neither a request nor a run.
#: glibc's own per-try timeout, so a resolver that answers at all answers well within it.
DNS_TIMEOUT_SECONDS = 5.0

#: (host, port) -> the addresses it resolves to; raises socket.gaierror or TimeoutError
Resolver = Callable[[str, int], Awaitable[set[str]]]

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


async def resolve_host(host: str, port: int) -> set[str]:
    """The addresses ``host`` resolves to, looked up off the event loop within DNS_TIMEOUT_SECONDS."""
    lookup = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    infos = await asyncio.wait_for(lookup, DNS_TIMEOUT_SECONDS)
    return {str(info[4][0]) for info in infos}


def shared_resolver() -> Resolver:
    """A resolver that looks each (host, port) up once however many URLs name it: for checking a batch
    of URLs at once (a bulk of posts, all on one media host) within one lookup's time."""
    lookups: dict[tuple[str, int], asyncio.Future[set[str]]] = {}

    def lookup(host: str, port: int) -> asyncio.Future[set[str]]:
        if (host, port) not in lookups:
            lookups[(host, port)] = asyncio.ensure_future(resolve_host(host, port))
        return lookups[(host, port)]

    return lookup


async def check_public_url(url: str, *, allow_private: bool, field: str = "metadata.url",
                           resolver: Resolver = resolve_host) -> str:
    """Return ``url`` if Herald may call it; PlatformError saying why not otherwise.

    PERMANENT for a URL that is not https (``invalid_url``, ``insecure_url``) or whose host resolves
    to any non-public address (``private_address``); TRANSIENT ``dns_failed`` when the host does not
    resolve, or not within DNS_TIMEOUT_SECONDS (it may later). The error's ``details.field`` is ``field``.
    """
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
        addresses = await resolver(parsed.host, parsed.port or 443)
    except socket.gaierror as exc:
        raise PlatformError(Outcome.TRANSIENT, "dns_failed", f"cannot resolve {parsed.host}", details={"field": field}) from exc
    except TimeoutError as exc:
        raise PlatformError(Outcome.TRANSIENT, "dns_failed", f"resolving {parsed.host} took over {DNS_TIMEOUT_SECONDS:g} s",
                            details={"field": field}) from exc
    if not addresses or not all(_is_public(a) for a in addresses):
        raise PlatformError(Outcome.PERMANENT, "private_address",
                            f"{field} resolves to a private or local address; Herald only calls public hosts",
                            details={"field": field})
    return url


async def check_given_url(url: str, *, allow_private: bool, field: str, resolver: Resolver = resolve_host) -> str:
    """``check_public_url`` for a URL a user hands in (media, a webhook endpoint): a
    ValidationError naming ``field`` for a URL Herald would refuse to call. A host that does not
    resolve, or not in time, is accepted: it may not exist yet, or the resolver may be down for a
    moment, and every call Herald makes to it checks it again."""
    try:
        return await check_public_url(url, allow_private=allow_private, field=field, resolver=resolver)
    except PlatformError as exc:
        if exc.outcome is Outcome.TRANSIENT:  # dns_failed
            return url
        raise ValidationError(exc.message, code=exc.code, field=exc.details.get("field", field)) from exc
