"""The media-check store functions on each transport: which posts a pass claims (scheduled, with
media, due within the window, once per time), overlapping passes kept apart, findings kept only
while still current, and the ``post.media_warning`` event."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import httpx
import respx

from services.domain.models import Content, Media, PostStatus
from services.media import check_upcoming_media
from services.platforms.sandbox import SandboxPlatform
from services.store.base import NewChannel, NewPost, PostChanges
from tests.contract.test_publish_run import CIPHER

HOUR = timedelta(hours=1)
NOW = datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)
PHOTO = Content(text="cat", media=(Media("image", "https://cdn.example.com/cat.jpg"),))
WARNING = {"field": "content.media[0].url", "code": "media_unavailable", "message": "gone", "platform": None}


async def setup(harness):
    user = harness.new_user()
    channel = await harness.store.create_channel(user, NewChannel(
        platform="sandbox", account_id="acct", name="Sandbox", metadata={"note": "kept"},
        credentials_encrypted=CIPHER.encrypt({"access_token": "t"})))

    async def post(at: datetime, content: Content = PHOTO, status=PostStatus.SCHEDULED):
        return await harness.store.create_post(user, NewPost(content=content, channel_ids=(channel.id,), status=status,
                                                             scheduled_at=at))

    return user, channel, post


async def test_a_pass_claims_scheduled_posts_with_media_due_within_the_hour_once(harness):
    _, _, post = await setup(harness)
    due = await post(NOW + 30 * timedelta(minutes=1))
    await post(NOW + 2 * HOUR)  # too far ahead
    await post(NOW + 10 * timedelta(minutes=1), Content(text="no media"))
    await post(NOW + 10 * timedelta(minutes=1), status=PostStatus.DRAFT)
    [claimed] = await harness.store.claim_media_checks(now=NOW, within=HOUR, limit=10)
    assert claimed.post.id == due.id and claimed.checked_for == due.scheduled_at
    assert claimed.targets == (("sandbox", {"note": "kept"}),)
    assert await harness.store.claim_media_checks(now=NOW, within=HOUR, limit=10) == []


async def test_overlapping_passes_never_claim_one_post_twice(harness):
    _, _, post = await setup(harness)
    made = {(await post(NOW + timedelta(minutes=i + 1))).id for i in range(6)}
    other = harness.another_store()
    try:
        first, second = await asyncio.gather(harness.store.claim_media_checks(now=NOW, within=HOUR, limit=3),
                                             other.claim_media_checks(now=NOW, within=HOUR, limit=3))
    finally:
        await other.close()
    ids = [c.post.id for c in first + second]
    assert len(ids) == len(set(ids)) == 6 and set(ids) == made


async def test_findings_are_kept_on_the_post_with_an_event_unless_it_was_edited_since(harness):
    user, _, post = await setup(harness)
    warned, edited, fine = [await post(NOW + timedelta(minutes=m)) for m in (10, 20, 30)]
    claims = {c.post.id: c for c in await harness.store.claim_media_checks(now=NOW, within=HOUR, limit=10)}
    new = Content(text="new", media=(Media("image", "https://cdn.example.com/new.jpg"),))
    await harness.store.update_post(user, edited.id, PostChanges(content=new), allowed_from=(PostStatus.SCHEDULED,),
                                    action="edit")
    kept = await harness.store.record_media_checks([
        (warned.id, claims[warned.id].checked_for, [WARNING]),
        (edited.id, claims[edited.id].checked_for, [WARNING]),
        (fine.id, claims[fine.id].checked_for, []),
    ], now=NOW)
    assert kept == 2
    got = {p: await harness.store.get_post(user, p) for p in (warned.id, edited.id, fine.id)}
    assert got[warned.id].media_warnings == (WARNING,) and got[warned.id].media_checked_at == NOW
    assert got[fine.id].media_warnings == () and got[fine.id].media_checked_at == NOW
    # the edit made the finding stale: nothing kept, and the post is claimed again for its new content
    assert got[edited.id].media_warnings == () and got[edited.id].media_checked_at is None
    [again] = await harness.store.claim_media_checks(now=NOW, within=HOUR, limit=10)
    assert again.post.id == edited.id
    assert harness.sql is not None
    events = harness.sql("select type, subject -> 'post' ->> 'id' from herald.events where type = 'post.media_warning'")
    assert [tuple(e) for e in events] == [("post.media_warning", str(warned.id))]


async def test_a_post_given_back_unchecked_is_claimed_again(harness):
    _, _, post = await setup(harness)
    made = await post(NOW + timedelta(minutes=10))
    [claim] = await harness.store.claim_media_checks(now=NOW, within=HOUR, limit=10)
    assert await harness.store.record_media_checks([(made.id, claim.checked_for, None)], now=NOW) == 0
    [again] = await harness.store.claim_media_checks(now=NOW, within=HOUR, limit=10)
    assert again.post.id == made.id


async def test_a_pass_out_of_time_gives_its_unfinished_posts_back(harness):
    user, _, post = await setup(harness)
    made = await post(datetime.now(timezone.utc) + timedelta(minutes=10))

    async def stall(request):
        await asyncio.sleep(30)

    # the stalled call never finishes, so respx never counts it as made
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as cdn:
        cdn.get(PHOTO.media[0].url).mock(side_effect=stall)
        async with httpx.AsyncClient() as http:
            started = time.monotonic()
            summary = await check_upcoming_media(harness.store, {"sandbox": SandboxPlatform(harness.store)}, http,
                                                 now=datetime.now(timezone.utc), deadline=started + 2.5,
                                                 allow_private=True)  # no DNS for the test's host
    assert time.monotonic() - started < 5
    assert summary.to_dict() == {"checked": 0, "warned": 0, "given_back": 1, "skipped": False}
    assert (await harness.store.get_post(user, made.id)).media_checked_at is None
    [again] = await harness.store.claim_media_checks(now=datetime.now(timezone.utc), within=HOUR, limit=10)
    assert again.post.id == made.id
