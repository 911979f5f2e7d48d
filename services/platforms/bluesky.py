"""The Bluesky platform: each post is an ``app.bsky.feed.post`` record created in the account's repo.

Channel: credentials ``identifier`` (handle or email) and ``app_password``; optional
``metadata.pds_url`` (https, public; default the ``bsky.social`` entryway).

Sessions live in the credentials, next to the app password: ``access_jwt``, ``refresh_jwt``, ``did``.
Connecting calls createSession only to check the app password (``verify`` has nowhere to keep a
secret). A publish with no session, or one the PDS refuses (400 ExpiredToken, 401 InvalidToken or
AuthenticationRequired), raises AUTH; the run then calls ``refresh``, which trades the refresh JWT
(refreshSession) or, when there is none or it is refused, the app password (createSession) for a new
pair, stores it, and publishes again.

Exactly once: the record key is a TID of the target's first attempt time (stored with the
target) and its idempotency key, so every attempt for a target writes the same key. A repeated
create collides instead of posting twice, and ``lookup``
(getRecord on that key) tells whether a lost answer's post is live.

Metrics: ``app.bsky.feed.getPosts`` through the PDS with the session (see ``metrics``).

Video (one per post, MP4): uploaded to the video service (``bluesky.video`` host, video.bsky.app)
with a service-auth token the PDS issues for the account's PDS DID, then its job polled within the
run until the video service hands back the blob, embedded as ``app.bsky.embed.video``. The job id
(then the blob) is kept in ``PublishRequest.progress`` and the error's details, so a job that
outlives the run is resumed by the next one, never uploaded twice (``_video``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import mimetypes
import re
import time
import unicodedata
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx

from services import clock
from services.domain.models import Content, Media, Outcome
from services.platforms.base import (
    AccountInfo,
    Feature,
    Metrics,
    MetricsRequest,
    PlatformError,
    Problem,
    Published,
    PublishRequest,
    TokenSet,
)
from services.platforms.figures import count, total
from services.platforms.httpcall import check_deadline, json_or_empty, seconds_until_epoch, send
from services.platforms.mediafile import fetch_media
from services.platforms.medialimits import MediaLimits
from services.platforms.urls import check_public_url

# Pinned from lexicons app/bsky/feed/post.json (text maxGraphemes 300, maxLength 3000 bytes) and
# app/bsky/embed/images.json (4 images, blob maxSize 1,000,000) in bluesky-social/atproto.
MAX_GRAPHEMES = 300
MAX_BYTES = 3000
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 1_000_000
# app/bsky/embed/video.json: one video/mp4 blob of at most 50,000,000 bytes, alt up to 1,000 graphemes.
# The video service also refuses videos over 3 minutes and unverified emails, and has a daily quota
# (its job fails with the reason; docs.bsky.app/docs/tutorials/video).
MAX_VIDEO_BYTES = 50_000_000
VIDEO_TYPES = {"video/mp4"}
MAX_VIDEO_ALT_GRAPHEMES = 1000
#: a video service token lives this long: the job may take that long to store the blob on the PDS
SERVICE_AUTH_SECONDS = 30 * 60
#: seconds between two reads of a video job, and the most a call without a run deadline waits for it
POLL_SECONDS = 1.0
MAX_POLL_SECONDS = 60.0
#: what a video publish keeps for the next attempt: the job's id, then the blob it produced
VIDEO_PROGRESS = ("video_job", "video_blob")
COLLECTION = "app.bsky.feed.post"
_AUTH_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AuthenticationRequired", "AuthMissing"})


#: uploadBlob's image limit; Herald downloads the file
_MEDIA_LIMITS = MediaLimits("Bluesky", image_bytes=MAX_IMAGE_BYTES, video_bytes=MAX_VIDEO_BYTES,
                            video_types=("video/mp4",), video_seconds=(0, 180), downloads=True)


class BlueskyPlatform:
    name = "bluesky"
    features = frozenset({Feature.REFRESH, Feature.LOOKUP, Feature.VERIFY, Feature.METRICS})
    required_credentials: tuple[str, ...] = ("identifier", "app_password")

    def __init__(self, base_url: str = "https://bsky.social", *, video_url: str = "https://video.bsky.app",
                 allow_private: bool = False, poll_seconds: float = POLL_SECONDS):
        self._poll_seconds = poll_seconds
        self._base_url = base_url.rstrip("/")
        self._video_url = video_url.rstrip("/")  #: the video service (app.bsky.video.*)
        self._allow_private = allow_private

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return _MEDIA_LIMITS

    def validate(self, content: Content, metadata: dict[str, Any] | None = None) -> list[Problem]:
        problems = []
        graphemes, size = count_graphemes(content.text), len(content.text.encode())
        if graphemes > MAX_GRAPHEMES:
            problems.append(Problem("content.text", f"bluesky: text is {graphemes} graphemes; the limit is {MAX_GRAPHEMES}"))
        if size > MAX_BYTES:
            problems.append(Problem("content.text", f"bluesky: text is {size} bytes in UTF-8; the limit is {MAX_BYTES}"))
        kinds = {m.type for m in content.media}
        if kinds - {"image", "video"}:
            problems.append(Problem("content.media", "bluesky: media must be up to 4 images or one video"))
        elif "video" in kinds and len(content.media) > 1:
            problems.append(Problem("content.media", f"bluesky: a video is posted alone; this post has "
                                                     f"{len(content.media)} media items"))
        elif len(content.media) > MAX_IMAGES:
            problems.append(Problem("content.media", f"bluesky: {len(content.media)} images; the limit is {MAX_IMAGES}"))
        for i, media in enumerate(content.media):
            if media.type != "video":
                continue
            named = _named_type(media.url)
            if named is not None and named not in VIDEO_TYPES:
                problems.append(Problem(f"content.media[{i}].url", f"bluesky: a video must be MP4, not {named}"))
            if media.alt and (alt := count_graphemes(media.alt)) > MAX_VIDEO_ALT_GRAPHEMES:
                problems.append(Problem(f"content.media[{i}].alt", f"bluesky: video alt text is {alt} graphemes; "
                                                                   f"the limit is {MAX_VIDEO_ALT_GRAPHEMES}"))
        return problems

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        pds = await self._pds(metadata)
        session = await self._create_session(credentials, pds, http)
        return AccountInfo(account_id=session["did"], name=session.get("handle") or session["did"],
                           metadata={"handle": session.get("handle")})

    async def refresh(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> TokenSet:
        """A new session: refreshSession with the refresh JWT, else createSession with the app password."""
        pds = await self._pds(metadata)
        session = None
        if credentials.get("refresh_jwt"):
            try:
                session = await self._xrpc(http, "POST", pds, "com.atproto.server.refreshSession",
                                           token=credentials["refresh_jwt"], idempotent=False)
            except PlatformError as exc:
                if exc.outcome is not Outcome.AUTH:
                    raise
        if session is None:  # no refresh JWT yet, or it expired or was revoked
            session = await self._create_session(credentials, pds, http)
        return TokenSet(
            credentials={**credentials, "access_jwt": session["accessJwt"], "refresh_jwt": session["refreshJwt"],
                         "did": session["did"], "handle": session.get("handle")},
            expires_at=_jwt_expiry(session["accessJwt"]),
        )

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        try:
            return await self._publish(request, http)
        except PlatformError as exc:
            # a video job (or its blob) travels with any failure, so the next attempt never uploads again
            for key in VIDEO_PROGRESS:
                if key in request.progress:
                    exc.details.setdefault(key, request.progress[key])
            raise

    async def _publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        access = request.credentials.get("access_jwt")
        if not access:
            raise PlatformError(Outcome.AUTH, "no_session", "bluesky: no session yet; one is created from the app password")
        pds = await self._pds(request.metadata)
        did = request.credentials.get("did") or request.account_id
        text = request.content.text
        dids = {}
        for handle in mentioned_handles(text):
            if did_of_handle := await self._resolve_handle(handle, pds, http):
                dids[handle] = did_of_handle
        record: dict[str, Any] = {"$type": COLLECTION, "text": text, "createdAt": _timestamp(clock.utcnow())}
        facets = detect_facets(text, dids)
        if facets:
            record["facets"] = facets
        if request.content.media and request.content.media[0].type == "video":
            video = request.content.media[0]
            record["embed"] = {"$type": "app.bsky.embed.video", "video": await self._video(request, pds, access, did, http),
                               **({"alt": video.alt} if video.alt else {})}
        elif request.content.media:
            record["embed"] = {"$type": "app.bsky.embed.images", "images": [
                {"alt": media.alt or "", "image": await self._upload_image(media, i, pds, access, http)}
                for i, media in enumerate(request.content.media)
            ]}
        rkey = record_key(request)
        try:
            # Safe to repeat (idempotent): a second create on the same rkey cannot post twice.
            answer = await self._xrpc(http, "POST", pds, "com.atproto.repo.createRecord", token=access, idempotent=True,
                                      json={"repo": did, "collection": COLLECTION, "rkey": rkey, "record": record})
        except PlatformError as exc:
            # The reference PDS answers a create on an existing key with a 500 (its MST refuses the
            # duplicate); other PDSes may say 409. Either may mean an earlier attempt went out.
            if exc.http_status is None or (exc.http_status < 500 and exc.http_status != 409):
                raise
            found = await self.lookup(request, http)
            if found is None:
                raise
            return found
        return Published(platform_post_id=answer.get("uri") or f"at://{did}/{COLLECTION}/{rkey}",
                         url=post_url(did, rkey), http_status=200)

    async def lookup(self, request: PublishRequest, http: httpx.AsyncClient) -> Published | None:
        """The post for this target's record key, if it exists (getRecord needs no session)."""
        pds = await self._pds(request.metadata)
        did = request.credentials.get("did") or request.account_id
        rkey = record_key(request)
        try:
            answer = await self._xrpc(http, "GET", pds, "com.atproto.repo.getRecord", idempotent=True,
                                      params={"repo": did, "collection": COLLECTION, "rkey": rkey})
        except PlatformError as exc:
            if exc.details.get("error") == "RecordNotFound":
                return None
            raise
        return Published(platform_post_id=answer.get("uri") or f"at://{did}/{COLLECTION}/{rkey}",
                         url=post_url(did, rkey), http_status=200)

    async def metrics(self, request: MetricsRequest, http: httpx.AsyncClient) -> Metrics:
        """``GET /xrpc/app.bsky.feed.getPosts?uris=<at-uri>`` on the account's PDS, with the session.

        The PDS proxies ``app.bsky.*`` reads to the Bluesky AppView ("it is often simpler for
        authenticated clients to make all requests via the PDS", docs.bsky.app/docs/advanced-guides/
        api-directory), so the channel's own host and session serve, refreshed like publish's (no
        session or an expired one: AUTH). The ``postView`` (lexicon app.bsky.feed.defs) carries
        likeCount, replyCount, repostCount, quoteCount and bookmarkCount, each optional; a deleted
        post is simply missing from ``posts``: PERMANENT. Bluesky counts no views or clicks.
        """
        access = request.credentials.get("access_jwt")
        if not access:
            raise PlatformError(Outcome.AUTH, "no_session", "bluesky: no session yet; one is created from the app password")
        pds = await self._pds(request.metadata)
        check_deadline(request.deadline, self.name)
        answer = await self._xrpc(http, "GET", pds, "app.bsky.feed.getPosts", token=access, idempotent=True,
                                  params={"uris": request.platform_post_id})
        views = [p for p in answer.get("posts") or [] if isinstance(p, dict)]  # one uri asked: one view at most
        if not views:
            raise PlatformError(Outcome.PERMANENT, "post_not_found",
                                f"bluesky: {request.platform_post_id} is not found (deleted, or hidden by moderation)")
        post = views[0]
        names = ("likeCount", "replyCount", "repostCount", "quoteCount", "bookmarkCount")
        return Metrics(likes=count(post.get("likeCount")), comments=count(post.get("replyCount")),
                       shares=total(post.get("repostCount"), post.get("quoteCount")), saves=count(post.get("bookmarkCount")),
                       raw={name: post[name] for name in names if name in post})

    async def _pds(self, metadata: dict[str, Any]) -> str:
        # The operator's base_url is trusted; a PDS the user typed must be https and public.
        url = metadata.get("pds_url")
        if not url:
            return self._base_url
        return (await check_public_url(url, allow_private=self._allow_private, field="metadata.pds_url")).rstrip("/")

    async def _create_session(self, credentials: dict[str, Any], pds: str, http: httpx.AsyncClient) -> dict[str, Any]:
        return await self._xrpc(http, "POST", pds, "com.atproto.server.createSession", idempotent=False,
                                json={"identifier": credentials.get("identifier"), "password": credentials.get("app_password")})

    async def _resolve_handle(self, handle: str, pds: str, http: httpx.AsyncClient) -> str | None:
        """The DID behind ``@handle``, or None: an unresolvable mention stays plain text."""
        try:
            answer = await self._xrpc(http, "GET", pds, "com.atproto.identity.resolveHandle", idempotent=True,
                                      params={"handle": handle})
        except PlatformError:
            return None
        did = answer.get("did")
        return did if isinstance(did, str) and did.startswith("did:") else None

    async def _upload_image(self, media: Media, index: int, pds: str, access: str, http: httpx.AsyncClient) -> dict[str, Any]:
        file = await fetch_media(http, media, platform="bluesky", max_bytes=MAX_IMAGE_BYTES,
                                 allow_private=self._allow_private, index=index)
        data, mime_type = file.data, file.content_type
        answer = await self._xrpc(http, "POST", pds, "com.atproto.repo.uploadBlob", token=access, idempotent=True,
                                  content=data, headers={"Content-Type": mime_type})
        return answer["blob"]

    async def _video(self, request: PublishRequest, pds: str, access: str, did: str, http: httpx.AsyncClient) -> dict[str, Any]:
        """The blob of this post's video, processed by the video service; uploaded at most once.

        A blob or job an earlier attempt kept (``request.resume``) is used as it is; else the file is
        fetched and uploaded (``app.bsky.video.uploadVideo``, ``did`` and ``name`` in the query, the
        bytes as the body, a service-auth token as Bearer) and its job id saved in ``progress`` at
        once. The job is then polled until it has a blob (TRANSIENT ``video_processing`` when the run's
        deadline comes first; PERMANENT ``video_failed`` with the service's reason when it failed).
        """
        resume = request.resume or {}
        if isinstance(resume.get("video_blob"), dict):
            request.progress["video_blob"] = resume["video_blob"]
            return dict(resume["video_blob"])
        job = str(resume.get("video_job") or "")
        if not job:
            status = await self._upload_video(request, pds, access, did, http)
            job = str(status.get("jobId") or "")
            if not job:
                raise PlatformError(Outcome.TRANSIENT, "bad_upload_answer", "bluesky: uploadVideo answered without a jobId")
            if isinstance(status.get("blob"), dict):  # already processed (a file the service has seen)
                request.progress["video_blob"] = status["blob"]
                return dict(status["blob"])
        request.progress["video_job"] = job
        blob = await self._await_video_job(job, request.deadline, http)
        request.progress["video_blob"] = blob
        return blob

    async def _upload_video(self, request: PublishRequest, pds: str, access: str, did: str,
                            http: httpx.AsyncClient) -> dict[str, Any]:
        media = request.content.media[0]
        file = await fetch_media(http, media, platform="bluesky", max_bytes=MAX_VIDEO_BYTES,
                                 allow_private=self._allow_private, index=0)
        if file.content_type not in VIDEO_TYPES:
            raise PlatformError(Outcome.PERMANENT, "unsupported_media_type",
                                f"bluesky: a video must be MP4 (video/mp4), not {file.content_type}",
                                details={"field": "content.media[0].url"})
        # The token's audience is the account's PDS, which the video service stores the blob on for it.
        session = await self._xrpc(http, "GET", pds, "com.atproto.server.getSession", token=access, idempotent=True)
        audience = f"did:web:{_pds_host(session, pds)}"
        expires = int(clock.utcnow().timestamp()) + SERVICE_AUTH_SECONDS
        auth = await self._xrpc(http, "GET", pds, "com.atproto.server.getServiceAuth", token=access, idempotent=True,
                                params={"aud": audience, "lxm": "com.atproto.repo.uploadBlob", "exp": expires})
        name = urlsplit(media.url).path.rsplit("/", 1)[-1] or "video.mp4"
        # A repeated upload makes only a second job (the service knows the file), never a post: safe to repeat.
        answer = await self._xrpc(http, "POST", self._video_url, "app.bsky.video.uploadVideo", token=str(auth["token"]),
                                  idempotent=True, params={"did": did, "name": name}, content=file.data,
                                  headers={"Content-Type": file.content_type})
        return _job_status(answer)

    async def _await_video_job(self, job: str, deadline: float | None, http: httpx.AsyncClient) -> dict[str, Any]:
        stop = deadline if deadline is not None else time.monotonic() + MAX_POLL_SECONDS
        while time.monotonic() < stop:
            status = _job_status(await self._xrpc(http, "GET", self._video_url, "app.bsky.video.getJobStatus",
                                                  idempotent=True, params={"jobId": job}))
            if isinstance(status.get("blob"), dict):  # done, or "already_exists" with the earlier blob
                return dict(status["blob"])
            if status.get("state") == "JOB_STATE_FAILED":
                reason = status.get("error") or status.get("message") or status.get("failureCode") or "no reason given"
                raise PlatformError(Outcome.PERMANENT, "video_failed", f"bluesky could not process the video: {reason}",
                                    details={"failure_code": status.get("failureCode")} if status.get("failureCode") else {})
            if time.monotonic() + self._poll_seconds >= stop:
                break
            await asyncio.sleep(self._poll_seconds)
        raise PlatformError(Outcome.TRANSIENT, "video_processing",
                            "bluesky is still processing the video; a later run posts it")

    async def _xrpc(self, http: httpx.AsyncClient, method: str, pds: str, nsid: str, *, idempotent: bool,
                    token: str | None = None, headers: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = await send(http, method, f"{pds}/xrpc/{nsid}", idempotent=idempotent, headers=headers, **kwargs)
        if response.is_success:
            return json_or_empty(response)
        raise _error(response, nsid)


def _error(response: httpx.Response, nsid: str) -> PlatformError:
    """Classify an XRPC error body ``{"error", "message"}`` (Error classes table, Bluesky row)."""
    status = response.status_code
    body = json_or_empty(response)
    name = body.get("error") if isinstance(body.get("error"), str) else None
    retry_after = None
    if status == 429 or name == "RateLimitExceeded":
        # RateLimit-Reset is epoch seconds; the limits are per account (writes, sessions) and per IP,
        # none the app's (reference §8; docs.bsky.app/docs/advanced-guides/rate-limits): account scope.
        outcome = Outcome.RATE_LIMITED
        retry_after = seconds_until_epoch(response.headers.get("ratelimit-reset"))
    elif status == 401 or name in _AUTH_ERRORS:
        outcome = Outcome.AUTH
    elif status >= 500:
        outcome = Outcome.TRANSIENT
    else:  # InvalidRequest (too long, blob too big), AccountTakedown, RecordNotFound, ...
        outcome = Outcome.PERMANENT
    detail = body.get("message") or name or response.reason_phrase
    code = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() if name else f"http_{status}"
    label = f"{status} {name}" if name else str(status)
    return PlatformError(outcome, code, f"bluesky {nsid} answered {label}: {detail}", http_status=status,
                         retry_after_seconds=retry_after, details={"error": name} if name else {})


def _job_status(answer: dict[str, Any]) -> dict[str, Any]:
    """An ``app.bsky.video.defs#jobStatus`` from an answer: under ``jobStatus`` as the lexicons say,
    or the object itself, as video.bsky.app's uploadVideo answers."""
    inner = answer.get("jobStatus")
    return inner if isinstance(inner, dict) else answer


def _pds_host(session: dict[str, Any], pds: str) -> str:
    """The host of the account's PDS: the ``#atproto_pds`` endpoint of its DID document (the
    ``bsky.social`` entryway is not it), else the host Herald talks to."""
    doc = session.get("didDoc")
    for service in (doc.get("service") if isinstance(doc, dict) else None) or []:
        if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds"):
            host = urlsplit(str(service.get("serviceEndpoint", ""))).netloc
            if host:
                return host
    return urlsplit(pds).netloc


def _named_type(url: str) -> str | None:
    """The media type the URL's file name says, or None when it says none Herald can judge."""
    guessed = mimetypes.guess_type(urlsplit(url).path)[0]
    return None if guessed is None or guessed.startswith("application/x-") else guessed


_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def record_key(request: PublishRequest) -> str:
    """The record key for a target: a TID (atproto.com/specs/tid), the same on every attempt.

    ``app.bsky.feed.post`` declares ``"key": "tid"``, and a TID "is derived from the creation time
    of the record": 13 base32-sortable characters of a 64-bit integer, the top bit 0, then 53 bits
    of microseconds since the UNIX epoch and a 10-bit clock id. The time is the target's first
    attempt (stored with it, so a retry writes the same key), and the sub-millisecond digits and
    the clock id come from a hash of the idempotency key, so two targets first tried in the same
    run get different keys. A target first tried before that time was stored keeps the key its
    first attempt used: hashed from the idempotency key alone.
    """
    digest = int.from_bytes(hashlib.sha256(request.idempotency_key.encode()).digest()[:8], "big")
    if request.first_attempt_at is None:
        return _tid(digest >> 4)
    millis = int(request.first_attempt_at.timestamp() * 1000)
    micros = millis * 1000 + (digest >> 10) % 1000
    return _tid((micros << 10) | (digest & 0x3FF))


def tid_time(tid: str) -> datetime:
    """When a TID says its record was created (UTC, to the microsecond)."""
    value = 0
    for ch in tid:
        value = value * 32 + _TID_ALPHABET.index(ch)
    return datetime.fromtimestamp((value >> 10) / 1_000_000, timezone.utc)


def _tid(value: int) -> str:
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def post_url(did: str, rkey: str) -> str:
    return f"https://bsky.app/profile/{did}/post/{rkey}"


def _timestamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jwt_expiry(token: str) -> datetime | None:
    """The access JWT's ``exp``, so the run refreshes ahead of time; None when it cannot be read."""
    try:
        payload = token.split(".")[1]
        exp = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]
        return datetime.fromtimestamp(int(exp), tz=timezone.utc)
    except (IndexError, KeyError, TypeError, ValueError):
        return None


# Links need an explicit scheme: bare domains ("example.com") are too easy to get wrong. A link or
# a mention starts the text or follows whitespace or "(", as in the Bluesky app's own detection.
_LINK = re.compile(r"(?:^|(?<=[\s(]))https?://[^\s]+")
_MENTION = re.compile(r"(?:^|(?<=[\s(]))@((?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?\.)+[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9])")
_TRAILING = ".,;:!?\"'"


def mentioned_handles(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(1).lower() for m in _MENTION.finditer(text)))


def detect_facets(text: str, dids: dict[str, str]) -> list[dict[str, Any]]:
    """Link and mention facets with UTF-8 byte offsets (end exclusive); ``dids`` maps handle -> DID."""
    spans = []
    for match in _LINK.finditer(text):
        uri = match.group(0)
        while uri and (uri[-1] in _TRAILING or (uri[-1] == ")" and uri.count("(") < uri.count(")"))):
            uri = uri[:-1]
        spans.append((match.start(), match.start() + len(uri), {"$type": "app.bsky.richtext.facet#link", "uri": uri}))
    for match in _MENTION.finditer(text):
        did = dids.get(match.group(1).lower())
        if did:
            spans.append((match.start(), match.end(), {"$type": "app.bsky.richtext.facet#mention", "did": did}))
    return [{"index": {"byteStart": len(text[:start].encode()), "byteEnd": len(text[:end].encode())}, "features": [feature]}
            for start, end, feature in sorted(spans, key=lambda s: s[0])]


def count_graphemes(text: str) -> int:
    """Extended grapheme clusters (UAX #29), approximated with the stdlib's Unicode data.

    Covers CR LF, controls, combining and spacing marks, ZWJ emoji sequences, variation selectors,
    skin tones, tag sequences and flag pairs. Not covered: Hangul jamo sequences, prepended marks and
    Indic conjuncts (GB9c); each of those counts more clusters than the rule, never fewer, so a text
    this accepts the platform accepts too.
    """
    count, prev, regional_run = 0, "", 0
    for ch in text:
        if not prev or not _joins(prev, ch, regional_run):
            count += 1
        regional_run = regional_run + 1 if _is_regional(ch) else 0
        prev = ch
    return count


def _joins(prev: str, ch: str, regional_run: int) -> bool:
    if prev == "\r" and ch == "\n":
        return True
    if _is_control(prev) or _is_control(ch):
        return False
    if _is_extend(ch):
        return True
    if prev == "\u200d" and _is_pictographic(ch):
        return True
    return _is_regional(ch) and regional_run % 2 == 1  # flags: regional indicators pair up


def _is_control(ch: str) -> bool:
    return ch in "\r\n" or (unicodedata.category(ch) in ("Cc", "Zl", "Zp"))


def _is_extend(ch: str) -> bool:
    cp = ord(ch)
    return (unicodedata.category(ch) in ("Mn", "Me", "Mc") or cp == 0x200D
            or 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF  # variation selectors
            or 0x1F3FB <= cp <= 0x1F3FF  # skin-tone modifiers
            or 0xE0020 <= cp <= 0xE007F)  # tags (subdivision flags such as Scotland)


def _is_regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _is_pictographic(ch: str) -> bool:
    cp = ord(ch)
    return 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or unicodedata.category(ch) == "So"
