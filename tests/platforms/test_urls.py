"""Herald calls only public hosts: every way an IPv6 address can carry a private IPv4 one is refused.

The same check guards webhook URLs, Mastodon instance URLs, Bluesky PDS URLs and media URLs
(``check_public_url`` with each one's field), so the table runs for each of them.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from services.domain.models import Outcome
from services.platforms import urls
from services.platforms.base import PlatformError
from services.platforms.urls import check_public_url, shared_resolver

FIELDS = ["metadata.url", "metadata.instance_url", "metadata.pds_url", "content.media[0].url"]

PRIVATE = {
    "169.254.169.254": "cloud metadata, IPv4",
    "10.0.0.1": "private IPv4",
    "::ffff:169.254.169.254": "IPv4-mapped",
    "64:ff9b::a9fe:a9fe": "NAT64 well-known prefix (RFC 6052)",
    "64:ff9b:1::a9fe:a9fe": "NAT64 local-use prefix (RFC 8215)",
    "2002:a9fe:a9fe::1": "6to4 (RFC 3056)",
    "2002:0a00:0001::1": "6to4 of 10.0.0.1",
    "::a9fe:a9fe": "IPv4-compatible (RFC 4291, deprecated)",
    "::ffff:0:a9fe:a9fe": "IPv4-translated (RFC 2765)",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo (RFC 4380)",
    "2001:db8:1::5efe:a9fe:a9fe": "ISATAP (RFC 5214)",
    "2001:db8:1::200:5efe:a00:1": "ISATAP, universal id",
    "::1": "loopback",
    "fe80::1": "link-local",
    "fd00::1": "unique local",
}
PUBLIC = {
    "93.184.215.14": "public IPv4",
    "2606:4700:4700::1111": "public IPv6",
    "64:ff9b::808:808": "NAT64 of a public address",
    "2002:0808:0808::1": "6to4 of a public address",
}


def resolving_to(monkeypatch, address: str) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [
        (family, socket.SOCK_STREAM, 6, "", (address, port) if family == socket.AF_INET else (address, port, 0, 0))])


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("address", sorted(PRIVATE))
async def test_a_host_resolving_to_a_private_address_in_any_form_is_refused(monkeypatch, field, address):
    resolving_to(monkeypatch, address)
    with pytest.raises(PlatformError) as err:
        await check_public_url("https://innocent.example/hook", allow_private=False, field=field)
    assert (err.value.outcome, err.value.code, err.value.details) == (
        Outcome.PERMANENT, "private_address", {"field": field}), PRIVATE[address]
    assert field in err.value.message


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("address", sorted(PUBLIC))
async def test_a_public_host_is_allowed(monkeypatch, field, address):
    resolving_to(monkeypatch, address)
    url = "https://public.example/hook"
    assert await check_public_url(url, allow_private=False, field=field) == url, PUBLIC[address]


async def test_a_host_that_does_not_resolve_is_transient_since_it_may_resolve_later(monkeypatch):
    def nxdomain(host, port, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    with pytest.raises(PlatformError) as err:
        await check_public_url("https://cdn.typo.example/a.jpg", allow_private=False, field="content.media[0].url")
    assert (err.value.outcome, err.value.code, err.value.details) == (
        Outcome.TRANSIENT, "dns_failed", {"field": "content.media[0].url"})


async def test_a_resolver_that_hangs_is_given_up_on_after_the_dns_timeout(monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: release.wait(10) and [])
    monkeypatch.setattr(urls, "DNS_TIMEOUT_SECONDS", 0.05)
    started = time.monotonic()
    try:
        with pytest.raises(PlatformError) as err:
            await check_public_url("https://slow.example/hook", allow_private=False)
    finally:
        release.set()  # let the executor thread still waiting on the "resolver" finish
    assert time.monotonic() - started < 2
    assert (err.value.outcome, err.value.code) == (Outcome.TRANSIENT, "dns_failed")
    assert "slow.example" in err.value.message


async def test_a_shared_resolver_looks_each_host_up_once_for_many_urls(monkeypatch):
    looked_up = []

    def public(host, port, *args, **kwargs):
        looked_up.append((host, port))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(socket, "getaddrinfo", public)
    resolver = shared_resolver()
    checked = ["https://cdn.example/a.jpg", "https://cdn.example/b.jpg", "https://cdn.example/a.jpg",
               "https://other.example/c.mp4", "https://cdn.example:8443/d.jpg"]
    answers = await asyncio.gather(*(check_public_url(u, allow_private=False, field="f", resolver=resolver)
                                     for u in checked))
    assert answers == checked
    assert sorted(looked_up) == [("cdn.example", 443), ("cdn.example", 8443), ("other.example", 443)]
