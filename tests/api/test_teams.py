"""A team at work, through the HTTP API as a dashboard drives it: an owner makes a workspace and
invites a writer (editor) and a client (viewer); the writer drafts, the owner approves, the cron
publishes; a stranger sees none of it. Each step is what the issue's "done when" names."""

from __future__ import annotations

from datetime import timedelta

from services import clock
from tests.api.conftest import CRON, Caller, sandbox_channel


def in_ws(who: Caller, workspace_id: str) -> dict[str, str]:
    return {**who.headers, "X-Workspace-Id": workspace_id}


async def join(client, owner: Caller, workspace_id: str, who: Caller, role: str, **extra) -> None:
    invite = await client.post(f"/api/v1/workspaces/{workspace_id}/invites", json={"role": role, **extra},
                               headers=owner.headers)
    assert invite.status_code == 201, invite.text
    accepted = await client.post("/api/v1/invites/accept", json={"token": invite.json()["token"]}, headers=who.headers)
    assert accepted.status_code == 200, accepted.text


async def test_a_team_shares_its_channels_and_posts_under_its_roles_and_a_stranger_sees_none(
        client, new_caller):
    owner, writer, client_viewer, stranger = (new_caller() for _ in range(4))
    made = await client.post("/api/v1/workspaces", json={"name": "Acme social"}, headers=owner.headers)
    assert made.status_code == 201, made.text
    ws = made.json()["id"]
    await join(client, owner, ws, writer, "editor")
    await join(client, owner, ws, client_viewer, "viewer")
    channel = await sandbox_channel(client, Caller(owner.id, in_ws(owner, ws)))

    # The writer posts in the team's workspace, on the team's channel.
    draft = await client.post("/api/v1/posts", json={"content": {"text": "Launch day"}, "channel_ids": [channel["id"]]},
                              headers=in_ws(writer, ws))
    assert draft.status_code == 201, draft.text
    post_id = draft.json()["id"]
    assert draft.json()["workspace_id"] == ws

    # Everyone in the team sees it; the writer's personal workspace and the stranger do not.
    for who in (owner, writer, client_viewer):
        listed = await client.get("/api/v1/posts", headers=in_ws(who, ws))
        assert [p["id"] for p in listed.json()["items"]] == [post_id]
        channels = await client.get("/api/v1/channels", headers=in_ws(who, ws))
        assert [c["id"] for c in channels.json()["items"]] == [channel["id"]]
        assert "credentials" not in channels.text and "gAAAA" not in channels.text
    assert (await client.get("/api/v1/posts", headers=writer.headers)).json()["total"] == 0
    for attempt in (client.get("/api/v1/posts", headers=in_ws(stranger, ws)),
                    client.get(f"/api/v1/posts/{post_id}", headers=in_ws(stranger, ws)),
                    client.get(f"/api/v1/workspaces/{ws}", headers=stranger.headers)):
        answer = await attempt
        assert answer.status_code == 404, answer.text
    assert (await client.get(f"/api/v1/posts/{post_id}", headers=stranger.headers)).status_code == 404

    # The client reads but cannot write; the writer cannot touch channels.
    refused = await client.patch(f"/api/v1/posts/{post_id}", json={"content": {"text": "mine"}},
                                 headers=in_ws(client_viewer, ws))
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "this needs the editor role in this workspace; you are a viewer"
    paused = await client.patch(f"/api/v1/channels/{channel['id']}", json={"active": False}, headers=in_ws(writer, ws))
    assert paused.status_code == 403 and "admin" in paused.json()["error"]["message"]
    comment = await client.post(f"/api/v1/posts/{post_id}/comments", json={"body": "Ship it"},
                                headers=in_ws(owner, ws))
    assert comment.status_code == 201


async def test_approval_gates_publishing_until_an_approver_says_yes(client, new_caller):
    owner, writer = new_caller(), new_caller()
    ws = (await client.post("/api/v1/workspaces", json={"name": "Reviewed"}, headers=owner.headers)).json()["id"]
    turned_on = await client.patch(f"/api/v1/workspaces/{ws}", json={"approval_required": True}, headers=owner.headers)
    assert turned_on.status_code == 200, turned_on.text
    await join(client, owner, ws, writer, "editor")
    channel = await sandbox_channel(client, Caller(owner.id, in_ws(owner, ws)))

    soon = (clock.utcnow() + timedelta(minutes=2)).isoformat()
    made = await client.post("/api/v1/posts", json={"content": {"text": "needs a yes"}, "channel_ids": [channel["id"]],
                                                   "scheduled_at": soon}, headers=in_ws(writer, ws))
    post_id = made.json()["id"]
    assert made.json()["status"] == "pending_approval"
    # "Publish now" by the writer still waits for the approver; the cron leaves it alone.
    now_please = await client.post(f"/api/v1/posts/{post_id}/publish", headers=in_ws(writer, ws))
    assert now_please.json()["status"] == "pending_approval"
    ran = await client.post("/api/v1/cron/publish-scheduled", headers=CRON)
    assert ran.status_code == 200 and ran.json()["claimed"] == 0
    refused = await client.post(f"/api/v1/posts/{post_id}/approve", headers=in_ws(writer, ws))
    assert refused.status_code == 403

    # The owner rejects with a reason; the writer fixes it and asks again; the owner approves at once.
    rejected = await client.post(f"/api/v1/posts/{post_id}/reject", json={"comment": "Say which day"},
                                 headers=in_ws(owner, ws))
    assert rejected.json()["status"] == "draft"
    comments = await client.get(f"/api/v1/posts/{post_id}/comments", headers=in_ws(writer, ws))
    assert [c["body"] for c in comments.json()["items"]] == ["Say which day"]
    fixed = await client.patch(f"/api/v1/posts/{post_id}", json={"content": {"text": "needs a yes: Friday"}},
                               headers=in_ws(writer, ws))
    assert fixed.json()["status"] == "draft"
    asked = await client.post(f"/api/v1/posts/{post_id}/schedule", json={}, headers=in_ws(writer, ws))
    assert asked.json()["status"] == "pending_approval"
    approved = await client.post(f"/api/v1/posts/{post_id}/approve", json={"publish_now": True},
                                 headers=in_ws(owner, ws))
    assert approved.status_code == 200, approved.text
    # published at once, by the same engine as the cron; the cron finds nothing left to do
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("published", str(owner.id))
    ran = await client.post("/api/v1/cron/publish-scheduled", headers=CRON)
    assert (ran.json()["claimed"], ran.json()["published"]) == (0, 0)
    outbox = (await client.get("/api/v1/sandbox/outbox", headers=in_ws(owner, ws))).json()
    assert [e["text"] for e in outbox["items"]] == ["needs a yes: Friday"]
    events = [a["event"] for a in (await client.get(f"/api/v1/activity?post_id={post_id}",
                                                    headers=in_ws(owner, ws))).json()["items"]]
    assert {"post.approval_requested", "post.rejected", "post.approved", "post.published"} <= set(events)
    history = (await client.get(f"/api/v1/posts/{post_id}/history", headers=in_ws(owner, ws))).json()["items"]
    approval = [h for h in history if h["change"] == "status" and h["after"] == {"status": "scheduled"}]
    assert approval[-1]["actor"] == {"user_id": str(owner.id)}


async def test_editing_an_approved_post_sends_it_back_for_approval(client, new_caller):
    owner, writer = new_caller(), new_caller()
    ws = (await client.post("/api/v1/workspaces", json={"name": "Reviewed"}, headers=owner.headers)).json()["id"]
    await client.patch(f"/api/v1/workspaces/{ws}", json={"approval_required": True}, headers=owner.headers)
    await join(client, owner, ws, writer, "editor")
    channel = await sandbox_channel(client, Caller(owner.id, in_ws(owner, ws)))
    later = (clock.utcnow() + timedelta(days=2)).isoformat()
    post_id = (await client.post("/api/v1/posts", json={"content": {"text": "v1"}, "channel_ids": [channel["id"]],
                                                       "scheduled_at": later}, headers=in_ws(writer, ws))).json()["id"]
    approved = await client.post(f"/api/v1/posts/{post_id}/approve", headers=in_ws(owner, ws))
    assert approved.json()["status"] == "scheduled"

    edited = await client.patch(f"/api/v1/posts/{post_id}", json={"content": {"text": "v2"}}, headers=in_ws(writer, ws))
    assert (edited.json()["status"], edited.json()["approved_by"]) == ("pending_approval", None)
    # The approver's own edit keeps it scheduled, approved in their name.
    approved = await client.post(f"/api/v1/posts/{post_id}/approve", headers=in_ws(owner, ws))
    edited = await client.patch(f"/api/v1/posts/{post_id}", json={"content": {"text": "v3"}}, headers=in_ws(owner, ws))
    assert (edited.json()["status"], edited.json()["approved_by"]) == ("scheduled", str(owner.id))


async def test_a_series_is_approved_once(client, new_caller):
    owner, writer = new_caller(), new_caller()
    ws = (await client.post("/api/v1/workspaces", json={"name": "Reviewed"}, headers=owner.headers)).json()["id"]
    await client.patch(f"/api/v1/workspaces/{ws}", json={"approval_required": True}, headers=owner.headers)
    await join(client, owner, ws, writer, "editor")
    channel = await sandbox_channel(client, Caller(owner.id, in_ws(owner, ws)))
    first = (clock.utcnow() + timedelta(minutes=5)).isoformat()
    made = await client.post("/api/v1/posts", json={"content": {"text": "daily tip"}, "channel_ids": [channel["id"]],
                                                   "scheduled_at": first, "rrule": "FREQ=DAILY"},
                             headers=in_ws(writer, ws))
    assert made.json()["status"] == "pending_approval"
    published = await client.post(f"/api/v1/posts/{made.json()['id']}/approve", json={"publish_now": True},
                                  headers=in_ws(owner, ws))
    assert published.json()["status"] == "published"
    series = (await client.get("/api/v1/posts?status=scheduled", headers=in_ws(writer, ws))).json()["items"]
    [next_one] = [p for p in series if p["parent_post_id"] == made.json()["id"]]
    assert next_one["approved_by"] == str(owner.id)  # the next occurrence needs no second approval
