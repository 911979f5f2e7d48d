"""HERALD_PLATFORM_BASE_URLS: one base URL per host key, a platform's key moving all its hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.hosts import DEFAULT_HOSTS, HOSTS, resolve_hosts
from services.settings import Settings

SIM = "http://127.0.0.1:9999"


def settings(monkeypatch, value: str) -> Settings:
    monkeypatch.setenv("HERALD_PLATFORM_BASE_URLS", value)
    return Settings(_env_file=None)


def test_without_overrides_every_host_is_the_real_one(monkeypatch):
    monkeypatch.delenv("HERALD_PLATFORM_BASE_URLS", raising=False)
    hosts = Settings(_env_file=None).platform_base_urls
    assert hosts == DEFAULT_HOSTS
    assert (hosts["linkedin"], hosts["linkedin.oauth"]) == ("https://api.linkedin.com", "https://www.linkedin.com")
    assert (hosts["x"], hosts["x.oauth"]) == ("https://api.x.com", "https://x.com")
    assert (hosts["facebook"], hosts["facebook.oauth"]) == ("https://graph.facebook.com", "https://www.facebook.com")
    assert (hosts["threads"], hosts["threads.oauth"]) == ("https://graph.threads.net", "https://threads.net")
    assert (hosts["bluesky"], hosts["bluesky.video"]) == ("https://bsky.social", "https://video.bsky.app")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # a platform's key moves all its hosts: one simulator serves every path of the platform
        ({"linkedin": SIM}, {"linkedin": SIM, "linkedin.oauth": SIM, "x": "https://api.x.com"}),
        # a dotted key moves only its own host
        ({"linkedin.oauth": SIM}, {"linkedin": "https://api.linkedin.com", "linkedin.oauth": SIM}),
        # a dotted key wins over its platform's key
        ({"bluesky": SIM, "bluesky.video": "http://127.0.0.1:7777"},
         {"bluesky": SIM, "bluesky.video": "http://127.0.0.1:7777"}),
        # Facebook and Instagram share graph.facebook.com but are moved apart
        ({"facebook": SIM}, {"facebook": SIM, "facebook.video": SIM, "instagram": "https://graph.facebook.com"}),
        # a trailing slash is dropped, as every adapter joins paths with "/"
        ({"x": SIM + "/"}, {"x": SIM, "x.oauth": SIM}),
    ],
)
def test_a_host_is_its_own_key_else_its_platforms_else_the_real_one(monkeypatch, given, expected):
    hosts = settings(monkeypatch, json.dumps(given)).platform_base_urls
    assert {key: hosts[key] for key in expected} == expected
    assert set(hosts) == set(HOSTS)


def test_resolving_is_stable_so_the_registry_may_resolve_a_resolved_map():
    once = resolve_hosts({"x": SIM, "linkedin.oauth": SIM})
    assert resolve_hosts(once) == once


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ('{"linkedn": "http://127.0.0.1:1"}', "unknown key 'linkedn'"),  # a typo
        ('{"linkedin.upload": "http://127.0.0.1:1"}', "unknown key 'linkedin.upload'"),  # a role nobody calls
        ('{"x": "127.0.0.1:9999"}', "'x' must be an http(s) base URL"),  # no scheme
        ('{"x": 9999}', "'x' must be an http(s) base URL"),
        ('["x"]', "HERALD_PLATFORM_BASE_URLS"),  # not a map
        ('{"x": ', "HERALD_PLATFORM_BASE_URLS must be a JSON object"),
    ],
)
def test_an_unusable_map_stops_startup_naming_the_variable_and_the_key(monkeypatch, value, named):
    with pytest.raises(ValidationError) as raised:
        settings(monkeypatch, value)
    assert named in str(raised.value)
    if "unknown key" in named:  # and says which keys exist
        assert "linkedin.oauth" in str(raised.value) and "bluesky.video" in str(raised.value)


def test_the_readme_documents_every_host_key_with_its_default():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for key, (url, _) in HOSTS.items():
        assert f"| `{key}` | `{url}` |" in readme, key
