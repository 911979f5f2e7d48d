"""The Store contract for workspace management (workspaces, members, invites), on both transports.

Every management operation is tried by an owner, an admin, an editor, a viewer and an outsider of
one workspace: the roles allowed succeed, the others are refused (403 naming the role it needs, 404
for the outsider) and nothing changes. Then the rules a team relies on: the last owner, personal
workspaces, invites (single use, also when two accept at once; expiry; revoking; already a
member; another workspace's invite) and deleting a workspace with everything in it.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from services import workspaces
from services.domain.models import PostStatus, User
from services.domain.workspaces import Workspace
from services.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from tests.contract.test_store_contract import NOW, make_channel, make_post, published

ROLES = ("owner", "admin", "editor", "viewer")
ACTORS = ("outsider", "viewer", "editor", "admin", "owner")  # weakest first: the owner's success comes last


def soon(hours: int = 24) -> datetime:
    return datetime.now(timezone.utc) + timedelta(hours=hours)


async def invite(store, by: User, workspace_id: uuid.UUID, role: str = "editor", *, approver: bool = False,
                 email: str | None = None, expires_at: datetime | None = None) -> tuple[Any, str]:
    token = secrets.token_urlsafe(32)
    made = await store.create_invite(by, workspace_id, role=role, approver=approver, email=email, token=token,
                                     expires_at=expires_at or soon())
    return made, token


@dataclass
class Team:
    """A workspace with one member of each role (and a second owner), plus an outsider."""

    harness: Any
    workspace: Workspace
    users: dict[str, User]

    @property
    def id(self) -> uuid.UUID:
        return self.workspace.id

    @property
    def store(self):
        return self.harness.store

    async def join(self, role: str, *, approver: bool = False) -> User:
        """A new user, invited by the owner and accepted: a member with ``role``."""
        user = self.harness.new_user()
        _, token = await invite(self.store, self.users["owner"], self.id, role, approver=approver)
        await self.store.accept_invite(user, token)
        return user

    async def roles(self) -> dict[uuid.UUID, str]:
        return {m.user_id: m.role for m in await self.store.list_members(self.users["owner"], self.id)}


async def make_team(harness) -> Team:
    owner = harness.new_user()
    workspace = await harness.store.create_workspace(owner, "Acme")
    team = Team(harness, workspace, {"owner": owner, "outsider": harness.new_user()})
    for role in ("admin", "editor", "viewer", "owner"):
        team.users["owner2" if role == "owner" else role] = await team.join(role)
    return team


async def outcome(call: Awaitable[Any]) -> tuple[str, Any]:
    """("ok", answer), or the refusal: ("403", the needed role's message), ("404", the error code)."""
    try:
        return "ok", await call
    except ForbiddenError as err:
        return "403", err.message
    except NotFoundError as err:
        return "404", err.code


def refused(role: str, needs: str) -> tuple[str, Any]:
    """What ``role`` gets for an operation that needs ``needs``."""
    if role == "outsider":
        return "404", "workspace_not_found"
    return "403", f"this needs the {needs} role in this workspace; you are {'a' if role == 'viewer' else 'an'} {role}"


# --- every operation by every role ------------------------------------------------------------------

#: (name, minimum role, the call as an actor; returns what to compare before and after a refusal)
Operation = Callable[[Team, User], Awaitable[Any]]


async def _get(team: Team, actor: User):
    return await team.store.get_workspace(actor, team.id)


async def _members(team: Team, actor: User):
    return await team.store.list_members(actor, team.id)


async def _rename(team: Team, actor: User):
    return await team.store.update_workspace(actor, team.id, name=f"Renamed by {actor.id}", approval_required=True)


async def _invites(team: Team, actor: User):
    return await team.store.list_invites(actor, team.id)


async def _invite_editor(team: Team, actor: User):
    return await invite(team.store, actor, team.id, "editor")


async def _invite_owner(team: Team, actor: User):
    return await invite(team.store, actor, team.id, "owner")


async def _revoke(team: Team, actor: User):
    made, _ = await invite(team.store, team.users["owner"], team.id, "viewer")
    return await team.store.revoke_invite(actor, team.id, made.id)


async def _change_editor(team: Team, actor: User):
    target = await team.join("editor")
    return await team.store.update_member(actor, team.id, target.id, role="viewer", approver=True)


async def _promote_to_admin(team: Team, actor: User):
    target = await team.join("viewer")
    return await team.store.update_member(actor, team.id, target.id, role="admin")


async def _make_owner(team: Team, actor: User):
    target = await team.join("editor")
    return await team.store.update_member(actor, team.id, target.id, role="owner")


async def _demote_owner(team: Team, actor: User):
    target = await team.join("owner")
    return await team.store.update_member(actor, team.id, target.id, role="admin")


async def _remove_editor(team: Team, actor: User):
    target = await team.join("editor")
    return await team.store.remove_member(actor, team.id, target.id)


async def _remove_admin(team: Team, actor: User):
    target = await team.join("admin")
    return await team.store.remove_member(actor, team.id, target.id)


async def _remove_owner(team: Team, actor: User):
    target = await team.join("owner")
    return await team.store.remove_member(actor, team.id, target.id)


async def _delete(team: Team, actor: User):
    return await team.store.delete_workspace(actor, team.id)


OPERATIONS: list[tuple[str, str, Operation]] = [
    ("read the workspace", "viewer", _get),
    ("list members", "viewer", _members),
    ("change settings", "admin", _rename),
    ("list invites", "admin", _invites),
    ("invite an editor", "admin", _invite_editor),
    ("invite an owner", "owner", _invite_owner),
    ("revoke an invite", "admin", _revoke),
    ("change an editor's role and approver flag", "admin", _change_editor),
    ("promote a viewer to admin", "admin", _promote_to_admin),
    ("make a member owner", "owner", _make_owner),
    ("demote an owner", "owner", _demote_owner),
    ("remove an editor", "admin", _remove_editor),
    ("remove an admin", "admin", _remove_admin),
    ("remove an owner", "owner", _remove_owner),
    ("delete the workspace", "owner", _delete),
]


async def snapshot(team: Team) -> tuple:
    """What a refused operation must leave as it was: the settings, every member's role, the invites."""
    owner = team.users["owner"]
    workspace = await team.store.get_workspace(owner, team.id)
    return (replace(workspace, member_count=0), await team.roles(),
            {i.id for i in await team.store.list_invites(owner, team.id)})


@pytest.mark.parametrize(("name", "needs", "operation"), OPERATIONS, ids=[o[0] for o in OPERATIONS])
async def test_each_role_may_do_what_its_rank_allows_and_nothing_more(harness, name, needs, operation):
    team = await make_team(harness)
    for role in ACTORS:
        actor = team.users[role]
        allowed = role != "outsider" and ROLES.index(role) <= ROLES.index(needs)
        before = await snapshot(team)
        result = await outcome(operation(team, actor))
        if allowed:
            assert result[0] == "ok", (role, name, result)
            continue
        assert result == refused(role, needs), (role, name)
        settings, roles, invites = await snapshot(team)
        assert settings == before[0]
        # the operation's own set-up (a member to change, an invite to revoke) aside, nothing changed
        assert {k: v for k, v in roles.items() if k in before[1]} == before[1]
        assert before[2] <= invites and len(invites - before[2]) == (name == "revoke an invite")
    if name == "delete the workspace":
        with pytest.raises(NotFoundError):
            await team.store.get_workspace(team.users["owner"], team.id)
        assert team.id not in [w.id for w in await team.store.list_workspaces(team.users["admin"])]


async def test_nobody_promotes_themselves(harness):
    team = await make_team(harness)
    before = await team.roles()
    for role, wanted, needs in (("viewer", "editor", "admin"), ("editor", "admin", "admin"),
                                ("admin", "owner", "owner")):
        me = team.users[role]
        assert await outcome(team.store.update_member(me, team.id, me.id, role=wanted)) == refused(role, needs)
    assert await team.roles() == before


async def test_an_admin_never_touches_an_owner(harness):
    team = await make_team(harness)
    admin, owner = team.users["admin"], team.users["owner"]
    for call in (team.store.update_member(admin, team.id, owner.id, role="viewer"),
                 team.store.update_member(admin, team.id, owner.id, approver=True),
                 team.store.remove_member(admin, team.id, owner.id),
                 team.store.update_member(admin, team.id, admin.id, role="owner")):
        assert await outcome(call) == refused("admin", "owner")
    assert (await team.roles())[owner.id] == "owner" and (await team.roles())[admin.id] == "admin"


async def test_a_member_who_is_not_there_or_a_bad_role_is_refused(harness):
    team = await make_team(harness)
    owner = team.users["owner"]
    for missing in (team.users["outsider"].id, uuid.uuid4()):
        with pytest.raises(NotFoundError) as err:
            await team.store.update_member(owner, team.id, missing, role="viewer")
        assert (err.value.code, err.value.field) == ("member_not_found", "user_id")
        with pytest.raises(NotFoundError):
            await team.store.remove_member(owner, team.id, missing)
    with pytest.raises(ValidationError) as err:
        await team.store.update_member(owner, team.id, team.users["editor"].id, role="superuser")
    assert err.value.field == "role"


async def test_a_workspace_that_does_not_exist_is_not_found(harness):
    user = harness.new_user()
    nowhere = uuid.uuid4()
    for call in (harness.store.get_workspace(user, nowhere), harness.store.list_members(user, nowhere),
                 harness.store.update_workspace(user, nowhere, name="x"), harness.store.delete_workspace(user, nowhere),
                 harness.store.list_invites(user, nowhere), invite(harness.store, user, nowhere)):
        assert await outcome(call) == ("404", "workspace_not_found")


# --- workspaces ------------------------------------------------------------------------------------

async def test_the_personal_workspace_comes_first_then_the_others_by_name(harness):
    user = harness.new_user()
    for name in ("Zeta", "Alpha"):
        await harness.store.create_workspace(user, name)
    found = await harness.store.list_workspaces(user)
    assert [(w.name, w.personal, w.role, w.member_count) for w in found] == [
        ("Personal", True, "owner", 1), ("Alpha", False, "owner", 1), ("Zeta", False, "owner", 1)]
    assert all(w.approver and not w.approval_required and not w.editors_connect_channels for w in found)
    assert [w.id for w in await harness.store.list_workspaces(user)] == [w.id for w in found]  # made once


async def test_a_member_sees_the_workspace_with_their_role(harness):
    team = await make_team(harness)
    for role in ("admin", "editor", "viewer"):
        seen = {w.id: w for w in await team.store.list_workspaces(team.users[role])}
        assert (seen[team.id].name, seen[team.id].role, seen[team.id].member_count) == ("Acme", role, 5)
        assert seen[team.id].approver is (role == "admin")
    assert team.id not in [w.id for w in await team.store.list_workspaces(team.users["outsider"])]


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
async def test_a_blank_or_long_name_is_refused(harness, name):
    user = harness.new_user()
    with pytest.raises(ValidationError) as err:
        await harness.store.create_workspace(user, name)
    assert err.value.field == "name"
    team = await harness.store.create_workspace(user, "Team")
    with pytest.raises(ValidationError):
        await harness.store.update_workspace(user, team.id, name=name)
    assert (await harness.store.get_workspace(user, team.id)).name == "Team"


async def test_settings_change_only_what_is_given_and_are_logged(harness):
    team = await make_team(harness)
    admin = team.users["admin"]
    changed = await team.store.update_workspace(admin, team.id, approval_required=True)
    assert (changed.name, changed.approval_required, changed.editors_connect_channels) == ("Acme", True, False)
    changed = await team.store.update_workspace(admin, team.id, name="  Acme Social  ", editors_connect_channels=True)
    assert (changed.name, changed.approval_required, changed.editors_connect_channels) == ("Acme Social", True, True)
    assert await team.store.update_workspace(admin, team.id) == changed  # nothing given: nothing changes
    logged = [(who, details) for event, who, details in activity(team) if event == "workspace.settings_changed"]
    assert logged == [
        (admin.id, {"before": {"name": "Acme", "editors_connect_channels": False},
                    "after": {"name": "Acme Social", "editors_connect_channels": True}}),
        (admin.id, {"before": {"approval_required": False}, "after": {"approval_required": True}}),
    ]


def activity(team: Team) -> list[tuple[str, uuid.UUID, dict]]:
    """The workspace's activity log, newest first: (event, who, details)."""
    return [tuple(r) for r in team.harness.sql(
        "select event, user_id, details from herald.activity_logs where workspace_id = %s and post_id is null"
        " order by id desc", [team.id])]


# --- members -----------------------------------------------------------------------------------------

async def test_members_are_listed_strongest_role_first_with_email_and_inviter(harness):
    team = await make_team(harness)
    members = await team.store.list_members(team.users["viewer"], team.id)
    owner = team.users["owner"]
    assert [(m.user_id, m.role) for m in members] == [
        (owner.id, "owner"), (team.users["owner2"].id, "owner"), (team.users["admin"].id, "admin"),
        (team.users["editor"].id, "editor"), (team.users["viewer"].id, "viewer")]
    assert [m.email for m in members] == [f"{m.user_id}@herald.test" for m in members]
    assert [m.invited_by for m in members] == [None, owner.id, owner.id, owner.id, owner.id]
    assert all(m.approver is False for m in members)


async def test_a_role_and_approver_change_is_logged_with_before_and_after(harness):
    team = await make_team(harness)
    admin, editor = team.users["admin"], team.users["editor"]
    changed = await team.store.update_member(admin, team.id, editor.id, approver=True)
    assert (changed.role, changed.approver) == ("editor", True)
    changed = await team.store.update_member(admin, team.id, editor.id, role="admin")
    assert (changed.role, changed.approver) == ("admin", True)
    assert (await team.store.get_workspace(editor, team.id)).role == "admin"
    logged = [details for event, _, details in activity(team) if event == "workspace.member_role_changed"]
    assert logged == [
        {"user_id": str(editor.id), "before": {"role": "editor", "approver": True},
         "after": {"role": "admin", "approver": True}},
        {"user_id": str(editor.id), "before": {"role": "editor", "approver": False},
         "after": {"role": "editor", "approver": True}},
    ]


async def test_a_removed_member_loses_the_workspace_and_it_is_logged(harness):
    team = await make_team(harness)
    admin, editor = team.users["admin"], team.users["editor"]
    await team.store.remove_member(admin, team.id, editor.id)
    assert editor.id not in await team.roles()
    assert await outcome(team.store.get_workspace(editor, team.id)) == ("404", "workspace_not_found")
    await team.store.remove_member(team.users["viewer"], team.id, team.users["viewer"].id)  # leaving
    events = [e for e in activity(team) if e[0] in ("workspace.member_removed", "workspace.member_left")]
    assert events == [
        ("workspace.member_left", team.users["viewer"].id, {"user_id": str(team.users["viewer"].id), "role": "viewer"}),
        ("workspace.member_removed", admin.id, {"user_id": str(editor.id), "role": "editor"}),
    ]


@pytest.mark.parametrize("role", ["viewer", "editor", "admin", "owner"])
async def test_any_member_may_leave_unless_they_are_the_last_owner(harness, role):
    team = await make_team(harness)
    leaving = team.users["owner2" if role == "owner" else role]
    await team.store.remove_member(leaving, team.id, leaving.id)
    assert leaving.id not in await team.roles()
    assert team.id not in [w.id for w in await team.store.list_workspaces(leaving)]


# --- the last owner and personal workspaces ---------------------------------------------------------

async def test_the_last_owner_can_neither_leave_nor_be_demoted_nor_removed(harness):
    owner, admin = harness.new_user(), harness.new_user()
    workspace = await harness.store.create_workspace(owner, "Solo")
    _, token = await invite(harness.store, owner, workspace.id, "admin")
    await harness.store.accept_invite(admin, token)
    for call in (harness.store.remove_member(owner, workspace.id, owner.id),
                 harness.store.update_member(owner, workspace.id, owner.id, role="admin")):
        with pytest.raises(ConflictError) as err:
            await call
        assert err.value.code == "last_owner"
    # with a second owner, the first may step down, and then the second is the last
    await harness.store.update_member(owner, workspace.id, admin.id, role="owner")
    await harness.store.update_member(owner, workspace.id, owner.id, role="viewer")
    with pytest.raises(ConflictError) as err:
        await harness.store.remove_member(admin, workspace.id, admin.id)
    assert err.value.code == "last_owner"
    roles = {m.user_id: m.role for m in await harness.store.list_members(admin, workspace.id)}
    assert roles == {owner.id: "viewer", admin.id: "owner"}


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(harness):
    a, b = harness.new_user(), harness.new_user()
    workspace = await harness.store.create_workspace(a, "Pair")
    _, token = await invite(harness.store, a, workspace.id, "owner")
    await harness.store.accept_invite(b, token)
    results = await at_once(harness, "select from herald.workspaces where id = %s for update", [workspace.id],
                            [harness.store.update_member(a, workspace.id, b.id, role="admin"),
                             harness.another_store().update_member(b, workspace.id, a.id, role="admin")])
    assert sum(not isinstance(r, Exception) for r in results) == 1, results
    # the loser is no longer an owner, so may not touch one
    assert [type(r) for r in results if isinstance(r, Exception)] == [ForbiddenError]
    roles = sorted(m.role for m in await harness.store.list_members(a, workspace.id))
    assert roles == ["admin", "owner"]


async def test_a_personal_workspace_is_never_deleted_nor_left_by_its_user(harness):
    user, guest = harness.new_user(), harness.new_user()
    [personal] = await harness.store.list_workspaces(user)
    with pytest.raises(ConflictError) as err:
        await harness.store.delete_workspace(user, personal.id)
    assert (err.value.code, err.value.field) == ("personal_workspace", "workspace_id")
    # the user may share it, even with a co-owner, and still stays its owner
    _, token = await invite(harness.store, user, personal.id, "owner")
    await harness.store.accept_invite(guest, token)
    for call in (harness.store.remove_member(user, personal.id, user.id),
                 harness.store.remove_member(guest, personal.id, user.id),
                 harness.store.update_member(guest, personal.id, user.id, role="admin"),
                 harness.store.delete_workspace(guest, personal.id)):
        with pytest.raises(ConflictError) as err:
            await call
        assert err.value.code == "personal_workspace"
    await harness.store.remove_member(guest, personal.id, guest.id)  # the guest may leave
    assert [w.id for w in await harness.store.list_workspaces(user)] == [personal.id]


# --- invites ----------------------------------------------------------------------------------------

async def test_an_invite_makes_a_member_with_its_role_once(harness):
    team = await make_team(harness)
    admin, newcomer, late = team.users["admin"], harness.new_user(), harness.new_user()
    made, token = await invite(team.store, admin, team.id, "editor", approver=True, email="new@example.com")
    assert (made.workspace_id, made.role, made.approver, made.email, made.created_by, made.status) == (
        team.id, "editor", True, "new@example.com", admin.id, "pending")
    assert [i.id for i in await team.store.list_invites(admin, team.id)] == [made.id]

    joined = await team.store.accept_invite(newcomer, token)
    assert (joined.id, joined.name, joined.role, joined.approver, joined.member_count) == (team.id, "Acme", "editor",
                                                                                          True, 6)
    member = next(m for m in await team.store.list_members(admin, team.id) if m.user_id == newcomer.id)
    assert (member.role, member.approver, member.invited_by) == ("editor", True, admin.id)
    assert await team.store.list_invites(admin, team.id) == []  # no longer pending

    for again in (late, newcomer):  # single use, whoever tries
        with pytest.raises(ConflictError) as err:
            await team.store.accept_invite(again, token)
        assert err.value.code == "invite_used"
    assert late.id not in await team.roles()
    [(_, who, details), *_] = [e for e in activity(team) if e[0] == "workspace.member_added"]
    assert (who, details["role"], details["approver"], details["invite_id"], details["invited_by"]) == (
        newcomer.id, "editor", True, str(made.id), str(admin.id))
    created = [d for event, _, d in activity(team) if event == "workspace.invite_created"]
    assert {"invite_id": str(made.id), "role": "editor", "email": "new@example.com"}.items() <= created[0].items()


async def at_once(harness, lock: str, params: list, calls: list[Awaitable[Any]]) -> list:
    """Run ``calls`` at the same moment: a row they all need is held locked (``lock``) until every one of
    them waits for it, then let go; their results (or errors), in order."""
    harness.sql("begin")
    harness.sql(lock, params)
    tasks = [asyncio.ensure_future(c) for c in calls]
    try:
        for _ in range(200):
            await asyncio.sleep(0.025)
            harness.sql("select pg_stat_clear_snapshot()")
            [(waiting,)] = harness.sql("select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
                                       " and datname = current_database()")
            if waiting >= len(calls):
                break
        else:
            pytest.fail("the calls never waited together")
    finally:
        harness.sql("commit")
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_two_accepts_of_one_invite_at_once_let_exactly_one_in(harness):
    team = await make_team(harness)
    made, token = await invite(team.store, team.users["owner"], team.id, "viewer")
    first, second = harness.new_user(), harness.new_user()
    results = await at_once(harness, "select from herald.workspace_invites where id = %s for update", [made.id],
                            [team.store.accept_invite(first, token), harness.another_store().accept_invite(second, token)])
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and [(type(e), e.code) for e in lost] == [(ConflictError, "invite_used")], results
    roles = await team.roles()
    assert [u.id in roles for u in (first, second)].count(True) == 1


async def test_an_expired_invite_is_refused_and_no_longer_listed(harness):
    team = await make_team(harness)
    owner = team.users["owner"]
    made, token = await invite(team.store, owner, team.id)
    harness.sql("update herald.workspace_invites set expires_at = now() - interval '1 second' where id = %s", [made.id])
    assert await team.store.list_invites(owner, team.id) == []
    newcomer = harness.new_user()
    with pytest.raises(ConflictError) as err:
        await team.store.accept_invite(newcomer, token)
    assert (err.value.code, err.value.field) == ("invite_expired", "token")
    assert newcomer.id not in await team.roles()


async def test_a_revoked_or_unknown_invite_is_not_found(harness):
    team = await make_team(harness)
    admin, newcomer = team.users["admin"], harness.new_user()
    made, token = await invite(team.store, admin, team.id)
    await team.store.revoke_invite(admin, team.id, made.id)
    await team.store.revoke_invite(admin, team.id, made.id)  # again: nothing more to do
    assert await team.store.list_invites(admin, team.id) == []
    for attempt in (token, secrets.token_urlsafe(32), ""):
        with pytest.raises(NotFoundError) as err:
            await team.store.accept_invite(newcomer, attempt)
        assert (err.value.code, err.value.field) == ("invite_not_found", "token")
    assert newcomer.id not in await team.roles()
    revoked = [d for event, _, d in activity(team) if event == "workspace.invite_revoked"]
    assert revoked == [{"invite_id": str(made.id)}]


async def test_an_accepted_invite_cannot_be_revoked(harness):
    team = await make_team(harness)
    made, token = await invite(team.store, team.users["owner"], team.id)
    await team.store.accept_invite(harness.new_user(), token)
    with pytest.raises(ConflictError) as err:
        await team.store.revoke_invite(team.users["admin"], team.id, made.id)
    assert err.value.code == "invite_used"


async def test_an_invite_is_withdrawn_when_its_maker_may_no_longer_grant_it(harness):
    team = await make_team(harness)
    owners_invite, owner_token = await invite(team.store, team.users["owner2"], team.id, "owner")
    admins_invite, admin_token = await invite(team.store, team.users["admin"], team.id, "editor")
    await team.store.update_member(team.users["owner"], team.id, team.users["owner2"].id, role="admin")
    await team.store.remove_member(team.users["owner"], team.id, team.users["admin"].id)
    for token in (owner_token, admin_token):
        newcomer = harness.new_user()
        with pytest.raises(ConflictError) as err:
            await team.store.accept_invite(newcomer, token)
        assert err.value.code == "invite_withdrawn"
        assert newcomer.id not in await team.roles()
    # the demoted owner, an admin now, still invites editors
    _, token = await invite(team.store, team.users["owner2"], team.id, "editor")
    assert (await team.store.accept_invite(harness.new_user(), token)).role == "editor"


async def test_a_member_accepting_again_is_told_so_and_the_invite_stays_usable(harness):
    team = await make_team(harness)
    made, token = await invite(team.store, team.users["owner"], team.id, "admin")
    with pytest.raises(ConflictError) as err:
        await team.store.accept_invite(team.users["viewer"], token)
    assert err.value.code == "already_member"
    assert (await team.roles())[team.users["viewer"].id] == "viewer"  # no promotion by a second invite
    assert [i.id for i in await team.store.list_invites(team.users["owner"], team.id)] == [made.id]
    newcomer = harness.new_user()
    assert (await team.store.accept_invite(newcomer, token)).role == "admin"


async def test_an_invite_belongs_to_its_own_workspace(harness):
    team = await make_team(harness)
    admin = team.users["admin"]
    other = await team.store.create_workspace(admin, "Admin's own")  # admin owns this one
    theirs, token = await invite(team.store, admin, other.id, "viewer")
    ours, _ = await invite(team.store, admin, team.id, "viewer")
    # an invite is revoked and listed only through its workspace
    with pytest.raises(NotFoundError) as err:
        await team.store.revoke_invite(admin, team.id, theirs.id)
    assert (err.value.code, err.value.field) == ("invite_not_found", "invite_id")
    assert [i.id for i in await team.store.list_invites(admin, team.id)] == [ours.id]
    # and its token opens its own workspace, nothing else
    newcomer = harness.new_user()
    joined = await team.store.accept_invite(newcomer, token)
    assert joined.id == other.id
    assert [w.id for w in await team.store.list_workspaces(newcomer)][1:] == [other.id]
    assert await outcome(team.store.get_workspace(newcomer, team.id)) == ("404", "workspace_not_found")


async def test_only_the_tokens_hash_is_stored_and_no_token_is_logged(harness):
    team = await make_team(harness)
    made, token = await invite(team.store, team.users["owner"], team.id, email="x@example.com")
    [(stored,)] = harness.sql("select to_jsonb(i)::text from herald.workspace_invites i where id = %s", [made.id])
    assert token not in stored and hashlib.sha256(token.encode()).hexdigest() in stored
    logged = harness.sql("select details::text from herald.activity_logs where workspace_id = %s", [team.id])
    assert logged and not [d for (d,) in logged if token in d]
    assert "token" not in made.__dict__


@pytest.mark.parametrize(("changes", "field"), [
    ({"role": "superuser"}, "role"),
    ({"email": "not an address"}, "email"),
    ({"expires_at": datetime.now(timezone.utc) - timedelta(minutes=1)}, "expires_at"),
    ({"expires_at": datetime.now(timezone.utc) + timedelta(days=31)}, "expires_at"),
    ({"token": "short"}, "token"),
])
async def test_a_bad_invite_is_refused_naming_the_field(harness, changes, field):
    owner = harness.new_user()
    workspace = await harness.store.create_workspace(owner, "Team")
    values = {"role": "editor", "approver": False, "email": None, "token": secrets.token_urlsafe(32),
              "expires_at": soon(), **changes}
    with pytest.raises(ValidationError) as err:
        await harness.store.create_invite(owner, workspace.id, **values)
    assert err.value.field == field
    assert await harness.store.list_invites(owner, workspace.id) == []


@pytest.mark.parametrize("hours", [0, 721])
async def test_an_invite_lives_one_hour_to_thirty_days(harness, hours):
    owner = harness.new_user()
    workspace = await harness.store.create_workspace(owner, "Team")
    with pytest.raises(ValidationError) as err:
        await workspaces.create_invite(harness.store, owner, workspace.id, role="viewer", expires_in_hours=hours)
    assert err.value.field == "expires_in_hours"
    made, token = await workspaces.create_invite(harness.store, owner, workspace.id, role="viewer")
    assert timedelta(days=7) - timedelta(minutes=1) < made.expires_at - made.created_at <= timedelta(days=7)
    assert len(token) >= 43


# --- deleting a workspace ------------------------------------------------------------------------

def left_of(harness, workspace_id: uuid.UUID) -> dict[str, int]:
    """The rows of every table with a workspace_id still in the workspace (and the workspace itself)."""
    tables = [t for (t,) in harness.sql("select table_name from information_schema.columns where table_schema ="
                                        " 'herald' and column_name = 'workspace_id' order by 1")]
    assert {"channels", "posts", "post_targets", "activity_logs", "events", "webhook_deliveries"} <= set(tables)
    counts = {t: harness.sql(f"select count(*) from herald.{t} where workspace_id = %s", [workspace_id])[0][0]
              for t in tables}
    counts["workspaces"] = harness.sql("select count(*) from herald.workspaces where id = %s", [workspace_id])[0][0]
    return {t: n for t, n in counts.items() if n}


async def test_deleting_a_workspace_removes_everything_in_it_and_nothing_else(harness):
    team = await make_team(harness)
    owner = team.users["owner"]
    acting = replace(owner, workspace_id=team.id)
    channel = await make_channel(team.store, acting)
    post = await make_post(team.store, acting, [channel], status=PostStatus.DRAFT)
    await team.store.add_comment(acting, post.id, "looks good")
    await invite(team.store, owner, team.id)
    mine = await make_post(team.store, owner, [await make_channel(team.store, owner)], status=PostStatus.DRAFT)

    await team.store.delete_workspace(owner, team.id)

    assert left_of(harness, team.id) == {}
    assert (await team.store.get_post(owner, mine.id)).id == mine.id  # the personal workspace is untouched
    for role in ("owner", "admin", "viewer"):
        assert team.id not in [w.id for w in await team.store.list_workspaces(team.users[role])]


async def test_a_workspace_is_not_deleted_while_one_of_its_posts_is_being_published(harness):
    team = await make_team(harness)
    acting = replace(team.users["owner"], workspace_id=team.id)
    await team.store.create_webhook(acting, url="https://hooks.example.com/in", events=("*",), description=None,
                                    secret_encrypted="gAAAA-secret")
    await make_post(team.store, acting, [await make_channel(team.store, acting)])
    [claimed] = (await team.store.claim_due_posts(now=NOW, limit=5, lease_seconds=60)).posts
    with pytest.raises(ConflictError) as err:
        await team.store.delete_workspace(team.users["owner"], team.id)
    assert err.value.code == "workspace_publishing"
    assert (await team.store.get_workspace(team.users["owner"], team.id)).id == team.id
    await team.store.record_results([published(claimed)], now=NOW)
    assert {"posts", "post_targets", "events", "webhook_deliveries"} <= set(left_of(harness, team.id))
    await team.store.delete_workspace(team.users["owner"], team.id)
    assert left_of(harness, team.id) == {}
    assert harness.sql("select count(*) from herald.post_runs where post_id = %s", [claimed.post.id]) == [(0,)]
