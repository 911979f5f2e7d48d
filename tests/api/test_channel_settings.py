"""PATCH /channels/{id} (name, metadata, pause and resume) and the unknown-field rule, through the ASGI app."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.api.conftest import CRON, sandbox_channel

CRON_PATH = "/api/v1/cron/publish-scheduled"


def field_of(response) -> str | None:
    return response.json()["error"].get("field")


async def patch(client, who, channel_id, body):
    return await client.patch(f"/api/v1/channels/{channel_id}", json=body, headers=who.headers)


async def due_post(client, who, channel_ids) -> dict:
    at = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    response = await client.post("/api/v1/posts", headers=who.headers, json={
        "content": {"text": "due"}, "channel_ids": channel_ids, "scheduled_at": at})
    assert response.status_code == 201, response.text
    return response.json()


async def test_patch_renames_merges_metadata_pauses_and_resumes(client, alice):
    channel = await sandbox_channel(client, alice, metadata={"handle": "@demo", "note": "x"})
    assert channel["active"] is True
    response = await patch(client, alice, channel["id"], {"name": "Renamed", "metadata": {"note": None, "lang": "de"}})
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["name"] == "Renamed" and changed["metadata"] == {"handle": "@demo", "lang": "de"}
    assert changed["active"] is True and "credentials" not in response.text
    paused = (await patch(client, alice, channel["id"], {"active": False})).json()
    assert paused["active"] is False and paused["name"] == "Renamed"
    fetched = (await client.get(f"/api/v1/channels/{channel['id']}", headers=alice.headers)).json()
    assert fetched == paused
    assert (await patch(client, alice, channel["id"], {"active": True})).json()["active"] is True


async def test_a_paused_channels_post_waits_says_why_and_goes_out_once_resumed(client, alice):
    paused, other = await sandbox_channel(client, alice, "paused"), await sandbox_channel(client, alice, "other")
    assert (await patch(client, alice, paused["id"], {"active": False})).status_code == 200
    post = await due_post(client, alice, [paused["id"], other["id"]])
    summary = (await client.post(CRON_PATH, headers=CRON)).json()
    assert summary["published"] == 0 and summary["failed"] == 0 and summary["held"] == 1
    held = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
    by_channel = {t["channel_id"]: t for t in held["targets"]}
    assert by_channel[other["id"]]["status"] == "published"
    waiting = by_channel[paused["id"]]
    assert waiting["status"] == "pending" and waiting["attempts"] == 0  # no retry spent
    assert held["status"] == "scheduled" and "paused" in held["error"]
    # not taken again every minute: it waits for a re-check, minutes away
    assert datetime.fromisoformat(held["next_attempt_at"]) > datetime.now(timezone.utc) + timedelta(minutes=5)
    assert (await client.post(CRON_PATH, headers=CRON)).json()["processed"] == 0
    # a target that was pending when the channel was paused says so itself
    later = await due_post(client, alice, [paused["id"]])
    await patch(client, alice, paused["id"], {"active": True})
    await patch(client, alice, paused["id"], {"active": False})
    marked = (await client.get(f"/api/v1/posts/{later['id']}", headers=alice.headers)).json()["targets"][0]
    assert marked["error_code"] == "channel_paused" and "paused" in marked["error"]

    resumed = await patch(client, alice, paused["id"], {"active": True})
    assert resumed.status_code == 200 and resumed.json()["active"] is True
    summary = (await client.post(CRON_PATH, headers=CRON)).json()
    assert summary["published"] == 2, summary
    done = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
    assert done["status"] == "published" and all(t["status"] == "published" for t in done["targets"])
    assert all(t["error"] is None for t in done["targets"])


async def test_another_users_or_a_missing_channel_is_404(client, alice, bob):
    channel = await sandbox_channel(client, alice)
    response = await patch(client, bob, channel["id"], {"name": "mine now", "active": False})
    assert response.status_code == 404, response.text
    missing = await patch(client, alice, "00000000-0000-4000-8000-000000000000", {"name": "x"})
    assert missing.status_code == 404
    unchanged = (await client.get(f"/api/v1/channels/{channel['id']}", headers=alice.headers)).json()
    assert unchanged["name"] == channel["name"] and unchanged["active"] is True


@pytest.mark.parametrize(("body", "field"), [
    ({"metadata": {"fail": "sometimes"}}, "metadata.fail"),  # the sandbox's own check, as at connection
    ({"name": ""}, "name"),
    ({"metadata": {"x": "y"}, "active": "maybe"}, "active"),
])
async def test_bad_changes_are_a_422_naming_the_field_and_change_nothing(client, alice, body, field):
    channel = await sandbox_channel(client, alice)
    response = await patch(client, alice, channel["id"], body)
    assert response.status_code == 422 and field_of(response) == field, response.text
    assert (await client.get(f"/api/v1/channels/{channel['id']}", headers=alice.headers)).json() == channel


async def test_a_webhook_url_is_checked_as_at_connection(client, alice, dns):
    dns["hooks.example.org"] = "93.184.216.34"
    created = await client.post("/api/v1/channels", headers=alice.headers, json={
        "platform": "webhook", "name": "hook", "account_id": "hook-1",
        "metadata": {"url": "https://hooks.example.org/in"}})
    assert created.status_code == 201, created.text
    for url in ("http://hooks.example.org/in", "https://127.0.0.1/in"):
        response = await patch(client, alice, created.json()["id"], {"metadata": {"url": url}})
        assert response.status_code == 422 and field_of(response) == "metadata.url", response.text
    channel = (await client.get(f"/api/v1/channels/{created.json()['id']}", headers=alice.headers)).json()
    assert channel["metadata"]["url"] == "https://hooks.example.org/in"


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/api/v1/posts", {"content": {"txt": "typo"}}, "content.txt"),
    ("POST", "/api/v1/posts", {"content": {"text": "hi"}, "schedule_at": "2030-01-01T00:00:00Z"}, "schedule_at"),
    ("PATCH", "/api/v1/posts/{post}", {"contnet": {"text": "typo"}}, "contnet"),
    ("PATCH", "/api/v1/posts/{post}", {"status": "scheduled"}, "status"),  # PUT's alias only
    ("POST", "/api/v1/channels", {"platform": "sandbox", "name": "n", "account_id": "a", "metdata": {}}, "metdata"),
    ("PATCH", "/api/v1/channels/{channel}", {"paused": True}, "paused"),
    ("PUT", "/api/v1/posts/{post}", {"content": {"text": "hi"}, "channel_id": []}, "channel_id"),
])
async def test_an_unknown_field_is_a_422_naming_it(client, alice, method, path, body, field):
    channel = await sandbox_channel(client, alice)
    post = (await client.post("/api/v1/posts", json={"content": {"text": "draft"}}, headers=alice.headers)).json()
    url = path.format(post=post["id"], channel=channel["id"])
    response = await client.request(method, url, json=body, headers=alice.headers)
    assert response.status_code == 422 and field_of(response) == field, response.text
    assert field in response.json()["error"]["message"]


async def test_put_takes_the_whole_post_back_and_status_scheduled_schedules_it(client, alice):
    channel = await sandbox_channel(client, alice)
    draft = (await client.post("/api/v1/posts", headers=alice.headers,
                               json={"content": {"text": "v1"}, "channel_ids": [channel["id"]]})).json()
    assert draft["status"] == "draft"
    at = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0).isoformat()
    whole = {**draft, "content": {**draft["content"], "text": "v2"}, "scheduled_at": at, "status": "scheduled"}
    response = await client.put(f"/api/v1/posts/{draft['id']}", json=whole, headers=alice.headers)
    assert response.status_code == 200, response.text
    scheduled = response.json()
    assert scheduled["status"] == "scheduled" and scheduled["content"]["text"] == "v2"
    assert datetime.fromisoformat(scheduled["scheduled_at"]) == datetime.fromisoformat(at)
    # the whole post as it now is, status and all, changes nothing more; "draft" unschedules
    same = await client.put(f"/api/v1/posts/{draft['id']}", json=scheduled, headers=alice.headers)
    assert same.status_code == 200 and same.json()["status"] == "scheduled"
    back = await client.put(f"/api/v1/posts/{draft['id']}", json={**scheduled, "status": "draft"}, headers=alice.headers)
    assert back.status_code == 200 and back.json()["status"] == "draft"
    bad = await client.put(f"/api/v1/posts/{draft['id']}", json={**scheduled, "status": "published"},
                           headers=alice.headers)
    assert bad.status_code == 422 and field_of(bad) == "status"
