"""What the Meta adapters share: the pinned Graph version, Graph error bodies classified, token
exchanges, and the container flow (create, poll, publish, reconcile) of Instagram and Threads.

Graph errors are ``{"error": {"message", "code", "error_subcode", "error_user_msg", "is_transient"}}``;
``graph_error`` maps them per the reference's "Error classes" table. Tokens go in an
``Authorization: Bearer`` header (never in URLs, which end up in logs) except on the token
endpoints, whose API takes them as query parameters.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from services import clock
from services.domain.models import Outcome
from services.platforms.base import ACCOUNT, APP, PlatformError, Published, PublishRequest, TokenSet
from services.platforms.httpcall import json_or_empty, send, status_outcome

#: Graph API version, pinned. v25.0 (2026-02-18) is the version our reference's Pages, Video and
#: Instagram pages were read against and is served until 2028-07; v26.0 (2026-07) is newer than
#: most of those pages. Bump it here, then re-run tests/platforms.
GRAPH_VERSION = "v25.0"
#: Meta suggests one status query a minute for at most 5 minutes, but a publish run lasts under a
#: minute; polling every few seconds finishes most containers within one run, and one still
#: processing at the deadline is resumed by a later run, never recreated.
POLL_SECONDS = 5.0
MAX_POLL_SECONDS = 300.0
#: publishing caps are rolling 24-hour windows and Meta does not say when a slot frees up
QUOTA_RETRY_SECONDS = 3600.0

_TRANSIENT_CODES = {1, 2, 131000}
#: 4 app, 17 user, 32 page, 613 custom, 368 temporary block (reference §1); 80001-80014 Business Use
#: Case throttles, e.g. 80001 Pages, 80002 Instagram, 80008 WhatsApp Business Management
#: (developers.facebook.com/docs/graph-api/overview/rate-limiting) and 80007 WhatsApp Business
#: Account (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes); WhatsApp 130429
#: throughput, 131056 pair rate, 131048 spam rate (reference §6).
_RATE_LIMIT_CODES = {4, 17, 32, 613, 368, 130429, 131056, 131048} | set(range(80001, 80015))
#: Graph code 4, "Application request limit reached", is the only throttle Meta documents as the
#: whole app's: Platform Rate Limits count an app's calls across all its users ("This is not a per
#: User limit"), while 17 (user), 32 (page: "calls made by an app using access tokens of other Pages
#: will remain unaffected"), 613 and the 800xx Business Use Case limits count one user, Page or
#: business object (developers.facebook.com/docs/graph-api/overview/rate-limiting;
#: developers.facebook.com/blog/post/2016/06/16/page-level-rate-limits/). WhatsApp 130429 is one
#: business phone number's throughput (80 msg/s per number, reference §6), 131056 one number and
#: recipient pair: account-level too.
_APP_LIMIT_CODES = {4}
_AUTH_CODES = {190, 102, 10} | set(range(200, 300))
#: subcodes that say more than their code does
_SUBCODE_OUTCOMES = {
    2207042: Outcome.RATE_LIMITED,  # Instagram: daily publishing cap reached
    1390008: Outcome.RATE_LIMITED,  # Facebook (code 368): posting too fast
    2207003: Outcome.TRANSIENT,  # Instagram: fetching the media timed out
    2207052: Outcome.TRANSIENT,
    2207027: Outcome.TRANSIENT,  # Instagram: media not ready yet
    1404078: Outcome.AUTH,  # Facebook: Page Publishing Authorization required
    1346003: Outcome.PERMANENT,  # Facebook (code 368): the content breaks a policy, not a throttle
    1404102: Outcome.PERMANENT,
}
_DAILY_CAP_SUBCODES = {2207042}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def buc_wait_seconds(headers: httpx.Headers) -> float | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in ``X-Business-Use-Case-Usage``, in seconds.

    Only the Business Use Case header documents a wait (reference §1); ``X-App-Usage`` carries the
    percentages used (call_count, total_cputime, total_time), no time, and Meta sends no
    ``Retry-After``: a throttle without this header has no known wait.
    """
    try:
        usage = json.loads(headers.get("x-business-use-case-usage") or "{}")
    except ValueError:
        return None
    minutes = [entry.get("estimated_time_to_regain_access")
               for entries in (usage.values() if isinstance(usage, dict) else ())
               for entry in (entries if isinstance(entries, list) else ()) if isinstance(entry, dict)]
    longest = max((m for m in minutes if isinstance(m, (int, float))), default=0)
    return float(longest) * 60 if longest > 0 else None


def graph_error(response: httpx.Response, platform: str, *, shared_app: bool = True) -> PlatformError:
    """Classify a failed Graph answer; the message keeps Meta's words (``error_user_msg`` first).

    An app-level throttle (code 4) has ``limit_scope`` APP when every channel of ``platform`` calls
    through Herald's one Meta app (``shared_app``); where each channel brings its own token from an
    app Herald does not know (WhatsApp system users), it pauses only the channel that met it.
    """
    status = response.status_code
    error = json_or_empty(response).get("error")
    if not isinstance(error, dict):  # a proxy or load balancer answered, not the Graph API
        return PlatformError(status_outcome(status), f"http_{status}",
                             f"{platform} answered {status}: {response.text[:300] or response.reason_phrase}", status)
    code, subcode = error.get("code"), error.get("error_subcode")
    if subcode in _SUBCODE_OUTCOMES:
        outcome = _SUBCODE_OUTCOMES[subcode]
    elif code in _RATE_LIMIT_CODES:
        outcome = Outcome.RATE_LIMITED
    elif code in _AUTH_CODES:
        outcome = Outcome.AUTH
    elif code in _TRANSIENT_CODES or error.get("is_transient") or status >= 500:
        outcome = Outcome.TRANSIENT
    else:  # 100, 506, content subcodes, WhatsApp 131047/132xxx: only a change to the post helps
        outcome = Outcome.PERMANENT
    wait, scope = None, ACCOUNT
    if outcome is Outcome.RATE_LIMITED:
        daily_cap = QUOTA_RETRY_SECONDS if subcode in _DAILY_CAP_SUBCODES else None
        wait = buc_wait_seconds(response.headers) or daily_cap
        scope = APP if code in _APP_LIMIT_CODES and shared_app else ACCOUNT
    said = error.get("error_user_msg") or error.get("message") or response.reason_phrase
    numbers = f"code {code}" + (f", subcode {subcode}" if subcode else "")
    return PlatformError(outcome, f"graph_{code}" + (f"_{subcode}" if subcode else ""),
                         f"{platform}: {said} ({numbers})", status, wait,
                         details={"graph_code": code, "graph_subcode": subcode}, limit_scope=scope)


async def call_graph(http: httpx.AsyncClient, method: str, url: str, *, platform: str, idempotent: bool,
                     shared_app: bool = True, **kwargs: Any) -> tuple[dict[str, Any], int]:
    """Send one Graph request; its JSON answer and HTTP status, or PlatformError (see ``graph_error``)."""
    response = await send(http, method, url, idempotent=idempotent, **kwargs)
    if not response.is_success:
        raise graph_error(response, platform, shared_app=shared_app)
    return json_or_empty(response), response.status_code


#: Graph codes refusing a call for want of a permission (10, 200-299; part of ``_AUTH_CODES``)
_PERMISSION_CODES = {10} | set(range(200, 300))


def insight_values(body: dict[str, Any]) -> dict[str, Any]:
    """{metric name: value} from an insights answer ``{"data": [{"name", "period", "values": [{"value"}]}]}``.

    A lifetime metric has one point (``values[0].value``; the last is taken if there are more);
    metrics read with ``metric_type=total_value`` carry ``total_value.value`` instead. A value may
    be a number or a breakdown object (e.g. reactions by type). Metrics Meta did not return are
    absent: Meta answers an empty set, not 0, for data it does not have.
    """
    values: dict[str, Any] = {}
    for entry in body.get("data") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        total, points = entry.get("total_value"), entry.get("values")
        if isinstance(total, dict) and "value" in total:
            values[entry["name"]] = total["value"]
        elif isinstance(points, list) and points and isinstance(points[-1], dict) and "value" in points[-1]:
            values[entry["name"]] = points[-1]["value"]
    return values


async def read_insights(http: httpx.AsyncClient, url: str, *, platform: str, token: str, metrics: tuple[str, ...],
                        permission: str) -> dict[str, Any]:
    """GET an insights edge (``/{id}/insights``, ``/{video-id}/video_insights``) for ``metrics``: {name: value}.

    A read: no publishing quota is spent. A refusal for want of a permission (codes 10, 200-299)
    is PERMANENT ``insights_not_permitted``, not AUTH: the token still publishes, and AUTH would
    mark the channel for reconnection; the message names ``permission``, which a reconnect grants
    to channels connected before Herald asked for it. Code 190 stays AUTH; the rest as ``graph_error``.
    """
    try:
        body, _ = await call_graph(http, "GET", url, platform=platform, idempotent=True,
                                   params={"metric": ",".join(metrics)}, headers=bearer(token))
    except PlatformError as exc:
        if exc.details.get("graph_code") not in _PERMISSION_CODES:
            raise
        raise PlatformError(Outcome.PERMANENT, "insights_not_permitted",
                            f"{exc.message}; reading insights needs {permission}: if this channel was connected "
                            "without it, reconnect it", exc.http_status, details=exc.details) from exc
    return insight_values(body)


async def fetch_token(http: httpx.AsyncClient, method: str, url: str, *, platform: str, **kwargs: Any) -> dict[str, Any]:
    """Call a token endpoint: its answer, or PlatformError AUTH when refused (TRANSIENT/RATE_LIMITED kept)."""
    try:
        body, _ = await call_graph(http, method, url, platform=platform, idempotent=True, **kwargs)
    except PlatformError as exc:
        if exc.outcome in (Outcome.TRANSIENT, Outcome.RATE_LIMITED):
            raise
        raise PlatformError(Outcome.AUTH, "token_refused", f"{platform} refused the token request: {exc.message}",
                            exc.http_status) from exc
    if not body.get("access_token"):
        raise PlatformError(Outcome.AUTH, "token_refused", f"{platform} sent no access_token")
    return body


async def long_lived_user_token(http: httpx.AsyncClient, graph: str, *, platform: str, client_id: str,
                                client_secret: str, token: str) -> dict[str, Any]:
    """Facebook Login: a user token traded for one of ~60 days (``fb_exchange_token``)."""
    return await fetch_token(http, "GET", f"{graph}/oauth/access_token", platform=platform, params={
        "grant_type": "fb_exchange_token", "client_id": client_id, "client_secret": client_secret,
        "fb_exchange_token": token})


def token_set(previous: dict[str, Any], body: dict[str, Any]) -> TokenSet:
    expires_in = body.get("expires_in")
    expires_at = (clock.utcnow() + timedelta(seconds=expires_in)
                  if isinstance(expires_in, int) and expires_in > 0 else None)
    return TokenSet(credentials={**previous, "access_token": body["access_token"]}, expires_at=expires_at)


def login_dialog_url(dialog: str, client_id: str, *, state: str, redirect_uri: str, scopes: str) -> str:
    """Facebook Login's authorize URL (Facebook Pages and Instagram share it)."""
    query = {"client_id": client_id, "redirect_uri": redirect_uri, "state": state, "scope": scopes,
             "response_type": "code"}
    return f"{dialog}?{urlencode(query)}"


async def user_token_from_code(http: httpx.AsyncClient, graph: str, *, platform: str, client_id: str,
                               client_secret: str, redirect_uri: str, code: str) -> dict[str, Any]:
    """Facebook Login's callback code, traded for a user token, then for a long-lived one (~60 days)."""
    short = await fetch_token(http, "GET", f"{graph}/oauth/access_token", platform=platform, params={
        "client_id": client_id, "client_secret": client_secret, "redirect_uri": redirect_uri, "code": code})
    return await long_lived_user_token(http, graph, platform=platform, client_id=client_id,
                                       client_secret=client_secret, token=short["access_token"])


def require_client(platform: str, client_id: str | None, client_secret: str | None) -> tuple[str, str]:
    if not client_id or not client_secret:
        raise PlatformError(Outcome.PERMANENT, "oauth_not_configured", f"{platform}: no OAuth app id and secret are configured")
    return client_id, client_secret


@dataclass(frozen=True)
class Containers:
    """One product's container API (Instagram or Threads): create, poll, quota, publish, reconcile.

    A container is Meta's idempotency token: it goes live at most once. So its id is what a
    later run needs to resume (``{"container_id": ...}`` in ``PlatformError.details``), and its
    status tells whether a publish whose answer was lost went through.
    """

    platform: str
    graph: str  #: versioned base, e.g. https://graph.facebook.com/v25.0
    media_edge: str  #: POST creates containers, GET lists published posts: "media" / "threads"
    publish_edge: str  #: "media_publish" / "threads_publish"
    quota_edge: str  #: "content_publishing_limit" / "threads_publishing_limit"
    status_fields: str  #: "status_code,status" / "status,error_message"
    state_field: str  #: the field holding IN_PROGRESS/FINISHED/PUBLISHED/ERROR/EXPIRED
    text_field: str  #: "caption" / "text"
    poll_seconds: float = POLL_SECONDS

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient,
                      create: Callable[[], Awaitable[str]]) -> Published:
        """Publish through a container: the one in ``request.resume["container_id"]`` when still
        usable, else a new one.

        A recorded container already PUBLISHED is returned as Published (never published twice);
        one that EXPIRED unpublished can never go live, so a new one replaces it. Once a container
        exists its id is in ``request.progress`` (kept even if the run cuts the call off) and in
        the ``details`` of any PlatformError raised, so the next attempt polls it, never a second.
        """
        token, user = request.credentials["access_token"], request.account_id
        recorded = (request.resume or {}).get("container_id")
        container: str | None = str(recorded) if recorded else None
        try:
            state = None
            if container:
                request.progress["container_id"] = container
                state = await self.settle(http, token, container, request.deadline)
                if state == "PUBLISHED":
                    return await self.find(http, token, user, container, request.content.text)
            await self.check_quota(http, token, user)
            if state != "FINISHED" or not container:
                container = None  # none recorded, or it expired unpublished: a new one cannot double-post
                request.progress.pop("container_id", None)
                container = await create()
                request.progress["container_id"] = container
                await self.settle(http, token, container, request.deadline)
            return await self.publish_container(http, request, container)
        except PlatformError as exc:
            if container:
                exc.details.setdefault("container_id", container)
            raise

    async def create(self, http: httpx.AsyncClient, token: str, user: str, form: dict[str, str]) -> str:
        """POST a container; repeating it only makes an unused container, so a lost answer is TRANSIENT."""
        body, _ = await call_graph(http, "POST", f"{self.graph}/{user}/{self.media_edge}", platform=self.platform,
                                   idempotent=True, data=form, headers=bearer(token))
        return str(body["id"])

    async def state(self, http: httpx.AsyncClient, token: str, container: str) -> dict[str, Any]:
        body, _ = await call_graph(http, "GET", f"{self.graph}/{container}", platform=self.platform, idempotent=True,
                                   params={"fields": self.status_fields}, headers=bearer(token))
        return body

    async def settle(self, http: httpx.AsyncClient, token: str, container: str, deadline: float | None) -> str:
        """Poll until the container leaves IN_PROGRESS; its state: FINISHED, PUBLISHED or EXPIRED.

        Never starts a poll after ``deadline`` (time.monotonic(); None: at most MAX_POLL_SECONDS).
        Raises TRANSIENT ``container_not_ready`` when it is still processing then, PERMANENT on ERROR.
        """
        stop = deadline if deadline is not None else time.monotonic() + MAX_POLL_SECONDS
        while time.monotonic() < stop:
            body = await self.state(http, token, container)
            state = body.get(self.state_field)
            if state == "ERROR":
                reason = body.get("error_message") or body.get("status") or "no reason given"
                raise PlatformError(Outcome.PERMANENT, "container_error",
                                    f"{self.platform} could not process the media: {reason}")
            if state in ("FINISHED", "PUBLISHED", "EXPIRED"):
                return str(state)
            if time.monotonic() + self.poll_seconds >= stop:
                break  # sleeping would only end past the deadline
            await asyncio.sleep(self.poll_seconds)
        # No container id here: ``publish`` adds the resumable one; a carousel item's must not be.
        raise PlatformError(Outcome.TRANSIENT, "container_not_ready",
                            f"{self.platform} is still processing the media; a later run publishes it")

    async def check_quota(self, http: httpx.AsyncClient, token: str, user: str) -> None:
        """RATE_LIMITED when the account has used its rolling 24-hour publishing quota."""
        body, _ = await call_graph(http, "GET", f"{self.graph}/{user}/{self.quota_edge}", platform=self.platform,
                                   idempotent=True, params={"fields": "quota_usage,config"}, headers=bearer(token))
        usage = (body.get("data") or [{}])[0]
        total = (usage.get("config") or {}).get("quota_total")
        if isinstance(total, int) and isinstance(usage.get("quota_usage"), int) and usage["quota_usage"] >= total:
            raise PlatformError(Outcome.RATE_LIMITED, "publishing_limit_reached",
                                f"{self.platform}: the account has published {usage['quota_usage']} of its {total} "
                                "posts allowed in 24 hours", retry_after_seconds=QUOTA_RETRY_SECONDS)

    async def publish_container(self, http: httpx.AsyncClient, request: PublishRequest, container: str) -> Published:
        """Publish a FINISHED container; a lost answer is settled by the container's status, else UNKNOWN.

        FINISHED right after a lost answer may be a publish still landing, so it stays UNKNOWN here;
        ``lookup`` in a later run treats FINISHED as not published.
        """
        token, user = request.credentials["access_token"], request.account_id
        try:
            body, status = await call_graph(http, "POST", f"{self.graph}/{user}/{self.publish_edge}",
                                            platform=self.platform, idempotent=False,
                                            data={"creation_id": container}, headers=bearer(token))
        except PlatformError as lost:
            if lost.outcome is not Outcome.UNKNOWN:
                raise
            found = await self.reconcile(http, request, container)
            if found is None:
                raise
            return found
        post_id = str(body["id"])
        return Published(post_id, await self.permalink(http, token, post_id), status)

    async def reconcile(self, http: httpx.AsyncClient, request: PublishRequest, container: str) -> Published | None:
        """After a lost publish answer: Published if the container says PUBLISHED, else None (unknown)."""
        if request.deadline is not None and time.monotonic() >= request.deadline:
            return None
        try:
            return await self.lookup(http, request, container)
        except PlatformError:
            return None

    async def lookup_recorded(self, http: httpx.AsyncClient, request: PublishRequest) -> Published | None:
        """``lookup`` of the container recorded in ``request.resume``; UNKNOWN when none was recorded."""
        container = (request.resume or {}).get("container_id")
        if not container:
            raise PlatformError(Outcome.UNKNOWN, "no_container_recorded", f"{self.platform}: no container id was "
                                "recorded for this post, so whether it went live cannot be told")
        return await self.lookup(http, request, container)

    async def lookup(self, http: httpx.AsyncClient, request: PublishRequest, container: str) -> Published | None:
        """Published if ``container`` went live; None if it did not (yet): it can still be published."""
        token = request.credentials["access_token"]
        if (await self.state(http, token, container)).get(self.state_field) != "PUBLISHED":
            return None
        return await self.find(http, token, request.account_id, container, request.content.text)

    async def find(self, http: httpx.AsyncClient, token: str, user: str, container: str, text: str) -> Published:
        """The live post of a PUBLISHED container: containers do not name their post, so the newest
        posts are matched by text. Without a match (e.g. no text), the container id stands in."""
        try:
            body, _ = await call_graph(http, "GET", f"{self.graph}/{user}/{self.media_edge}", platform=self.platform,
                                       idempotent=True, headers=bearer(token),
                                       params={"fields": f"id,permalink,{self.text_field}", "limit": "10"})
        except PlatformError:
            body = {}
        for post in body.get("data") or []:
            if text and post.get(self.text_field) == text:
                return Published(str(post["id"]), post.get("permalink"))
        return Published(container, None)

    async def permalink(self, http: httpx.AsyncClient, token: str, post_id: str) -> str | None:
        """The post's public URL; None if it cannot be read (the post is live either way)."""
        try:
            body, _ = await call_graph(http, "GET", f"{self.graph}/{post_id}", platform=self.platform, idempotent=True,
                                       params={"fields": "permalink"}, headers=bearer(token))
        except PlatformError:
            return None
        return body.get("permalink") if isinstance(body.get("permalink"), str) else None


class ContainerPlatform:
    """``publish`` and ``lookup`` of a platform that publishes through ``Containers`` (Instagram,
    Threads); the platform supplies ``_containers`` and ``_create`` (make this post's container)."""

    _containers: Containers

    async def _create(self, http: httpx.AsyncClient, request: PublishRequest) -> str:
        raise NotImplementedError

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        """Publish; ``request.resume`` holds what this target's previous attempt left, if anything."""
        async def create() -> str:
            return await self._create(http, request)
        return await self._containers.publish(request, http, create)

    async def lookup(self, request: PublishRequest, http: httpx.AsyncClient) -> Published | None:
        """Published if the recorded container went live, None if not; UNKNOWN when none was recorded."""
        return await self._containers.lookup_recorded(http, request)
