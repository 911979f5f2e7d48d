"""Posts through the ASGI app: what a dashboard sends and what it gets back."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from api.factory import create_app
from services.platforms import urls
from tests.api.conftest import CRON, make_settings, sandbox_channel


def future(**delta) -> datetime:
    return datetime.now(timezone.utc) + timedelta(**(delta or {"days": 1}))


async def create(client, who, channel_ids, **body):
    payload = {"content": {"text": "Hello from Herald"}, "channel_ids": channel_ids, **body}
    return await client.post("/api/v1/posts", json=payload, headers=who.headers)


class TestCreate:
    async def test_scheduled_post_answers_with_its_targets_and_local_time(self, client, alice, dns):
        dns["cdn.example.com"] = "93.184.215.14"
        channel = await sandbox_channel(client, alice)
        response = await create(client, alice, [channel["id"]], scheduled_at="2030-07-01T10:00:00",
                                timezone="Europe/Berlin", content={"text": "hi", "media": [
                                    {"type": "image", "url": "https://cdn.example.com/a.jpg", "alt": "a cat"}]})
        assert response.status_code == 201, response.text
        post = response.json()
        assert post["status"] == "scheduled"
        assert post["scheduled_at"] == "2030-07-01T08:00:00+00:00"  # naive time read in Europe/Berlin (CEST)
        assert post["local_scheduled_at"] == "2030-07-01T10:00:00+02:00"
        assert post["content"]["media"] == [{"type": "image", "url": "https://cdn.example.com/a.jpg", "alt": "a cat"}]
        assert post["attempts"] == 0 and post["error"] is None and post["rrule"] is None
        [target] = post["targets"]
        assert target["channel_id"] == channel["id"] and target["platform"] == "sandbox"
        assert target["status"] == "pending" and target["platform_post_id"] is None
        fetched = await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)
        assert fetched.json() == post

    async def test_without_a_time_it_is_a_draft(self, client, alice):
        channel = await sandbox_channel(client, alice)
        response = await create(client, alice, [channel["id"]])
        assert response.status_code == 201
        assert response.json()["status"] == "draft" and response.json()["scheduled_at"] is None

    async def test_offset_times_keep_their_instant_and_rrule_is_kept(self, client, alice):
        channel = await sandbox_channel(client, alice)
        response = await create(client, alice, [channel["id"]], scheduled_at="2030-01-06T09:30:00-05:00",
                                timezone="America/New_York", rrule="RRULE:FREQ=WEEKLY;BYDAY=MO")
        assert response.status_code == 201, response.text
        assert response.json()["scheduled_at"] == "2030-01-06T14:30:00+00:00"
        assert response.json()["rrule"] == "FREQ=WEEKLY;BYDAY=MO"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"channel_ids": [str(uuid.uuid4())]}, "channel_ids"),  # unknown channel
            ({"scheduled_at": "2020-01-01T00:00:00Z"}, "scheduled_at"),  # in the past
            ({"scheduled_at": "2030-01-01T00:00:00Z", "timezone": "Mars/Olympus"}, "timezone"),  # unknown zone
            ({"scheduled_at": "2030-01-01T00:00:00Z", "rrule": "FREQ=SOMETIMES"}, "rrule"),  # invalid rule
            ({"scheduled_at": "2030-01-01T00:00:00Z", "rrule": "BYDAY=MO"}, "rrule"),  # rule without FREQ
            ({"content": {"text": "   "}}, "content"),  # empty content
            ({"content": {"text": "x" * 10_001}}, "content.text"),  # over the sandbox's limit
            ({"channel_ids": ["not-a-uuid"]}, "channel_ids.0"),  # bad UUID
            ({"scheduled_at": "next tuesday"}, "scheduled_at"),  # not a time
            ({"content": {"text": "x", "media": [{"type": "gif", "url": "https://a.b/c"}]}}, "content.media.0.type"),
            ({"content": {"text": "x", "platforms": {"myspace": {"text": "y"}}}}, "content.platforms.myspace"),
            ({"scheduled_at": "2030-01-01T00:00:00Z", "channel_ids": []}, "channel_ids"),  # scheduled, no channel
        ],
    )
    async def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(self, client, alice, body, field):
        channel = await sandbox_channel(client, alice)
        payload = {"content": {"text": "hi"}, "channel_ids": [channel["id"]], **body}
        response = await client.post("/api/v1/posts", json=payload, headers=alice.headers)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == field and error["message"] and error["code"]
        listed = await client.get("/api/v1/posts", headers=alice.headers)
        assert listed.json()["total"] == 0

    async def test_someone_elses_channel_is_rejected(self, client, alice, bob):
        theirs = await sandbox_channel(client, bob)
        response = await create(client, alice, [theirs["id"]], scheduled_at=future().isoformat())
        assert response.status_code == 422 and response.json()["error"]["field"] == "channel_ids"

    async def test_platform_override_is_validated_too(self, client, alice):
        channel = await sandbox_channel(client, alice)
        response = await create(client, alice, [channel["id"]],
                                content={"text": "ok", "platforms": {"sandbox": {"text": "x" * 10_001}}})
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "content.platforms.sandbox.text"


def image(url: str) -> dict:
    return {"type": "image", "url": url}


PUBLIC_CDN = "https://cdn.example.com/a.jpg"


class TestMediaUrls:
    """Every media URL, shared or in an override, meets the rule Herald applies before fetching one
    (https, a public address) when the post is written, not first when it is published."""

    @pytest.fixture(autouse=True)
    def names(self, dns):
        dns.update({"cdn.example.com": "93.184.215.14", "intranet.example.com": "10.0.0.5",
                    "nat64.example.com": "64:ff9b::a9fe:a9fe"})

    @pytest.mark.parametrize(("content", "field", "code"), [
        # plain http: Herald would fetch it in the clear
        ({"media": [image("http://cdn.example.com/a.jpg")]}, "content.media[0].url", "insecure_url"),
        # the second item's host resolves to a private address
        ({"media": [image(PUBLIC_CDN), image("https://intranet.example.com/b.jpg")]}, "content.media[1].url",
         "private_address"),
        # cloud metadata, as an address literal
        ({"media": [image("https://169.254.169.254/latest/meta-data")]}, "content.media[0].url", "private_address"),
        # loopback
        ({"media": [image("https://127.0.0.1:8000/a.jpg")]}, "content.media[0].url", "private_address"),
        # an IPv6 address carrying a private IPv4 one (NAT64)
        ({"media": [image("https://nat64.example.com/a.jpg")]}, "content.media[0].url", "private_address"),
        # in an override, even one for a platform the post does not target (yet)
        ({"platforms": {"instagram": {"media": [image(PUBLIC_CDN), image("https://intranet.example.com/b.jpg")]}}},
         "content.platforms.instagram.media[1].url", "private_address"),
    ])
    async def test_a_media_url_herald_would_not_fetch_is_refused_at_creation(self, client, alice, content, field,
                                                                           code):
        channel = await sandbox_channel(client, alice)
        response = await create(client, alice, [channel["id"]], scheduled_at=future().isoformat(),
                                content={"text": "hi", **content})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["field"], error["code"]) == (field, code)
        assert field in error["message"]
        assert (await client.get("/api/v1/posts", headers=alice.headers)).json()["total"] == 0

    async def test_a_host_that_does_not_resolve_yet_is_accepted(self, client, alice):
        channel = await sandbox_channel(client, alice)
        content = {"text": "hi", "media": [image("https://bucket-made-tomorrow.example.com/a.jpg")]}
        response = await create(client, alice, [channel["id"]], scheduled_at=future().isoformat(), content=content)
        assert response.status_code == 201, response.text

    async def test_a_resolver_that_hangs_holds_the_request_no_longer_than_the_dns_timeout(self, client, alice,
                                                                                         monkeypatch):
        channel = await sandbox_channel(client, alice)
        release = threading.Event()
        real = socket.getaddrinfo
        monkeypatch.setattr(socket, "getaddrinfo", lambda host, *args, **kwargs: (
            release.wait(10) and [] if host == "slow.example.com" else real(host, *args, **kwargs)))
        monkeypatch.setattr(urls, "DNS_TIMEOUT_SECONDS", 0.1)
        started = time.monotonic()
        try:
            response = await create(client, alice, [channel["id"]],
                                    content={"text": "hi", "media": [image("https://slow.example.com/a.jpg")]})
        finally:
            release.set()
        assert response.status_code == 201, response.text
        assert time.monotonic() - started < 5

    async def test_an_edit_to_a_refused_media_url_changes_nothing(self, client, alice):
        channel = await sandbox_channel(client, alice)
        post = (await create(client, alice, [channel["id"]], scheduled_at=future().isoformat(),
                             content={"text": "hi", "media": [image(PUBLIC_CDN)]})).json()
        for content, field in [
            ({"text": "v2", "media": [image(PUBLIC_CDN), image("https://10.1.2.3/b.jpg")]}, "content.media[1].url"),
            ({"text": "v2", "platforms": {"x": {"media": [image("http://cdn.example.com/a.jpg")]}}},
             "content.platforms.x.media[0].url"),
        ]:
            response = await client.patch(f"/api/v1/posts/{post['id']}", json={"content": content},
                                          headers=alice.headers)
            assert response.status_code == 422, response.text
            assert response.json()["error"]["field"] == field
        assert (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json() == post
        fine = await client.patch(f"/api/v1/posts/{post['id']}", headers=alice.headers,
                                  json={"content": {"text": "v2", "media": [image("https://cdn.example.com/b.jpg")]}})
        assert fine.status_code == 200, fine.text

    async def test_a_bulk_create_with_one_refused_media_url_stores_none(self, client, alice):
        channel = await sandbox_channel(client, alice)
        ok = {"content": {"text": "ok", "media": [image(PUBLIC_CDN)]}, "channel_ids": [channel["id"]]}
        bad = {"content": {"text": "bad", "media": [image("https://intranet.example.com/b.jpg")]},
               "channel_ids": [channel["id"]]}
        response = await client.post("/api/v1/posts/bulk", headers=alice.headers, json={"posts": [ok, bad, ok]})
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == "posts.1.content.media[0].url" and error["code"] == "private_address"
        assert [(i["index"], i["field"]) for i in error["items"]] == [(1, "content.media[0].url")]
        assert (await client.get("/api/v1/posts", headers=alice.headers)).json()["total"] == 0

    async def test_private_and_http_media_are_allowed_when_private_hosts_are(self, store, alice):
        app = create_app(make_settings(herald_allow_private_hosts=True), store=store)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as local:
            channel = await sandbox_channel(local, alice)
            response = await create(local, alice, [channel["id"]],
                                    content={"text": "hi", "media": [image("http://127.0.0.1:9000/a.jpg")]})
            await app.state.runtime.http.aclose()
        assert response.status_code == 201, response.text


class TestReadAndList:
    async def test_another_users_post_is_404(self, client, alice, bob):
        post = (await create(client, alice, [(await sandbox_channel(client, alice))["id"]])).json()
        for method, path in [("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/runs"), ("POST", "/schedule")]:
            response = await client.request(method, f"/api/v1/posts/{post['id']}{path}", headers=bob.headers,
                                            json={"content": {"text": "x"}} if method == "PATCH" else None)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "not_found"

    async def test_list_filters_and_paginates(self, client, alice, bob):
        channel = await sandbox_channel(client, alice)
        await create(client, bob, [(await sandbox_channel(client, bob))["id"]])
        soon = (await create(client, alice, [channel["id"]], scheduled_at=future(hours=1).isoformat())).json()
        later = (await create(client, alice, [channel["id"]], scheduled_at=future(days=3).isoformat())).json()
        draft = (await create(client, alice, [channel["id"]])).json()

        page = (await client.get("/api/v1/posts?limit=2", headers=alice.headers)).json()
        assert page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
        assert [p["id"] for p in page["items"]] == [draft["id"], later["id"]]
        page2 = (await client.get("/api/v1/posts?limit=2&offset=2", headers=alice.headers)).json()
        assert [p["id"] for p in page2["items"]] == [soon["id"]]
        scheduled = (await client.get("/api/v1/posts?status=scheduled", headers=alice.headers)).json()
        assert {p["id"] for p in scheduled["items"]} == {soon["id"], later["id"]}
        both = (await client.get("/api/v1/posts?status=scheduled,draft", headers=alice.headers)).json()
        assert both["total"] == 3
        ranged = await client.get("/api/v1/posts", headers=alice.headers,
                                  params={"from": future(days=2).isoformat(), "to": future(days=4).isoformat()})
        assert [p["id"] for p in ranged.json()["items"]] == [later["id"]]
        by_channel = await client.get(f"/api/v1/posts?channel_id={channel['id']}&platform=sandbox", headers=alice.headers)
        assert by_channel.json()["total"] == 3

    async def test_updated_since_returns_only_changed_posts(self, client, alice):
        channel = await sandbox_channel(client, alice)
        first = (await create(client, alice, [channel["id"]])).json()
        second = (await create(client, alice, [channel["id"]])).json()
        mark = second["updated_at"]
        edited = await client.patch(f"/api/v1/posts/{first['id']}", json={"content": {"text": "edited"}},
                                    headers=alice.headers)
        changed = await client.get("/api/v1/posts", params={"updated_since": edited.json()["updated_at"]},
                                   headers=alice.headers)
        assert [p["id"] for p in changed.json()["items"]] == [first["id"]]
        assert (await client.get("/api/v1/posts", params={"updated_since": mark}, headers=alice.headers)).json()["total"] == 2

    @pytest.mark.parametrize(
        ("query", "field"),
        [("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset"), ("offset=2147483648", "offset"),
         ("offset=9223372036854775808", "offset"), ("status=lost", "status"),
         ("channel_id=zzz", "channel_id"), ("from=yesterday", "from"), ("updated_since=2030-01-01T00:00:00", "updated_since")],
    )
    async def test_bad_list_query_is_a_422(self, client, alice, query, field):
        response = await client.get(f"/api/v1/posts?{query}", headers=alice.headers)
        assert response.status_code == 422 and response.json()["error"]["field"] == field

    async def test_the_largest_offset_is_an_empty_page_not_an_error(self, client, alice):
        page = (await client.get("/api/v1/posts?offset=2147483647", headers=alice.headers)).json()
        assert page["items"] == [] and page["offset"] == 2147483647

    async def test_a_post_id_that_is_not_a_uuid_names_no_post(self, client, alice):
        # ids are UUIDs in the path itself, so /posts/statistics and /posts/123 are not posts to PUT
        response = await client.get("/api/v1/posts/123", headers=alice.headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"

    async def test_statistics_count_by_status_and_platform(self, client, alice):
        channel = await sandbox_channel(client, alice)
        await create(client, alice, [channel["id"]])
        await create(client, alice, [channel["id"]], scheduled_at=future().isoformat())
        stats = (await client.get("/api/v1/posts/statistics", headers=alice.headers)).json()
        lag = stats.pop("publish_lag")
        assert stats == {"total": 2, "by_status": {"draft": 1, "scheduled": 1},
                         "by_platform": {"sandbox": {"targets": 2, "pending": 2}}}
        assert {k: v for k, v in lag.items() if k != "since"} == {"count": 0, "p50_ms": None, "p95_ms": None,
                                                                  "max_ms": None}


class TestEdit:
    async def test_patch_changes_only_what_is_sent(self, client, alice):
        a, b = await sandbox_channel(client, alice, "a"), await sandbox_channel(client, alice, "b")
        post = (await create(client, alice, [a["id"]], scheduled_at=future().isoformat())).json()
        patched = await client.patch(f"/api/v1/posts/{post['id']}", headers=alice.headers,
                                     json={"content": {"text": "v2"}, "channel_ids": [a["id"], b["id"]]})
        assert patched.status_code == 200, patched.text
        assert patched.json()["content"]["text"] == "v2" and patched.json()["scheduled_at"] == post["scheduled_at"]
        assert sorted(t["channel_id"] for t in patched.json()["targets"]) == sorted([a["id"], b["id"]])
        patched = await client.patch(f"/api/v1/posts/{post['id']}", headers=alice.headers,
                                     json={"timezone": "Asia/Tokyo", "rrule": "FREQ=DAILY"})
        assert patched.status_code == 200, patched.text
        assert patched.json()["timezone"] == "Asia/Tokyo" and patched.json()["content"]["text"] == "v2"
        assert patched.json()["rrule"] == "FREQ=DAILY"

    async def test_put_replaces_the_post(self, client, alice):
        a, b = await sandbox_channel(client, alice, "a"), await sandbox_channel(client, alice, "b")
        post = (await create(client, alice, [a["id"]], scheduled_at=future().isoformat(), timezone="Asia/Tokyo",
                             rrule="FREQ=DAILY")).json()
        at = future(days=2).isoformat()
        put = await client.put(f"/api/v1/posts/{post['id']}", headers=alice.headers,
                               json={"content": {"text": "v2"}, "channel_ids": [b["id"]], "scheduled_at": at})
        assert put.status_code == 200, put.text
        replaced = put.json()
        assert replaced["content"] == {"text": "v2", "media": [], "platforms": {}, "thread": [], "first_comment": None}
        assert [t["channel_id"] for t in replaced["targets"] if t["status"] != "cancelled"] == [b["id"]]
        # left out: back to POST /posts's defaults; the status is PATCH's rule (a scheduled post stays so)
        assert replaced["timezone"] == "UTC" and replaced["rrule"] is None and replaced["status"] == "scheduled"
        assert (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json() == replaced

    async def test_put_needs_the_whole_post(self, client, alice):
        post = (await create(client, alice, [])).json()
        response = await client.put(f"/api/v1/posts/{post['id']}", json={"timezone": "Asia/Tokyo"},
                                    headers=alice.headers)
        assert response.status_code == 422 and response.json()["error"]["field"] == "content"

    async def test_clearing_the_time_makes_a_draft(self, client, alice):
        channel = await sandbox_channel(client, alice)
        post = (await create(client, alice, [channel["id"]], scheduled_at=future().isoformat())).json()
        response = await client.patch(f"/api/v1/posts/{post['id']}", json={"scheduled_at": None}, headers=alice.headers)
        assert response.json()["status"] == "draft" and response.json()["scheduled_at"] is None

    async def test_moving_a_scheduled_post_into_the_past_is_refused(self, client, alice):
        channel = await sandbox_channel(client, alice)
        post = (await create(client, alice, [channel["id"]], scheduled_at=future().isoformat())).json()
        response = await client.patch(f"/api/v1/posts/{post['id']}", json={"scheduled_at": "2001-01-01T00:00:00Z"},
                                      headers=alice.headers)
        assert response.status_code == 422 and response.json()["error"]["field"] == "scheduled_at"
        assert (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json() == post

    async def test_published_post_cannot_be_edited_or_deleted(self, client, alice):
        channel = await sandbox_channel(client, alice)
        post = (await create(client, alice, [channel["id"]], scheduled_at=future(seconds=1).isoformat())).json()
        await client.patch(f"/api/v1/posts/{post['id']}", json={"scheduled_at": future(seconds=-5).isoformat()},
                           headers=alice.headers)
        assert (await client.post("/api/v1/cron/publish-scheduled", headers=CRON)).json()["published"] == 1
        for response in (
            await client.patch(f"/api/v1/posts/{post['id']}", json={"content": {"text": "x"}}, headers=alice.headers),
            await client.delete(f"/api/v1/posts/{post['id']}", headers=alice.headers),
            await client.post(f"/api/v1/posts/{post['id']}/unschedule", headers=alice.headers),
        ):
            assert response.status_code == 409
            assert "published" in response.json()["error"]["message"]

    async def test_delete_then_gone(self, client, alice):
        post = (await create(client, alice, [(await sandbox_channel(client, alice))["id"]])).json()
        assert (await client.delete(f"/api/v1/posts/{post['id']}", headers=alice.headers)).status_code == 204
        assert (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).status_code == 404

    async def test_schedule_and_unschedule(self, client, alice):
        channel = await sandbox_channel(client, alice)
        draft = (await create(client, alice, [channel["id"]])).json()
        missing_time = await client.post(f"/api/v1/posts/{draft['id']}/schedule", headers=alice.headers)
        assert missing_time.status_code == 422 and missing_time.json()["error"]["field"] == "scheduled_at"
        scheduled = await client.post(f"/api/v1/posts/{draft['id']}/schedule", headers=alice.headers,
                                      json={"scheduled_at": "2031-03-30T09:00:00", "timezone": "Europe/London"})
        assert scheduled.status_code == 200, scheduled.text
        assert scheduled.json()["status"] == "scheduled"
        assert scheduled.json()["scheduled_at"] == "2031-03-30T08:00:00+00:00"  # BST
        unscheduled = await client.post(f"/api/v1/posts/{draft['id']}/unschedule", headers=alice.headers)
        assert unscheduled.json()["status"] == "draft"
        again = await client.post(f"/api/v1/posts/{draft['id']}/unschedule", headers=alice.headers)
        assert again.status_code == 409


class TestRuns:
    async def test_runs_history_lists_each_attempt(self, client, alice):
        ok = await sandbox_channel(client, alice, "ok")
        broken = await sandbox_channel(client, alice, "broken", metadata={"fail": "permanent"})
        post = (await create(client, alice, [ok["id"], broken["id"]], scheduled_at=future(seconds=1).isoformat())).json()
        await client.patch(f"/api/v1/posts/{post['id']}", json={"scheduled_at": future(seconds=-1).isoformat()},
                           headers=alice.headers)
        summary = (await client.post("/api/v1/cron/publish-scheduled", headers=CRON)).json()
        assert summary["partial"] == 1
        after = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
        assert after["status"] == "partial" and "sandbox" in after["error"]
        runs = (await client.get(f"/api/v1/posts/{post['id']}/runs", headers=alice.headers)).json()["items"]
        assert sorted(r["outcome"] for r in runs) == ["permanent", "published"]
        failed = next(r for r in runs if r["outcome"] == "permanent")
        assert failed["error_code"] == "sandbox_permanent" and failed["attempt"] == 1


@pytest.mark.parametrize(("content", "field"), [
    ({"text": "nul\u0000byte"}, "content.text"),
    ({"text": "ok", "media": [{"type": "image", "url": "https://cdn.example.com/a.jpg", "alt": "a\u0000"}]},
     "content.media[0].alt"),
    ({"text": "ok", "platforms": {"sandbox": {"text": "\u0000"}}}, "content.platforms.sandbox.text"),
])
async def test_a_nul_character_is_refused_naming_the_field(client, alice, content, field):
    """Postgres cannot keep one in JSON: refused at the door, not a store error."""
    channel = await sandbox_channel(client, alice)
    response = await create(client, alice, [channel["id"]], content=content)
    assert response.status_code == 422 and response.json()["error"]["field"] == field
    assert (await client.get("/api/v1/posts", headers=alice.headers)).json()["total"] == 0
