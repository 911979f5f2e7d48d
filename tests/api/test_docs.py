"""/docs and /redoc work offline: every script, style and icon comes from Herald itself."""

from __future__ import annotations

import re

import pytest

from api.docs import ASSETS

#: a URL in an attribute or a string of the page
URL = re.compile(r"""(?:src|href|url|spec-url)\s*[=:]\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_page_loads_nothing_from_another_host(client, page):
    response = await client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "http://" not in response.text and "https://" not in response.text
    urls = URL.findall(response.text)
    assert urls, response.text
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        answer = await client.get(url)
        assert answer.status_code == 200, url
        assert answer.content, url


async def test_every_asset_is_served_with_its_type(client):
    for name, media_type in ASSETS.items():
        response = await client.get(f"/docs/assets/{name}")
        assert response.status_code == 200 and response.headers["content-type"] == media_type, name


@pytest.mark.parametrize("name", ["core.py", "..%2Fcore.py", "%2e%2e%2f__init__.py", "missing.js"])
async def test_nothing_else_is_served(client, name):
    response = await client.get(f"/docs/assets/{name}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
