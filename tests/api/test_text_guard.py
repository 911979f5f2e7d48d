"""NUL characters and lone surrogates are refused in every string the API takes, naming the field."""

from __future__ import annotations

import pytest

from tests.api.conftest import sandbox_channel


@pytest.mark.parametrize(("body", "field"), [
    ('{"platform": "sandbox", "name": "a\\u0000b", "account_id": "x", "credentials": {"access_token": "t"}}', "name"),
    ('{"platform": "sandbox", "name": "ok", "account_id": "x", "credentials": {"access_token": "t"},'
     ' "metadata": {"note": "\\u0000"}}', "metadata.note"),
    ('{"platform": "sandbox", "name": "ok", "account_id": "x", "credentials": {"access_token": "t"},'
     ' "metadata": {"k\\u0000": 1}}', "metadata.k\x00"),
    ('{"platform": "sandbox", "name": "\\ud800", "account_id": "x", "credentials": {"access_token": "t"}}', "name"),
])
async def test_a_bad_character_in_a_channel_is_a_422_naming_the_field(client, alice, body, field):
    response = await client.post("/api/v1/channels", content=body.encode(),
                                 headers={**alice.headers, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert "NUL" in error["message"] or "surrogate" in error["message"]
    assert "codec" not in error["message"]
    assert (await client.get("/api/v1/channels", headers=alice.headers)).json()["total"] == 0  # nothing written


async def test_a_bad_character_in_post_content_or_a_filter_is_a_422(client, alice):
    channel = await sandbox_channel(client, alice)
    body = ('{"content": {"text": "hi", "media": [{"type": "image", "url": "https://x.test/\\ud83d.png"}]},'
            ' "channel_ids": ["' + channel["id"] + '"]}')
    response = await client.post("/api/v1/posts", content=body.encode(),
                                 headers={**alice.headers, "Content-Type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "content.media[0].url"
    listed = await client.get("/api/v1/posts?platform=x%00", headers=alice.headers)
    assert listed.status_code == 422 and listed.json()["error"]["field"] == "platform"
    fine = await client.get("/api/v1/posts?platform=x", headers=alice.headers)
    assert fine.status_code == 200
    emoji = await client.post("/api/v1/posts", headers=alice.headers, json={
        "content": {"text": "a real pair is fine: \U0001F600"}, "channel_ids": [channel["id"]]})
    assert emoji.status_code == 201, emoji.text
