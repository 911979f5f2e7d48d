"""Validation at the door: a post is checked against every platform it targets before anything is stored.

Channels are connected the way a user connects them (POST /channels, credentials checked against
the platform, mocked with respx in the platforms' real shapes), so the limits read at connection
(a Mastodon instance's own) are the ones applied.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from tests.api.conftest import make_settings

GRAPH = "https://graph.facebook.com/v25.0"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TELEGRAM = f"https://api.telegram.org/bot{BOT_TOKEN}"
INSTANCE = "https://mastodon.example"
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
MASTODON_LIMIT = 1000  #: this instance's own limit, above Mastodon's default 500

IMAGE = {"type": "image", "url": "https://cdn.example.com/a.jpg"}
GIF = {"type": "image", "url": "https://cdn.example.com/a.gif"}
VIDEO = {"type": "video", "url": "https://cdn.example.com/b.mp4"}
DOCUMENT = {"type": "document", "url": "https://cdn.example.com/deck.pdf", "alt": "Q3 deck"}
LONG_URL = "https://example.com/" + "p" * 200  # 220 characters; X and Mastodon count it as 23
COMBINING_E = "e\u0301"  # one grapheme, two code points


@pytest.fixture
def settings():
    # mastodon.example has no DNS here; the public-URL rules have their own tests.
    return make_settings(herald_allow_private_hosts=True)


def mock_platforms(mock: respx.MockRouter) -> None:
    """Each platform's answer to the connection check, in its real shape."""
    mock.get("https://api.x.com/2/users/me").respond(200, json={"data": {"id": "42", "name": "Herald", "username": "herald"}})
    mock.post("https://bsky.social/xrpc/com.atproto.server.createSession").respond(200, json={
        "accessJwt": "a", "refreshJwt": "r", "handle": "author.bsky.social", "did": DID})
    mock.get(f"{INSTANCE}/api/v1/accounts/verify_credentials").respond(
        200, json={"id": "7", "username": "alice", "acct": "alice", "display_name": "Alice"})
    mock.get(f"{INSTANCE}/api/v2/instance").respond(200, json={"domain": "mastodon.example", "configuration": {
        "statuses": {"max_characters": MASTODON_LIMIT, "max_media_attachments": 4, "characters_reserved_per_url": 23},
        "media_attachments": {"image_size_limit": 10485760, "video_size_limit": 41943040}}})
    mock.post(f"{TELEGRAM}/getMe").respond(200, json={"ok": True, "result": {
        "id": 123456789, "is_bot": True, "first_name": "Herald", "username": "herald_bot"}})
    mock.post(f"{TELEGRAM}/getChat").respond(200, json={"ok": True, "result": {
        "id": -1001234567890, "type": "channel", "title": "Herald News", "username": "heraldnews"}})
    mock.get(f"{GRAPH}/me/accounts").respond(200, json={"data": [
        {"id": "p1", "instagram_business_account": {"id": "ig1", "username": "cats"}}]})
    mock.get(f"{GRAPH}/me").respond(200, json={"id": "pg1", "name": "Bakery"})
    mock.get("https://api.linkedin.com/v2/userinfo").respond(200, json={"sub": "abc123", "name": "Ada Lovelace"})
    mock.get("https://graph.threads.net/v1.0/me").respond(200, json={"id": "th1", "username": "dogs"})


CONNECT = {
    "x": {"credentials": {"access_token": "x-tok"}},
    "bluesky": {"credentials": {"identifier": "author.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"}},
    "mastodon": {"credentials": {"access_token": "m-tok"}, "metadata": {"instance_url": INSTANCE}},
    "telegram": {"credentials": {"bot_token": BOT_TOKEN}, "metadata": {"chat_id": "@heraldnews"}},
    "instagram": {"credentials": {"access_token": "ig-tok"}},
    "facebook": {"credentials": {"access_token": "fb-tok"}},
    "linkedin": {"credentials": {"access_token": "li-tok"}},
    "threads": {"credentials": {"access_token": "th-tok"}},
}


@pytest.fixture
async def channels(client, alice) -> dict[str, str]:
    """One connected channel per platform for alice: platform -> channel id."""
    ids = {}
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        mock_platforms(mock)
        for platform, body in CONNECT.items():
            response = await client.post("/api/v1/channels", headers=alice.headers, json={"platform": platform, **body})
            assert response.status_code == 201, response.text
            ids[platform] = response.json()["id"]
    return ids


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


async def total(client, who) -> int:
    response = await client.get("/api/v1/posts", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["total"]


async def create(client, who, channels, targets, content) -> httpx.Response:
    return await client.post("/api/v1/posts", headers=who.headers, json={
        "content": content, "channel_ids": [channels[t] for t in targets], "scheduled_at": tomorrow()})


# (targets, content, refused: None when accepted, else (platform, field, words the message must hold))
CASES = [
    # X: weighted length, 280; every URL counts 23; CJK counts 2
    (["x"], {"text": "a" * 280}, None),
    (["x"], {"text": "a" * 281}, ("x", "content.text", ["281", "280"])),
    (["x"], {"text": "a" * 256 + " " + LONG_URL}, None),  # 477 characters, 280 as X counts them
    (["x"], {"text": "a" * 257 + " " + LONG_URL}, ("x", "content.text", ["281", "280"])),
    (["x"], {"text": "日本" * 70}, None),  # 140 characters, weighing 280
    (["x"], {"text": "日本" * 70 + "a"}, ("x", "content.text", ["281", "280"])),
    (["x"], {"text": "hi", "media": [IMAGE] * 4}, None),
    (["x"], {"text": "hi", "media": [IMAGE] * 5}, ("x", "content.media", ["5", "4"])),
    (["x"], {"text": "hi", "media": [VIDEO, IMAGE]}, ("x", "content.media", ["only media"])),
    (["x"], {"text": "hi", "media": [GIF, IMAGE]}, ("x", "content.media", ["only media"])),
    # Bluesky: 300 graphemes (not code points), images only, 4 at most
    (["bluesky"], {"text": COMBINING_E * 300}, None),  # 600 code points
    (["bluesky"], {"text": COMBINING_E * 301}, ("bluesky", "content.text", ["301 graphemes", "300"])),
    (["bluesky"], {"text": "hi", "media": [VIDEO]}, None),  # one MP4 video
    (["bluesky"], {"text": "hi", "media": [VIDEO, IMAGE]}, ("bluesky", "content.media", ["alone"])),
    (["bluesky"], {"text": "hi", "media": [DOCUMENT]}, ("bluesky", "content.media", ["images or one video"])),
    (["bluesky"], {"text": "hi", "media": [IMAGE] * 5}, ("bluesky", "content.media", ["5", "4"])),
    # Mastodon: the instance's own limit (read at connection), URLs count 23
    (["mastodon"], {"text": "a" * MASTODON_LIMIT}, None),
    (["mastodon"], {"text": "a" * (MASTODON_LIMIT - 24) + " " + LONG_URL}, None),
    (["mastodon"], {"text": "a" * (MASTODON_LIMIT + 1)}, ("mastodon", "content.text", ["1001", "this instance allows 1000"])),
    (["mastodon"], {"text": "hi", "media": [IMAGE] * 5}, ("mastodon", "content.media", ["5", "allows 4"])),
    (["mastodon"], {"text": "hi", "media": [VIDEO, IMAGE]}, ("mastodon", "content.media", ["only attachment"])),
    # Telegram: 4096 for text, 1024 for a caption, albums of 10
    (["telegram"], {"text": "a" * 4096}, None),
    (["telegram"], {"text": "a" * 4097}, ("telegram", "content.text", ["4097", "4096"])),
    (["telegram"], {"text": "\U0001F600" * 2049}, ("telegram", "content.text", ["4098", "4096"])),  # UTF-16 units
    (["telegram"], {"text": "a" * 1024, "media": [IMAGE]}, None),
    (["telegram"], {"text": "a" * 1025, "media": [IMAGE]}, ("telegram", "content.text", ["1025", "1024"])),
    (["telegram"], {"text": "hi", "media": [IMAGE] * 11}, ("telegram", "content.media", ["11", "10"])),
    # Instagram: media required, carousels of 10, captions of 2200
    (["instagram"], {"text": "a caption", "media": [IMAGE]}, None),
    (["instagram"], {"text": "text only"}, ("instagram", "content.media", ["at least 1 image or video"])),
    (["instagram"], {"text": "hi", "media": [IMAGE] * 11}, ("instagram", "content.media", ["11", "10"])),
    (["instagram"], {"text": "a" * 2201, "media": [IMAGE]}, ("instagram", "content.text", ["2201", "2200"])),
    # Facebook, LinkedIn, Threads
    (["facebook"], {"text": "hi", "media": [VIDEO, IMAGE]}, ("facebook", "content.media", ["video is posted alone"])),
    (["linkedin"], {"text": "a" * 3000}, None),
    (["linkedin"], {"text": "a" * 3001}, ("linkedin", "content.text", ["3001", "3000"])),
    (["linkedin"], {"text": "hi", "media": [VIDEO]}, None),  # one MP4 video
    (["linkedin"], {"text": "hi", "media": [DOCUMENT]}, None),  # one PDF
    (["linkedin"], {"text": "hi", "media": [VIDEO, IMAGE]}, ("linkedin", "content.media", ["alone"])),
    (["linkedin"], {"text": "hi", "media": [{**VIDEO, "url": "https://cdn.example.com/b.mov"}]},
     ("linkedin", "content.media[0].url", ["MP4"])),
    (["x"], {"text": "hi", "media": [DOCUMENT]}, ("x", "content.media", ["images, a GIF or a video"])),
    (["threads"], {"text": "a" * 500}, None),
    (["threads"], {"text": "a" * 501}, ("threads", "content.text", ["501", "500"])),
    # Every target is checked: fine for Telegram, too long for X
    (["telegram", "x"], {"text": "a" * 281}, ("x", "content.text", ["280"])),
    (["x", "telegram", "instagram"], {"text": "hi"}, ("instagram", "content.media", ["at least 1"])),
]


def case_id(case) -> str:
    targets, content, refused = case
    size = f"{len(content['text'])}ch+{len(content.get('media', []))}m"
    return f"{'+'.join(targets)}-{size}-{'refused' if refused else 'ok'}"


@pytest.mark.parametrize(("targets", "content", "refused"), CASES, ids=[case_id(c) for c in CASES])
async def test_content_is_checked_against_every_targeted_platform(client, alice, channels, targets, content, refused):
    response = await create(client, alice, channels, targets, content)
    if refused is None:
        assert response.status_code == 201, response.text
        assert await total(client, alice) == 1
        return
    platform, field, words = refused
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "content_rejected" and error["field"] == field
    assert error["message"].startswith(f"{platform}: "), error["message"]
    for word in words:
        assert word in error["message"], error["message"]
    assert await total(client, alice) == 0


async def test_an_x_override_makes_a_post_too_long_for_x_valid(client, alice, channels):
    long_text = "a" * 400
    refused = await create(client, alice, channels, ["telegram", "x"], {"text": long_text})
    assert refused.status_code == 422 and refused.json()["error"]["message"].startswith("x: ")
    accepted = await create(client, alice, channels, ["telegram", "x"],
                            {"text": long_text, "platforms": {"x": {"text": "The short version for X"}}})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["content"]["platforms"]["x"]["text"] == "The short version for X"
    assert accepted.json()["content"]["text"] == long_text
    assert await total(client, alice) == 1


async def test_an_override_is_validated_like_the_text_it_replaces(client, alice, channels):
    response = await create(client, alice, channels, ["telegram", "x"],
                            {"text": "short", "platforms": {"x": {"text": "b" * 281}}})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "content.platforms.x.text" and error["message"].startswith("x: ") and "280" in error["message"]
    assert await total(client, alice) == 0


async def test_an_instagram_media_override_satisfies_its_required_media(client, alice, channels):
    content = {"text": "news", "platforms": {"instagram": {"media": [IMAGE]}}}
    response = await create(client, alice, channels, ["telegram", "instagram"], content)
    assert response.status_code == 201, response.text
    too_many = {"text": "news", "platforms": {"instagram": {"media": [IMAGE] * 11}}}
    refused = await create(client, alice, channels, ["telegram", "instagram"], too_many)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "content.platforms.instagram.media"
    assert "10" in refused.json()["error"]["message"]
    assert await total(client, alice) == 1


async def test_an_override_for_an_unknown_platform_is_refused(client, alice, channels):
    response = await create(client, alice, channels, ["x"], {"text": "hi", "platforms": {"myspace": {"text": "hey"}}})
    assert response.status_code == 422 and response.json()["error"]["field"] == "content.platforms.myspace"
    assert await total(client, alice) == 0


async def test_editing_a_post_validates_the_new_content_and_keeps_the_old_one(client, alice, channels):
    post = (await create(client, alice, channels, ["x"], {"text": "fits"})).json()
    url = f"/api/v1/posts/{post['id']}"
    refused = await client.patch(url, headers=alice.headers, json={"content": {"text": "a" * 281}})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "content.text" and "280" in refused.json()["error"]["message"]
    assert (await client.get(url, headers=alice.headers)).json()["content"]["text"] == "fits"
    fixed = await client.patch(url, headers=alice.headers, json={
        "content": {"text": "a" * 281, "platforms": {"x": {"text": "a" * 280}}}})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["content"]["platforms"]["x"]["text"] == "a" * 280


async def test_adding_a_channel_to_a_post_validates_its_content_for_that_platform(client, alice, channels):
    post = (await create(client, alice, channels, ["telegram"], {"text": "text only"})).json()
    url = f"/api/v1/posts/{post['id']}"
    refused = await client.patch(url, headers=alice.headers,
                                 json={"channel_ids": [channels["telegram"], channels["instagram"]]})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["message"].startswith("instagram: ")
    assert (await client.get(url, headers=alice.headers)).json()["channel_ids"] == [channels["telegram"]]


async def test_a_bulk_create_with_one_post_too_long_stores_none(client, alice, channels):
    response = await client.post("/api/v1/posts/bulk", headers=alice.headers, json={"posts": [
        {"content": {"text": "fine"}, "channel_ids": [channels["x"]], "scheduled_at": tomorrow()},
        {"content": {"text": COMBINING_E * 301}, "channel_ids": [channels["bluesky"]], "scheduled_at": tomorrow()},
    ]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "posts.1.content.text" and "bluesky" in error["message"] and "300" in error["message"]
    assert await total(client, alice) == 0


async def test_a_problem_outside_an_override_is_named_where_the_request_has_it(client, alice, channels):
    """An X override of the text only: too many images are in the shared content, not the override."""
    content = {"text": "news", "media": [IMAGE] * 5, "platforms": {"x": {"text": "short news"}}}
    response = await create(client, alice, channels, ["x"], content)
    assert response.status_code == 422 and response.json()["error"]["field"] == "content.media"
    assert await total(client, alice) == 0
