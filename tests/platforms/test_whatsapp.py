"""The WhatsApp adapter against the Cloud API mocked with respx: messages per recipient, partial success, resume, errors."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome
from services.platforms.base import ACCOUNT, PlatformError, PublishRequest
from services.platforms.whatsapp import WhatsAppPlatform

MESSAGES = "https://graph.facebook.com/v25.0/pn1/messages"
IMAGE = Media("image", "https://cdn.example.com/a.jpg")
VIDEO = Media("video", "https://cdn.example.com/b.mp4")
CHANNEL = {"phone_number_id": "pn1", "recipients": ["15550001", "15550002", "15550003"]}


def request(content: Content, *, metadata=None, deadline=None, resume=None) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(), content=content, scheduled_at=None, timezone="UTC",
        channel_id=uuid.uuid4(), account_id="pn1", metadata=metadata or CHANNEL, credentials={"access_token": "sys"},
        idempotency_key="herald-k", deadline=deadline, resume=resume,
    )


def accepted(wamid: str) -> httpx.Response:
    return httpx.Response(200, json={"messaging_product": "whatsapp", "contacts": [{"input": "x", "wa_id": "x"}],
                                     "messages": [{"id": wamid}]})


def refused(code: int, message: str = "refused", status: int = 400) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": "OAuthException", "code": code,
                                                  "error_data": {"messaging_product": "whatsapp", "details": message}}})


def bodies(route) -> list[dict]:
    return [json.loads(c.request.content) for c in route.calls]


@pytest.fixture
def platform():
    return WhatsAppPlatform("https://graph.facebook.com")


@respx.mock
async def test_text_is_one_message_to_each_recipient(platform):
    route = respx.post(MESSAGES).mock(side_effect=[accepted("w1"), accepted("w2"), accepted("w3")])
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Open today")), http)
    assert (published.platform_post_id, published.url) == ("w1", None)
    assert bodies(route) == [
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to, "type": "text",
         "text": {"body": "Open today", "preview_url": True}} for to in CHANNEL["recipients"]]
    assert route.calls.last.request.headers["authorization"] == "Bearer sys"


@respx.mock
async def test_media_is_one_message_per_item_with_the_text_as_first_caption(platform):
    route = respx.post(MESSAGES).mock(side_effect=[accepted("w1"), accepted("w2")])
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="New menu", media=(IMAGE, VIDEO)),
                                       metadata={"phone_number_id": "pn1", "recipients": ["15550001"]}), http)
    base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "15550001"}
    assert bodies(route) == [{**base, "type": "image", "image": {"link": IMAGE.url, "caption": "New menu"}},
                             {**base, "type": "video", "video": {"link": VIDEO.url}}]


@respx.mock
async def test_recipient_outside_the_24_hour_window_fails_alone_and_says_what_to_do(platform):
    respx.post(MESSAGES).mock(side_effect=[
        accepted("w1"), refused(131047, "Re-engagement message"), accepted("w3")])
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi")), http)
    assert err.value.outcome is Outcome.PERMANENT
    assert err.value.details["sent"] == {"15550001": ["w1"], "15550003": ["w3"]}
    assert err.value.details["failed"] == {"15550002": "graph_131047"}
    assert err.value.message.startswith("whatsapp: sent to 2 of 3 recipients; ")
    assert "15550002" in err.value.message and "ask them to message you first" in err.value.message


@respx.mock
async def test_throttle_stops_the_run_and_records_who_got_it(platform):
    respx.post(MESSAGES).mock(side_effect=[accepted("w1"), refused(130429, "Rate limit hit")])
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi")), http)
    assert err.value.outcome is Outcome.RATE_LIMITED
    assert err.value.details["sent"] == {"15550001": ["w1"]} and err.value.details["failed"] == {}


@pytest.mark.parametrize(
    ("response", "wait"),
    [
        # the sending number's throughput (messages per second)
        (refused(130429, "(#130429) Rate limit hit"), None),
        # the number sent too often to this recipient
        (refused(131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit"), None),
        # the WhatsApp Business Account's limit, with the minutes Meta estimates until it lifts
        (httpx.Response(400, json={"error": {"message": "(#80007) Rate limit issues", "type": "OAuthException",
                                             "code": 80007}},
                        headers={"X-Business-Use-Case-Usage": json.dumps(
                            {"waba1": [{"type": "whatsapp_business_management", "call_count": 100,
                                        "estimated_time_to_regain_access": 5}]})}), 300),
        # the app's limit: the system-user token's app is the channel owner's, not one Herald shares
        (refused(4, "(#4) Application request limit reached"), None),
    ],
)
@respx.mock
async def test_throttles_pause_only_this_channel(platform, response, wait):
    respx.post(MESSAGES).mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi")), http)
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (Outcome.RATE_LIMITED, ACCOUNT, wait)


@respx.mock
async def test_resume_sends_only_the_missing_messages_never_what_was_accepted(platform):
    route = respx.post(MESSAGES).mock(side_effect=[accepted("w2b"), accepted("w3a"), accepted("w3b")])
    resume = {"sent": {"15550001": ["w1a", "w1b"], "15550002": ["w2a"]}}
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="two", media=(IMAGE, VIDEO)), resume=resume), http)
    assert published.platform_post_id == "w1a"
    assert [(b["to"], b["type"]) for b in bodies(route)] == [
        ("15550002", "video"), ("15550003", "image"), ("15550003", "video")]


@respx.mock
async def test_lost_answer_is_unknown_with_what_was_accepted_before(platform):
    respx.post(MESSAGES).mock(side_effect=[accepted("w1"), httpx.ReadTimeout("lost")])
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi")), http)
    assert err.value.outcome is Outcome.UNKNOWN and err.value.details["sent"] == {"15550001": ["w1"]}


@respx.mock
async def test_deadline_stops_before_the_next_message_and_is_resumable(platform):
    route = respx.post(MESSAGES)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi"), deadline=time.monotonic() - 1), http)
    assert (err.value.outcome, err.value.code) == (Outcome.TRANSIENT, "deadline_reached")
    assert not route.called and err.value.details["sent"] == {}


@pytest.mark.parametrize(
    ("response", "outcome", "says"),
    [
        (refused(132001, "Template name does not exist in the translation"), Outcome.PERMANENT, "approved template"),
        (refused(131026, "Message undeliverable"), Outcome.PERMANENT, "cannot deliver"),
        (refused(131051, "Unsupported message type"), Outcome.PERMANENT, "Unsupported"),
        (refused(131052, "Media download error"), Outcome.PERMANENT, "download"),
        (refused(100, "Invalid parameter"), Outcome.PERMANENT, "Invalid parameter"),
        (refused(131056, "Pair rate limit hit"), Outcome.RATE_LIMITED, "Pair rate"),
        (refused(131048, "Spam rate limit hit"), Outcome.RATE_LIMITED, "Spam"),
        (refused(80008, "Too many calls"), Outcome.RATE_LIMITED, "Too many"),
        (refused(131000, "Something went wrong", 500), Outcome.TRANSIENT, "went wrong"),
        (refused(2, "Service unavailable", 503), Outcome.TRANSIENT, "unavailable"),
        (refused(190, "Error validating access token", 401), Outcome.AUTH, "access token"),
        (refused(10, "Permission denied", 403), Outcome.AUTH, "Permission"),
        (refused(200, "Permission error", 403), Outcome.AUTH, "Permission"),
    ],
)
@respx.mock
async def test_cloud_api_errors_are_classified(platform, response, outcome, says):
    respx.post(MESSAGES).mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi"), metadata={"phone_number_id": "pn1", "recipients": ["15550001"]}), http)
    assert err.value.outcome is outcome and says in err.value.message


@pytest.mark.parametrize(
    ("content", "metadata", "field", "says"),
    [
        (Content(text="x" * 4097), CHANNEL, "content.text", "text is 4097 characters; the limit is 4096"),
        (Content(text="x" * 1025, media=(IMAGE,)), CHANNEL, "content.text", "caption is 1025 characters; the limit is 1024"),
        (Content(), CHANNEL, "content.text", "text or media"),
        (Content(media=(Media("audio", "https://a/b.mp3"),)), CHANNEL, "content.media", "images or videos"),
        (Content(text="hi"), {"phone_number_id": "pn1", "recipients": []}, "metadata.recipients", "list of phone numbers"),
        (Content(text="hi"), {"recipients": ["1"]}, "metadata.phone_number_id", "phone_number_id"),
    ],
)
def test_validate_rejects_what_whatsapp_would(platform, content, metadata, field, says):
    problems = platform.validate(content, metadata)
    assert [p.field for p in problems] == [field]
    assert problems[0].message.startswith("whatsapp: ") and says in problems[0].message


def test_validate_accepts_the_limits(platform):
    assert platform.validate(Content(text="x" * 4096), CHANNEL) == []
    assert platform.validate(Content(text="x" * 1024, media=(IMAGE, VIDEO)), CHANNEL) == []


async def test_publish_to_a_channel_without_recipients_is_permanent(platform):
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="hi"), metadata={"phone_number_id": "pn1"}), http)
    assert err.value.outcome is Outcome.PERMANENT


@respx.mock
async def test_verify_reads_the_business_number(platform):
    route = respx.get("https://graph.facebook.com/v25.0/pn1").respond(200, json={
        "display_phone_number": "+1 555-0000", "verified_name": "Bakery", "id": "pn1"})
    async with httpx.AsyncClient() as http:
        account = await platform.verify({"access_token": "sys"}, {"phone_number_id": "pn1"}, http)
    assert (account.account_id, account.name) == ("pn1", "Bakery")
    assert dict(route.calls.last.request.url.params) == {"fields": "display_phone_number,verified_name"}
    assert route.calls.last.request.headers["authorization"] == "Bearer sys"


@respx.mock
async def test_verify_with_a_wrong_token_is_auth(platform):
    respx.get("https://graph.facebook.com/v25.0/pn1").respond(401, json={"error": {"message": "Invalid OAuth access token", "code": 190}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.verify({"access_token": "bad"}, {"phone_number_id": "pn1"}, http)
    assert err.value.outcome is Outcome.AUTH


@respx.mock
async def test_through_the_engine_a_retry_never_messages_a_recipient_twice(postgres_harness):
    """A 500 after the first recipient: the next run sends to the other two only (the engine keeps
    the adapter's progress with the target and gives it back)."""
    from datetime import datetime, timedelta, timezone

    from cryptography.fernet import Fernet

    from services.domain.models import PostStatus
    from services.publishing.run import RunLimits, publish_due
    from services.security.crypto import TokenCipher
    from services.store.base import NewChannel, NewPost

    cipher = TokenCipher([Fernet.generate_key().decode()])
    store, user, now = postgres_harness.store, postgres_harness.new_user(), datetime.now(timezone.utc)
    channel = await store.create_channel(user, NewChannel(platform="whatsapp", account_id="pn1", name="shop",
                                                          credentials_encrypted=cipher.encrypt({"access_token": "sys"}),
                                                          metadata=CHANNEL))
    await store.create_post(user, NewPost(content=Content(text="Open today"), channel_ids=(channel.id,),
                                   status=PostStatus.SCHEDULED, scheduled_at=now))
    route = respx.post(MESSAGES).mock(side_effect=[accepted("w1"), refused(2, "Service temporarily unavailable", 500),
                                                   accepted("w2"), accepted("w3")])
    platforms = {"whatsapp": WhatsAppPlatform("https://graph.facebook.com")}
    async with httpx.AsyncClient() as http:
        first = await publish_due(store, platforms, cipher, http, RunLimits(), trigger="manual", now=now)
        second = await publish_due(store, platforms, cipher, http, RunLimits(), trigger="manual", now=now + timedelta(hours=1))
    assert (first.retry_scheduled, second.published) == (1, 1)
    assert [b["to"] for b in bodies(route)] == ["15550001", "15550002", "15550002", "15550003"]
