"""TikTok end to end: the real app connects a TikTok account through Login Kit (the token endpoint
on the loopback simulator) and its cron endpoint publishes through the Content Posting API there
(HERALD_PLATFORM_BASE_URLS points open.tiktokapis.com at the simulator).

TikTok publishes asynchronously: ``init`` gives a ``publish_id`` and the post goes live once its
status says PUBLISH_COMPLETE. A run whose time ends while TikTok is still processing leaves the
``publish_id`` with the target, and the next run polls that id: never a second init, never a
second post.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.test_platform_e2e import LEASE_SECONDS, calls, cron, fetch, herald, schedule
from tests.support.simulator import Reply

DASHBOARD = "https://dash.example.com/app"
CREATOR = "/v2/post/publish/creator_info/query/"
VIDEO_INIT = "/v2/post/publish/video/init/"
STATUS = "/v2/post/publish/status/fetch/"
TOKEN = "/v2/oauth/token/"
OPEN_ID = "-000OpenIdOfHeraldApp"
PUBLISH_ID = "v_pub_url~v2.7433000000000000001"
POST_ID = 7433000000000000042
VIDEO = {"type": "video", "url": "https://media.herald.example/clips/sunset.mp4"}
OK = {"code": "ok", "message": "", "log_id": "202612011000000000000000000001"}
TIKTOK_APP = {"tiktok_client_key": "tt-key", "tiktok_client_secret": "tt-shh", "herald_dashboard_url": DASHBOARD}


@pytest.fixture
async def client(store, sim):
    async with herald(store, sim, herald_platform_base_urls={"tiktok": sim.url}, **TIKTOK_APP) as http:
        yield http


def ok(data: dict) -> Reply:
    return Reply(body={"data": data, "error": OK})


def processing(state: str = "PROCESSING_DOWNLOAD") -> Reply:
    return ok({"status": state, "downloaded_bytes": 1048576})


def complete() -> Reply:
    return ok({"status": "PUBLISH_COMPLETE", "publicaly_available_post_id": [POST_ID]})


def tiktok_platform(sim, *statuses: Reply) -> None:
    """A creator who may post publicly, a video init answering PUBLISH_ID, the statuses in order."""
    sim.answer(CREATOR, ok({"creator_username": "herald.app", "creator_nickname": "Herald",
                            "privacy_level_options": ["PUBLIC_TO_EVERYONE", "SELF_ONLY"], "comment_disabled": False,
                            "duet_disabled": False, "stitch_disabled": False, "max_video_post_duration_sec": 600}))
    sim.answer(VIDEO_INIT, ok({"publish_id": PUBLISH_ID}))
    sim.script(STATUS, *statuses)


def token_answer(access: str, refresh: str) -> Reply:
    return Reply(body={"access_token": access, "expires_in": 7200, "open_id": OPEN_ID, "refresh_expires_in": 15552000,
                       "refresh_token": refresh, "scope": "user.info.basic,video.publish", "token_type": "Bearer"})


async def tiktok_channel(client, who, sim) -> dict:
    """Connected through Login Kit: connect, TikTok's callback, the code exchanged with the PKCE verifier."""
    tiktok_platform(sim)
    sim.script(TOKEN, token_answer("act.1", "rft.1"))
    response = await client.get("/api/v1/channels/connect/tiktok", headers=who.headers)
    assert response.status_code == 200, response.text
    authorize = urlsplit(response.json()["authorize_url"])
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    # the platform's key moves its Login Kit host too (services/hosts.py): the simulator's authorize page
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{sim.url}/v2/auth/authorize/"
    assert query["client_key"] == "tt-key" and query["code_challenge_method"] == "S256"
    back = await client.get("/api/v1/channels/callback/tiktok", params={"code": "c0de", "state": query["state"]})
    assert back.status_code in (302, 303, 307) and "connected=tiktok" in back.headers["location"], back.text
    [exchange] = sim.received(TOKEN)
    assert {k: exchange.form()[k] for k in ("client_key", "client_secret", "code", "grant_type")} == {
        "client_key": "tt-key", "client_secret": "tt-shh", "code": "c0de", "grant_type": "authorization_code"}
    assert exchange.form()["code_verifier"]
    [channel] = (await client.get("/api/v1/channels", headers=who.headers)).json()["items"]
    assert (channel["platform"], channel["account_id"], channel["name"]) == ("tiktok", OPEN_ID, "Herald")
    # the media host is verified for the app: TikTok pulls videos from it
    patched = await client.patch(f"/api/v1/channels/{channel['id']}", headers=who.headers,
                                 json={"metadata": {"verified_domains": ["herald.example"]}})
    assert patched.status_code == 200, patched.text
    sim.requests.clear()
    return patched.json()


async def test_tiktok_video_is_pulled_from_a_verified_domain_and_published_in_one_run(client, alice, sim):
    channel = await tiktok_channel(client, alice, sim)
    tiktok_platform(sim, complete())
    post = await schedule(client, alice, channel, {"text": "Sunset #herald", "media": [VIDEO],
                                                   "platforms": {"tiktok": {"privacy_level": "PUBLIC_TO_EVERYONE",
                                                                            "disable_duet": True}}})

    summary = await cron(client)

    assert summary["published"] == 1, summary
    assert [(r.method, r.path) for r in sim.received()] == [("POST", CREATOR), ("POST", VIDEO_INIT), ("POST", STATUS)]
    assert all(r.headers["authorization"] == "Bearer act.1" for r in sim.received())
    [init] = sim.received(VIDEO_INIT)
    assert init.json() == {"post_info": {"privacy_level": "PUBLIC_TO_EVERYONE", "disable_comment": False,
                                         "disable_duet": True, "disable_stitch": False, "title": "Sunset #herald"},
                           "source_info": {"source": "PULL_FROM_URL", "video_url": VIDEO["url"]}}
    assert sim.received(STATUS)[0].json() == {"publish_id": PUBLISH_ID}
    after = await fetch(client, alice, post)
    [target] = after["targets"]
    assert after["status"] == "published" and target["status"] == "published"
    assert target["platform_post_id"] == str(POST_ID)
    assert target["platform_post_url"] == f"https://www.tiktok.com/@herald.app/video/{POST_ID}"


async def test_tiktok_video_off_the_verified_domains_is_uploaded_to_the_upload_url(client, alice, sim):
    channel = await tiktok_channel(client, alice, sim)
    tiktok_platform(sim, complete())
    sim.answer("/media/clip.mp4", Reply(body=b"\x00\x00\x00\x18ftypmp42clip"))
    sim.answer(VIDEO_INIT, ok({"publish_id": PUBLISH_ID, "upload_url": f"{sim.url}/upload/?upload_id=67890"}))
    sim.script("/upload/", Reply(status=201, body=b""))
    post = await schedule(client, alice, channel, {"text": "Sunset", "media": [{"type": "video",
                                                                                 "url": f"{sim.url}/media/clip.mp4"}]})

    summary = await cron(client)

    assert summary["published"] == 1, summary
    [init] = sim.received(VIDEO_INIT)
    assert init.json()["source_info"] == {"source": "FILE_UPLOAD", "video_size": 16, "chunk_size": 16,
                                          "total_chunk_count": 1}
    [put] = sim.received("/upload/", method="PUT")
    assert put.body == b"\x00\x00\x00\x18ftypmp42clip" and put.params() == {"upload_id": "67890"}
    assert (put.headers["content-range"], put.headers["content-type"]) == ("bytes 0-15/16", "video/mp4")
    assert (await fetch(client, alice, post))["status"] == "published"


async def test_tiktok_processing_past_the_run_is_resumed_from_the_publish_id_without_a_second_upload(
        client, alice, sim):
    channel = await tiktok_channel(client, alice, sim)
    # the call's 2 s (REQUEST_TIMEOUT) ends before TikTok is done; the next run finds it live
    tiktok_platform(sim, processing(), complete())
    post = await schedule(client, alice, channel, {"text": "Sunset #herald", "media": [VIDEO]})

    first = await cron(client)
    waiting = await fetch(client, alice, post)
    second = await cron(client)

    assert first["retry_scheduled"] == 1 and first["published"] == 0, first
    assert waiting["status"] == "scheduled" and "still processing" in waiting["targets"][0]["error"]
    assert second["published"] == 1, second
    assert calls(sim, "POST", VIDEO_INIT) == 1 and calls(sim, "POST", CREATOR) == 1  # the second run only polled
    assert [r.json() for r in sim.received(STATUS)] == [{"publish_id": PUBLISH_ID}] * 2
    after = await fetch(client, alice, post)
    assert after["status"] == "published" and after["targets"][0]["platform_post_id"] == str(POST_ID)
    runs = (await client.get(f"/api/v1/posts/{post['id']}/runs", headers=alice.headers)).json()["items"]
    assert sorted(r["outcome"] for r in runs) == ["published", "transient"]


async def test_tiktok_lost_status_answer_is_polled_again_by_the_next_run(client, alice, sim):
    channel = await tiktok_channel(client, alice, sim)
    tiktok_platform(sim, Reply(drop=True), complete())  # reading a status is safe to repeat
    post = await schedule(client, alice, channel, {"text": "Sunset #herald", "media": [VIDEO]})

    first = await cron(client)
    second = await cron(client)

    assert first["retry_scheduled"] == 1 and second["published"] == 1, (first, second)
    assert calls(sim, "POST", VIDEO_INIT) == 1
    assert [r.json() for r in sim.received(STATUS)] == [{"publish_id": PUBLISH_ID}] * 2
    assert (await fetch(client, alice, post))["status"] == "published"


async def test_tiktok_call_the_run_stops_mid_poll_is_looked_up_through_the_publish_id(client, alice, sim, later):
    channel = await tiktok_channel(client, alice, sim)
    # init answers after 1.3 s of the call's 2 s; the status then hangs and the run stops the call
    # (at 2 s + its 1 s grace, before the poll's own 2 s timeout): the publish_id is kept anyway
    tiktok_platform(sim, Reply(hang=True), complete())
    sim.script(VIDEO_INIT, Reply(body={"data": {"publish_id": PUBLISH_ID}, "error": OK}, delay=1.3))
    post = await schedule(client, alice, channel, {"text": "Sunset #herald", "media": [VIDEO]})

    first = await cron(client)
    waiting = await fetch(client, alice, post)
    later(LEASE_SECONDS + 3600)
    second = await cron(client)

    assert first["awaiting_lookup"] == 1 and first["needs_review"] == 0, first
    assert waiting["status"] == "publishing"
    assert second["published"] == 1 and second["reconciled"] == 1, second
    assert calls(sim, "POST", VIDEO_INIT) == 1
    assert [r.json() for r in sim.received(STATUS)] == [{"publish_id": PUBLISH_ID}] * 2
    after = await fetch(client, alice, post)
    assert after["status"] == "published" and after["targets"][0]["platform_post_id"] == str(POST_ID)


async def test_tiktok_lost_init_answer_is_held_for_review_never_sent_again(client, alice, sim, later):
    channel = await tiktok_channel(client, alice, sim)
    tiktok_platform(sim)
    sim.script(VIDEO_INIT, Reply(drop=True))  # TikTok may be pulling the video; no publish_id came back
    post = await schedule(client, alice, channel, {"text": "Sunset #herald", "media": [VIDEO]})

    await cron(client)
    later(LEASE_SECONDS + 3600)
    second = await cron(client)

    assert second["needs_review"] == 1, second
    assert calls(sim, "POST", VIDEO_INIT) == 1 and calls(sim, "POST", STATUS) == 0
    after = await fetch(client, alice, post)
    assert after["status"] == "needs_review" and after["targets"][0]["status"] == "unknown"


async def test_tiktok_refused_token_is_refreshed_and_the_rotated_refresh_token_kept(client, alice, sim):
    channel = await tiktok_channel(client, alice, sim)
    expired = Reply(status=401, body={"data": {}, "error": {"code": "access_token_invalid", "log_id": "x",
                                                            "message": "The access token is invalid or not found in the request."}})
    tiktok_platform(sim, complete(), complete())
    sim.script(TOKEN, token_answer("act.2", "rft.2"), token_answer("act.3", "rft.3"))
    sim.script(CREATOR, expired)
    first = await schedule(client, alice, channel, {"text": "one", "media": [VIDEO]})
    assert (await cron(client))["published"] == 1
    sim.script(CREATOR, expired)
    second = await schedule(client, alice, channel, {"text": "two", "media": [VIDEO]})
    assert (await cron(client))["published"] == 1

    refreshes = [r.form() for r in sim.received(TOKEN)]
    assert [(f["grant_type"], f["refresh_token"]) for f in refreshes] == [("refresh_token", "rft.1"),
                                                                           ("refresh_token", "rft.2")]
    # each run used the token it was given last: the rotated one was saved before it was used
    assert [r.headers["authorization"] for r in sim.received(CREATOR)] == [
        "Bearer act.1", "Bearer act.2", "Bearer act.2", "Bearer act.3"]
    for post in (first, second):
        assert (await fetch(client, alice, post))["status"] == "published"


async def test_tiktok_options_are_checked_at_the_door_and_kept_with_the_post(client, alice, sim):
    channel = await tiktok_channel(client, alice, sim)
    at = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()

    async def create(content: dict):
        return await client.post("/api/v1/posts", headers=alice.headers,
                                 json={"content": content, "channel_ids": [channel["id"]], "scheduled_at": at})

    wrong = await create({"text": "Sunset", "media": [VIDEO], "platforms": {"tiktok": {"privacy_level": "FRIENDS"}}})
    unverified = await create({"text": "Week", "media": [{"type": "image", "url": "https://cdn.other.example/a.jpg"}]})
    kept = await create({"text": "Sunset", "media": [VIDEO],
                         "platforms": {"tiktok": {"privacy_level": "SELF_ONLY", "disable_comment": True}}})

    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "content.platforms.tiktok.privacy_level"
    assert unverified.status_code == 422 and unverified.json()["error"]["field"] == "content.media[0].url"
    assert "verified_domains" in unverified.json()["error"]["message"]
    assert kept.status_code == 201, kept.text
    fetched = await client.get(f"/api/v1/posts/{kept.json()['id']}", headers=alice.headers)
    assert fetched.json()["content"]["platforms"] == {"tiktok": {"privacy_level": "SELF_ONLY", "disable_comment": True}}
