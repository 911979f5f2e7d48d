"""Bluesky and LinkedIn video, LinkedIn documents, end to end: the cron endpoint of the real app
publishing to the loopback platform simulator, every host of the platform pointed at it (for
Bluesky the PDS through the channel's ``pds_url`` and the video service through ``bluesky``'s key;
the media files are served by the simulator too).

The point of these: a video still processing when the run's time is up is resumed by a later run
from what the first one saved with the target (Bluesky's job id, LinkedIn's video URN), and the
file is uploaded once.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.api.test_platform_e2e import calls, connect, cron, herald, schedule
from tests.support.simulator import Reply, Simulator

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
CLIP = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 400  # 102,412 bytes: over LinkedIn's 75 KB minimum
JOB = "jh2cvxlw5ofgtm2d"
BLOB = {"$type": "blob", "ref": {"$link": "bafkreifzxw3"}, "mimeType": "video/mp4", "size": 412345}
XRPC = "/xrpc"


@pytest.fixture
def sim():
    with Simulator() as simulator:
        simulator.answer("/media/clip.mp4", Reply(body=CLIP, headers={"Content-Type": "video/mp4"}))
        simulator.answer("/media/deck.pdf", Reply(body=b"%PDF-1.7 deck", headers={"Content-Type": "application/pdf"}))
        yield simulator


@pytest.fixture
async def client(store, sim):
    async with herald(store, sim, herald_platform_base_urls={"bluesky": sim.url, "linkedin": sim.url}) as http:
        yield http


async def target_of(client, who, post: dict) -> tuple[str, dict]:
    response = await client.get(f"/api/v1/posts/{post['id']}", headers=who.headers)
    body = response.json()
    return body["status"], body["targets"][0]


# --- Bluesky ---------------------------------------------------------------------------------------


def access_jwt() -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": int(time.time()) + 7200}).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.signature"


def bluesky_pds(sim) -> None:
    """The account's PDS and the video service, both on the simulator; the job is still encoding."""
    session = {"did": DID, "handle": "author.bsky.social", "accessJwt": access_jwt(), "refreshJwt": "refresh-1",
               "didDoc": {"id": DID, "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                                                  "serviceEndpoint": sim.url}]}}
    sim.answer(f"{XRPC}/com.atproto.server.createSession", Reply(body=session))
    sim.answer(f"{XRPC}/com.atproto.server.getSession", Reply(body=session))
    sim.answer(f"{XRPC}/com.atproto.server.getServiceAuth", Reply(body={"token": "service-token"}))
    sim.answer(f"{XRPC}/app.bsky.video.uploadVideo", Reply(body={"jobId": JOB, "did": DID, "state": "JOB_STATE_CREATED"}))
    sim.answer(f"{XRPC}/app.bsky.video.getJobStatus", Reply(body={"jobStatus": {
        "jobId": JOB, "did": DID, "state": "JOB_STATE_ENCODING", "progress": 30}}))
    sim.answer(f"{XRPC}/com.atproto.repo.createRecord", Reply(body={
        "uri": f"at://{DID}/app.bsky.feed.post/3lxyz", "cid": "bafyrei"}))


async def test_a_bluesky_video_job_that_outlives_the_run_is_posted_by_the_next_from_its_saved_id(
        client, alice, sim, later):
    bluesky_pds(sim)
    channel = await connect(client, alice, {"platform": "bluesky", "metadata": {"pds_url": sim.url},
                                            "credentials": {"identifier": "author.bsky.social",
                                                            "app_password": "abcd-efgh-ijkl-mnop"}})
    post = await schedule(client, alice, channel, {"text": "surf's up", "media": [
        {"type": "video", "url": f"{sim.url}/media/clip.mp4", "alt": "a dog surfing"}]})

    first = await cron(client)
    status, target = await target_of(client, alice, post)
    assert first["published"] == 0 and first["retry_scheduled"] == 1, first
    assert status == "scheduled" and target["error_code"] == "transient", target
    assert "still processing the video" in target["error"], target
    assert calls(sim, "POST", f"{XRPC}/app.bsky.video.uploadVideo") == 1
    assert calls(sim, "POST", f"{XRPC}/com.atproto.repo.createRecord") == 0

    sim.answer(f"{XRPC}/app.bsky.video.getJobStatus", Reply(body={"jobStatus": {
        "jobId": JOB, "did": DID, "state": "JOB_STATE_COMPLETED", "blob": BLOB}}))
    later(60)
    second = await cron(client)

    assert second["published"] == 1, second
    status, target = await target_of(client, alice, post)
    assert status == "published" and target["platform_post_id"] == f"at://{DID}/app.bsky.feed.post/3lxyz"
    assert calls(sim, "POST", f"{XRPC}/app.bsky.video.uploadVideo") == 1  # resumed from the job id, not uploaded again
    assert {r.params()["jobId"] for r in sim.received(f"{XRPC}/app.bsky.video.getJobStatus")} == {JOB}
    [created] = sim.received(f"{XRPC}/com.atproto.repo.createRecord")
    assert created.json()["record"]["embed"] == {"$type": "app.bsky.embed.video", "video": BLOB, "alt": "a dog surfing"}
    [upload] = sim.received(f"{XRPC}/app.bsky.video.uploadVideo")
    assert upload.body == CLIP and upload.headers["authorization"] == "Bearer service-token"
    [auth] = sim.received(f"{XRPC}/com.atproto.server.getServiceAuth")
    assert auth.params()["aud"] == f"did:web:127.0.0.1:{sim.port}"


# --- LinkedIn --------------------------------------------------------------------------------------

VIDEO = "urn:li:video:C5F10AQGKQg_6y2a4sQ"
VIDEO_STATUS = "/rest/videos/urn:li:video:C5F10AQGKQg_6y2a4sQ"  # as the server sees the %3A-encoded path


def linkedin_api(sim, video_status: str) -> None:
    sim.answer("/v2/userinfo", Reply(body={"sub": "abc123", "name": "Ada Lovelace"}))
    sim.script("/rest/videos", Reply(body={"value": {
        "video": VIDEO, "uploadToken": "", "uploadUrlsExpireAt": 1767225600000, "uploadInstructions": [
            {"uploadUrl": f"{sim.url}/dms-uploads/part0", "firstByte": 0, "lastByte": 65535},
            {"uploadUrl": f"{sim.url}/dms-uploads/part1", "firstByte": 65536, "lastByte": len(CLIP) - 1}]}}),
        Reply(body={}), method="POST")  # initializeUpload, then finalizeUpload
    sim.answer("/dms-uploads/part0", Reply(headers={"ETag": "/etag-0"}))
    sim.answer("/dms-uploads/part1", Reply(headers={"ETag": "/etag-1"}))
    sim.answer(VIDEO_STATUS, Reply(body={"id": VIDEO, "status": video_status}))
    sim.answer("/rest/posts", Reply(status=201, body={}, headers={"x-restli-id": "urn:li:ugcPost:7001"}))


async def linkedin_channel(client, who) -> dict:
    return await connect(client, who, {"platform": "linkedin", "credentials": {"access_token": "li-token"}})


async def test_a_linkedin_video_still_processing_is_posted_by_a_later_run_without_a_second_upload(
        client, alice, sim, later):
    linkedin_api(sim, "PROCESSING")
    channel = await linkedin_channel(client, alice)
    post = await schedule(client, alice, channel, {"text": "launch", "media": [
        {"type": "video", "url": f"{sim.url}/media/clip.mp4", "alt": "Launch day"}]})

    first = await cron(client)
    status, target = await target_of(client, alice, post)
    assert first["retry_scheduled"] == 1 and "still processing the video" in target["error"], (first, target)
    [init, final] = sim.received("/rest/videos", method="POST")
    assert (init.params(), final.params()) == ({"action": "initializeUpload"}, {"action": "finalizeUpload"})
    assert final.json()["finalizeUploadRequest"]["uploadedPartIds"] == ["/etag-0", "/etag-1"]
    assert [r.body for r in sim.received("/dms-uploads/part0")] + [r.body for r in sim.received("/dms-uploads/part1")] \
        == [CLIP[:65536], CLIP[65536:]]

    sim.answer(VIDEO_STATUS, Reply(body={"id": VIDEO, "status": "AVAILABLE"}))
    later(60)
    second = await cron(client)

    assert second["published"] == 1, second
    status, target = await target_of(client, alice, post)
    assert status == "published" and target["platform_post_id"] == "urn:li:ugcPost:7001"
    assert calls(sim, "POST", "/rest/videos") == 2 and calls(sim, "PUT", "/dms-uploads/part0") == 1
    [posted] = sim.received("/rest/posts")
    assert posted.json()["content"] == {"media": {"id": VIDEO, "title": "Launch day"}}


async def test_a_linkedin_document_is_uploaded_and_posted_in_one_run(client, alice, sim):
    sim.answer("/v2/userinfo", Reply(body={"sub": "abc123", "name": "Ada Lovelace"}))
    sim.answer("/rest/documents", Reply(body={"value": {
        "uploadUrl": f"{sim.url}/dms-uploads/doc", "uploadUrlExpiresAt": 1767225600000,
        "document": "urn:li:document:D5610AQ"}}), method="POST")
    sim.answer("/dms-uploads/doc", Reply(status=201, body={}))
    sim.answer("/rest/posts", Reply(status=201, body={}, headers={"x-restli-id": "urn:li:share:7002"}))
    channel = await linkedin_channel(client, alice)
    post = await schedule(client, alice, channel, {"text": "our deck", "media": [
        {"type": "document", "url": f"{sim.url}/media/deck.pdf", "alt": "Q3 deck"}]})

    summary = await cron(client)

    assert summary["published"] == 1, summary
    status, target = await target_of(client, alice, post)
    assert status == "published" and target["platform_post_id"] == "urn:li:share:7002"
    [upload] = sim.received("/dms-uploads/doc", method="PUT")
    assert upload.body == b"%PDF-1.7 deck" and upload.headers["content-type"] == "application/pdf"
    [posted] = sim.received("/rest/posts")
    assert posted.json()["content"] == {"media": {"title": "Q3 deck", "id": "urn:li:document:D5610AQ"}}
