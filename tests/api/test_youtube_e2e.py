"""YouTube end to end: the cron endpoint of the real app uploading to the loopback simulator
(HERALD_PLATFORM_BASE_URLS points youtube at it), which answers Google's resumable upload protocol
(``ResumableUploads``) and serves the video from a media host that honours ``Range`` (``MediaFile``).

The video is a little over one 8 MiB chunk, so an upload is two PUTs: a run killed while the second
is in flight has had its first confirmed, and the run that recovers it sends only the rest.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.platforms.youtube import CHUNK_BYTES
from tests.api.conftest import CRON
from tests.api.test_platform_e2e import LEASE_SECONDS, PATH, connect, cron, fetch, herald, schedule
from tests.support.simulator import MediaFile, Reply, ResumableUploads

UPLOAD = "/upload/youtube/v3/videos"
CHANNELS = "/youtube/v3/channels"
CHANNEL = "UC_x5XG1OV2P6uZZ5FSM9Ttw"
VIDEO_ID = "dQw4w9WgXcQ"
VIDEO = bytes(range(256)) * ((CHUNK_BYTES + 1024 * 1024) // 256)  #: 9 MiB: one full chunk and a second, shorter
TOTAL = len(VIDEO)


@pytest.fixture
async def client(store, sim):
    async with herald(store, sim, herald_platform_base_urls={"youtube": sim.url}, request_timeout=15) as http:
        yield http


async def youtube_channel(client, who, sim, *, channel_id: str = CHANNEL) -> dict:
    sim.answer(CHANNELS, Reply(body={"kind": "youtube#channelListResponse", "items": [{
        "kind": "youtube#channel", "id": channel_id, "snippet": {"title": "Herald Videos"},
        "contentDetails": {"relatedPlaylists": {"uploads": "UU" + channel_id[2:]}}}]}))
    channel = await connect(client, who, {"platform": "youtube",
                                          "credentials": {"access_token": "ya29.tok", "refresh_token": "1//refresh"}})
    assert (channel["account_id"], channel["name"]) == (channel_id, "Herald Videos")
    assert channel["metadata"] == {"uploads_playlist_id": "UU" + channel_id[2:]}
    return channel


def youtube_platform(sim, **options) -> tuple[ResumableUploads, MediaFile]:
    uploads, media = ResumableUploads(sim.url, UPLOAD, video_id=VIDEO_ID, **options), MediaFile(VIDEO)
    sim.handle(UPLOAD, uploads)
    sim.handle("/media/launch.mp4", media)
    return uploads, media


def content(sim) -> dict:
    return {"text": "Launch day", "media": [{"type": "video", "url": f"{sim.url}/media/launch.mp4"}],
            "platforms": {"youtube": {"title": "Launch day, behind the scenes", "description": "How we shipped it.",
                                      "tags": ["launch"], "privacy_status": "unlisted"}}}


def ranges(sim) -> list[str]:
    return [r.headers["content-range"] for r in sim.received(UPLOAD, method="PUT")]


async def test_a_youtube_video_is_uploaded_in_chunks_through_a_session_and_published(client, alice, sim):
    channel = await youtube_channel(client, alice, sim)
    uploads, media = youtube_platform(sim)
    post = await schedule(client, alice, channel, content(sim))

    summary = await cron(client)

    assert summary["published"] == 1, summary
    [opened] = sim.received(UPLOAD, method="POST")
    assert opened.params() == {"uploadType": "resumable", "part": "snippet,status"}
    assert opened.headers["authorization"] == "Bearer ya29.tok"
    assert (opened.headers["x-upload-content-length"], opened.headers["x-upload-content-type"]) == (str(TOTAL), "video/mp4")
    assert opened.json() == {"snippet": {"title": "Launch day, behind the scenes", "description": "How we shipped it.",
                                         "tags": ["launch"]},
                             "status": {"privacyStatus": "unlisted", "selfDeclaredMadeForKids": False}}
    assert ranges(sim) == [f"bytes 0-{CHUNK_BYTES - 1}/{TOTAL}", f"bytes {CHUNK_BYTES}-{TOTAL - 1}/{TOTAL}"]
    [held] = uploads.sessions.values()
    assert bytes(held) == VIDEO and media.ranges == [None]
    after = await fetch(client, alice, post)
    [target] = after["targets"]
    assert after["status"] == "published" and target["status"] == "published"
    assert (target["platform_post_id"], target["platform_post_url"]) == (
        VIDEO_ID, f"https://www.youtube.com/watch?v={VIDEO_ID}")


async def cron_killed_during_second_chunk(client, sim) -> None:
    """Start a cron run and kill it (a function timeout) once its second PUT reached YouTube."""
    run = asyncio.create_task(client.post(PATH, headers=CRON))
    for _ in range(1000):
        if len(sim.received(UPLOAD, method="PUT")) >= 2 or run.done():
            break
        await asyncio.sleep(0.01)
    assert not run.done(), run.result().text
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_a_run_killed_mid_upload_is_resumed_by_the_next_from_the_confirmed_byte(client, alice, sim, later):
    channel = await youtube_channel(client, alice, sim)
    uploads, media = youtube_platform(sim, hang_at=CHUNK_BYTES)  # the second chunk never gets an answer
    post = await schedule(client, alice, channel, content(sim))

    await cron_killed_during_second_chunk(client, sim)
    assert ranges(sim) == [f"bytes 0-{CHUNK_BYTES - 1}/{TOTAL}", f"bytes {CHUNK_BYTES}-{TOTAL - 1}/{TOTAL}"]
    later(LEASE_SECONDS + 1)
    recovery = await cron(client)

    assert recovery["recovered"] == 1 and recovery["published"] == 1 and recovery["needs_review"] == 0, recovery
    # the recovering run asked the saved session (the lookup, then the upload), and sent only the rest
    assert ranges(sim)[2:] == [f"bytes */{TOTAL}", f"bytes */{TOTAL}", f"bytes {CHUNK_BYTES}-{TOTAL - 1}/{TOTAL}"]
    assert len(sim.received(UPLOAD, method="POST")) == 1  # one session, one video
    assert media.ranges == [None, f"bytes={CHUNK_BYTES}-"]  # the first 8 MiB were not fetched again
    [held] = uploads.sessions.values()
    assert bytes(held) == VIDEO
    after = await fetch(client, alice, post)
    [target] = after["targets"]
    assert after["status"] == "published" and target["platform_post_id"] == VIDEO_ID


async def test_quota_exceeded_holds_every_youtube_channel_until_midnight_pacific(client, alice, sim):
    channel = await youtube_channel(client, alice, sim)
    youtube_platform(sim)
    sim.script(UPLOAD, Reply(403, {"error": {"code": 403, "message": "The request cannot be completed because you have"
                                             " exceeded your quota.", "errors": [{"domain": "youtube.quota",
                                             "reason": "quotaExceeded", "message": "quota"}]}}), method="POST")
    post = await schedule(client, alice, channel, content(sim))

    first = await cron(client)
    held = await fetch(client, alice, post)
    other = await youtube_channel(client, alice, sim, channel_id="UC_otherChannel0000000000")
    second_post = await schedule(client, alice, other, content(sim))
    second = await cron(client)

    assert first["rate_limited"] == 1 and first["failed"] == 0, first
    [pause] = first["paused"]
    assert pause["platform"] == "youtube" and "quota" in pause["reason"]
    midnight = datetime.combine(datetime.now(ZoneInfo("America/Los_Angeles")).date() + timedelta(days=1),
                                datetime.min.time(), tzinfo=ZoneInfo("America/Los_Angeles"))
    # (the wait is counted from the answer's arrival on the run's clock: within a second of midnight)
    assert abs((datetime.fromisoformat(pause["until"]) - midnight).total_seconds()) < 1
    assert held["status"] == "scheduled" and held["targets"][0]["status"] == "pending"
    assert abs((datetime.fromisoformat(held["next_attempt_at"].replace("Z", "+00:00")) - midnight).total_seconds()) < 1
    # another channel's video waits for the same reset: no session is opened for it
    assert second["held"] == 1 and second["published"] == 0, second
    assert len(sim.received(UPLOAD, method="POST")) == 1
    waiting = await fetch(client, alice, second_post)
    assert waiting["status"] == "scheduled"


async def test_heralds_quota_count_holds_the_upload_that_would_pass_the_daily_quota_without_asking_google(
        store, alice, sim, later):
    # a project whose daily quota takes exactly one videos.insert (its own bucket: 1 unit a call)
    async with herald(store, sim, herald_platform_base_urls={"youtube": sim.url}, request_timeout=15,
                      youtube_daily_quota_units=1) as client:
        channel = await youtube_channel(client, alice, sim)
        uploads, media = youtube_platform(sim)
        first_post = await schedule(client, alice, channel, content(sim))
        first = await cron(client)
        assert first["published"] == 1, first
        assert len(sim.received(UPLOAD, method="POST")) == 1
        sent = len(sim.received(UPLOAD))

        second_post = await schedule(client, alice, channel, content(sim))
        second = await cron(client)

        # Herald's count has no room for a second insert today: no session, no request to Google's upload
        assert second["rate_limited"] == 1 and second["published"] == 0 and second["failed"] == 0, second
        assert len(sim.received(UPLOAD)) == sent
        [pause] = second["paused"]
        assert pause["platform"] == "youtube" and "Herald's count" in pause["reason"] and "1/1" in pause["reason"]
        midnight = datetime.combine(datetime.now(ZoneInfo("America/Los_Angeles")).date() + timedelta(days=1),
                                    datetime.min.time(), tzinfo=ZoneInfo("America/Los_Angeles"))
        assert abs((datetime.fromisoformat(pause["until"]) - midnight).total_seconds()) < 1
        waiting = await fetch(client, alice, second_post)
        assert waiting["status"] == "scheduled" and waiting["targets"][0]["status"] == "pending"
        assert abs((datetime.fromisoformat(waiting["next_attempt_at"].replace("Z", "+00:00"))
                    - midnight).total_seconds()) < 1
        assert (await fetch(client, alice, first_post))["status"] == "published"

        # past midnight Pacific: a new quota day, and the video goes up
        later((midnight - datetime.now(ZoneInfo("UTC"))).total_seconds() + 5)
        third = await cron(client)
        assert third["published"] == 1, third
        assert len(sim.received(UPLOAD, method="POST")) == 2
        assert (await fetch(client, alice, second_post))["status"] == "published"


# --- writing a YouTube post: its options are checked at the door ---------------------------------


async def create(client, who, channel: dict, body: dict):
    return await client.post("/api/v1/posts", headers=who.headers, json={"content": body, "channel_ids": [channel["id"]]})


async def test_a_youtube_option_given_to_another_platform_is_refused(client, alice, sim):
    channel = await youtube_channel(client, alice, sim)
    response = await create(client, alice, channel, {"text": "hi", "platforms": {"x": {"title": "Launch"}}})
    assert response.status_code == 422, response.text
    assert "content.platforms.x.title" in response.text


@pytest.mark.parametrize("youtube, field, words", [
    ({"title": "t" * 101}, "content.platforms.youtube.title", "the limit is 100"),
    ({"privacy_status": "public", "publish_at": "2030-01-02T17:00:00Z"}, "content.platforms.youtube.publish_at",
     '"private"'),
    ({"tags": ["a b" * 50] * 4}, "content.platforms.youtube.tags", "the limit is 500"),
])
async def test_a_youtube_post_over_a_limit_is_refused_naming_the_field(client, alice, sim, youtube, field, words):
    channel = await youtube_channel(client, alice, sim)
    response = await create(client, alice, channel, {**content(sim), "platforms": {"youtube": youtube}})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("content_rejected", field) and words in error["message"]


async def test_a_youtube_post_needs_a_video(client, alice, sim):
    channel = await youtube_channel(client, alice, sim)
    response = await create(client, alice, channel, {"text": "Launch day"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "content.media", response.text


async def test_a_nul_in_a_youtube_option_is_refused(client, alice, sim):
    channel = await youtube_channel(client, alice, sim)
    response = await create(client, alice, channel, {**content(sim), "platforms": {"youtube": {"title": "a\u0000b"}}})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "content.platforms.youtube.title"
