"""The TikTok adapter against open.tiktokapis.com mocked with respx: exact requests, chunked uploads,
status polling and resume, documented errors, lookup, OAuth.

Answers are shaped as developers.tiktok.com documents them (Content Posting API: creator_info/query,
video/init, content/init, status/fetch; OAuth v2 token): ``{"data": {...}, "error": {"code": "ok",
"message": "", "log_id": ...}}``, errors with the HTTP status and ``error.code`` the docs list.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome
from services.platforms import mediafile, tiktok
from services.platforms.base import PlatformError, PublishRequest
from services.platforms.tiktok import TikTokPlatform

API = "https://open.tiktokapis.com"
CREATOR = f"{API}/v2/post/publish/creator_info/query/"
VIDEO_INIT = f"{API}/v2/post/publish/video/init/"
PHOTO_INIT = f"{API}/v2/post/publish/content/init/"
STATUS = f"{API}/v2/post/publish/status/fetch/"
TOKEN = f"{API}/v2/oauth/token/"
UPLOAD = "https://open-upload.tiktokapis.com/video/?upload_id=67890&upload_token=Xza123"
VERIFIED_VIDEO = "https://media.herald.example/clips/sunset.mp4"
OTHER_VIDEO = "https://cdn.elsewhere.example/sunset.mp4"
PUBLISH_ID = "v_pub_url~v2.7433000000000000001"
POST_ID = 7433000000000000042
METADATA = {"username": "herald.app", "verified_domains": ["herald.example"]}
OK = {"code": "ok", "message": "", "log_id": "202611301200000000000000000001"}


def creator(**changes) -> dict:
    data = {"creator_avatar_url": "https://p16.tiktokcdn.example/a.jpeg", "creator_username": "herald.app",
            "creator_nickname": "Herald", "privacy_level_options": ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"],
            "comment_disabled": False, "duet_disabled": False, "stitch_disabled": False, "max_video_post_duration_sec": 300}
    return {"data": {**data, **changes}, "error": OK}


def status(state: str, **extra) -> httpx.Response:
    return httpx.Response(200, json={"data": {"status": state, **extra}, "error": OK})


def complete(*ids: int) -> httpx.Response:
    return status("PUBLISH_COMPLETE", publicaly_available_post_id=list(ids))


def error(http_status: int, code: str, message: str = "refused") -> httpx.Response:
    return httpx.Response(http_status, json={"data": {}, "error": {"code": code, "message": message,
                                                                     "log_id": "202611301200000000000000000009"}})


def video(url: str = VERIFIED_VIDEO, text: str = "Sunset #herald", **options) -> Content:
    return Content(text=text, media=(Media("video", url),), platforms={"tiktok": options} if options else {})


def photos(n: int = 2, **options) -> Content:
    media = tuple(Media("image", f"https://media.herald.example/p{i}.jpg") for i in range(n))
    return Content(text="Our week", media=media, platforms={"tiktok": options} if options else {})


def request(content: Content, *, deadline: float | None = None, resume=None, metadata=None,
            credentials=None) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(), content=content,
        scheduled_at=datetime(2030, 1, 1, 9, tzinfo=timezone.utc), timezone="UTC", channel_id=uuid.uuid4(),
        account_id="open-id-1", metadata=METADATA if metadata is None else metadata,
        credentials=credentials or {"access_token": "act.1", "refresh_token": "rft.1"}, idempotency_key="herald-k",
        deadline=deadline, resume=resume,
    )


@pytest.fixture
def platform(monkeypatch):
    async def public(url, *, allow_private, field="metadata.url"):  # no DNS in tests: the URL rules have their own
        return url
    monkeypatch.setattr(mediafile, "check_public_url", public)
    return TikTokPlatform(client_id="ck", client_secret="cs", poll_seconds=3)


@pytest.fixture
def sleeps(monkeypatch):
    waited: list[float] = []

    async def fake_sleep(seconds):
        waited.append(seconds)
    monkeypatch.setattr(tiktok, "_sleep", fake_sleep)
    return waited


def body(route) -> dict:
    return json.loads(route.calls.last.request.content)


async def publish(platform, req):
    async with httpx.AsyncClient() as http:
        return await platform.publish(req, http)


async def failure(platform, req) -> PlatformError:
    with pytest.raises(PlatformError) as err:
        await publish(platform, req)
    return err.value


# --- validate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content, metadata, field, fragment", [
    # text alone cannot be posted
    (Content(text="hi"), METADATA, "content.media", "not text alone"),
    # a video goes alone
    (Content(media=(Media("video", VERIFIED_VIDEO), Media("image", "https://media.herald.example/a.jpg"))), METADATA,
     "content.media", "only media"),
    # 36 photos
    (photos(36), METADATA, "content.media", "at most 35"),
    # a video caption counts UTF-16 units: 1,100 emoji are 2,200 units, one more is over
    (video(text="😀" * 1101), METADATA, "content.text", "at most 2200"),
    # a photo post's description takes 4,000
    (Content(text="x" * 4001, media=photos(1).media), METADATA, "content.text", "at most 4000"),
    # photos are pulled: their host must be verified
    (photos(1), {"username": "h"}, "content.media[0].url", "verified_domains"),
    # PNG photos are refused by TikTok
    (Content(media=(Media("image", "https://media.herald.example/a.png"),)), METADATA, "content.media[0].url", "JPEG"),
    # an unknown privacy level
    (video(privacy_level="FRIENDS"), METADATA, "content.platforms.tiktok.privacy_level", "must be one of"),
    # a title is a photo post's, at most 90
    (photos(1, title="t" * 91), METADATA, "content.platforms.tiktok.title", "at most 90"),
    # duets are a video's
    (photos(1, disable_duet=True), METADATA, "content.platforms.tiktok.disable_duet", "videos only"),
])
def test_validate_names_what_tiktok_refuses(content, metadata, field, fragment):
    problems = TikTokPlatform().validate(content, metadata)
    assert [p.field for p in problems] == [field], problems
    assert fragment in problems[0].message and problems[0].message.startswith("tiktok:")


@pytest.mark.parametrize("content", [
    video(text="😀" * 1100),  # exactly 2,200 units
    video(url=OTHER_VIDEO),  # an unverified video host is uploaded instead
    photos(35, title="Week", disable_comment=True),
])
def test_validate_accepts_what_tiktok_takes(content):
    assert TikTokPlatform().validate(content, METADATA) == []


# --- publish: video -------------------------------------------------------------------------


@respx.mock
async def test_video_on_a_verified_domain_is_pulled_from_its_url_and_polled_until_live(platform, sleeps):
    info = respx.post(CREATOR).respond(200, json=creator())
    init = respx.post(VIDEO_INIT).respond(200, json={"data": {"publish_id": PUBLISH_ID}, "error": OK})
    poll = respx.post(STATUS).mock(side_effect=[status("PROCESSING_DOWNLOAD", downloaded_bytes=512),
                                                complete(POST_ID)])
    req = request(video(privacy_level="PUBLIC_TO_EVERYONE", disable_duet=True), deadline=time.monotonic() + 60)

    published = await publish(platform, req)

    assert (published.platform_post_id, published.url) == (str(POST_ID), f"https://www.tiktok.com/@herald.app/video/{POST_ID}")
    assert info.calls.last.request.headers["authorization"] == "Bearer act.1"
    assert info.calls.last.request.content in (b"", b"{}")
    assert init.calls.last.request.headers["content-type"] == "application/json; charset=UTF-8"
    assert body(init) == {"post_info": {"privacy_level": "PUBLIC_TO_EVERYONE", "disable_comment": False,
                                        "disable_duet": True, "disable_stitch": False, "title": "Sunset #herald"},
                          "source_info": {"source": "PULL_FROM_URL", "video_url": VERIFIED_VIDEO}}
    assert [json.loads(c.request.content) for c in poll.calls] == [{"publish_id": PUBLISH_ID}] * 2
    assert sleeps == [3]
    assert req.progress["publish_id"] == PUBLISH_ID  # recorded as soon as it existed


@respx.mock
async def test_video_elsewhere_is_downloaded_and_uploaded_in_chunks_by_tiktoks_rules(platform, sleeps, monkeypatch):
    monkeypatch.setattr(tiktok, "CHUNK_BYTES", 4)  # 10 bytes: 2 chunks (10 // 4), the last takes the remainder
    respx.get(OTHER_VIDEO).respond(200, content=b"0123456789", headers={"Content-Type": "video/mp4"})
    respx.post(CREATOR).respond(200, json=creator())
    init = respx.post(VIDEO_INIT).respond(200, json={"data": {"publish_id": PUBLISH_ID, "upload_url": UPLOAD}, "error": OK})
    put = respx.put(UPLOAD).mock(side_effect=[httpx.Response(206), httpx.Response(201)])
    respx.post(STATUS).mock(side_effect=[complete()])
    req = request(video(url=OTHER_VIDEO), deadline=time.monotonic() + 60)

    published = await publish(platform, req)

    assert body(init)["source_info"] == {"source": "FILE_UPLOAD", "video_size": 10, "chunk_size": 4, "total_chunk_count": 2}
    assert body(init)["post_info"]["privacy_level"] == "SELF_ONLY"  # none chosen: the level every app may use
    sent = [(c.request.headers["content-range"], c.request.headers["content-type"], c.request.content) for c in put.calls]
    assert sent == [("bytes 0-3/10", "video/mp4", b"0123"), ("bytes 4-9/10", "video/mp4", b"456789")]
    assert all(c.request.headers["content-length"] == str(len(c.request.content)) for c in put.calls)
    assert "authorization" not in put.calls[0].request.headers
    # a private post gets no public id: the publish_id stands in, with no URL
    assert (published.platform_post_id, published.url) == (PUBLISH_ID, None)
    assert req.progress == {"publish_id": PUBLISH_ID, "upload_url": UPLOAD, "video_size": 10, "chunks_done": 2,
                            "uploaded": True}


@pytest.mark.parametrize("size, expected", [
    (3 * 1024 * 1024, (3 * 1024 * 1024, 1)),  # under 5 MB: sent whole
    (10 * 1024 * 1024, (10 * 1024 * 1024, 1)),  # one chunk exactly
    (25 * 1024 * 1024, (10 * 1024 * 1024, 2)),  # 25 // 10 = 2; the last chunk carries 15 MB
])
def test_chunk_sizes_follow_tiktoks_rules(size, expected):
    chunk, count = tiktok._chunks(size)
    assert (chunk, count) == expected
    assert 1 <= count <= 1000 and (count == 1 or 5 * 1024 * 1024 <= chunk <= 64 * 1024 * 1024)
    assert size - chunk * (count - 1) <= 128 * 1024 * 1024


@respx.mock
async def test_the_publish_id_is_saved_with_the_target_before_the_first_status_read(platform, sleeps):
    """A run killed outright after init still leaves the publish_id: the next attempt polls it, never inits again."""
    events: list[str] = []

    async def checkpoint(progress: dict) -> None:
        events.append(f"saved {progress['publish_id']}")

    respx.post(CREATOR).respond(200, json=creator())
    respx.post(VIDEO_INIT).mock(side_effect=lambda _: events.append("init") or httpx.Response(
        200, json={"data": {"publish_id": PUBLISH_ID}, "error": OK}))
    respx.post(STATUS).mock(side_effect=lambda _: events.append("status") or complete(POST_ID))
    req = dataclasses.replace(request(video(), deadline=time.monotonic() + 60), checkpoint=checkpoint)
    await publish(platform, req)
    assert events == ["init", f"saved {PUBLISH_ID}", "status"]


@respx.mock
async def test_processing_past_the_deadline_is_resumable_with_the_publish_id(platform, sleeps):
    respx.post(CREATOR).respond(200, json=creator())
    respx.post(VIDEO_INIT).respond(200, json={"data": {"publish_id": PUBLISH_ID}, "error": OK})
    respx.post(STATUS).mock(side_effect=[status("PROCESSING_DOWNLOAD")])
    req = request(video(), deadline=time.monotonic() + 1)  # less than one poll interval left

    err = await failure(platform, req)

    assert (err.outcome, err.code) == (Outcome.TRANSIENT, "still_processing")
    assert err.details["publish_id"] == PUBLISH_ID and req.progress["publish_id"] == PUBLISH_ID
    assert sleeps == []


@respx.mock
async def test_a_resumed_attempt_polls_the_saved_publish_id_and_never_inits_again(platform, sleeps):
    info = respx.post(CREATOR).respond(200, json=creator())
    init = respx.post(VIDEO_INIT).respond(200, json={"data": {"publish_id": "another"}, "error": OK})
    poll = respx.post(STATUS).mock(side_effect=[status("PROCESSING_UPLOAD"), complete(POST_ID)])

    published = await publish(platform, request(video(), deadline=time.monotonic() + 60,
                                                resume={"publish_id": PUBLISH_ID}))

    assert published.platform_post_id == str(POST_ID)
    assert not init.called and not info.called
    assert [json.loads(c.request.content) for c in poll.calls] == [{"publish_id": PUBLISH_ID}] * 2


@respx.mock
async def test_a_cut_off_upload_is_finished_from_the_next_chunk_not_restarted(platform, sleeps, monkeypatch):
    monkeypatch.setattr(tiktok, "CHUNK_BYTES", 4)
    respx.get(OTHER_VIDEO).respond(200, content=b"0123456789", headers={"Content-Type": "video/mp4"})
    init = respx.post(VIDEO_INIT).respond(200, json={"data": {"publish_id": "another", "upload_url": UPLOAD}, "error": OK})
    put = respx.put(UPLOAD).respond(201)
    respx.post(STATUS).mock(side_effect=[status("PROCESSING_UPLOAD", uploaded_bytes=4), complete()])
    resume = {"publish_id": PUBLISH_ID, "upload_url": UPLOAD, "video_size": 10, "chunks_done": 1, "uploaded": False}

    published = await publish(platform, request(video(url=OTHER_VIDEO), deadline=time.monotonic() + 60, resume=resume))

    assert published.platform_post_id == PUBLISH_ID and not init.called
    assert [c.request.headers["content-range"] for c in put.calls] == ["bytes 4-9/10"]


@respx.mock
async def test_a_saved_publish_id_that_failed_is_replaced_by_a_new_post(platform, sleeps):
    respx.post(CREATOR).respond(200, json=creator())
    init = respx.post(VIDEO_INIT).respond(200, json={"data": {"publish_id": "v_pub_url~v2.2"}, "error": OK})
    respx.post(STATUS).mock(side_effect=[status("FAILED", fail_reason="file_format_check_failed"), complete()])

    published = await publish(platform, request(video(), deadline=time.monotonic() + 60,
                                                resume={"publish_id": PUBLISH_ID}))

    assert init.call_count == 1 and published.platform_post_id == "v_pub_url~v2.2"


@respx.mock
async def test_processing_that_fails_is_permanent_with_tiktoks_reason(platform, sleeps):
    respx.post(CREATOR).respond(200, json=creator())
    respx.post(VIDEO_INIT).respond(200, json={"data": {"publish_id": PUBLISH_ID}, "error": OK})
    respx.post(STATUS).mock(side_effect=[status("FAILED", fail_reason="duration_check_failed")])

    err = await failure(platform, request(video(), deadline=time.monotonic() + 60))

    assert (err.outcome, err.code) == (Outcome.PERMANENT, "publish_failed")
    assert "duration_check_failed" in err.message and err.details["publish_id"] == PUBLISH_ID


# --- creator info ---------------------------------------------------------------------------


@respx.mock
@pytest.mark.parametrize("options, info, field", [
    # an unaudited app's creator info offers SELF_ONLY only
    ({"privacy_level": "PUBLIC_TO_EVERYONE"}, {"privacy_level_options": ["SELF_ONLY"]}, "privacy_level"),
    # comments asked on where the creator turned them off
    ({"disable_comment": False}, {"comment_disabled": True}, "disable_comment"),
    ({"disable_stitch": False}, {"stitch_disabled": True}, "disable_stitch"),
])
async def test_an_option_the_creator_cannot_use_is_permanent_and_named(platform, options, info, field):
    respx.post(CREATOR).respond(200, json=creator(**info))
    init = respx.post(VIDEO_INIT)

    err = await failure(platform, request(video(**options)))

    assert (err.outcome, err.code) == (Outcome.PERMANENT, "option_not_allowed")
    assert err.details["field"] == f"content.platforms.tiktok.{field}" and field in err.message
    assert not init.called


@respx.mock
async def test_an_option_not_given_follows_the_creators_setting(platform, sleeps):
    respx.post(CREATOR).respond(200, json=creator(duet_disabled=True))
    init = respx.post(VIDEO_INIT).respond(200, json={"data": {"publish_id": PUBLISH_ID}, "error": OK})
    respx.post(STATUS).mock(side_effect=[complete()])

    await publish(platform, request(video(), deadline=time.monotonic() + 60))

    assert body(init)["post_info"]["disable_duet"] is True


# --- publish: photos ------------------------------------------------------------------------


@respx.mock
async def test_photos_are_posted_by_content_init_pulled_from_their_urls(platform, sleeps):
    respx.post(CREATOR).respond(200, json=creator())
    init = respx.post(PHOTO_INIT).respond(200, json={"data": {"publish_id": "p_pub_url~v2.1"}, "error": OK})
    respx.post(STATUS).mock(side_effect=[complete(POST_ID)])
    content = photos(2, title="Week 48", privacy_level="MUTUAL_FOLLOW_FRIENDS", disable_comment=True)

    published = await publish(platform, request(content, deadline=time.monotonic() + 60))

    assert body(init) == {
        "media_type": "PHOTO", "post_mode": "DIRECT_POST",
        "post_info": {"privacy_level": "MUTUAL_FOLLOW_FRIENDS", "disable_comment": True, "title": "Week 48",
                      "description": "Our week", "auto_add_music": True},
        "source_info": {"source": "PULL_FROM_URL", "photo_cover_index": 0,
                        "photo_images": ["https://media.herald.example/p0.jpg", "https://media.herald.example/p1.jpg"]}}
    assert published.url == f"https://www.tiktok.com/@herald.app/photo/{POST_ID}"


# --- errors ---------------------------------------------------------------------------------


@respx.mock
@pytest.mark.parametrize("answer, outcome, field", [
    (error(401, "access_token_invalid", "The access token is invalid or not found in the request."), Outcome.AUTH, None),
    (error(401, "scope_not_authorized", "The user did not authorize the scope required."), Outcome.AUTH, None),
    (error(429, "rate_limit_exceeded", "API rate limit was exceeded."), Outcome.RATE_LIMITED, None),
    (error(403, "spam_risk_too_many_posts", "The daily post cap from the API is reached."), Outcome.RATE_LIMITED, None),
    (error(400, "invalid_params", "title is too long"), Outcome.PERMANENT, None),
    (error(403, "privacy_level_option_mismatch", "privacy_level is not in privacy_level_options"), Outcome.PERMANENT,
     "content.platforms.tiktok.privacy_level"),
    (error(403, "url_ownership_unverified", "Please review our URL ownership verification rules."), Outcome.PERMANENT,
     "metadata.verified_domains"),
    (error(403, "unaudited_client_can_only_post_to_private_accounts", "Unaudited clients post privately."),
     Outcome.PERMANENT, None),
    (error(500, "internal_error", "Something went wrong."), Outcome.TRANSIENT, None),
])
async def test_documented_init_errors_are_classified(platform, answer, outcome, field):
    respx.post(CREATOR).respond(200, json=creator())
    respx.post(VIDEO_INIT).mock(return_value=answer)

    err = await failure(platform, request(video()))

    assert err.outcome is outcome and err.code == answer.json()["error"]["code"]
    assert err.details.get("field") == field and "publish_id" not in err.details
    assert err.details["log_id"] == "202611301200000000000000000009"
    if outcome is Outcome.RATE_LIMITED:
        assert err.retry_after_seconds and err.retry_after_seconds >= 60


@respx.mock
async def test_a_lost_pull_init_answer_is_unknown_and_a_lost_upload_init_is_transient(platform):
    respx.post(CREATOR).respond(200, json=creator())
    respx.post(VIDEO_INIT).mock(side_effect=httpx.ReadTimeout("lost"))
    respx.get(OTHER_VIDEO).respond(200, content=b"0123", headers={"Content-Type": "video/mp4"})

    pulled = await failure(platform, request(video()))  # TikTok may already be pulling it
    uploaded = await failure(platform, request(video(url=OTHER_VIDEO)))  # without its bytes it never goes live

    assert (pulled.outcome, uploaded.outcome) == (Outcome.UNKNOWN, Outcome.TRANSIENT)


# --- lookup ---------------------------------------------------------------------------------


@respx.mock
async def test_lookup_settles_a_lost_answer_through_the_saved_publish_id(platform):
    poll = respx.post(STATUS).mock(side_effect=[complete(POST_ID), status("PROCESSING_DOWNLOAD")])
    async with httpx.AsyncClient() as http:
        found = await platform.lookup(request(video(), resume={"publish_id": PUBLISH_ID}), http)
        pending = await platform.lookup(request(video(), resume={"publish_id": PUBLISH_ID}), http)
        with pytest.raises(PlatformError) as err:
            await platform.lookup(request(video()), http)
    assert found is not None and found.platform_post_id == str(POST_ID)
    assert pending is None  # not live yet: publishing again resumes the same publish_id
    assert (err.value.outcome, err.value.code) == (Outcome.UNKNOWN, "no_publish_recorded")
    assert body(poll) == {"publish_id": PUBLISH_ID}


# --- OAuth ----------------------------------------------------------------------------------


def test_authorize_url_is_login_kit_v2_with_pkce():
    url = TikTokPlatform(client_id="ck", client_secret="cs").authorize_url(
        state="st", redirect_uri="https://herald.example/api/v1/channels/callback/tiktok", code_challenge="ch")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://www.tiktok.com/v2/auth/authorize/"
    assert parse_qs(parts.query) == {
        "client_key": ["ck"], "scope": ["user.info.basic,video.publish"], "response_type": ["code"],
        "redirect_uri": ["https://herald.example/api/v1/channels/callback/tiktok"], "state": ["st"],
        "code_challenge": ["ch"], "code_challenge_method": ["S256"]}


def test_authorize_without_a_configured_app_is_refused():
    with pytest.raises(PlatformError) as err:
        TikTokPlatform().authorize_url(state="s", redirect_uri="https://h.example/cb", code_challenge="c")
    assert err.value.code == "oauth_not_configured" and "TIKTOK_CLIENT_KEY" in err.value.message


@respx.mock
async def test_code_exchange_sends_the_verifier_and_reads_the_creator(platform, answered_at):
    token = respx.post(TOKEN).respond(200, json={
        "access_token": "act.2", "expires_in": 7200, "open_id": "open-id-1", "refresh_expires_in": 15552000,
        "refresh_token": "rft.2", "scope": "user.info.basic,video.publish", "token_type": "Bearer"})
    info = respx.post(CREATOR).respond(200, json=creator())
    async with httpx.AsyncClient() as http:
        tokens, account = await platform.exchange_code(code="c0de", redirect_uri="https://h.example/cb",
                                                       code_verifier="v3rifier", http=http)
    assert token.calls.last.request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token.calls.last.request.content.decode()) == {
        "client_key": ["ck"], "client_secret": ["cs"], "code": ["c0de"], "grant_type": ["authorization_code"],
        "redirect_uri": ["https://h.example/cb"], "code_verifier": ["v3rifier"]}
    assert info.calls.last.request.headers["authorization"] == "Bearer act.2"
    assert tokens.credentials == {"access_token": "act.2", "refresh_token": "rft.2", "open_id": "open-id-1",
                                  "scope": "user.info.basic,video.publish"}
    assert (tokens.expires_at - answered_at).total_seconds() == 7200
    assert (account.account_id, account.name, account.metadata) == ("open-id-1", "Herald", {"username": "herald.app"})


@respx.mock
async def test_refresh_rotates_the_refresh_token(platform):
    token = respx.post(TOKEN).respond(200, json={"access_token": "act.3", "expires_in": 7200, "open_id": "open-id-1",
                                                 "refresh_expires_in": 15552000, "refresh_token": "rft.3",
                                                 "scope": "video.publish", "token_type": "Bearer"})
    async with httpx.AsyncClient() as http:
        tokens = await platform.refresh({"access_token": "act.1", "refresh_token": "rft.1", "open_id": "open-id-1"},
                                        {}, http)
    assert parse_qs(token.calls.last.request.content.decode()) == {
        "client_key": ["ck"], "client_secret": ["cs"], "grant_type": ["refresh_token"], "refresh_token": ["rft.1"]}
    assert tokens.credentials["refresh_token"] == "rft.3" and tokens.credentials["access_token"] == "act.3"


@respx.mock
async def test_a_refused_refresh_is_auth(platform):
    respx.post(TOKEN).respond(400, json={"error": "invalid_grant", "error_description": "Refresh token is invalid or expired.",
                                         "log_id": "2026113012000000000000000000aa"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.refresh({"access_token": "a", "refresh_token": "old"}, {}, http)
    assert (err.value.outcome, err.value.code) == (Outcome.AUTH, "token_refused")
    assert "Refresh token is invalid" in err.value.message
