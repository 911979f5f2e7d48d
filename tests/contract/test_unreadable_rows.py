"""A row written around the API never stalls the queue: on each store, the bad post fails on its own.

Good posts are made through the store; bad ones are written with SQL as the database superuser
(what direct table access, a hand edit or an old version could leave behind). Tables are named
unqualified after ``set search_path to herald, public``, so the tests hold wherever the tables live.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from uuid import UUID

import httpx
import pytest
from cryptography.fernet import Fernet

from services.domain.models import Content, PostStatus
from services.platforms.sandbox import SandboxPlatform
from services.publishing.run import RunLimits, publish_due
from services.security.crypto import TokenCipher
from services.store.base import NewChannel, NewPost

KEY = Fernet.generate_key()
CIPHER = TokenCipher([KEY.decode()])
DEFAULT_LIMITS = RunLimits()
#: a token no configured key decrypts (a key was removed, or it came from another deployment)
FOREIGN_TOKEN = TokenCipher([Fernet.generate_key().decode()]).encrypt({"access_token": "foreign-secret"})


@pytest.fixture
def db(harness):
    """``harness.sql`` with the search path the tables live on, before and after they move schema."""
    if harness.sql is None:
        pytest.skip(f"the {harness.kind} store offers no SQL access to write a row around its API")

    def run_sql(query: str, params: list | None = None) -> list:
        harness.sql("set search_path to herald, public")
        return harness.sql(query, params)

    return run_sql


async def channel(harness, user, name: str = "main"):
    return await harness.store.create_channel(user, NewChannel(
        platform="sandbox", account_id=f"acct-{name}", name=name,
        credentials_encrypted=CIPHER.encrypt({"access_token": "t"})))


async def post(harness, user, channels, *, due: datetime, text: str = "hello", rrule: str | None = None):
    return await harness.store.create_post(user, NewPost(
        content=Content(text=text), channel_ids=tuple(c.id for c in channels), status=PostStatus.SCHEDULED,
        scheduled_at=due, timezone="Europe/Berlin", rrule=rrule))


async def run(harness, *, now: datetime, limits: RunLimits = DEFAULT_LIMITS):
    async with httpx.AsyncClient() as http:
        return await publish_due(harness.store, {"sandbox": SandboxPlatform(harness.store)}, CIPHER, http, limits,
                                 trigger="manual", now=now)


def post_row(db, post_id: UUID) -> dict:
    [(status, error, lease_id, lease_expires_at)] = db(
        "select status, error, lease_id, lease_expires_at from posts where id = %s", [post_id])
    return {"status": status, "error": error, "lease_id": lease_id, "lease_expires_at": lease_expires_at}


def target_rows(db, post_id: UUID) -> list[tuple]:
    """(channel_id, status, error) of each target."""
    return db("select channel_id, status, error from post_targets where post_id = %s order by channel_id", [post_id])


def run_codes(db, post_id: UUID) -> list[str | None]:
    return [code for (code,) in db("select error_code from post_runs where post_id = %s order by started_at",
                                   [post_id])]


def unreadable_events(caplog, post_id: UUID) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if getattr(r, "event", None) == "publish.unreadable_post" and r.herald_post_id == str(post_id)]


def set_content(content: str):
    return lambda db, post_id, channel_id: db("update posts set content = %s::jsonb where id = %s", [content, post_id])


def set_column(column: str, value: str):
    return lambda db, post_id, channel_id: db(f"update posts set {column} = %s where id = %s", [value, post_id])


#: (how the post's row is broken, what its error must name)
POST_ROWS = [
    # the poison row: a media item with no type
    pytest.param(set_content('{"text": "hi", "media": [{}]}'), "content.media[0] has no type", id="media-item-empty"),
    # a media item that is a bare URL, not an object
    pytest.param(set_content('{"text": "hi", "media": ["https://example.com/a.png"]}'),
                 "content.media[0] is not an object", id="media-item-not-object"),
    # media that is an object instead of a list
    pytest.param(set_content('{"text": "hi", "media": {"type": "image"}}'), "content.media is not a list",
                 id="media-not-list"),
    # text that is a number
    pytest.param(set_content('{"text": 42}'), "content.text is not text", id="text-number"),
    # per-platform overrides that are not an object
    pytest.param(set_content('{"text": "hi", "platforms": ["sandbox"]}'), "content.platforms is not an object",
                 id="platforms-not-object"),
    # one override that is not an object
    pytest.param(set_content('{"text": "hi", "platforms": {"sandbox": "short"}}'),
                 "content.platforms.sandbox is not an object", id="override-not-object"),
    # an override's media item without a type
    pytest.param(set_content('{"text": "hi", "platforms": {"sandbox": {"media": [{"url": "https://e.com/a"}]}}}'),
                 "content.platforms.sandbox.media[0] has no type", id="override-media-item"),
    # a time zone that does not exist
    pytest.param(set_column("timezone", "Mars/Olympus_Mons"), "unknown time zone 'Mars/Olympus_Mons'",
                 id="timezone"),
    # an rrule that does not parse
    pytest.param(set_column("rrule", "FREQ=SOMETIMES"), "rrule needs a FREQ", id="rrule"),
    # a timestamp no API call writes
    pytest.param(set_column("created_at", "infinity"), "the post's row cannot be read", id="created-at-infinity"),
]


@pytest.mark.parametrize(("corrupt", "reason"), POST_ROWS)
async def test_an_unreadable_post_fails_alone_and_the_batch_publishes(harness, db, caplog, corrupt, reason):
    caplog.set_level(logging.INFO, logger="herald")
    now = datetime.now(timezone.utc)
    alice, bob, mallory = harness.new_user(), harness.new_user(), harness.new_user()
    good = [await post(harness, alice, [await channel(harness, alice)], due=now - timedelta(minutes=1)),
            await post(harness, bob, [await channel(harness, bob)], due=now - timedelta(minutes=1))]
    bad_channel = await channel(harness, mallory)
    # the oldest due post: the claim takes it first, in the same batch as the good ones
    bad = await post(harness, mallory, [bad_channel], due=now - timedelta(minutes=5), rrule="FREQ=DAILY")
    corrupt(db, bad.id, bad_channel.id)

    summary = await run(harness, now=now)

    assert summary.claimed == 3 and summary.published == 2 and summary.failed == 1
    assert [p["outcome"] for p in summary.posts if p["id"] == str(bad.id)] == ["failed"]
    for user, p in zip((alice, bob), good, strict=True):
        assert post_row(db, p.id)["status"] == "published"
        assert len(await harness.store.list_outbox(user)) == 1
    row = post_row(db, bad.id)
    assert row["status"] == "failed" and row["lease_id"] is None and row["lease_expires_at"] is None
    assert row["error"].startswith("unreadable_post: ") and reason in row["error"]
    [(_, target_status, target_error)] = target_rows(db, bad.id)
    assert target_status == "failed" and reason in target_error and "nothing was sent" in target_error
    assert run_codes(db, bad.id) == ["unreadable_post"]
    assert await harness.store.list_outbox(mallory) == []
    # a failed occurrence of an unreadable series gets no next occurrence
    assert db("select count(*) from posts where parent_post_id = %s", [bad.id]) == [(0,)]
    assert [r.herald_reason in row["error"] for r in unreadable_events(caplog, bad.id)] == [True]
    activity = await harness.store.list_activity(mallory, post_id=bad.id)

    later = await run(harness, now=now + timedelta(minutes=10))

    assert later.claimed == 0 and post_row(db, bad.id)["status"] == "failed"
    assert len(unreadable_events(caplog, bad.id)) == 1  # logged once
    assert await harness.store.list_activity(mallory, post_id=bad.id) == activity  # nothing new
    assert [a.details["error"] for a in activity if a.event == "post.failed"] == [row["error"]]


def set_credentials(value: str):
    return lambda db, channel_id: db("update channels set credentials_encrypted = %s where id = %s",
                                     [value, channel_id])


def set_metadata(value: str):
    def corrupt(db, channel_id):
        # The schema refuses such metadata today; an older one (or a hand edit of it) did not.
        for (name,) in db("select conname from pg_constraint where conrelid = 'channels'::regclass"
                          " and contype = 'c' and pg_get_constraintdef(oid) like %s", ["%metadata%"]):
            db(f'alter table channels drop constraint "{name}"')
        db("update channels set metadata = %s::jsonb where id = %s", [value, channel_id])

    return corrupt


#: (how the channel's row is broken, what the target's error must say, what it must never show)
CHANNEL_ROWS = [
    # sealed with a key HERALD_ENCRYPTION_KEYS no longer has
    pytest.param(set_credentials(FOREIGN_TOKEN), "do not decrypt with any HERALD_ENCRYPTION_KEYS key",
                 FOREIGN_TOKEN, id="credentials-foreign-key"),
    # not a Fernet token at all
    pytest.param(set_credentials("garbage-credential-value"), "do not decrypt with any HERALD_ENCRYPTION_KEYS key",
                 "garbage-credential-value", id="credentials-garbage"),
    # our key, but not JSON inside
    pytest.param(set_credentials(Fernet(KEY).encrypt(b"plain-secret-text").decode()),
                 "credentials are not a JSON object", "plain-secret-text", id="credentials-not-json"),
    # our key, JSON, but not an object
    pytest.param(set_credentials(Fernet(KEY).encrypt(b'["list-secret"]').decode()),
                 "credentials are not a JSON object", "list-secret", id="credentials-not-object"),
    # metadata that is not an object
    pytest.param(set_metadata('["not", "an", "object"]'), "the channel's metadata is not a JSON object", None,
                 id="metadata-not-object"),
]


@pytest.mark.parametrize(("corrupt", "reason", "secret"), CHANNEL_ROWS)
async def test_an_unreadable_channel_fails_only_its_targets(harness, db, caplog, corrupt, reason, secret):
    caplog.set_level(logging.INFO, logger="herald")
    now = datetime.now(timezone.utc)
    alice, mallory = harness.new_user(), harness.new_user()
    good = await post(harness, alice, [await channel(harness, alice)], due=now - timedelta(minutes=1))
    broken, fine = await channel(harness, mallory, "broken"), await channel(harness, mallory, "fine")
    only_broken = await post(harness, mallory, [broken], due=now - timedelta(minutes=5))
    both = await post(harness, mallory, [broken, fine], due=now - timedelta(minutes=4), text="both")
    corrupt(db, broken.id)

    summary = await run(harness, now=now)

    assert summary.claimed == 3 and summary.published == 1 and summary.partial == 1 and summary.failed == 1
    assert post_row(db, good.id)["status"] == "published"
    failed = post_row(db, only_broken.id)
    assert failed["status"] == "failed" and failed["lease_id"] is None and reason in failed["error"]
    assert [(s, reason in e) for _, s, e in target_rows(db, only_broken.id)] == [("failed", True)]
    assert run_codes(db, only_broken.id) == ["unreadable_post"]
    # the post's other channel is fine: it publishes there, and only the broken one fails
    assert post_row(db, both.id)["status"] == "partial"
    assert {str(c): s for c, s, _ in target_rows(db, both.id)} == {str(broken.id): "failed", str(fine.id): "published"}
    assert sorted(run_codes(db, both.id), key=str) == [None, "unreadable_post"]
    assert [e.text for e in await harness.store.list_outbox(mallory)] == ["both"]
    if secret is not None:  # what was stored is never echoed
        shown = [failed["error"], post_row(db, both.id)["error"], *(r.getMessage() for r in caplog.records)]
        assert not any(secret in text for text in shown)

    assert (await run(harness, now=now + timedelta(minutes=10))).claimed == 0


async def test_a_batch_of_unreadable_rows_never_stalls_the_queue(harness, db):
    now = datetime.now(timezone.utc)
    alice, mallory = harness.new_user(), harness.new_user()
    theirs = await channel(harness, alice)
    good = [await post(harness, alice, [theirs], due=now - timedelta(minutes=1), text=f"g{i}") for i in range(3)]
    mine = await channel(harness, mallory)
    bad = []
    for i, (corrupt, _) in enumerate(p.values for p in POST_ROWS):
        bad.append(await post(harness, mallory, [mine], due=now - timedelta(hours=1, minutes=i)))
        corrupt(db, bad[-1].id, mine.id)

    # Two small batches of bad rows first, as the claim takes the oldest: each run records them and moves on.
    first = await run(harness, now=now, limits=RunLimits(max_posts=6))
    second = await run(harness, now=now, limits=RunLimits(max_posts=6))

    assert (first.claimed, first.failed, second.claimed) == (6, 6, 6)
    assert second.published + (await run(harness, now=now)).published == 3
    assert {post_row(db, p.id)["status"] for p in good} == {"published"}
    assert {post_row(db, p.id)["status"] for p in bad} == {"failed"}
    assert db("select count(*) from posts where status = 'publishing'") == [(0,)]


async def test_an_unreadable_post_a_dead_run_may_have_sent_is_held_for_review(harness, db):
    now = datetime.now(timezone.utc)
    mallory = harness.new_user()
    bad = await post(harness, mallory, [await channel(harness, mallory)], due=now - timedelta(minutes=10))
    # A run leased it, marked its target sending, and died; then its content was overwritten.
    db("update posts set status = 'publishing', lease_id = gen_random_uuid(), lease_expires_at = %s,"
       " attempts = 1, content = '{\"media\": [{}]}'::jsonb where id = %s", [now - timedelta(minutes=1), bad.id])
    db("update post_targets set status = 'publishing' where post_id = %s", [bad.id])

    summary = await run(harness, now=now)

    assert summary.recovered == 1 and summary.needs_review == 1
    row = post_row(db, bad.id)
    assert row["status"] == "needs_review" and row["lease_id"] is None
    assert row["error"].startswith("unreadable_post: ")
    [(_, status, error)] = target_rows(db, bad.id)
    assert status == "unknown" and "may have sent it" in error  # never re-sent, never called failed
    assert run_codes(db, bad.id) == ["unreadable_post"]
    assert await harness.store.list_outbox(mallory) == []
    assert (await run(harness, now=now + timedelta(minutes=10))).claimed == 0
