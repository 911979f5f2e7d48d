"""Refuse request bodies over a size limit (413 JSON), before they are read into memory."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

#: Vercel refuses bodies over 4.5 MB anyway; nothing Herald accepts comes close
MAX_BODY_BYTES = 4 * 1024 * 1024


class BodyTooLarge(HTTPException):
    """An HTTPException so that FastAPI's body reader lets it through (it turns other errors into 400s)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit // (1024 * 1024)} MiB")


class BodyLimit:
    """Pure ASGI: checks Content-Length up front, and counts the bytes of a body streamed without one."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _content_length(scope) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLarge:  # read outside FastAPI's handlers (they answer it themselves)
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = BodyTooLarge(self.max_bytes)
        response = JSONResponse(error_body("payload_too_large", exc.detail), status_code=413)
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
