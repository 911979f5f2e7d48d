"""The Telegram adapter against a Bot API mocked with respx: exact methods and bodies, links, errors, a masked token."""

from __future__ import annotations

import json
import logging
import uuid

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome
from services.platforms.base import ACCOUNT, PlatformError, PublishRequest
from services.platforms.telegram import TelegramPlatform, message_url

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
API = f"https://api.telegram.org/bot{TOKEN}"
PHOTO = "https://cdn.example.com/a.jpg"
VIDEO = "https://cdn.example.com/b.mp4"


def request(text: str = "Hello", media: tuple[Media, ...] = (), **metadata) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(), content=Content(text=text, media=media),
        scheduled_at=None, timezone="UTC", channel_id=uuid.uuid4(), account_id="-1001234567890",
        metadata={"chat_id": -1001234567890, **metadata}, credentials={"bot_token": TOKEN},
        idempotency_key="herald-key-1",
    )


def message(message_id: int, username: str | None = "heraldnews") -> dict:
    chat = {"id": -1001234567890, "type": "channel", "title": "Herald News"}
    if username:
        chat["username"] = username
    return {"message_id": message_id, "date": 1700000000, "chat": chat}


@respx.mock
async def test_text_is_sent_with_send_message_and_linked_by_username():
    route = respx.post(f"{API}/sendMessage").respond(200, json={"ok": True, "result": message(7)})
    async with httpx.AsyncClient() as http:
        published = await TelegramPlatform().publish(request("Hi there"), http)
    assert json.loads(route.calls.last.request.content) == {"chat_id": -1001234567890, "text": "Hi there"}
    assert (published.platform_post_id, published.url) == ("7", "https://t.me/heraldnews/7")


@pytest.mark.parametrize(
    ("media", "method", "body"),
    [
        ((Media("image", PHOTO),), "sendPhoto", {"chat_id": -1001234567890, "photo": PHOTO, "caption": "Look"}),
        ((Media("video", VIDEO),), "sendVideo", {"chat_id": -1001234567890, "video": VIDEO, "caption": "Look"}),
    ],
)
@respx.mock
async def test_one_media_item_goes_with_the_text_as_caption(media, method, body):
    route = respx.post(f"{API}/{method}").respond(200, json={"ok": True, "result": message(8)})
    async with httpx.AsyncClient() as http:
        await TelegramPlatform().publish(request("Look", media), http)
    assert json.loads(route.calls.last.request.content) == body


@respx.mock
async def test_several_media_go_as_one_album_with_the_caption_on_the_first_item():
    route = respx.post(f"{API}/sendMediaGroup").respond(200, json={"ok": True, "result": [message(20), message(21), message(22)]})
    media = (Media("image", PHOTO), Media("video", VIDEO), Media("image", PHOTO))
    async with httpx.AsyncClient() as http:
        published = await TelegramPlatform().publish(request("Album", media), http)
    assert json.loads(route.calls.last.request.content) == {"chat_id": -1001234567890, "media": [
        {"type": "photo", "media": PHOTO, "caption": "Album"},
        {"type": "video", "media": VIDEO},
        {"type": "photo", "media": PHOTO},
    ]}
    assert (published.platform_post_id, published.url) == ("20", "https://t.me/heraldnews/20")


@pytest.mark.parametrize(
    ("chat", "metadata", "url"),
    [
        ({"id": -1001234567890, "username": "heraldnews"}, {}, "https://t.me/heraldnews/5"),  # public channel
        ({"id": -1001234567890}, {}, "https://t.me/c/1234567890/5"),  # private supergroup or channel: drop -100
        ({"id": -1001234567890}, {"chat_username": "renamed"}, "https://t.me/renamed/5"),  # username from metadata
        ({}, {"chat_id": "@heraldnews"}, "https://t.me/heraldnews/5"),  # chat addressed by @username
        ({"id": -4000000001}, {}, None),  # basic group: no message links
        ({"id": 987654321}, {}, None),  # private chat with a user: no message links
    ],
)
def test_message_links(chat, metadata, url):
    assert message_url({"message_id": 5, "chat": chat}, metadata) == url


@pytest.mark.parametrize(
    ("status", "body", "outcome", "retry_after"),
    [
        (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 35",
               "parameters": {"retry_after": 35}}, Outcome.RATE_LIMITED, 35),
        (401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, Outcome.AUTH, None),
        (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, Outcome.PERMANENT, None),
        (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot is not a member of the channel chat"},
         Outcome.PERMANENT, None),
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, Outcome.PERMANENT, None),
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}, Outcome.PERMANENT, None),
        (502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}, Outcome.TRANSIENT, None),
        (500, {}, Outcome.TRANSIENT, None),  # a proxy's HTML error page
    ],
)
@respx.mock
async def test_answers_are_classified_and_never_show_the_token(status, body, outcome, retry_after):
    respx.post(f"{API}/sendMessage").respond(status, json=body)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await TelegramPlatform().publish(request(), http)
    assert (err.value.outcome, err.value.http_status, err.value.retry_after_seconds) == (outcome, status, retry_after)
    assert TOKEN not in err.value.message and TOKEN.split(":")[1] not in str(err.value)


@respx.mock
async def test_flood_control_waits_the_seconds_telegram_gives_for_this_bot_only():
    respx.post(f"{API}/sendMessage").respond(429, json={
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7", "parameters": {"retry_after": 7}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await TelegramPlatform().publish(request(), http)
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, ACCOUNT, 7)


@respx.mock
async def test_403_says_how_to_fix_the_chat():
    respx.post(f"{API}/sendMessage").respond(403, json={
        "ok": False, "error_code": 403, "description": "Forbidden: bot is not a member of the channel chat"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await TelegramPlatform().publish(request(), http)
    assert "not a member" in err.value.message and "add the bot to the chat" in err.value.message


@respx.mock
async def test_an_upgraded_group_names_the_new_chat_id():
    respx.post(f"{API}/sendMessage").respond(400, json={
        "ok": False, "error_code": 400, "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1009876543210}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await TelegramPlatform().publish(request(), http)
    assert err.value.outcome is Outcome.PERMANENT and err.value.code == "chat_migrated"
    assert "-1009876543210" in err.value.message and err.value.details == {"migrate_to_chat_id": -1009876543210}


@respx.mock
async def test_a_description_echoing_the_token_is_masked():
    respx.post(f"{API}/sendMessage").respond(400, json={
        "ok": False, "error_code": 400, "description": f"Bad Request: invalid bot {TOKEN}"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await TelegramPlatform().publish(request(), http)
    assert TOKEN not in err.value.message and "<token>" in err.value.message


@pytest.mark.parametrize(
    ("error", "outcome"),
    [(httpx.ConnectError(f"cannot connect to {API}/sendMessage"), Outcome.TRANSIENT),
     (httpx.ReadTimeout("slow"), Outcome.UNKNOWN),  # no idempotency key: the message may be out, do not resend
     (httpx.RemoteProtocolError("dropped"), Outcome.UNKNOWN)],
)
@respx.mock
async def test_transport_failures_drop_the_httpx_cause_that_carries_the_url(error, outcome):
    respx.post(f"{API}/sendMessage").mock(side_effect=error)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await TelegramPlatform().publish(request(), http)
    assert err.value.outcome is outcome
    assert err.value.__cause__ is None and err.value.__suppress_context__
    assert TOKEN not in err.value.message


@respx.mock
async def test_httpx_request_log_lines_never_show_the_token(caplog):
    respx.post(f"{API}/sendMessage").respond(200, json={"ok": True, "result": message(7)})
    with caplog.at_level(logging.INFO, logger="httpx"):
        async with httpx.AsyncClient() as http:
            await TelegramPlatform().publish(request(), http)
    assert "api.telegram.org/bot<token>/sendMessage" in caplog.text
    assert TOKEN not in caplog.text


@respx.mock
async def test_verify_reads_the_bot_and_the_chat():
    me = respx.post(f"{API}/getMe").respond(200, json={"ok": True, "result": {
        "id": 123456789, "is_bot": True, "first_name": "Herald", "username": "herald_bot"}})
    chat = respx.post(f"{API}/getChat").respond(200, json={"ok": True, "result": {
        "id": -1001234567890, "type": "channel", "title": "Herald News", "username": "heraldnews"}})
    async with httpx.AsyncClient() as http:
        info = await TelegramPlatform().verify({"bot_token": TOKEN}, {"chat_id": "@heraldnews"}, http)
    assert me.called and json.loads(chat.calls.last.request.content) == {"chat_id": "@heraldnews"}
    assert (info.account_id, info.name) == ("-1001234567890", "Herald News")
    assert info.metadata == {"chat_id": -1001234567890, "chat_username": "heraldnews", "bot_username": "herald_bot"}


@respx.mock
async def test_verify_with_a_revoked_token_is_auth():
    respx.post(f"{API}/getMe").respond(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await TelegramPlatform().verify({"bot_token": TOKEN}, {"chat_id": 1}, http)
    assert err.value.outcome is Outcome.AUTH


@pytest.mark.parametrize(
    ("content", "problems"),
    [
        (Content(text="a" * 4096), []),
        (Content(text="a" * 4097), ["telegram: text is 4097 characters; the limit is 4096"]),
        (Content(text="\U0001F600" * 2049), ["telegram: text is 4098 characters; the limit is 4096"]),  # UTF-16: 2 units each
        (Content(text="a" * 1024, media=(Media("image", PHOTO),)), []),
        (Content(text="a" * 1025, media=(Media("image", PHOTO),)),
         ["telegram: a caption is 1025 characters; the limit with media is 1024"]),
        (Content(text="x", media=tuple(Media("image", PHOTO) for _ in range(11))),
         ["telegram: 11 media items; an album holds at most 10"]),
    ],
)
def test_validate_text_caption_and_album_limits(content, problems):
    assert [p.message for p in TelegramPlatform().validate(content)] == problems
