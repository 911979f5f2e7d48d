"""Workspaces, members and invites through the ASGI app: what a team's dashboard sends and gets."""

from __future__ import annotations

import logging
import uuid

import pytest

from tests.api.conftest import Caller

API = "/api/v1"


async def a_workspace(client, who: Caller, name: str = "Acme") -> dict:
    response = await client.post(f"{API}/workspaces", json={"name": name}, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def an_invite(client, by: Caller, workspace_id: str, **body) -> dict:
    response = await client.post(f"{API}/workspaces/{workspace_id}/invites", json=body, headers=by.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def joined(client, by: Caller, who: Caller, workspace_id: str, role: str) -> dict:
    made = await an_invite(client, by, workspace_id, role=role)
    response = await client.post(f"{API}/invites/accept", json={"token": made["token"]}, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_user_lists_their_personal_workspace_first_then_creates_one(client, alice):
    response = await client.get(f"{API}/workspaces", headers=alice.headers)
    assert response.status_code == 200, response.text
    [personal] = response.json()["items"]
    assert (personal["name"], personal["personal"], personal["role"], personal["member_count"]) == (
        "Personal", True, "owner", 1)

    made = await a_workspace(client, alice, "  Acme  ")
    assert (made["name"], made["personal"], made["role"], made["approver"]) == ("Acme", False, "owner", True)
    listed = (await client.get(f"{API}/workspaces", headers=alice.headers)).json()
    assert [w["id"] for w in listed["items"]] == [personal["id"], made["id"]] and listed["total"] == 2
    read = await client.get(f"{API}/workspaces/{made['id']}", headers=alice.headers)
    assert read.status_code == 200 and read.json() == made


async def test_an_invite_shows_its_token_once_and_lets_one_user_in(client, alice, bob, new_caller, caplog):
    caplog.set_level(logging.DEBUG)
    team = await a_workspace(client, alice)
    made = await an_invite(client, alice, team["id"], role="editor", email="bob@example.com", expires_in_hours=48)
    token = made["token"]
    assert len(token) >= 43 and made["accept_url"] == f"http://localhost:3000/invites/accept#token={token}"
    assert (made["role"], made["approver"], made["email"], made["status"]) == ("editor", False, "bob@example.com",
                                                                              "pending")
    listed = await client.get(f"{API}/workspaces/{team['id']}/invites", headers=alice.headers)
    assert listed.status_code == 200 and [i["id"] for i in listed.json()["items"]] == [made["id"]]
    assert token not in listed.text and "token" not in listed.json()["items"][0]

    accepted = await client.post(f"{API}/invites/accept", json={"token": token}, headers=bob.headers)
    assert accepted.status_code == 200, accepted.text
    assert (accepted.json()["id"], accepted.json()["role"], accepted.json()["member_count"]) == (team["id"], "editor", 2)
    again = await client.post(f"{API}/invites/accept", json={"token": token}, headers=new_caller().headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invite_used"

    activity = await client.get(f"{API}/activity", headers={**alice.headers, "X-Workspace-Id": team["id"]})
    assert activity.status_code == 200, activity.text
    assert {"workspace.invite_created", "workspace.member_added"} <= {a["event"] for a in activity.json()["items"]}
    for text in (listed.text, accepted.text, activity.text, caplog.text):
        assert token not in text


async def test_a_member_works_in_the_workspace_named_by_the_header(client, alice, bob):
    team = await a_workspace(client, alice)
    await joined(client, alice, bob, team["id"], "viewer")
    in_team = {**alice.headers, "X-Workspace-Id": team["id"]}
    response = await client.post(f"{API}/channels", headers=in_team, json={
        "platform": "sandbox", "name": "Team account", "account_id": "team",
        "credentials": {"access_token": "placeholder"}})
    assert response.status_code == 201, response.text
    seen = await client.get(f"{API}/channels", headers={**bob.headers, "X-Workspace-Id": team["id"]})
    assert [c["name"] for c in seen.json()["items"]] == ["Team account"]
    assert (await client.get(f"{API}/channels", headers=bob.headers)).json()["items"] == []  # bob's personal one


async def test_a_role_too_low_is_a_403_that_names_the_role(client, alice, bob):
    team = await a_workspace(client, alice)
    await joined(client, alice, bob, team["id"], "editor")
    ws = f"{API}/workspaces/{team['id']}"
    for method, path, body, needs in (
        ("PATCH", ws, {"name": "Mine now"}, "admin"),
        ("DELETE", ws, None, "owner"),
        ("GET", f"{ws}/invites", None, "admin"),
        ("POST", f"{ws}/invites", {"role": "viewer"}, "admin"),
        ("PATCH", f"{ws}/members/{alice.id}", {"role": "viewer"}, "owner"),
        ("PATCH", f"{ws}/members/{bob.id}", {"role": "admin"}, "admin"),
        ("DELETE", f"{ws}/members/{alice.id}", None, "owner"),
    ):
        response = await client.request(method, path, json=body, headers=bob.headers)
        assert response.status_code == 403, (method, path, response.text)
        error = response.json()["error"]
        assert error["code"] == "forbidden"
        assert error["message"] == f"this needs the {needs} role in this workspace; you are an editor"
    assert (await client.get(ws, headers=bob.headers)).json()["name"] == "Acme"


async def test_a_workspace_you_are_not_in_is_a_404(client, alice, bob):
    team = await a_workspace(client, alice)
    made = await an_invite(client, alice, team["id"])
    for workspace_id in (team["id"], str(uuid.uuid4())):
        ws = f"{API}/workspaces/{workspace_id}"
        for method, path, body in (
            ("GET", ws, None), ("PATCH", ws, {"name": "x"}), ("DELETE", ws, None), ("GET", f"{ws}/members", None),
            ("PATCH", f"{ws}/members/{alice.id}", {"role": "viewer"}), ("DELETE", f"{ws}/members/{alice.id}", None),
            ("POST", f"{ws}/leave", None), ("GET", f"{ws}/invites", None), ("POST", f"{ws}/invites", {}),
            ("DELETE", f"{ws}/invites/{made['id']}", None),
        ):
            response = await client.request(method, path, json=body, headers=bob.headers)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "workspace_not_found"
    assert team["id"] not in [w["id"] for w in (await client.get(f"{API}/workspaces", headers=bob.headers)).json()["items"]]


async def test_members_are_listed_changed_and_removed(client, alice, bob, new_caller):
    team = await a_workspace(client, alice)
    carol = new_caller()
    await joined(client, alice, bob, team["id"], "editor")
    await joined(client, alice, carol, team["id"], "viewer")
    members = f"{API}/workspaces/{team['id']}/members"
    listed = await client.get(members, headers=carol.headers)
    assert listed.status_code == 200
    assert [(m["user_id"], m["role"], m["email"]) for m in listed.json()["items"]] == [
        (str(alice.id), "owner", f"{alice.id}@herald.test"), (str(bob.id), "editor", f"{bob.id}@herald.test"),
        (str(carol.id), "viewer", f"{carol.id}@herald.test")]

    changed = await client.patch(f"{members}/{bob.id}", json={"role": "admin", "approver": True}, headers=alice.headers)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["role"], changed.json()["approver"], changed.json()["invited_by"]) == ("admin", True,
                                                                                                 str(alice.id))
    removed = await client.delete(f"{members}/{carol.id}", headers=bob.headers)  # an admin removes a viewer
    assert removed.status_code == 204 and removed.content == b""
    assert (await client.get(members, headers=carol.headers)).status_code == 404
    missing = await client.delete(f"{members}/{carol.id}", headers=bob.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "member_not_found"


async def test_leaving_and_the_last_owner(client, alice, bob):
    team = await a_workspace(client, alice)
    await joined(client, alice, bob, team["id"], "viewer")
    leave = f"{API}/workspaces/{team['id']}/leave"
    refused = await client.post(leave, headers=alice.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "last_owner"
    demoted = await client.patch(f"{API}/workspaces/{team['id']}/members/{alice.id}", json={"role": "admin"},
                                 headers=alice.headers)
    assert demoted.status_code == 409 and demoted.json()["error"]["code"] == "last_owner"
    left = await client.post(leave, headers=bob.headers)
    assert left.status_code == 204 and left.content == b""
    assert [m["user_id"] for m in (await client.get(f"{API}/workspaces/{team['id']}/members",
                                                    headers=alice.headers)).json()["items"]] == [str(alice.id)]
    personal = (await client.get(f"{API}/workspaces", headers=alice.headers)).json()["items"][0]
    for response in (await client.post(f"{API}/workspaces/{personal['id']}/leave", headers=alice.headers),
                     await client.delete(f"{API}/workspaces/{personal['id']}", headers=alice.headers)):
        assert response.status_code == 409 and response.json()["error"]["code"] == "personal_workspace"


async def test_settings_change_and_the_workspace_is_deleted(client, alice, bob):
    team = await a_workspace(client, alice)
    await joined(client, alice, bob, team["id"], "admin")
    ws = f"{API}/workspaces/{team['id']}"
    changed = await client.patch(ws, json={"approval_required": True, "editors_connect_channels": True},
                                 headers=bob.headers)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["approval_required"], changed.json()["editors_connect_channels"]) == (
        "Acme", True, True)
    deleted = await client.delete(ws, headers=alice.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    for who in (alice, bob):
        assert (await client.get(ws, headers=who.headers)).status_code == 404


async def test_an_invite_is_revoked_expired_or_unknown(client, alice, bob):
    team = await a_workspace(client, alice)
    made = await an_invite(client, alice, team["id"], role="viewer")
    revoked = await client.delete(f"{API}/workspaces/{team['id']}/invites/{made['id']}", headers=alice.headers)
    assert revoked.status_code == 204
    for token in (made["token"], "no-such-token"):
        response = await client.post(f"{API}/invites/accept", json={"token": token}, headers=bob.headers)
        assert response.status_code == 404, response.text
        assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("invite_not_found", "token")
    unknown = await client.delete(f"{API}/workspaces/{team['id']}/invites/{uuid.uuid4()}", headers=alice.headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "invite_not_found"


async def test_an_expired_invite_is_a_409(client, alice, bob, db):
    team = await a_workspace(client, alice)
    made = await an_invite(client, alice, team["id"], expires_in_hours=1)
    db.execute("update herald.workspace_invites set expires_at = now() - interval '1 minute' where id = %s",
               [made["id"]])
    response = await client.post(f"{API}/invites/accept", json={"token": made["token"]}, headers=bob.headers)
    assert response.status_code == 409 and response.json()["error"]["code"] == "invite_expired"


async def test_a_member_accepting_again_is_a_409(client, alice, bob):
    team = await a_workspace(client, alice)
    await joined(client, alice, bob, team["id"], "viewer")
    made = await an_invite(client, alice, team["id"], role="admin")
    response = await client.post(f"{API}/invites/accept", json={"token": made["token"]}, headers=bob.headers)
    assert response.status_code == 409 and response.json()["error"]["code"] == "already_member"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/workspaces", {"name": "Acme", "owner": "me"}, "owner"),
    ("/workspaces", {}, "name"),
    ("/workspaces", {"name": "  "}, "name"),
    ("/workspaces", {"name": "x" * 101}, "name"),
    ("/workspaces/{ws}", {"name": "Acme", "personal": True}, "personal"),
    ("/workspaces/{ws}/invites", {"role": "editor", "token": "my-own-token"}, "token"),
    ("/workspaces/{ws}/invites", {"role": "superuser"}, "role"),
    ("/workspaces/{ws}/invites", {"expires_in_hours": 0}, "expires_in_hours"),
    ("/workspaces/{ws}/invites", {"expires_in_hours": 721}, "expires_in_hours"),
    ("/workspaces/{ws}/invites", {"email": "not an address"}, "email"),
    ("/workspaces/{ws}/members/{me}", {"role": "viewer", "email": "x@example.com"}, "email"),
    ("/workspaces/{ws}/members/{me}", {"role": "boss"}, "role"),
    ("/invites/accept", {"token": "abc", "workspace_id": "x"}, "workspace_id"),
    ("/invites/accept", {}, "token"),
])
async def test_a_bad_body_is_a_422_naming_the_field(client, alice, path, body, field):
    team = await a_workspace(client, alice)
    method = "PATCH" if path in ("/workspaces/{ws}", "/workspaces/{ws}/members/{me}") else "POST"
    response = await client.request(method, API + path.format(ws=team["id"], me=alice.id), json=body,
                                    headers=alice.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    listed = (await client.get(f"{API}/workspaces", headers=alice.headers)).json()
    assert [w["name"] for w in listed["items"]] == ["Personal", "Acme"]
    assert (await client.get(f"{API}/workspaces/{team['id']}/invites", headers=alice.headers)).json()["items"] == []


async def test_every_workspace_route_needs_a_signed_in_user(client):
    ws = f"{API}/workspaces/{uuid.uuid4()}"
    for method, path in (("GET", f"{API}/workspaces"), ("POST", f"{API}/workspaces"), ("GET", ws),
                         ("GET", f"{ws}/members"), ("POST", f"{ws}/leave"), ("POST", f"{API}/invites/accept")):
        response = await client.request(method, path, json={"name": "x", "token": "y"})
        assert response.status_code == 401, (method, path)
