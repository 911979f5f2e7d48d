"""The LinkedIn adapter against api.linkedin.com mocked with respx: Posts API requests, images, errors, OAuth."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from services.domain.models import Content, Media, Outcome
from services.platforms import linkedin, mediafile
from services.platforms.base import ACCOUNT, PlatformError, PublishRequest
from services.platforms.linkedin import LINKEDIN_VERSION, LinkedInPlatform, escape_commentary

API = "https://api.linkedin.com"
OAUTH = "https://www.linkedin.com"
UPLOAD = "https://www.linkedin.com/dms-uploads/sp/abc?ca=vector_feedshare"


def request(content: Content, *, metadata=None, credentials=None) -> PublishRequest:
    return PublishRequest(
        post_id=uuid.uuid4(), target_id=uuid.uuid4(), content=content, scheduled_at=None, timezone="UTC",
        channel_id=uuid.uuid4(), account_id="abc123", metadata=metadata or {},
        credentials=credentials or {"access_token": "tok"}, idempotency_key="herald-k",
    )


@pytest.fixture
def platform(monkeypatch):
    async def public(url, *, allow_private, field="metadata.url"):  # no DNS in tests: the URL rules have their own
        return url
    monkeypatch.setattr(mediafile, "check_public_url", public)
    return LinkedInPlatform(client_id="cid", client_secret="csecret")


def assert_versioned(sent: httpx.Request) -> None:
    assert sent.headers["authorization"] == "Bearer tok"
    assert sent.headers["linkedin-version"] == LINKEDIN_VERSION
    assert sent.headers["x-restli-protocol-version"] == "2.0.0"


POST_BODY = {
    "author": "urn:li:person:abc123", "visibility": "PUBLIC",
    "distribution": {"feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": []},
    "lifecycleState": "PUBLISHED", "isReshareDisabledByAuthor": False,
}


@respx.mock
async def test_text_post_is_escaped_versioned_and_read_from_the_id_header(platform):
    route = respx.post(f"{API}/rest/posts").respond(201, headers={"x-restli-id": "urn:li:share:7001"})
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="Launch (beta) #news @team")), http)
    assert (published.platform_post_id, published.url, published.http_status) == (
        "urn:li:share:7001", "https://www.linkedin.com/feed/update/urn:li:share:7001/", 201)
    sent = route.calls.last.request
    assert_versioned(sent)
    assert json.loads(sent.content) == {**POST_BODY, "commentary": "Launch \\(beta\\) #news \\@team"}


@respx.mock
async def test_organization_author_comes_from_metadata(platform):
    route = respx.post(f"{API}/rest/posts").respond(201, headers={"x-restli-id": "urn:li:share:7002"})
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="hi"), metadata={"author_type": "organization"}), http)
        await platform.publish(request(Content(text="hi"), metadata={"author_urn": "urn:li:organization:99"}), http)
    authors = [json.loads(c.request.content)["author"] for c in route.calls]
    assert authors == ["urn:li:organization:abc123", "urn:li:organization:99"]


@respx.mock
async def test_single_image_is_registered_uploaded_and_posted_with_alt_text(platform):
    respx.get("https://cdn.example.com/a.png").respond(200, content=b"PNG", headers={"Content-Type": "image/png"})
    init = respx.post(f"{API}/rest/images", params={"action": "initializeUpload"}).respond(200, json={"value": {
        "uploadUrlExpiresAt": 1, "uploadUrl": UPLOAD, "image": "urn:li:image:C1"}})
    put = respx.put(UPLOAD).respond(201)
    post = respx.post(f"{API}/rest/posts").respond(201, headers={"x-restli-id": "urn:li:ugcPost:8"})
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="pic", media=(Media("image", "https://cdn.example.com/a.png", "a cat"),))), http)
    assert_versioned(init.calls.last.request)
    assert json.loads(init.calls.last.request.content) == {"initializeUploadRequest": {"owner": "urn:li:person:abc123"}}
    uploaded = put.calls.last.request
    assert (uploaded.content, uploaded.headers["authorization"], uploaded.headers["content-type"]) == (b"PNG", "Bearer tok", "image/png")
    assert json.loads(post.calls.last.request.content)["content"] == {"media": {"id": "urn:li:image:C1", "altText": "a cat"}}


@respx.mock
async def test_several_images_become_a_multi_image_post(platform):
    for i in range(3):
        respx.get(f"https://cdn.example.com/{i}.jpg").respond(200, content=b"J", headers={"Content-Type": "image/jpeg"})
    respx.post(f"{API}/rest/images").mock(side_effect=[
        httpx.Response(200, json={"value": {"uploadUrl": f"{UPLOAD}&n={i}", "image": f"urn:li:image:I{i}"}}) for i in range(3)])
    respx.put(url__startswith=UPLOAD).respond(201)
    post = respx.post(f"{API}/rest/posts").respond(201, headers={"x-restli-id": "urn:li:share:9"})
    media = tuple(Media("image", f"https://cdn.example.com/{i}.jpg", "alt" if i == 0 else None) for i in range(3))
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="three", media=media)), http)
    assert json.loads(post.calls.last.request.content)["content"] == {"multiImage": {"images": [
        {"id": "urn:li:image:I0", "altText": "alt"}, {"id": "urn:li:image:I1", "altText": ""},
        {"id": "urn:li:image:I2", "altText": ""}]}}


@respx.mock
async def test_a_duplicate_422_is_the_live_post(platform):
    respx.post(f"{API}/rest/posts").respond(422, json={
        "message": "Content is a duplicate of urn:li:share:7123456789", "status": 422})
    async with httpx.AsyncClient() as http:
        published = await platform.publish(request(Content(text="again")), http)
    assert (published.platform_post_id, published.url) == (
        "urn:li:share:7123456789", "https://www.linkedin.com/feed/update/urn:li:share:7123456789/")


@pytest.mark.parametrize(
    ("response", "outcome", "code"),
    [
        (httpx.Response(401, json={"status": 401, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN",
                                   "message": "The token used in the request has expired"}), Outcome.AUTH, "expired_access_token"),
        (httpx.Response(401, json={"status": 401, "serviceErrorCode": 65601, "code": "REVOKED_ACCESS_TOKEN",
                                   "message": "The token used in the request has been revoked by the user"}), Outcome.AUTH, "revoked_access_token"),
        (httpx.Response(401, json={"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                                   "message": "Invalid access token"}), Outcome.AUTH, "invalid_access_token"),
        (httpx.Response(403, json={"status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED",
                                   "message": "Not enough permissions to access: partnerApiPostsExternal.CREATE.20260701"}),
         Outcome.PERMANENT, "access_denied"),
        (httpx.Response(422, json={"message": "ERROR :: /commentary :: length of commentary exceeds 3000", "status": 422}),
         Outcome.PERMANENT, "http_422"),
        (httpx.Response(400, json={"status": 400, "code": "ILLEGAL_ARGUMENT", "message": "Request body could not be converted"}),
         Outcome.PERMANENT, "illegal_argument"),
        (httpx.Response(426, json={"status": 426, "code": "NONEXISTENT_VERSION", "message": "Requested version 202401 is not active"}),
         Outcome.PERMANENT, "version_sunset"),
        (httpx.Response(429, json={"status": 429, "message": "Resource level throttle APPLICATION DAY limit"}),
         Outcome.RATE_LIMITED, "rate_limited"),
        (httpx.Response(500, json={"status": 500, "message": "Internal Server Error"}), Outcome.TRANSIENT, "http_500"),
        (httpx.Response(504, text="gateway timeout"), Outcome.TRANSIENT, "http_504"),
    ],
)
@respx.mock
async def test_error_answers_are_classified(platform, response, outcome, code):
    respx.post(f"{API}/rest/posts").mock(return_value=response)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    assert (err.value.outcome, err.value.code, err.value.http_status) == (outcome, code, response.status_code)


@respx.mock
async def test_version_sunset_names_the_pinned_version(platform):
    respx.post(f"{API}/rest/posts").respond(426, json={"status": 426})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    assert LINKEDIN_VERSION in err.value.message


@respx.mock
async def test_rate_limit_waits_until_the_next_utc_midnight(platform):
    respx.post(f"{API}/rest/posts").respond(429, json={"status": 429})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs(err.value.retry_after_seconds - (midnight - now).total_seconds()) < 5


@respx.mock
async def test_429_waits_from_the_answer_to_the_next_utc_midnight_for_this_account_only(platform, answered_at):
    # LinkedIn's answer (no Retry-After, no rate headers) does not say whether the app's or the member's day ran out
    respx.post(f"{API}/rest/posts").respond(429, json={
        "serviceErrorCode": 101, "message": "Resource level throttle limit for calls to this resource is reached.",
        "status": 429})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    assert answered_at.hour == 12  # so the next 00:00 UTC is 12 hours away
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (
        Outcome.RATE_LIMITED, ACCOUNT, 12 * 3600)


@respx.mock
async def test_a_throttled_token_refresh_is_rate_limited_not_a_reconnect(platform, answered_at):
    respx.post(f"{OAUTH}/oauth/v2/accessToken").respond(429, json={"status": 429, "message": "Too many requests"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.refresh({"access_token": "tok", "refresh_token": "r1"}, {}, http)
    assert (err.value.outcome, err.value.limit_scope, err.value.retry_after_seconds) == (
        Outcome.RATE_LIMITED, ACCOUNT, 12 * 3600)


def test_next_utc_midnight_just_before_it():
    assert linkedin._next_utc_midnight(datetime(2030, 1, 1, 23, 59, 30, tzinfo=timezone.utc)) == 30


@respx.mock
async def test_a_lost_answer_to_the_post_call_is_unknown(platform):
    respx.post(f"{API}/rest/posts").mock(side_effect=httpx.ReadTimeout("slow"))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="Hello")), http)
    assert err.value.outcome is Outcome.UNKNOWN


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain words, no markup.", "plain words, no markup."),  # nothing reserved
        ("a (b) [c] {d} <e>", "a \\(b\\) \\[c\\] \\{d\\} \\<e\\>"),  # brackets of every kind
        ("@name *bold* _it_ ~x~ a|b", "\\@name \\*bold\\* \\_it\\_ \\~x\\~ a\\|b"),  # mention and emphasis marks
        ("C:\\path", "C:\\\\path"),  # the escape character itself
        ("#launch day", "#launch day"),  # a hashtag stays a hashtag
        ("# alone, and #", "\\# alone, and \\#"),  # a lone # is not a hashtag
    ],
)
def test_commentary_escaping(text, escaped):
    assert escape_commentary(text) == escaped


@pytest.mark.parametrize(
    ("content", "problem_field"),
    [
        (Content(text="a" * 3000), None),  # at the limit
        (Content(text="a" * 3001), "content.text"),  # one over
        (Content(text=""), "content.text"),  # nothing to post
        (Content(text="x", media=tuple(Media("image", f"https://c/{i}.png") for i in range(20))), None),  # 20 images
        (Content(text="x", media=tuple(Media("image", f"https://c/{i}.png") for i in range(21))), "content.media"),  # 21
        (Content(text="x", media=(Media("video", "https://c/v.mp4"),)), None),  # one MP4 video
        (Content(text="x", media=(Media("video", "https://c/v?sig=1"),)), None),  # a URL naming no type: fetched, then checked
        (Content(text="x", media=(Media("video", "https://c/v.mov"),)), "content.media[0].url"),  # QuickTime: MP4 only
        (Content(text="x", media=(Media("video", "https://c/v.mp4"), Media("image", "https://c/i.png"))),
         "content.media"),  # a video goes alone
        (Content(text="x", media=(Media("document", "https://c/deck.pdf"),)), None),  # one PDF
        (Content(text="x", media=(Media("document", "https://c/deck.pptx"),)), None),  # PowerPoint
        (Content(text="x", media=(Media("document", "https://c/notes.docx"),)), None),  # Word
        (Content(text="x", media=(Media("document", "https://c/sheet.csv"),)), "content.media[0].url"),  # not a document LinkedIn takes
        (Content(text="x", media=(Media("document", "https://c/a.pdf"), Media("document", "https://c/b.pdf"))),
         "content.media"),  # one document per post
        (Content(text="x", media=(Media("audio", "https://c/a.mp3"),)), "content.media"),  # no audio
    ],
)
def test_validate(platform, content, problem_field):
    problems = platform.validate(content)
    assert [p.field for p in problems] == ([problem_field] if problem_field else [])
    assert all(p.message.startswith("linkedin: ") for p in problems)


def test_authorize_url_needs_no_pkce(platform):
    assert platform.uses_pkce is False
    parts = urlsplit(platform.authorize_url(state="st", redirect_uri="https://herald.example/cb", code_challenge=None))
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://www.linkedin.com/oauth/v2/authorization"
    assert parse_qs(parts.query) == {"response_type": ["code"], "client_id": ["cid"], "state": ["st"],
                                     "redirect_uri": ["https://herald.example/cb"], "scope": ["openid profile w_member_social"]}


@respx.mock
async def test_exchange_code_reads_the_member_from_userinfo(platform):
    token = respx.post(f"{OAUTH}/oauth/v2/accessToken").respond(200, json={"access_token": "tok", "expires_in": 5183999,
                                                                          "scope": "openid,profile,w_member_social"})
    userinfo = respx.get(f"{API}/v2/userinfo").respond(200, json={"sub": "abc123", "name": "Ada Lovelace"})
    async with httpx.AsyncClient() as http:
        tokens, account = await platform.exchange_code(code="c", redirect_uri="https://herald.example/cb",
                                                       code_verifier=None, http=http)
    assert parse_qs(token.calls.last.request.content.decode()) == {
        "grant_type": ["authorization_code"], "code": ["c"], "redirect_uri": ["https://herald.example/cb"],
        "client_id": ["cid"], "client_secret": ["csecret"]}
    assert userinfo.calls.last.request.headers["authorization"] == "Bearer tok"
    assert tokens.credentials == {"access_token": "tok"} and tokens.expires_at is not None
    assert (account.account_id, account.name, account.metadata) == ("abc123", "Ada Lovelace", {"author_urn": "urn:li:person:abc123"})


@respx.mock
async def test_oauth_host_can_point_at_a_simulator():
    route = respx.post("http://sim.local/oauth/v2/accessToken").respond(200, json={"access_token": "t", "expires_in": 60})
    respx.get("http://sim.local/v2/userinfo").respond(200, json={"sub": "s", "name": "n"})
    platform = LinkedInPlatform("http://sim.local", client_id="cid", client_secret="cs", oauth_url="http://sim.local")
    async with httpx.AsyncClient() as http:
        await platform.exchange_code(code="c", redirect_uri="r", code_verifier=None, http=http)
    assert route.called


@respx.mock
async def test_refresh_for_a_partner_app_returns_the_whole_new_credentials(platform):
    route = respx.post(f"{OAUTH}/oauth/v2/accessToken").respond(200, json={
        "access_token": "tok2", "expires_in": 5184000, "refresh_token": "r2", "refresh_token_expires_in": 31000000})
    async with httpx.AsyncClient() as http:
        tokens = await platform.refresh({"access_token": "tok", "refresh_token": "r1"}, {}, http)
    assert tokens.credentials == {"access_token": "tok2", "refresh_token": "r2"}
    assert parse_qs(route.calls.last.request.content.decode())["grant_type"] == ["refresh_token"]


@respx.mock
async def test_refresh_refused_for_a_non_partner_app_is_auth(platform):
    respx.post(f"{OAUTH}/oauth/v2/accessToken").respond(400, json={
        "error": "unauthorized_client", "error_description": "The client is not authorized to use refresh tokens"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.refresh({"access_token": "tok", "refresh_token": "r1"}, {}, http)
    assert err.value.outcome is Outcome.AUTH and "not authorized" in err.value.message


async def test_refresh_without_a_refresh_token_is_auth_and_calls_nothing(platform):
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.refresh({"access_token": "tok"}, {}, http)
    assert err.value.outcome is Outcome.AUTH


@respx.mock
async def test_verify_keeps_an_organization_author(platform):
    respx.get(f"{API}/v2/userinfo").respond(200, json={"sub": "abc123", "name": "Ada"})
    async with httpx.AsyncClient() as http:
        account = await platform.verify({"access_token": "tok"}, {"author_urn": "urn:li:organization:99"}, http)
    assert account.account_id == "abc123" and account.metadata == {"author_urn": "urn:li:organization:99"}


@respx.mock
async def test_verify_with_an_expired_token_is_auth(platform):
    respx.get(f"{API}/v2/userinfo").respond(401, json={"status": 401, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.verify({"access_token": "tok"}, {}, http)
    assert err.value.outcome is Outcome.AUTH


# --- video: the Videos API -----------------------------------------------------------------------

VIDEO = "urn:li:video:C5F10AQGKQg_6y2a4sQ"
VIDEO_PATH = f"{API}/rest/videos/urn%3Ali%3Avideo%3AC5F10AQGKQg_6y2a4sQ"
PART = "https://www.linkedin.com/dms-uploads/sp/v2/C5F10AQGKQg_6y2a4sQ/uploadedVideo?ca=vector_feedshare&part="
CLIP = bytes(range(256)) * 800  # 204,800 bytes: over LinkedIn's 75 KB minimum, two parts below


@pytest.fixture
def video_platform(platform):
    return LinkedInPlatform(client_id="cid", client_secret="csecret", poll_seconds=0)


def mock_video_upload(status_answers):
    respx.get("https://cdn.example.com/clip.mp4").respond(200, content=CLIP, headers={"Content-Type": "video/mp4"})
    init = respx.post(f"{API}/rest/videos", params={"action": "initializeUpload"}).respond(200, json={"value": {
        "uploadUrlsExpireAt": 1767225600000, "video": VIDEO, "uploadToken": "",
        "uploadInstructions": [{"uploadUrl": f"{PART}0", "firstByte": 0, "lastByte": 102399},
                               {"uploadUrl": f"{PART}1", "firstByte": 102400, "lastByte": 204799}]}})
    parts = [respx.put(f"{PART}{i}").respond(200, headers={"ETag": f"/etag-{i}"}) for i in range(2)]
    final = respx.post(f"{API}/rest/videos", params={"action": "finalizeUpload"}).respond(200)
    if isinstance(status_answers, str):  # the same answer however often it is asked
        return init, parts, final, respx.get(VIDEO_PATH).respond(200, json={"id": VIDEO, "status": status_answers})
    status = respx.get(VIDEO_PATH).mock(side_effect=[httpx.Response(200, json={"id": VIDEO, "status": s})
                                                      for s in status_answers])
    return init, parts, final, status


CLIP_MEDIA = (Media("video", "https://cdn.example.com/clip.mp4", "Launch day"),)


@respx.mock
async def test_a_video_is_uploaded_in_its_parts_finalized_with_the_etags_and_posted_once_available(video_platform):
    init, parts, final, status = mock_video_upload(["PROCESSING", "AVAILABLE"])
    post = respx.post(f"{API}/rest/posts").respond(201, headers={"x-restli-id": "urn:li:ugcPost:70"})
    sent = request(Content(text="watch", media=CLIP_MEDIA))
    async with httpx.AsyncClient() as http:
        published = await video_platform.publish(sent, http)
    assert published.platform_post_id == "urn:li:ugcPost:70"
    assert_versioned(init.calls.last.request)
    assert json.loads(init.calls.last.request.content) == {"initializeUploadRequest": {
        "owner": "urn:li:person:abc123", "fileSizeBytes": len(CLIP), "uploadCaptions": False, "uploadThumbnail": False}}
    assert [p.calls.last.request.content for p in parts] == [CLIP[:102400], CLIP[102400:]]
    assert all(p.calls.last.request.headers["content-type"] == "application/octet-stream" for p in parts)
    assert_versioned(final.calls.last.request)
    assert json.loads(final.calls.last.request.content) == {"finalizeUploadRequest": {
        "video": VIDEO, "uploadToken": "", "uploadedPartIds": ["/etag-0", "/etag-1"]}}
    assert status.call_count == 2
    assert json.loads(post.calls.last.request.content)["content"] == {"media": {"id": VIDEO, "title": "Launch day"}}
    assert sent.progress == {"video": VIDEO}


@respx.mock
async def test_a_video_still_processing_at_the_deadline_keeps_its_urn_for_the_next_run(video_platform):
    mock_video_upload("PROCESSING")
    post = respx.post(f"{API}/rest/posts").respond(201, headers={"x-restli-id": "urn:li:ugcPost:71"})
    sent = replace(request(Content(text="watch", media=CLIP_MEDIA)), deadline=time.monotonic() + 0.2)
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await video_platform.publish(sent, http)
    assert (err.value.outcome, err.value.code) == (Outcome.TRANSIENT, "video_processing")
    assert err.value.details == {"video": VIDEO} and sent.progress == {"video": VIDEO}
    assert not post.called

    # the next run: the saved URN is waited for and posted, never uploaded again
    respx.routes.clear()
    uploads = respx.post(f"{API}/rest/videos")
    puts = respx.put(url__startswith=PART)
    respx.get(VIDEO_PATH).respond(200, json={"id": VIDEO, "status": "AVAILABLE"})
    post = respx.post(f"{API}/rest/posts").respond(201, headers={"x-restli-id": "urn:li:ugcPost:71"})
    again = replace(request(Content(text="watch", media=CLIP_MEDIA)), resume=err.value.details)
    async with httpx.AsyncClient() as http:
        published = await video_platform.publish(again, http)
    assert published.platform_post_id == "urn:li:ugcPost:71"
    assert not uploads.called and not puts.called
    assert json.loads(post.calls.last.request.content)["content"]["media"]["id"] == VIDEO


@respx.mock
async def test_a_video_linkedin_cannot_process_fails_with_its_reason(video_platform):
    _, _, _, status = mock_video_upload([])
    status.respond(200, json={"id": VIDEO, "status": "PROCESSING_FAILED",
                              "processingFailureReason": "Video duration is too short"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await video_platform.publish(request(Content(text="w", media=CLIP_MEDIA)), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "video_processing_failed")
    assert "too short" in err.value.message and err.value.details["video"] == VIDEO


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"x" * 1000, "video/mp4", "media_too_small"),  # under LinkedIn's 75 KB
        (CLIP, "video/quicktime", "unsupported_media_type"),  # MP4 only
    ],
)
@respx.mock
async def test_a_video_linkedin_would_refuse_is_not_uploaded(video_platform, body, content_type, code):
    respx.get("https://cdn.example.com/clip.mp4").respond(200, content=body, headers={"Content-Type": content_type})
    init = respx.post(f"{API}/rest/videos")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await video_platform.publish(request(Content(text="w", media=CLIP_MEDIA)), http)
    assert (err.value.outcome, err.value.code, err.value.details) == (
        Outcome.PERMANENT, code, {"field": "content.media[0].url"})
    assert not init.called


@respx.mock
async def test_a_failed_part_upload_is_transient_and_nothing_is_finalized(video_platform):
    respx.get("https://cdn.example.com/clip.mp4").respond(200, content=CLIP, headers={"Content-Type": "video/mp4"})
    respx.post(f"{API}/rest/videos", params={"action": "initializeUpload"}).respond(200, json={"value": {
        "video": VIDEO, "uploadToken": "", "uploadInstructions": [
            {"uploadUrl": f"{PART}0", "firstByte": 0, "lastByte": len(CLIP) - 1}]}})
    respx.put(f"{PART}0").respond(503, text="Service Unavailable")
    final = respx.post(f"{API}/rest/videos", params={"action": "finalizeUpload"})
    sent = request(Content(text="w", media=CLIP_MEDIA))
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await video_platform.publish(sent, http)
    assert err.value.outcome is Outcome.TRANSIENT and not final.called
    assert sent.progress == {}  # nothing finalized: the next attempt uploads afresh (an unused upload is harmless)


@respx.mock
async def test_a_refused_finalize_is_classified_like_any_linkedin_error(video_platform):
    respx.get("https://cdn.example.com/clip.mp4").respond(200, content=CLIP, headers={"Content-Type": "video/mp4"})
    respx.post(f"{API}/rest/videos", params={"action": "initializeUpload"}).respond(200, json={"value": {
        "video": VIDEO, "uploadToken": "", "uploadInstructions": [
            {"uploadUrl": f"{PART}0", "firstByte": 0, "lastByte": len(CLIP) - 1}]}})
    respx.put(f"{PART}0").respond(200, headers={"ETag": "/etag-0"})
    respx.post(f"{API}/rest/videos", params={"action": "finalizeUpload"}).respond(400, json={
        "status": 400, "code": "VIDEO_UPLOAD_FAILED", "message": "uploadedPartIds do not match"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await video_platform.publish(request(Content(text="w", media=CLIP_MEDIA)), http)
    assert (err.value.outcome, err.value.code, err.value.http_status) == (Outcome.PERMANENT, "video_upload_failed", 400)


# --- documents: the Documents API ----------------------------------------------------------------

DOC_UPLOAD = "https://www.linkedin.com/dms-uploads/sp/D5610AQ/document?ca=vector_feedshare"


@pytest.mark.parametrize(
    ("media", "title"),
    [
        (Media("document", "https://cdn.example.com/q3-report.pdf", "Q3 report"), "Q3 report"),  # alt is the title
        (Media("document", "https://cdn.example.com/q3-report.pdf"), "q3-report.pdf"),  # else the file's name
    ],
)
@respx.mock
async def test_a_document_is_registered_uploaded_and_posted_with_its_title(platform, media, title):
    respx.get(media.url).respond(200, content=b"%PDF-1.7", headers={"Content-Type": "application/pdf"})
    init = respx.post(f"{API}/rest/documents", params={"action": "initializeUpload"}).respond(200, json={"value": {
        "uploadUrlExpiresAt": 1650567510704, "uploadUrl": DOC_UPLOAD, "document": "urn:li:document:D5610AQ"}})
    put = respx.put(DOC_UPLOAD).respond(201)
    post = respx.post(f"{API}/rest/posts").respond(201, headers={"x-restli-id": "urn:li:share:72"})
    async with httpx.AsyncClient() as http:
        await platform.publish(request(Content(text="read", media=(media,))), http)
    assert_versioned(init.calls.last.request)
    assert json.loads(init.calls.last.request.content) == {"initializeUploadRequest": {"owner": "urn:li:person:abc123"}}
    uploaded = put.calls.last.request
    assert (uploaded.content, uploaded.headers["authorization"], uploaded.headers["content-type"]) == (
        b"%PDF-1.7", "Bearer tok", "application/pdf")
    assert json.loads(post.calls.last.request.content)["content"] == {
        "media": {"title": title, "id": "urn:li:document:D5610AQ"}}


@respx.mock
async def test_a_file_that_is_not_a_document_linkedin_takes_is_refused_before_any_upload(platform):
    respx.get("https://cdn.example.com/deck").respond(200, content=b"<html>", headers={"Content-Type": "text/html"})
    init = respx.post(f"{API}/rest/documents")
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="r", media=(Media("document", "https://cdn.example.com/deck"),))), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "unsupported_media_type")
    assert not init.called


@respx.mock
async def test_a_document_over_100_mb_is_refused_by_its_declared_length(platform):
    respx.get("https://cdn.example.com/big.pdf").respond(200, content=b"%PDF", headers={
        "Content-Type": "application/pdf", "Content-Length": str(linkedin.DOCUMENT_MAX_BYTES + 1)})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="r", media=(Media("document", "https://cdn.example.com/big.pdf"),))), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "media_too_large")


@respx.mock
async def test_a_refused_document_registration_is_classified(platform):
    respx.get("https://cdn.example.com/a.pdf").respond(200, content=b"%PDF", headers={"Content-Type": "application/pdf"})
    respx.post(f"{API}/rest/documents", params={"action": "initializeUpload"}).respond(403, json={
        "status": 403, "serviceErrorCode": 100, "code": "ACCESS_DENIED", "message": "Not enough permissions"})
    async with httpx.AsyncClient() as http:
        with pytest.raises(PlatformError) as err:
            await platform.publish(request(Content(text="r", media=(Media("document", "https://cdn.example.com/a.pdf"),))), http)
    assert (err.value.outcome, err.value.code) == (Outcome.PERMANENT, "access_denied")
