"""Media checked before the post is due: at the door a file a targeted platform would refuse (or one
that is gone) is a 422 naming the item and the limit; an hour before the post's time the cron's
pass looks again and leaves warnings on the post and a ``post.media_warning`` event.

The media host is mocked with respx (no network); its name resolves through the ``dns`` fixture.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import respx

from services.platforms.medialimits import MB
from tests.api.conftest import CRON, make_settings, sandbox_channel
from tests.support import mediafiles

CDN = "https://cdn.example.com"
GRAPH = "https://graph.facebook.com/v25.0"
PHOTO = mediafiles.jpeg(1080, 1080)


@pytest.fixture
def settings():
    return make_settings(herald_media_checks=True)


@pytest.fixture
def cdn(dns):
    """The media host, public as far as Herald's URL rule can tell; every request must be mocked."""
    dns["cdn.example.com"] = "93.184.215.14"
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


def serve(cdn, path: str, data: bytes, *, size: int | None = None, content_type: str = "image/jpeg"):
    """The host answers a range request for ``path`` with the file's first bytes and its whole size."""
    return cdn.get(f"{CDN}{path}").respond(206, content=data, headers={
        "Content-Type": content_type, "Content-Range": f"bytes 0-{len(data) - 1}/{size or len(data)}"})


def image(path: str) -> dict:
    return {"type": "image", "url": f"{CDN}{path}"}


def soon(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def instagram_channel(client, who, cdn) -> dict:
    cdn.get(f"{GRAPH}/me/accounts").respond(200, json={"data": [
        {"id": "p1", "instagram_business_account": {"id": "ig1", "username": "cats"}}]})
    response = await client.post("/api/v1/channels", headers=who.headers, json={
        "platform": "instagram", "credentials": {"access_token": "ig-tok"}})
    assert response.status_code == 201, response.text
    return response.json()


async def post_count(client, who) -> int:
    return (await client.get("/api/v1/posts", headers=who.headers)).json()["total"]


async def linkedin_channel(client, who, cdn) -> dict:
    cdn.get("https://api.linkedin.com/v2/userinfo").respond(200, json={"sub": "abc123", "name": "Ada"})
    response = await client.post("/api/v1/channels", headers=who.headers, json={
        "platform": "linkedin", "credentials": {"access_token": "li-tok"}})
    assert response.status_code == 201, response.text
    return response.json()


class TestAtTheDoor:
    async def test_a_document_is_judged_as_a_document(self, client, alice, cdn):
        """A LinkedIn document post: a PDF passes, a web page given for one is refused, and so is one over 100 MB."""
        channel = await linkedin_channel(client, alice, cdn)
        serve(cdn, "/deck.pdf", b"%PDF-1.7\n" + b"0" * 64, content_type="application/pdf")
        serve(cdn, "/page.pdf", b"<!doctype html><html>", content_type="text/html")
        serve(cdn, "/huge.pdf", b"%PDF-1.7\n", size=150 * MB, content_type="application/pdf")

        async def post(path: str):
            return await client.post("/api/v1/posts", headers=alice.headers, json={
                "content": {"text": "our deck", "media": [{"type": "document", "url": f"{CDN}{path}", "alt": "Deck"}]},
                "channel_ids": [channel["id"]], "scheduled_at": soon(days=1)})

        assert (await post("/deck.pdf")).status_code == 201
        page = (await post("/page.pdf")).json()["error"]
        assert (page["code"], page["field"]) == ("media_type_mismatch", "content.media[0].url")
        huge = (await post("/huge.pdf")).json()["error"]
        assert huge["code"] == "media_rejected" and "LinkedIn takes documents up to 100 MB; this one is 150 MB" in huge["message"]

    async def test_an_image_over_instagrams_limit_is_refused_naming_the_item_and_the_limit(self, client, alice, cdn):
        channel = await instagram_channel(client, alice, cdn)
        serve(cdn, "/small.jpg", PHOTO)
        serve(cdn, "/big.jpg", PHOTO, size=int(12.4 * MB))
        response = await client.post("/api/v1/posts", headers=alice.headers, json={
            "content": {"text": "two cats", "media": [image("/small.jpg"), image("/big.jpg")]},
            "channel_ids": [channel["id"]], "scheduled_at": soon(days=1)})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == "content.media[1].url" and error["code"] == "media_rejected"
        assert "Instagram takes images up to 8 MB; this one is 12.4 MB" in error["message"]
        assert await post_count(client, alice) == 0

    async def test_a_dead_media_url_is_refused_at_creation(self, client, alice, cdn):
        channel = await sandbox_channel(client, alice)
        cdn.get(f"{CDN}/gone.jpg").respond(404)
        response = await client.post("/api/v1/posts", headers=alice.headers, json={
            "content": {"text": "hi", "media": [image("/gone.jpg")]}, "channel_ids": [channel["id"]]})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["field"], error["code"]) == ("content.media[0].url", "media_unavailable")
        assert "HTTP 404" in error["message"]
        assert await post_count(client, alice) == 0

    async def test_a_web_page_given_as_an_image_is_refused(self, client, alice, cdn):
        channel = await sandbox_channel(client, alice)
        cdn.get(f"{CDN}/photo-page").respond(200, html="<html><img src=cat.jpg></html>")
        response = await client.post("/api/v1/posts", headers=alice.headers, json={
            "content": {"text": "hi", "media": [image("/photo-page")]}, "channel_ids": [channel["id"]]})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "media_type_mismatch"
        assert "not a page that shows it" in response.json()["error"]["message"]

    async def test_a_file_whose_format_herald_cannot_tell_is_not_held_against_it(self, client, alice, cdn):
        channel = await sandbox_channel(client, alice)
        serve(cdn, "/scan.bmp", b"BM" + b"\x00" * 60, content_type="binary/octet-stream")  # S3's "no type set"
        response = await client.post("/api/v1/posts", headers=alice.headers, json={
            "content": {"text": "hi", "media": [image("/scan.bmp")]}, "channel_ids": [channel["id"]]})
        assert response.status_code == 201, response.text

    async def test_a_host_that_does_not_answer_just_now_is_let_through(self, client, alice, cdn):
        channel = await sandbox_channel(client, alice)
        cdn.get(f"{CDN}/busy.jpg").respond(503)
        response = await client.post("/api/v1/posts", headers=alice.headers, json={
            "content": {"text": "hi", "media": [image("/busy.jpg")]}, "channel_ids": [channel["id"]],
            "scheduled_at": soon(days=1)})
        assert response.status_code == 201, response.text
        assert response.json()["media_warnings"] == [] and response.json()["media_checked_at"] is None

    async def test_an_edit_and_a_schedule_look_at_the_media_again(self, client, alice, cdn):
        channel = await instagram_channel(client, alice, cdn)
        serve(cdn, "/a.jpg", PHOTO)
        draft = (await client.post("/api/v1/posts", headers=alice.headers, json={
            "content": {"text": "cat", "media": [image("/a.jpg")]}, "channel_ids": [channel["id"]]})).json()
        serve(cdn, "/wide.jpg", mediafiles.jpeg(1920, 600))  # 3.2:1, wider than Instagram's 1.91:1
        edit = await client.patch(f"/api/v1/posts/{draft['id']}", headers=alice.headers,
                                  json={"content": {"text": "cat", "media": [image("/wide.jpg")]}})
        assert edit.status_code == 422, edit.text
        assert "Instagram takes images from 4:5 (tall) to 1.91:1 (wide)" in edit.json()["error"]["message"]
        cdn.get(f"{CDN}/a.jpg").respond(404)  # the file the draft names is gone by the time it is scheduled
        scheduled = await client.post(f"/api/v1/posts/{draft['id']}/schedule", headers=alice.headers,
                                      json={"scheduled_at": soon(days=1)})
        assert scheduled.status_code == 422, scheduled.text
        assert scheduled.json()["error"]["field"] == "content.media[0].url"
        assert (await client.get(f"/api/v1/posts/{draft['id']}", headers=alice.headers)).json()["status"] == "draft"


class TestAnHourBefore:
    async def test_the_pass_leaves_warnings_and_an_event_and_the_post_still_goes_out(self, client, alice, cdn, db):
        channel = await sandbox_channel(client, alice)
        route = serve(cdn, "/cat.jpg", PHOTO)
        later = (await client.post("/api/v1/posts", headers=alice.headers, json={
            "content": {"text": "later", "media": [image("/cat.jpg")]}, "channel_ids": [channel["id"]],
            "scheduled_at": soon(hours=3)})).json()
        post = (await client.post("/api/v1/posts", headers=alice.headers, json={
            "content": {"text": "soon", "media": [image("/cat.jpg")]}, "channel_ids": [channel["id"]],
            "scheduled_at": soon(minutes=30)})).json()
        route.respond(404)  # the file is deleted after the post was written

        run = await client.post("/api/v1/cron/publish-scheduled", headers=CRON)
        assert run.status_code == 200, run.text
        assert run.json()["media_checks"] == {"checked": 1, "warned": 1, "given_back": 0, "skipped": False}
        seen = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
        [warning] = seen["media_warnings"]
        assert warning["field"] == "content.media[0].url" and warning["code"] == "media_unavailable"
        assert "HTTP 404" in warning["message"] and seen["media_checked_at"] is not None
        assert seen["status"] == "scheduled"
        # the post three hours away is not looked at yet
        assert (await client.get(f"/api/v1/posts/{later['id']}", headers=alice.headers)).json()["media_checked_at"] is None
        events = db.execute("select type, subject -> 'post' -> 'media_warnings' from herald.events"
                            " where subject -> 'post' ->> 'id' = %s", [post["id"]]).fetchall()
        assert [(t, [w["code"] for w in ws]) for t, ws in events] == [("post.media_warning", ["media_unavailable"])]

        # checked once for its time: the next tick does not look again
        again = await client.post("/api/v1/cron/publish-scheduled", headers=CRON)
        assert again.json()["media_checks"]["checked"] == 0

        # a warning informs, it never holds the post back: due now, it is published with its warning
        db.execute("update herald.posts set next_attempt_at = now() - interval '1 minute' where id = %s", [post["id"]])
        published = await client.post("/api/v1/cron/publish-scheduled", headers=CRON)
        assert published.json()["published"] == 1, published.text
        done = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
        assert done["status"] == "published" and len(done["media_warnings"]) == 1

    async def test_an_edit_clears_the_warnings_and_the_post_is_checked_again(self, client, alice, cdn):
        channel = await sandbox_channel(client, alice)
        route = serve(cdn, "/cat.jpg", PHOTO)
        post = (await client.post("/api/v1/posts", headers=alice.headers, json={
            "content": {"text": "soon", "media": [image("/cat.jpg")]}, "channel_ids": [channel["id"]],
            "scheduled_at": soon(minutes=30)})).json()
        route.respond(404)
        await client.post("/api/v1/cron/publish-scheduled", headers=CRON)
        serve(cdn, "/cat2.jpg", PHOTO)
        edited = await client.patch(f"/api/v1/posts/{post['id']}", headers=alice.headers,
                                    json={"content": {"text": "soon", "media": [image("/cat2.jpg")]}})
        assert edited.status_code == 200, edited.text
        assert edited.json()["media_warnings"] == [] and edited.json()["media_checked_at"] is None
        run = await client.post("/api/v1/cron/publish-scheduled", headers=CRON)
        assert run.json()["media_checks"] == {"checked": 1, "warned": 0, "given_back": 0, "skipped": False}
        assert (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()["media_warnings"] == []
