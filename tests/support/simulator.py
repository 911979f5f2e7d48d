"""A loopback platform simulator: a real HTTP server on 127.0.0.1 for tests and benchmarks.

It answers any path. By default every request is a success after ``latency`` seconds with a JSON
``{"id", "url"}``; ``script(path, *responses)`` queues answers for a path: a status and body, a
``Retry-After``, a ``hang`` (no answer until the client gives up), or a ``drop`` (the connection is
cut after the request arrived, so the client cannot know whether it was applied). ``answer(path,
reply)`` sets a standing answer, given whenever nothing is queued (a platform's GET endpoints).
Both take ``method=`` to apply to one HTTP method only (one path is often both a GET and a POST).
``authorize(path)`` makes ``path`` a platform's OAuth authorize page that the user has just approved:
a GET answers 302 to its ``redirect_uri`` with a fresh ``code`` and the ``state`` it was given.
It records every request (with its arrival time) and counts them per ``Idempotency-Key``, which is
how tests prove nothing was sent twice.

Some platforms keep state between calls; ``handle(path, handler)`` routes a path to an object
that answers from it (after any queued reply): ``ResumableUploads`` is Google's resumable upload
protocol (YouTube's videos.insert), ``MediaFile`` a media host that honours ``Range``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float | None = None
    hang: bool = False  #: never answer (until the server stops)
    drop: bool = False  #: apply the request, then cut the connection before answering


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: str = ""  #: the raw query string, without "?"
    at: float = 0.0  #: when it arrived, on ``time.monotonic()``'s clock (benchmarks time deliveries)

    def form(self) -> dict[str, str]:
        """The body as an ``application/x-www-form-urlencoded`` form (last value of each name)."""
        return dict(parse_qsl(self.body.decode()))

    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query))

    def json(self) -> Any:
        return json.loads(self.body)


class Simulator:
    def __init__(self, *, latency: float = 0.0):
        self.latency = latency
        self.requests: list[Received] = []
        self.by_key: Counter[str] = Counter()
        #: queued and standing answers, keyed by (method or None for any, path)
        self._scripts: dict[tuple[str | None, str], deque[Reply]] = defaultdict(deque)
        self._standing: dict[tuple[str | None, str], Reply] = {}
        self._handlers: dict[tuple[str | None, str], Callable[[Received], Reply]] = {}
        self._authorize_paths: set[str] = set()
        #: every code an authorize page handed out, in order
        self.codes: list[str] = []
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- control ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, path: str, *replies: Reply, method: str | None = None) -> None:
        """Queue ``replies`` for the next requests to ``path`` (of ``method`` only, if given), in order."""
        with self._lock:
            self._scripts[(method.upper() if method else None, path)].extend(replies)

    def answer(self, path: str, reply: Reply, *, method: str | None = None) -> None:
        """Answer every request to ``path`` (of ``method`` only, if given) with ``reply`` once its queue is empty."""
        with self._lock:
            self._standing[(method.upper() if method else None, path)] = reply

    def handle(self, path: str, handler: Callable[[Received], Reply], *, method: str | None = None) -> None:
        """Answer requests to ``path`` (of ``method`` only, if given) with ``handler(request)`` when
        nothing is queued for them: for endpoints whose answer depends on earlier calls."""
        with self._lock:
            self._handlers[(method.upper() if method else None, path)] = handler

    def authorize(self, path: str) -> None:
        """Make GET ``path`` an authorize page the user approves at once (see the module docstring)."""
        with self._lock:
            self._authorize_paths.add(path)

    def received(self, path: str | None = None, *, method: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests
                    if (path is None or r.path == path) and (method is None or r.method == method.upper())]

    def _next_reply(self, received: Received) -> Reply:
        method, path = received.method, received.path
        for key in ((method, path), (None, path)):
            queue = self._scripts.get(key)
            if queue:
                return queue.popleft()
        handler = self._handlers.get((method, path)) or self._handlers.get((None, path))
        if handler is not None:
            return handler(received)
        return self._standing.get((method, path)) or self._standing.get((None, path)) or Reply()

    def start(self) -> Simulator:
        config = uvicorn.Config(self._app, host="127.0.0.1", port=0, log_level="critical", lifespan="off", interface="asgi3",
                                timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="platform-simulator", daemon=True)
        self._thread.start()
        for _ in range(500):
            if self._server.started and self._server.servers:
                self.port = self._server.servers[0].sockets[0].getsockname()[1]
                return self
            threading.Event().wait(0.01)
        raise RuntimeError("the platform simulator did not start")

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _approve(self, query: dict[str, str]) -> Reply:
        """The authorize page's answer: back to ``redirect_uri`` with a code and the state (RFC 6749 §4.1.2)."""
        if "redirect_uri" not in query or "state" not in query:
            return Reply(400, {"error": "invalid_request", "error_description": "redirect_uri and state are required"})
        code = f"code-{uuid.uuid4().hex[:12]}"
        self.codes.append(code)
        joiner = "&" if "?" in query["redirect_uri"] else "?"
        location = f"{query['redirect_uri']}{joiner}{urlencode({'code': code, 'state': query['state']})}"
        return Reply(302, {}, headers={"location": location})

    # --- the ASGI app -------------------------------------------------------------------------

    async def _app(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            query = scope.get("query_string", b"").decode()
            received = Received(scope["method"], scope["path"], headers, body, query, at=time.monotonic())
            self.requests.append(received)
            if "idempotency-key" in headers:
                self.by_key[headers["idempotency-key"]] += 1
            reply = self._next_reply(received)
            if scope["method"] == "GET" and scope["path"] in self._authorize_paths:
                reply = self._approve(dict(parse_qsl(query)))
        delay = self.latency if reply.delay is None else reply.delay
        if reply.hang:
            await asyncio.sleep(3600)
        if delay:
            await asyncio.sleep(delay)
        if reply.drop:
            # Promise a body, then fail: uvicorn cuts the connection and the client sees no answer.
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
            raise ConnectionAbortedError("simulated drop")
        payload = reply.body if reply.body is not None else (
            {"id": str(uuid.uuid4()), "url": f"{self.url}/posts/{uuid.uuid4()}"} if reply.status < 300 else {"error": "simulated"}
        )
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        given = {k.lower(): v for k, v in reply.headers.items()}
        kind = given.pop("content-type", "application/json")  # a media file says its own type
        await send({"type": "http.response.start", "status": reply.status, "headers": [
            (b"content-type", kind.encode()), (b"content-length", str(len(raw)).encode()),
            *[(k.encode(), v.encode()) for k, v in given.items()]]})
        await send({"type": "http.response.body", "body": raw})


class ResumableUploads:
    """Google's resumable upload protocol on one path (developers.google.com/youtube/v3/guides/
    using_resumable_upload_protocol), as YouTube's videos.insert answers it.

    A POST opens a session: 200 with its URI in ``Location`` (this path, ``?upload_id=``). A PUT to
    the session with ``Content-Range: bytes a-b/TOTAL`` adds its bytes (it must start where the
    session stands) and is answered 308 with ``Range: bytes=0-N`` (no header while it holds
    nothing), or 201 with the video once TOTAL bytes are in; ``bytes */TOTAL`` with no body asks
    the same without adding. A PUT starting at byte ``hang_at`` hangs once, keeping nothing (a run
    killed mid-upload). ``sessions`` holds each session's bytes, ``metadata`` what each POST sent.
    """

    def __init__(self, base_url: str, path: str, *, video_id: str = "dQw4w9WgXcQ", hang_at: int | None = None):
        self.base_url, self.path, self.video_id, self.hang_at = base_url, path, video_id, hang_at
        self.sessions: dict[str, bytearray] = {}
        self.metadata: list[Any] = []

    def __call__(self, request: Received) -> Reply:
        if request.method == "POST":
            upload_id = uuid.uuid4().hex
            self.sessions[upload_id] = bytearray()
            self.metadata.append(request.json())
            return Reply(200, b"", {"location": f"{self.base_url}{self.path}?uploadType=resumable&upload_id={upload_id}"})
        held = self.sessions.get(request.params().get("upload_id", ""))
        if held is None:
            return Reply(404, {"error": {"code": 404, "message": "Not Found"}})
        spec, _, total = request.headers.get("content-range", "").removeprefix("bytes ").partition("/")
        if spec != "*":
            start = int(spec.split("-")[0])
            if start != len(held):
                return Reply(400, {"error": {"code": 400, "message": f"expected byte {len(held)}, got {start}"}})
            if self.hang_at is not None and start == self.hang_at:
                self.hang_at = None
                return Reply(hang=True)
            held += request.body
        if total.isdigit() and len(held) == int(total):
            return Reply(201, {"kind": "youtube#video", "id": self.video_id, "status": {"uploadStatus": "uploaded"}})
        return Reply(308, b"", {"range": f"bytes=0-{len(held) - 1}"} if held else {})


class MediaFile:
    """A media host serving ``data``: 200 with all of it, or 206 from ``Range: bytes=N-``."""

    def __init__(self, data: bytes, content_type: str = "video/mp4"):
        self.data, self.content_type = data, content_type
        self.ranges: list[str | None] = []  #: the Range of each request (None: the whole file)

    def __call__(self, request: Received) -> Reply:
        wanted = request.headers.get("range")
        self.ranges.append(wanted)
        if not wanted:
            return Reply(200, self.data, {"content-type": self.content_type})
        start = int(wanted.removeprefix("bytes=").split("-")[0])
        return Reply(206, self.data[start:], {"content-type": self.content_type,
                                               "content-range": f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"})
