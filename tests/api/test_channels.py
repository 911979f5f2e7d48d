"""Channels through the ASGI app: credentials go in encrypted and never come out."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from tests.api.conftest import sandbox_channel

SECRET_TOKEN = "EAAB-very-secret-access-token-123"


async def test_credentials_are_encrypted_at_rest_and_never_returned_or_logged(client, alice, store, caplog, db):
    caplog.set_level(logging.DEBUG)
    body = {"platform": "sandbox", "name": "Demo", "account_id": "acct-1", "metadata": {"handle": "@demo"},
            "credentials": {"access_token": SECRET_TOKEN, "refresh_token": "refresh-xyz",
                            "expires_at": "2031-01-01T00:00:00Z"}}
    response = await client.post("/api/v1/channels", json=body, headers=alice.headers)
    assert response.status_code == 201, response.text
    channel = response.json()
    assert channel["token_expires_at"] == "2031-01-01T00:00:00+00:00"
    assert channel["metadata"] == {"handle": "@demo"} and channel["status"] == "active"
    listed = await client.get("/api/v1/channels", headers=alice.headers)
    fetched = await client.get(f"/api/v1/channels/{channel['id']}", headers=alice.headers)
    for text in (response.text, listed.text, fetched.text, caplog.text):
        assert SECRET_TOKEN not in text and "refresh-xyz" not in text and "credentials" not in text
    raw = db.execute("select credentials_encrypted from herald.channels").fetchone()[0]
    assert SECRET_TOKEN not in raw and raw.startswith("gAAAA")  # a Fernet token


async def test_list_is_items_and_total_for_the_caller_only(client, alice, bob):
    await sandbox_channel(client, alice, "a")
    await sandbox_channel(client, alice, "b")
    await sandbox_channel(client, bob, "c")
    listed = (await client.get("/api/v1/channels", headers=alice.headers)).json()
    assert listed["total"] == 2 and [c["account_id"] for c in listed["items"]] == ["a", "b"]


async def test_another_users_channel_is_404(client, alice, bob):
    channel = await sandbox_channel(client, alice)
    assert (await client.get(f"/api/v1/channels/{channel['id']}", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"/api/v1/channels/{channel['id']}", headers=bob.headers)).status_code == 404
    assert (await client.get(f"/api/v1/channels/{channel['id']}", headers=alice.headers)).status_code == 200


async def test_unknown_platform_and_missing_fields_are_422(client, alice):
    response = await client.post("/api/v1/channels", headers=alice.headers,
                                 json={"platform": "myspace", "name": "x", "account_id": "y"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "platform"
    response = await client.post("/api/v1/channels", headers=alice.headers, json={"platform": "sandbox", "name": "x"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "account_id"
    assert (await client.get("/api/v1/channels", headers=alice.headers)).json()["total"] == 0


async def test_connecting_the_same_account_twice_is_409(client, alice):
    await sandbox_channel(client, alice, "same")
    response = await client.post("/api/v1/channels", headers=alice.headers,
                                 json={"platform": "sandbox", "name": "again", "account_id": "same"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "channel_exists"


async def test_delete_is_refused_while_scheduled_posts_target_it_unless_forced(client, alice):
    channel = await sandbox_channel(client, alice)
    at = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    post = (await client.post("/api/v1/posts", headers=alice.headers, json={
        "content": {"text": "hi"}, "channel_ids": [channel["id"]], "scheduled_at": at})).json()
    refused = await client.delete(f"/api/v1/channels/{channel['id']}", headers=alice.headers)
    assert refused.status_code == 409 and "force=true" in refused.json()["error"]["message"]
    forced = await client.delete(f"/api/v1/channels/{channel['id']}?force=true", headers=alice.headers)
    assert forced.status_code == 204
    assert (await client.get("/api/v1/channels", headers=alice.headers)).json()["total"] == 0
    after = (await client.get(f"/api/v1/posts/{post['id']}", headers=alice.headers)).json()
    assert after["status"] == "cancelled" and after["targets"][0]["status"] == "cancelled"


async def test_deleting_an_unused_channel_drops_it_from_drafts(client, alice):
    keep, drop = await sandbox_channel(client, alice, "keep"), await sandbox_channel(client, alice, "drop")
    draft = (await client.post("/api/v1/posts", headers=alice.headers, json={
        "content": {"text": "hi"}, "channel_ids": [keep["id"], drop["id"]]})).json()
    assert (await client.delete(f"/api/v1/channels/{drop['id']}", headers=alice.headers)).status_code == 204
    after = (await client.get(f"/api/v1/posts/{draft['id']}", headers=alice.headers)).json()
    assert after["channel_ids"] == [keep["id"]] and after["status"] == "draft"


async def test_webhook_channel_url_is_checked_at_connection(client, alice):
    for url, code in (("http://hooks.example.com/x", "insecure_url"), ("https://127.0.0.1/x", "private_address")):
        response = await client.post("/api/v1/channels", headers=alice.headers, json={
            "platform": "webhook", "name": "hook", "account_id": "hook-1", "metadata": {"url": url}})
        assert response.status_code == 422, response.text
        assert response.json()["error"] == {"code": code, "field": "metadata.url",
                                            "message": response.json()["error"]["message"]}
    missing = await client.post("/api/v1/channels", headers=alice.headers,
                                json={"platform": "webhook", "name": "hook", "account_id": "hook-1"})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "metadata.url"
    assert (await client.get("/api/v1/channels", headers=alice.headers)).json()["total"] == 0


async def test_a_sandbox_failure_mode_that_does_not_exist_is_refused_at_connection(client, alice):
    response = await client.post("/api/v1/channels", headers=alice.headers, json={
        "platform": "sandbox", "name": "x", "account_id": "y", "metadata": {"fail": "bogus"}})
    assert response.status_code == 422 and response.json()["error"]["field"] == "metadata.fail"
    assert "transient" in response.json()["error"]["message"]
    assert (await client.get("/api/v1/channels", headers=alice.headers)).json()["total"] == 0
