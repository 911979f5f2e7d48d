"""The YouTube adapter against Google mocked with respx: the resumable videos.insert upload (session,
chunks, 308s, the finished video), resuming a saved session, Google's errors, OAuth and lookup.

``Session`` answers a session URI the way the resumable upload protocol documents
(developers.google.com/youtube/v3/guides/using_resumable_upload_protocol): a PUT's bytes are kept
(all, or ``keep`` of them), a 308 names what the session holds in ``Range: bytes=0-N`` (no header
when it holds nothing), and the PUT that completes the declared total gets 201 with the video.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome
from services.platforms import youtube
from services.platforms.base import ACCOUNT, APP, MetricsRequest, PlatformError, PublishRequest, QuotaSpend
from services.platforms.youtube import CHUNK_UNIT, YouTubePlatform, seconds_to_quota_reset, tags_length
from tests.platforms.conftest import assert_metrics_call_nothing_past_the_deadline

API = "https://www.googleapis.com"
UPLOAD = f"{API}/upload/youtube/v3/videos"
SESSION = f"{UPLOAD}?uploadType=resumable&upload_id=xa298sd_f&part=snippet,status"
TOKEN = "https://oauth2.googleapis.com/token"
VIDEO_URL = "https://cdn.example.com/launch.mp4"
VIDEO = bytes(range(256)) * (CHUNK_UNIT * 5 // 2 // 256)  #: 2.5 chunks of 256 KiB: 655,360 bytes
VIDEO_ID = "dQw4w9WgXcQ"
CHANNEL = "UC_x5XG1OV2P6uZZ5FSM9Ttw"
UPLOADS = "UU_x5XG1OV2P6uZZ5FSM9Ttw"
OPTIONS = {"title": "Launch day", "description": "How we shipped it.", "tags": ["launch", "behind the scenes"],
           "privacy_status": "private", "publish_at": "2030-01-02T17:00:00Z", "made_for_kids": False,
           "category_id": "28"}


class Session:
    """One upload session URI, answering as Google's resumable protocol does."""

    def __init__(self, held: bytes = b"", *, keep: int | None = None):
        self.data = bytearray(held)
        self.keep = keep  #: the most bytes one PUT adds (a 308 that kept part of a chunk)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        spec, _, total = request.headers["content-range"].removeprefix("bytes ").partition("/")
        if spec != "*":
            start, end = (int(n) for n in spec.split("-"))
            assert start == len(self.data) and end - start + 1 == len(request.content)
            self.data += request.content[:self.keep] if self.keep else request.content
        else:
            assert request.content == b""
        if total != "*" and len(self.data) == int(total):
            return httpx.Response(201, json={"kind": "youtube#video", "id": VIDEO_ID,
                                             "snippet": {"title": "Launch day"}, "status": {"uploadStatus": "uploaded"}})
        return httpx.Response(308, headers={"Range": f"bytes=0-{len(self.data) - 1}"} if self.data else {})


def media_host(request: httpx.Request) -> httpx.Response:
    """A CDN that honours ``Range: bytes=N-`` with a 206."""
    wanted = request.headers.get("range")
    if not wanted:
        return httpx.Response(200, content=VIDEO, headers={"Content-Type": "video/mp4"})
    start = int(wanted.removeprefix("bytes=").rstrip("-"))
    return httpx.Response(206, content=VIDEO[start:], headers={
        "Content-Type": "video/mp4", "Content-Range": f"bytes {start}-{len(VIDEO) - 1}/{len(VIDEO)}"})


def google_error(status: int, reason: str, message: str, domain: str = "youtube.video") -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": status, "message": message,
                                                  "errors": [{"message": message, "domain": domain, "reason": reason}]}})


def request(content: Content | None = None, *, resume=None, deadline=None, checkpoint=None, metadata=None,
            first_attempt_at=None, spend_quota=None) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(),
        content=content or Content(text="Launch day\nHow we shipped it.", media=(Media("video", VIDEO_URL),)),
        scheduled_at=None, timezone="UTC", channel_id=uuid.uuid4(), account_id=CHANNEL, metadata=metadata or {},
        credentials={"access_token": "ya29.tok", "refresh_token": "1//refresh"}, idempotency_key="herald-k",
        resume=resume, deadline=deadline, checkpoint=checkpoint, first_attempt_at=first_attempt_at,
        spend_quota=spend_quota)


def with_options(**opts) -> Content:
    return Content(text="fallback text", media=(Media("video", VIDEO_URL),), platforms={"youtube": {**OPTIONS, **opts}})


@pytest.fixture
def platform(monkeypatch):
    async def public(url, *, allow_private, field="metadata.url"):  # no DNS in tests: the URL rules have their own
        return url
    monkeypatch.setattr(youtube, "check_public_url", public)
    return YouTubePlatform(client_id="cid.apps.googleusercontent.com", client_secret="gsecret", chunk_bytes=CHUNK_UNIT)


def puts(route) -> list[tuple[str, int]]:
    return [(c.request.headers["content-range"], len(c.request.content)) for c in route.calls]


# --- the upload ------------------------------------------------------------------------------


@respx.mock
async def test_upload_opens_a_session_with_the_metadata_then_puts_the_bytes_in_chunks(platform):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    start = respx.post(UPLOAD).respond(200, headers={"Location": SESSION})
    session = Session()
    chunks = respx.put(SESSION).mock(side_effect=session)
    saved = []

    async def checkpoint(progress):
        saved.append((dict(progress), len(chunks.calls)))

    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(with_options(), checkpoint=checkpoint), http)

    assert (published.platform_post_id, published.url, published.http_status) == (
        VIDEO_ID, f"https://www.youtube.com/watch?v={VIDEO_ID}", 201)
    sent = start.calls.last.request
    assert parse_qs(urlsplit(str(sent.url)).query) == {"uploadType": ["resumable"], "part": ["snippet,status"]}
    assert sent.headers["authorization"] == "Bearer ya29.tok"
    assert sent.headers["x-upload-content-length"] == str(len(VIDEO))
    assert sent.headers["x-upload-content-type"] == "video/mp4"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {
        "snippet": {"title": "Launch day", "description": "How we shipped it.", "tags": ["launch", "behind the scenes"],
                    "categoryId": "28"},
        "status": {"privacyStatus": "private", "selfDeclaredMadeForKids": False, "publishAt": "2030-01-02T17:00:00Z"}}
    assert puts(chunks) == [("bytes 0-262143/655360", CHUNK_UNIT), ("bytes 262144-524287/655360", CHUNK_UNIT),
                            ("bytes 524288-655359/655360", CHUNK_UNIT // 2)]
    assert all(c.request.headers["authorization"] == "Bearer ya29.tok" and c.request.headers["content-type"] == "video/mp4"
               for c in chunks.calls)
    assert bytes(session.data) == VIDEO
    # the session was saved with the target before its first byte went out
    assert saved == [({"session_uri": SESSION, "size": len(VIDEO), "content_type": "video/mp4", "confirmed": 0}, 0)]


@respx.mock
async def test_title_and_description_default_to_the_text(platform):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    start = respx.post(UPLOAD).respond(200, headers={"Location": SESSION})
    respx.put(SESSION).mock(side_effect=Session())
    async with httpx.AsyncClient() as http:
        await platform.publish(request(), http)
    assert json.loads(start.calls.last.request.content) == {
        "snippet": {"title": "Launch day", "description": "Launch day\nHow we shipped it."},
        "status": {"privacyStatus": "public", "selfDeclaredMadeForKids": False}}


@respx.mock
async def test_a_308_that_kept_part_of_a_chunk_has_the_rest_sent_again(platform):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    respx.post(UPLOAD).respond(200, headers={"Location": SESSION})
    session = Session(keep=200_000)
    chunks = respx.put(SESSION).mock(side_effect=session)
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(), http)
    assert published.platform_post_id == VIDEO_ID and bytes(session.data) == VIDEO
    assert puts(chunks)[:2] == [("bytes 0-262143/655360", CHUNK_UNIT), ("bytes 200000-462143/655360", CHUNK_UNIT)]


@respx.mock
async def test_a_saved_session_is_asked_first_and_the_upload_goes_on_from_the_confirmed_byte(platform):
    media = respx.get(VIDEO_URL).mock(side_effect=media_host)
    start = respx.post(UPLOAD)
    session = Session(held=VIDEO[:CHUNK_UNIT])
    chunks = respx.put(SESSION).mock(side_effect=session)
    resume = {"session_uri": SESSION, "size": len(VIDEO), "content_type": "video/mp4", "confirmed": 0}

    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(resume=resume), http)

    assert published.platform_post_id == VIDEO_ID and bytes(session.data) == VIDEO
    assert not start.called  # the same session: never a second upload
    assert puts(chunks) == [("bytes */655360", 0), ("bytes 262144-524287/655360", CHUNK_UNIT),
                            ("bytes 524288-655359/655360", CHUNK_UNIT // 2)]
    assert media.calls.last.request.headers["range"] == "bytes=262144-"  # only the rest is fetched


@respx.mock
async def test_a_media_host_that_ignores_range_has_the_confirmed_bytes_skipped(platform):
    respx.get(VIDEO_URL).respond(200, content=VIDEO, headers={"Content-Type": "video/mp4"})
    session = Session(held=VIDEO[:300_000])
    respx.put(SESSION).mock(side_effect=session)
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(resume={"session_uri": SESSION, "size": len(VIDEO)}), http)
    assert published.platform_post_id == VIDEO_ID and bytes(session.data) == VIDEO


@respx.mock
async def test_a_session_that_finished_answers_with_its_video_and_nothing_is_sent_again(platform):
    media = respx.get(VIDEO_URL)
    chunks = respx.put(SESSION).mock(side_effect=Session(held=VIDEO))
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(resume={"session_uri": SESSION, "size": len(VIDEO)}), http)
    assert (published.platform_post_id, published.http_status) == (VIDEO_ID, 201)
    assert puts(chunks) == [("bytes */655360", 0)] and not media.called


@respx.mock
async def test_an_expired_session_starts_a_new_upload(platform):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    old = "https://www.googleapis.com/upload/youtube/v3/videos?uploadType=resumable&upload_id=old"
    respx.put(old).respond(404, json={"error": {"code": 404, "message": "Not Found"}})
    start = respx.post(UPLOAD).respond(200, headers={"Location": SESSION})
    session = Session()
    respx.put(SESSION).mock(side_effect=session)
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(resume={"session_uri": old, "size": len(VIDEO)}), http)
    assert published.platform_post_id == VIDEO_ID and start.call_count == 1 and bytes(session.data) == VIDEO


@respx.mock
async def test_a_failure_mid_upload_keeps_the_session_and_the_confirmed_bytes_in_its_details(platform):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    respx.post(UPLOAD).respond(200, headers={"Location": SESSION})
    session = Session()
    respx.put(SESSION).mock(side_effect=[session, google_error(503, "backendError", "Backend Error", "global")])
    req = request()
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(req, http)
    assert (err.value.outcome, err.value.code, err.value.http_status) == (Outcome.TRANSIENT, "backendError", 503)
    state = {"session_uri": SESSION, "size": len(VIDEO), "content_type": "video/mp4", "confirmed": CHUNK_UNIT}
    assert err.value.details == state and req.progress == state


@respx.mock
async def test_the_deadline_stops_the_upload_between_chunks_with_the_session_kept(platform):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    respx.post(UPLOAD).respond(200, headers={"Location": SESSION})
    chunks = respx.put(SESSION)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(deadline=time.monotonic() + 0.5), http)
    assert (err.value.outcome, err.value.code) == (Outcome.TRANSIENT, "upload_incomplete")
    assert err.value.details["session_uri"] == SESSION and not chunks.called


@respx.mock
async def test_a_checkpoint_that_cannot_save_stops_the_upload_before_its_first_byte(platform):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    respx.post(UPLOAD).respond(200, headers={"Location": SESSION})
    chunks = respx.put(SESSION)

    async def checkpoint(progress):
        raise PlatformError(Outcome.TRANSIENT, "progress_not_saved", "the store is down")

    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(checkpoint=checkpoint), http)
    assert err.value.code == "progress_not_saved" and err.value.details["session_uri"] == SESSION
    assert not chunks.called


@respx.mock
async def test_a_dead_media_url_is_permanent_and_opens_no_session(platform):
    respx.get(VIDEO_URL).respond(404)
    start = respx.post(UPLOAD)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "media_unavailable") and not start.called


# --- errors ----------------------------------------------------------------------------------

#: midnight Pacific after ANSWERED_AT (2030-01-01 12:00 UTC = 04:00 PST): 2030-01-02 08:00 UTC
MIDNIGHT_PACIFIC = 20 * 3600.0


@pytest.mark.parametrize("answer, outcome, code, wait, scope", [
    # the project's daily quota: every YouTube channel waits for midnight Pacific
    (google_error(403, "quotaExceeded", "The request cannot be completed because you have exceeded your quota.",
                  "youtube.quota"), Outcome.RATE_LIMITED, "quotaExceeded", MIDNIGHT_PACIFIC, APP),
    # this channel's own daily upload cap: "try again in 24 hours"
    (google_error(400, "uploadLimitExceeded", "The user has exceeded the number of videos they may upload."),
     Outcome.RATE_LIMITED, "uploadLimitExceeded", 86400.0, ACCOUNT),
    # a short throttle: no documented wait, the run backs off
    (google_error(403, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"),
     Outcome.RATE_LIMITED, "rateLimitExceeded", None, ACCOUNT),
    # an expired or revoked access token: the run refreshes once
    (google_error(401, "authError", "Invalid Credentials", "global"), Outcome.AUTH, "authError", None, ACCOUNT),
    # the token lacks the upload scope: a reconnect grants it
    (google_error(403, "insufficientPermissions", "Insufficient Permission", "global"),
     Outcome.AUTH, "insufficientPermissions", None, ACCOUNT),
    # the account has no channel: nothing a retry or a refresh changes
    (google_error(401, "youtubeSignupRequired", "Unauthorized"), Outcome.PERMANENT, "youtubeSignupRequired", None,
     ACCOUNT),
    # invalid metadata: the post must change
    (google_error(400, "invalidTitle", "The request metadata specifies an invalid video title."),
     Outcome.PERMANENT, "invalidTitle", None, ACCOUNT),
    (google_error(400, "invalidPublishAt", "The request metadata specifies an invalid scheduled publishing time."),
     Outcome.PERMANENT, "invalidPublishAt", None, ACCOUNT),
    # Google's side failed: retried later
    (google_error(500, "backendError", "Backend Error", "global"), Outcome.TRANSIENT, "backendError", None, ACCOUNT),
])
@respx.mock
async def test_googles_errors_on_opening_the_upload_are_classified(platform, answered_at, answer, outcome, code, wait,
                                                                   scope):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    respx.post(UPLOAD).mock(return_value=answer)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(), http)
    assert (err.value.outcome, err.value.code, err.value.retry_after_seconds, err.value.limit_scope) == (
        outcome, code, wait, scope)
    assert err.value.details == {}  # no session was opened: nothing to resume


class Quota:
    """``PublishRequest.spend_quota`` over an in-memory count of one day: what was asked, in order."""

    def __init__(self, used: int, limit: int):
        self.used, self.limit, self.asked = used, limit, []

    async def __call__(self, units: int) -> QuotaSpend:
        self.asked.append(units)
        if self.used + units > self.limit:
            return QuotaSpend(False, self.used, self.limit)
        self.used += units
        return QuotaSpend(True, self.used, self.limit)


@respx.mock
async def test_an_upload_spends_the_inserts_units_of_heralds_count_before_opening_the_session(platform):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    respx.post(UPLOAD).respond(200, headers={"Location": SESSION})
    respx.put(SESSION).mock(side_effect=Session())
    quota = Quota(used=0, limit=100)
    async with httpx.AsyncClient() as http:
        assert (await platform.publish(request(spend_quota=quota), http)).platform_post_id == VIDEO_ID
    assert quota.asked == [1] and quota.used == 1  # videos.insert's own bucket: 1 unit a call


@respx.mock
async def test_a_day_without_room_in_heralds_count_opens_no_session_and_pauses_youtube_until_midnight_pacific(
        platform, answered_at):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    start = respx.post(UPLOAD)
    quota = Quota(used=100, limit=100)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(spend_quota=quota), http)
    assert not start.called  # Google is not asked at all
    assert (err.value.outcome, err.value.code, err.value.retry_after_seconds, err.value.limit_scope) == (
        Outcome.RATE_LIMITED, "quota_reached", MIDNIGHT_PACIFIC, APP)
    assert "Herald's count" in err.value.message and "100/100" in err.value.message
    assert err.value.details == {} and quota.used == 100


@respx.mock
async def test_the_insert_cost_comes_from_the_constructor(platform):  # the fixture's URL check stays patched
    platform = YouTubePlatform(chunk_bytes=CHUNK_UNIT, insert_units=100)
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    respx.post(UPLOAD).respond(200, headers={"Location": SESSION})
    respx.put(SESSION).mock(side_effect=Session())
    quota = Quota(used=0, limit=10000)
    async with httpx.AsyncClient() as http:
        await platform.publish(request(spend_quota=quota), http)
    assert quota.asked == [100]
    with pytest.raises(ValueError):
        YouTubePlatform(insert_units=0)


@respx.mock
async def test_a_resumed_session_spends_nothing(platform):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    start = respx.post(UPLOAD)
    session = Session(held=VIDEO[:CHUNK_UNIT])
    respx.put(SESSION).mock(side_effect=session)
    resume = {"session_uri": SESSION, "size": len(VIDEO), "content_type": "video/mp4", "confirmed": 0}
    quota = Quota(used=100, limit=100)  # a full day: the insert was paid for when the session opened
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(resume=resume, spend_quota=quota), http)
    assert published.platform_post_id == VIDEO_ID and bytes(session.data) == VIDEO
    assert quota.asked == [] and not start.called


@respx.mock
async def test_an_expired_session_spends_for_the_new_upload(platform):
    respx.get(VIDEO_URL).mock(side_effect=media_host)
    respx.put(SESSION).respond(404)
    start = respx.post(UPLOAD)
    resume = {"session_uri": SESSION, "size": len(VIDEO), "content_type": "video/mp4", "confirmed": 0}
    quota = Quota(used=100, limit=100)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(resume=resume, spend_quota=quota), http)
    assert quota.asked == [1] and err.value.code == "quota_reached" and not start.called


@pytest.mark.parametrize("now, hours", [
    (datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc), 20),  # PST (UTC-8): midnight is 08:00 UTC
    (datetime(2030, 7, 1, 6, 59, tzinfo=timezone.utc), 1 / 60),  # PDT (UTC-7): 23:59 local, one minute left
    # 01:00 PST on the day clocks go forward: 22 of its 23 hours left (next midnight is 07:00 UTC)
    (datetime(2030, 3, 10, 9, 0, tzinfo=timezone.utc), 22),
])
def test_the_quota_resets_at_midnight_in_los_angeles(now, hours):
    assert seconds_to_quota_reset(now) == pytest.approx(hours * 3600)


# --- lookup ----------------------------------------------------------------------------------


@respx.mock
async def test_lookup_asks_the_recorded_session(platform):
    respx.put(SESSION).mock(side_effect=[Session(held=VIDEO), Session(held=VIDEO[:1000])])
    async with httpx.AsyncClient() as http:
        done = await platform.lookup(request(resume={"session_uri": SESSION, "size": len(VIDEO)}), http)
        partial = await platform.lookup(request(resume={"session_uri": SESSION, "size": len(VIDEO)}), http)
    assert done is not None and done.platform_post_id == VIDEO_ID
    assert partial is None  # no video yet: the next attempt resumes the session


async def test_lookup_without_a_session_knows_no_byte_was_sent(platform):
    with respx.mock:  # any call would fail: none is made
        async with httpx.AsyncClient() as http:
            assert await platform.lookup(request(resume=None), http) is None


@respx.mock
async def test_lookup_of_an_expired_session_searches_the_newest_uploads_by_title_and_time(platform):
    respx.put(SESSION).respond(404)
    listing = respx.get(f"{API}/youtube/v3/playlistItems").respond(200, json={
        "kind": "youtube#playlistItemListResponse", "items": [
            {"kind": "youtube#playlistItem", "snippet": {"publishedAt": "2030-01-01T11:59:00Z", "title": "Launch day",
                                                         "resourceId": {"kind": "youtube#video", "videoId": VIDEO_ID}}},
            {"kind": "youtube#playlistItem", "snippet": {"publishedAt": "2029-12-25T10:00:00Z", "title": "Launch day",
                                                         "resourceId": {"kind": "youtube#video", "videoId": "older"}}}]})
    resume = {"session_uri": SESSION, "size": len(VIDEO)}
    async with httpx.AsyncClient() as http:
        found = await platform.lookup(request(resume=resume, metadata={"uploads_playlist_id": UPLOADS},
                                              first_attempt_at=datetime(2030, 1, 1, 11, 58, tzinfo=timezone.utc)), http)
        later = await platform.lookup(request(resume=resume, metadata={"uploads_playlist_id": UPLOADS},
                                              first_attempt_at=datetime(2030, 1, 2, 9, 0, tzinfo=timezone.utc)), http)
    assert found is not None and found.platform_post_id == VIDEO_ID
    assert later is None  # last week's video of the same title is not this post's
    assert parse_qs(urlsplit(str(listing.calls[0].request.url)).query) == {
        "part": ["snippet"], "playlistId": [UPLOADS], "maxResults": ["10"]}


# --- OAuth -----------------------------------------------------------------------------------


def test_authorize_url_asks_google_for_offline_access_with_consent(platform):
    url = platform.authorize_url(state="st4te", redirect_uri="https://herald.example/api/v1/oauth/callback",
                                 code_challenge=None)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://accounts.google.com/o/oauth2/v2/auth"
    assert parse_qs(parts.query) == {
        "client_id": ["cid.apps.googleusercontent.com"], "redirect_uri": ["https://herald.example/api/v1/oauth/callback"],
        "response_type": ["code"], "scope": [youtube.SCOPES], "access_type": ["offline"], "prompt": ["consent"],
        "include_granted_scopes": ["true"], "state": ["st4te"]}


def channels_answer() -> dict:
    return {"kind": "youtube#channelListResponse", "items": [{
        "kind": "youtube#channel", "id": CHANNEL, "snippet": {"title": "Herald Videos"},
        "contentDetails": {"relatedPlaylists": {"likes": "", "uploads": UPLOADS}}}]}


@respx.mock
async def test_code_exchange_keeps_the_refresh_token_and_reads_the_channel(platform, answered_at):
    token = respx.post(TOKEN).respond(200, json={"access_token": "ya29.new", "expires_in": 3599, "refresh_token": "1//r",
                                                 "scope": youtube.SCOPES, "token_type": "Bearer"})
    channels = respx.get(f"{API}/youtube/v3/channels").respond(200, json=channels_answer())
    async with httpx.AsyncClient() as http:
        tokens, account = await platform.exchange_code(code="4/0Ad", redirect_uri="https://herald.example/cb",
                                                       code_verifier=None, http=http)
    assert parse_qs(token.calls.last.request.content.decode()) == {
        "grant_type": ["authorization_code"], "code": ["4/0Ad"], "redirect_uri": ["https://herald.example/cb"],
        "client_id": ["cid.apps.googleusercontent.com"], "client_secret": ["gsecret"]}
    assert tokens.credentials == {"access_token": "ya29.new", "refresh_token": "1//r"}
    assert tokens.expires_at == answered_at + timedelta(seconds=3599)
    sent = channels.calls.last.request
    assert sent.headers["authorization"] == "Bearer ya29.new"
    assert parse_qs(urlsplit(str(sent.url)).query) == {"part": ["snippet,contentDetails"], "mine": ["true"]}
    assert (account.account_id, account.name, account.metadata) == (CHANNEL, "Herald Videos",
                                                                    {"uploads_playlist_id": UPLOADS})


@respx.mock
async def test_a_google_account_without_a_channel_cannot_connect(platform):
    respx.get(f"{API}/youtube/v3/channels").respond(200, json={"kind": "youtube#channelListResponse", "items": []})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.verify({"access_token": "ya29.tok"}, {}, http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "no_channel")


@respx.mock
async def test_refresh_trades_the_refresh_token_and_keeps_it(platform, answered_at):
    token = respx.post(TOKEN).respond(200, json={"access_token": "ya29.fresh", "expires_in": 3599,
                                                 "scope": youtube.SCOPES, "token_type": "Bearer"})
    async with httpx.AsyncClient() as http:
        tokens = await platform.refresh({"access_token": "ya29.old", "refresh_token": "1//refresh"}, {}, http)
    assert parse_qs(token.calls.last.request.content.decode()) == {
        "grant_type": ["refresh_token"], "refresh_token": ["1//refresh"],
        "client_id": ["cid.apps.googleusercontent.com"], "client_secret": ["gsecret"]}
    assert tokens.credentials == {"access_token": "ya29.fresh", "refresh_token": "1//refresh"}
    assert tokens.expires_at == answered_at + timedelta(seconds=3599)


@respx.mock
async def test_a_revoked_refresh_token_is_auth(platform):
    respx.post(TOKEN).respond(400, json={"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.refresh({"access_token": "ya29.old", "refresh_token": "1//gone"}, {}, http)
    assert (err.value.outcome, err.value.code) == (Outcome.AUTH, "invalid_grant")
    assert "expired or revoked" in err.value.message


# --- validate --------------------------------------------------------------------------------

VIDEO_MEDIA = (Media("video", VIDEO_URL),)


@pytest.mark.parametrize("content, field, words", [
    # no video
    (Content(text="hello"), "content.media", "exactly one video"),
    # an image
    (Content(text="hello", media=(Media("image", "https://cdn.example.com/a.png"),)), "content.media", "exactly one video"),
    # two videos
    (Content(text="hello", media=VIDEO_MEDIA * 2), "content.media", "2 media"),
    # no title anywhere
    (Content(text="", media=VIDEO_MEDIA), "content.text", "needs a title"),
    # a first line over 100 characters, used as the title
    (Content(text="x" * 101, media=VIDEO_MEDIA), "content.text", "101 characters; the limit is 100"),
    # the option over 100
    (with_options(title="t" * 101), "content.platforms.youtube.title", "the limit is 100"),
    # angle brackets
    (with_options(title="a <b>"), "content.platforms.youtube.title", "< or >"),
    # description over 5000 bytes (2 bytes a character)
    (with_options(description="é" * 2501), "content.platforms.youtube.description", "5002 bytes"),
    # tags over 500 counted YouTube's way
    (with_options(tags=["a b" * 50] * 4), "content.platforms.youtube.tags", "the limit is 500"),
    (with_options(privacy_status="friends"), "content.platforms.youtube.privacy_status", "public, unlisted, private"),
    # publish_at only on a private video
    (with_options(privacy_status="public"), "content.platforms.youtube.publish_at", '"private"'),
    (with_options(publish_at="tomorrow"), "content.platforms.youtube.publish_at", "ISO 8601"),
    (with_options(publish_at="2030-01-02T17:00:00"), "content.platforms.youtube.publish_at", "offset"),
    (with_options(made_for_kids="no"), "content.platforms.youtube.made_for_kids", "true or false"),
    (with_options(category_id="music"), "content.platforms.youtube.category_id", "category id"),
])
def test_validate_names_the_field_and_the_limit(platform, content, field, words):
    problems = platform.validate(content)
    assert problems and problems[0].field == field and words in problems[0].message, problems


def test_validate_accepts_a_video_with_every_option(platform):
    assert platform.validate(with_options()) == []
    assert platform.validate(Content(text="Launch day", media=VIDEO_MEDIA)) == []


def test_tags_count_commas_and_quotes_around_tags_with_spaces():
    assert tags_length(["launch", "behind the scenes"]) == 6 + 1 + 17 + 2


# --- metrics ---------------------------------------------------------------------------------


def metrics_request(deadline=None) -> MetricsRequest:
    return MetricsRequest(platform_post_id=VIDEO_ID, platform_post_url=f"https://www.youtube.com/watch?v={VIDEO_ID}",
                          published_at=None, channel_id=uuid.uuid4(), account_id=CHANNEL, metadata={},
                          credentials={"access_token": "ya29.tok"}, deadline=deadline)


@respx.mock
async def test_metrics_read_the_videos_statistics_sent_as_strings(platform):
    route = respx.get(f"{API}/youtube/v3/videos").respond(200, json={"kind": "youtube#videoListResponse", "items": [{
        "kind": "youtube#video", "id": VIDEO_ID,
        "statistics": {"viewCount": "1523", "likeCount": "87", "favoriteCount": "0", "commentCount": "12"}}]})
    async with httpx.AsyncClient() as http:
        metrics = await platform.metrics(metrics_request(), http)
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer ya29.tok"
    assert parse_qs(urlsplit(str(sent.url)).query) == {"part": ["statistics"], "id": [VIDEO_ID]}
    assert (metrics.likes, metrics.comments, metrics.shares, metrics.impressions, metrics.clicks, metrics.saves) == (
        87, 12, None, 1523, None, None)
    assert metrics.raw == {"viewCount": "1523", "likeCount": "87", "favoriteCount": "0", "commentCount": "12"}


@respx.mock
async def test_hidden_likes_and_closed_comments_are_unknown_not_zero(platform):
    respx.get(f"{API}/youtube/v3/videos").respond(200, json={"items": [{"id": VIDEO_ID, "statistics": {
        "viewCount": "10", "favoriteCount": "0"}}]})
    async with httpx.AsyncClient() as http:
        metrics = await platform.metrics(metrics_request(), http)
    assert (metrics.likes, metrics.comments, metrics.impressions) == (None, None, 10)


@respx.mock
async def test_metrics_of_a_deleted_video_are_permanent(platform):
    respx.get(f"{API}/youtube/v3/videos").respond(200, json={"kind": "youtube#videoListResponse", "items": [],
                                                             "pageInfo": {"totalResults": 0, "resultsPerPage": 0}})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.metrics(metrics_request(), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "video_not_found")


@respx.mock
async def test_metrics_call_nothing_past_the_deadline(platform):
    await assert_metrics_call_nothing_past_the_deadline(platform, metrics_request(deadline=time.monotonic() - 1))
