"""A post's media, looked at before the post is due: at the door (create, edit, schedule) and again
an hour before its time.

Each media URL is probed once (``mediaprobe``: a bounded range request, public hosts only) and the
facts compared with every targeted platform's declared limits (``MediaLimits``). At the door a
definite problem refuses the request (422 naming the item and the limit); a file Herald could not
reach just then is let through (the host may be down for a moment). An hour before, every problem
becomes a warning on the post (``media_warnings``) and a ``post.media_warning`` event. A check never
blocks publishing: the run publishes whatever the warnings say.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from services.domain.models import Content, Outcome
from services.errors import ValidationError
from services.logs import log_event
from services.platforms.base import Platform, PlatformError
from services.platforms.medialimits import MediaFacts, limits_of
from services.platforms.mediaprobe import probe_media
from services.platforms.urls import Resolver, shared_resolver
from services.store.base import Store

#: how many files are probed at once (per request or pass)
PROBE_CONCURRENCY = 8
#: how long before its time a scheduled post's media are checked again
CHECK_AHEAD = timedelta(hours=1)
#: posts claimed per pass (the cron calls every minute: a burst of posts due in an hour spreads out)
CHECKS_PER_PASS = 20
#: the longest a pass may add to a cron call
PASS_SECONDS = 10.0


@dataclass(frozen=True)
class MediaProblem:
    """One thing wrong with one media item: ``field`` is its place in the post body."""

    field: str
    code: str  #: media_unavailable, media_type_mismatch, media_rejected, private_address, too_many_redirects, ...
    message: str
    platform: str | None = None  #: the platform whose limit it breaks; None: every platform's
    #: False: Herald could not reach the file just then; it may be fine later
    is_definite: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "code": self.code, "message": self.message, "platform": self.platform}


class Prober:
    """Probes each URL once however many items and posts name it, PROBE_CONCURRENCY at a time."""

    def __init__(self, http: httpx.AsyncClient, *, allow_private: bool, resolver: Resolver | None = None):
        self._http, self._allow_private = http, allow_private
        self._resolver = resolver or shared_resolver()
        self._slots = asyncio.Semaphore(PROBE_CONCURRENCY)
        self._probes: dict[str, asyncio.Future[MediaFacts | PlatformError]] = {}

    def facts(self, url: str) -> asyncio.Future[MediaFacts | PlatformError]:
        if url not in self._probes:
            self._probes[url] = asyncio.ensure_future(self._probe(url))
        return self._probes[url]

    async def _probe(self, url: str) -> MediaFacts | PlatformError:
        async with self._slots:
            try:
                return await probe_media(self._http, url, allow_private=self._allow_private, resolver=self._resolver)
            except PlatformError as exc:
                return exc


@dataclass(frozen=True)
class Target:
    """A platform a post goes to, and its channel's metadata (a Mastodon instance's own limits)."""

    platform: str
    metadata: dict[str, Any] = field(default_factory=dict)


async def media_problems(prober: Prober, platforms: dict[str, Platform], content: Content,
                         targets: list[Target]) -> list[MediaProblem]:
    """Every problem with ``content``'s media: each URL's own (unreachable, not the kind it says),
    then each targeted platform's limits on the media it would publish, in request order."""
    items = [(f"content.media[{i}].url", m.type, m.url) for i, m in enumerate(content.media)]
    for name, override in content.platforms.items():
        items += [(f"content.platforms.{name}.media[{i}].url", str(m.get("type") or ""), str(m.get("url") or ""))
                  for i, m in enumerate(override.get("media") or ())]
    facts = dict(zip([url for _, _, url in items],
                     await asyncio.gather(*(prober.facts(url) for _, _, url in items)), strict=False))
    problems = []
    for where, kind, url in items:
        problems += _own_problems(where, kind, facts[url])
    for target in targets:
        platform = platforms.get(target.platform)
        if platform is None:
            continue
        limits = limits_of(platform, target.metadata)
        override = content.platforms.get(target.platform) or {}
        prefix = f"content.platforms.{target.platform}.media" if override.get("media") is not None else "content.media"
        for i, media in enumerate(content.for_platform(target.platform).media):
            known = facts.get(media.url)
            if isinstance(known, MediaFacts):
                problems += [MediaProblem(f"{prefix}[{i}].url", "media_rejected", message, platform=target.platform)
                             for message in limits.problems(media.type, known)]
    return _unique(problems)


def _own_problems(where: str, kind: str, facts: MediaFacts | PlatformError) -> list[MediaProblem]:
    if isinstance(facts, PlatformError):
        return [MediaProblem(where, facts.code, f"{where}: {facts.message}",
                             is_definite=facts.outcome is not Outcome.TRANSIENT)]
    family = (facts.content_type or "").split("/", 1)[0]
    if kind == "document":  # a PDF or an office file: an image, a video or a web page is not one
        if facts.content_type and family in _KNOWN_FAMILIES:
            return [MediaProblem(where, "media_type_mismatch",
                                 f"{where} is {facts.content_type}, not a document (PDF, PPT(X) or DOC(X))")]
        return []
    if facts.content_type and family != kind and (family in _KNOWN_FAMILIES or facts.content_type in _NOT_MEDIA):
        wanted = "a video" if kind == "video" else "an image"
        hint = ": link the file itself, not a page that shows it" if facts.content_type == "text/html" else ""
        return [MediaProblem(where, "media_type_mismatch", f"{where} is {facts.content_type}, not {wanted}{hint}")]
    return []


#: types that say for sure what a file is, for telling an image from a video or a page; any other
#: (a server's own name for "some bytes") is no evidence either way
_KNOWN_FAMILIES = {"image", "video", "audio", "text"}
_NOT_MEDIA = {"application/json", "application/xml", "application/xhtml+xml", "application/pdf", "application/zip"}


def _unique(problems: list[MediaProblem]) -> list[MediaProblem]:
    return list(dict.fromkeys(problems))


def refusal(problems: list[MediaProblem]) -> ValidationError | None:
    """The first problem that refuses a request (definite ones only), as the 422 it becomes."""
    for problem in problems:
        if problem.is_definite:
            message = problem.message if problem.message.startswith(problem.field) else f"{problem.field}: {problem.message}"
            return ValidationError(message, code=problem.code, field=problem.field)
    return None


@dataclass
class MediaCheckSummary:
    """What one pass did: posts checked, how many of them got warnings, how many it gave back."""

    checked: int = 0
    warned: int = 0
    given_back: int = 0  #: claimed but not finished in the pass's time: claimable again
    skipped: bool = False  #: no time left in the call for a pass

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "warned": self.warned, "given_back": self.given_back, "skipped": self.skipped}


async def check_upcoming_media(store: Store, platforms: dict[str, Platform], http: httpx.AsyncClient, *,
                               now: datetime, deadline: float, allow_private: bool,
                               limit: int = CHECKS_PER_PASS) -> MediaCheckSummary:
    """Check the media of scheduled posts due within CHECK_AHEAD that were not checked for their
    current time and content; record each post's warnings (and a ``post.media_warning`` event for
    a post that has any). ``deadline`` is a time.monotonic() value: a pass that cannot start well
    before it does nothing; a post whose check is still running at it is given back unchecked, for
    the next pass."""
    summary = MediaCheckSummary()
    if deadline - time.monotonic() < 2:
        summary.skipped = True
        return summary
    claimed = await store.claim_media_checks(now=now, within=CHECK_AHEAD, limit=limit)
    if not claimed:
        return summary
    prober = Prober(http, allow_private=allow_private)
    tasks = [asyncio.ensure_future(media_problems(prober, platforms, c.post.content, [Target(p, m) for p, m in c.targets]))
             for c in claimed]
    await asyncio.wait(tasks, timeout=max(deadline - time.monotonic(), 0.1))
    results: list[tuple[UUID, datetime, list[dict[str, Any]] | None]] = []
    for check, task in zip(claimed, tasks, strict=True):
        if task.done() and task.exception() is None:
            results.append((check.post.id, check.checked_for, [p.to_dict() for p in task.result()]))
        else:  # not finished in time (or a bug): given back, so that the next pass looks again
            if task.done():
                log_event("media.check_crashed", post_id=str(check.post.id), error=type(task.exception()).__name__)
            task.cancel()
            results.append((check.post.id, check.checked_for, None))
    await store.record_media_checks(results, now=now)
    summary.given_back = sum(1 for r in results if r[2] is None)
    results = [r for r in results if r[2] is not None]
    summary.checked = len(results)
    summary.warned = sum(1 for _, _, warnings in results if warnings)
    for post_id, _, warnings in results:
        if warnings:
            log_event("media.warning", post_id=str(post_id), warnings=len(warnings))
    return summary
