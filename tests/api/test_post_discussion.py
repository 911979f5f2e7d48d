"""A post's comments and history through the ASGI app: what a reviewer's dashboard sends and gets."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import CRON, sandbox_channel


async def a_post(client, who) -> dict:
    channel = await sandbox_channel(client, who)
    response = await client.post("/api/v1/posts", json={"content": {"text": "draft words"},
                                                          "channel_ids": [channel["id"]]}, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_comment_is_added_and_listed_oldest_first(client, alice):
    post = await a_post(client, alice)
    url = f"/api/v1/posts/{post['id']}/comments"
    for body in ("looks good", "but fix the typo"):
        response = await client.post(url, json={"body": body}, headers=alice.headers)
        assert response.status_code == 201, response.text
    added = response.json()
    assert (added["post_id"], added["author"], added["body"]) == (post["id"], {"user_id": str(alice.id)},
                                                                  "but fix the typo")
    listed = await client.get(url, params={"limit": 1, "offset": 1}, headers=alice.headers)
    assert listed.status_code == 200
    assert listed.json()["total"] == 2 and [c["body"] for c in listed.json()["items"]] == ["but fix the typo"]
    activity = await client.get("/api/v1/activity", params={"post_id": post["id"]}, headers=alice.headers)
    assert "post.commented" in [a["event"] for a in activity.json()["items"]]


@pytest.mark.parametrize(("body", "field"), [
    ({}, "body"),
    ({"body": ""}, "body"),
    ({"body": "   "}, "body"),
    ({"body": "x" * 10_001}, "body"),
    ({"body": "nul \x00 here"}, "body"),
    ({"body": "fine", "author": "someone else"}, "author"),
])
async def test_a_bad_comment_is_refused_naming_the_field(client, alice, body, field):
    post = await a_post(client, alice)
    response = await client.post(f"/api/v1/posts/{post['id']}/comments", json=body, headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    listed = await client.get(f"/api/v1/posts/{post['id']}/comments", headers=alice.headers)
    assert listed.json()["total"] == 0


async def test_history_shows_each_change_and_who_made_it(client, alice):
    post = await a_post(client, alice)
    headers = alice.headers
    edited = await client.patch(f"/api/v1/posts/{post['id']}", json={"content": {"text": "final words"}}, headers=headers)
    assert edited.status_code == 200, edited.text
    published = await client.post(f"/api/v1/posts/{post['id']}/publish", headers=headers)
    assert published.json()["status"] == "published", published.text

    response = await client.get(f"/api/v1/posts/{post['id']}/history", headers=headers)
    assert response.status_code == 200
    page = response.json()
    me = {"user_id": str(alice.id)}
    assert [(e["change"], e["actor"]) for e in page["items"]] == [
        ("created", me), ("content", me), ("schedule", me), ("status", me),  # publish now: due now, scheduled
        ("status", None), ("status", None)]  # the run claims and publishes: Herald
    assert page["total"] == 6
    assert page["items"][1]["before"]["content"]["text"] == "draft words"
    assert page["items"][1]["after"]["content"]["text"] == "final words"
    assert page["items"][-1]["before"] == {"status": "publishing"} and page["items"][-1]["after"] == {"status": "published"}


async def test_another_user_or_a_missing_post_is_not_found(client, alice, bob):
    post = await a_post(client, alice)
    await client.post(f"/api/v1/posts/{post['id']}/comments", json={"body": "mine"}, headers=alice.headers)
    for post_id in (post["id"], str(uuid.uuid4())):
        for method, path, kwargs in (("POST", "comments", {"json": {"body": "hi"}}), ("GET", "comments", {}),
                                     ("GET", "history", {})):
            response = await client.request(method, f"/api/v1/posts/{post_id}/{path}", headers=bob.headers, **kwargs)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "not_found"
    listed = await client.get(f"/api/v1/posts/{post['id']}/comments", headers=alice.headers)
    assert [c["body"] for c in listed.json()["items"]] == ["mine"]


@pytest.mark.parametrize(("method", "path"), [("POST", "comments"), ("GET", "comments"), ("GET", "history")])
async def test_no_token_is_unauthorized(client, alice, method, path):
    post = await a_post(client, alice)
    kwargs = {"json": {"body": "hi"}} if method == "POST" else {}
    response = await client.request(method, f"/api/v1/posts/{post['id']}/{path}", headers=CRON, **kwargs)
    assert response.status_code == 401
