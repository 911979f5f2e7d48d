"""Posts in several steps: a thread (the post, then each of ``content.thread`` as a reply to the one
before) and a first comment (posted under the post right after it).

Each step done is recorded with its platform id in ``request.progress["steps"]`` as soon as the
platform answers, and in the ``details`` of any PlatformError raised, so the engine keeps it with
the target and hands it back in ``request.resume``: the next attempt starts at the first step not
done and never repeats one. What else an adapter leaves in ``progress`` or ``details`` (a Threads
container id) belongs to that first step not done.

A step is ``{"kind": "post" | "thread" | "first_comment", "index"?, "id", "url", ...}`` (``index``
is the part's position in ``content.thread``; an adapter may add what a later reply needs, such as
Bluesky's ``cid``). A first comment that fails leaves the post published: its error is returned in
``Published.first_comment_error``, and it is not tried again.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, cast

import httpx

from services.domain.models import Content, Outcome
from services.platforms.base import (
    CommentingPlatform,
    Feature,
    Platform,
    PlatformError,
    Published,
    PublishRequest,
    ThreadingPlatform,
    supports,
)

POST, THREAD, FIRST_COMMENT = "post", "thread", "first_comment"


def is_multi_step(platform: Platform, content: Content) -> bool:
    """Whether ``content`` publishes in several steps on ``platform``."""
    return bool((content.thread and supports(platform, Feature.THREAD))
                or (content.first_comment and supports(platform, Feature.FIRST_COMMENT)))


def recorded(resume: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The steps a previous attempt finished (``resume["steps"]``), in order."""
    found = (resume or {}).get("steps")
    return [dict(step) for step in found if isinstance(step, dict) and step.get("id")] if isinstance(found, list) else []


async def publish(platform: Platform, request: PublishRequest, http: httpx.AsyncClient) -> Published:
    """Publish ``request.content`` on ``platform``: in one call, or step by step where it has a
    thread or a first comment the platform takes (``Feature.THREAD``, ``Feature.FIRST_COMMENT``).

    Raises the failing step's PlatformError with ``details["steps"]`` (the steps done); a step is
    never started past ``request.deadline`` (TRANSIENT ``deadline_reached``: the next attempt goes
    on from there).
    """
    if not is_multi_step(platform, request.content):
        return await platform.publish(request, http)
    content = request.content
    thread = content.thread if supports(platform, Feature.THREAD) else ()
    comment = content.first_comment if supports(platform, Feature.FIRST_COMMENT) else None
    done = recorded(request.resume)
    request.progress["steps"] = done
    #: what the previous attempt left for the first step not done (beyond the steps themselves)
    resume: dict[str, Any] | None = {k: v for k, v in (request.resume or {}).items() if k != "steps"} or None
    http_status = None
    try:
        if not _find(done, POST):
            alone = dataclasses.replace(content, thread=(), first_comment=None)
            published = await platform.publish(dataclasses.replace(request, content=alone, resume=resume), http)
            done.append({"kind": POST, "id": published.platform_post_id, "url": published.url})
            http_status, resume = published.http_status, None
            _step_done(request)
        head = done[0]
        for index, part in enumerate(thread):
            if _find(done, THREAD, index):
                continue
            _check_deadline(request, f"content.thread[{index}]")
            parent = [step for step in done if step.get("kind") in (POST, THREAD)][-1]
            step = await cast(ThreadingPlatform, platform).reply(
                dataclasses.replace(request, content=Content(text=part.text, media=part.media), resume=resume), http,
                parent=parent, root=head, key=f"{request.idempotency_key}:thread:{index}")
            done.append({"kind": THREAD, "index": index, **step})
            resume = None
            _step_done(request)
        error = None
        if comment and not _find(done, FIRST_COMMENT):
            try:
                _check_deadline(request, "the first comment")
                step = await cast(CommentingPlatform, platform).comment(
                    dataclasses.replace(request, content=Content(text=comment), resume=None), http, text=comment,
                    post=head, key=f"{request.idempotency_key}:first_comment")
                done.append({"kind": FIRST_COMMENT, **step})
            except PlatformError as exc:  # the post is live: the comment's failure does not undo it
                error = f"the first comment was not posted: {exc.message}"
    except PlatformError as exc:
        exc.details["steps"] = list(done)
        if done:
            exc.message = f"{exc.message} (already live: {_said(done)}; a retry goes on from there)"
        raise
    return Published(str(head["id"]), head.get("url"), http_status, steps=tuple(done), first_comment_error=error)


def _find(done: list[dict[str, Any]], kind: str, index: int | None = None) -> dict[str, Any] | None:
    return next((s for s in done if s.get("kind") == kind and (index is None or s.get("index") == index)), None)


def _step_done(request: PublishRequest) -> None:
    """What an adapter kept in ``progress`` for the step just finished is no longer needed."""
    for key in [k for k in request.progress if k != "steps"]:
        del request.progress[key]


def _check_deadline(request: PublishRequest, what: str) -> None:
    if request.deadline is not None and time.monotonic() >= request.deadline:
        raise PlatformError(Outcome.TRANSIENT, "deadline_reached", f"this run's time ran out before {what}")


def _said(done: list[dict[str, Any]]) -> str:
    return ", ".join("the post" if s["kind"] == POST else f"content.thread[{s['index']}]" if s["kind"] == THREAD
                     else "the first comment" for s in done)


def settle_lost(platform: Platform, request: PublishRequest, found: Published | None) -> Published | None:
    """A call a dead run (or a lost answer) may have made, on a platform that cannot repeat it safely.

    ``found``: the post as the platform's lookup found it (None: not found, or not looked up because
    ``request.resume`` records the post as live already). The step whose answer was lost is the
    first one not recorded: the post itself (``found`` says), a thread part (nobody can tell:
    UNKNOWN, for a person to check), or the first comment (the post is published; the comment's
    fate is said in ``first_comment_error``). None: nothing went out, publish normally.
    """
    done = recorded(request.resume)
    if not done:
        if found is None or not is_multi_step(platform, request.content):
            return found
        done = [{"kind": POST, "id": found.platform_post_id, "url": found.url}]
    thread = request.content.thread if supports(platform, Feature.THREAD) else ()
    missing = [i for i in range(len(thread)) if not _find(done, THREAD, i)]
    if missing:
        raise PlatformError(Outcome.UNKNOWN, "maybe_sent",
                            f"{_said(done)} went out; the run publishing content.thread[{missing[0]}] stopped mid-call, "
                            "so whether it is live cannot be told: check the thread, then resolve it",
                            details={"steps": done})
    error = None
    if request.content.first_comment and supports(platform, Feature.FIRST_COMMENT) and not _find(done, FIRST_COMMENT):
        error = ("the first comment may not have been posted: the run publishing it stopped mid-call; "
                 "check the post and add it by hand if it is missing")
    head = done[0]
    return Published(str(head["id"]), head.get("url"), steps=tuple(done), first_comment_error=error)
