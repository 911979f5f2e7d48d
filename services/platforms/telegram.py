"""The Telegram platform: a bot posts to one chat (a channel, group or private chat) via the Bot API.

Channel: ``credentials.bot_token`` and ``metadata.chat_id`` (numeric id or ``@username``), with
``metadata.chat_username`` for public links. Text goes out with sendMessage; one photo or video
with sendPhoto/sendVideo and the text as caption; 2-10 media as one album (sendMediaGroup, caption
on the first item). Telegram fetches media URLs itself, so Herald never downloads them.

The token is part of every URL path (``/bot<token>/<method>``): messages built here mask it, httpx
exceptions (which carry the URL) are not chained, and httpx's own request log lines are filtered.
Telegram has no idempotency key and no way to list a bot's sent messages, so a send whose answer
was lost is UNKNOWN, for a person to resolve.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx

from services.domain.models import Content, Outcome
from services.platforms.base import AccountInfo, Feature, PlatformError, Problem, Published, PublishRequest
from services.platforms.httpcall import json_or_empty, send
from services.platforms.medialimits import MB, MediaLimits

# Pinned from core.telegram.org/bots/api (sendMessage text 1-4096 and caption 0-1024 characters
# "after entities parsing"; sendMediaGroup 2-10 items). Telegram counts UTF-16 code units (its
# entity offsets are in them); they are never fewer than characters, so the check errs on the safe side.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_MEDIA = 10
_MEDIA_TYPES = {"image": "photo", "video": "video"}
_TOKEN_IN_PATH = re.compile(r"/bot[^/\s]+/")


#: Bot API, files sent by URL: photos up to 5 MB, other files up to 20 MB
_MEDIA_LIMITS = MediaLimits("Telegram", image_bytes=5 * MB, video_bytes=20 * MB)


class _TokenRedactor(logging.Filter):
    """httpx logs every request URL at INFO; the token must not reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/bot" in message:
            record.msg, record.args = _TOKEN_IN_PATH.sub("/bot<token>/", message), ()
        return True


_REDACTOR = _TokenRedactor()


class TelegramPlatform:
    name = "telegram"
    features = frozenset({Feature.VERIFY})
    required_credentials: tuple[str, ...] = ("bot_token",)

    def __init__(self, base_url: str = "https://api.telegram.org"):
        self._base_url = base_url.rstrip("/")
        logging.getLogger("httpx").addFilter(_REDACTOR)  # a no-op when already added

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return _MEDIA_LIMITS

    def validate(self, content: Content, metadata: dict[str, Any] | None = None) -> list[Problem]:
        problems = []
        length = _utf16_length(content.text)
        if content.media and length > MAX_CAPTION:
            problems.append(Problem("content.text",
                                    f"telegram: a caption is {length} characters; the limit with media is {MAX_CAPTION}"))
        elif length > MAX_TEXT:
            problems.append(Problem("content.text", f"telegram: text is {length} characters; the limit is {MAX_TEXT}"))
        if len(content.media) > MAX_MEDIA:
            problems.append(Problem("content.media",
                                    f"telegram: {len(content.media)} media items; an album holds at most {MAX_MEDIA}"))
        if any(m.type not in _MEDIA_TYPES for m in content.media):
            problems.append(Problem("content.media", "telegram: only images and videos can be sent"))
        return problems

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        token = credentials.get("bot_token") or ""
        chat_id = _chat_id(metadata)
        bot = await self._call(http, token, "getMe", {}, idempotent=True)
        chat = await self._call(http, token, "getChat", {"chat_id": chat_id}, idempotent=True)
        name = chat.get("title") or (f"@{chat['username']}" if chat.get("username") else str(chat["id"]))
        return AccountInfo(account_id=str(chat["id"]), name=name,
                           metadata={"chat_id": chat["id"], "chat_username": chat.get("username"),
                                     "bot_username": bot.get("username")})

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        token = request.credentials.get("bot_token") or ""
        method, payload = message_request(_chat_id(request.metadata), request.content)
        # No idempotency key: a send that may have arrived must not be repeated blindly.
        result = await self._call(http, token, method, payload, idempotent=False)
        message = result[0] if isinstance(result, list) else result
        return Published(platform_post_id=str(message["message_id"]), http_status=200,
                         url=message_url(message, request.metadata))

    async def _call(self, http: httpx.AsyncClient, token: str, method: str, payload: dict[str, Any], *,
                    idempotent: bool) -> Any:
        try:
            response = await send(http, "POST", f"{self._base_url}/bot{token}/{method}", idempotent=idempotent, json=payload)
        except PlatformError as exc:
            # Not chained: the httpx exception holds the request, and the request URL holds the token.
            raise PlatformError(exc.outcome, exc.code, _mask(exc.message, token), details=exc.details) from None
        body = json_or_empty(response)
        if response.is_success and body.get("ok"):
            return body.get("result")
        raise _error(response.status_code, body, method, token)


def message_request(chat_id: str | int, content: Content) -> tuple[str, dict[str, Any]]:
    """The Bot API method and JSON body that post ``content`` (plain text: no parse_mode to escape for)."""
    text, media = content.text, content.media
    if not media:
        return "sendMessage", {"chat_id": chat_id, "text": text}
    if len(media) == 1:
        kind = _MEDIA_TYPES[media[0].type]
        payload = {"chat_id": chat_id, kind: media[0].url}
        if text:
            payload["caption"] = text
        return f"send{kind.capitalize()}", payload
    items: list[dict[str, Any]] = [{"type": _MEDIA_TYPES[m.type], "media": m.url} for m in media]
    if text:
        items[0]["caption"] = text  # an album shows the first item's caption as the post's text
    return "sendMediaGroup", {"chat_id": chat_id, "media": items}


def message_url(message: dict[str, Any], metadata: dict[str, Any]) -> str | None:
    """t.me link: public chats by username; private supergroups and channels (ids -100...) by id; else None."""
    chat = message.get("chat") or {}
    username = chat.get("username") or metadata.get("chat_username")
    if not username and str(metadata.get("chat_id", "")).startswith("@"):
        username = str(metadata["chat_id"])[1:]
    message_id = message["message_id"]
    if username:
        return f"https://t.me/{username}/{message_id}"
    chat_id = str(chat.get("id") or metadata.get("chat_id") or "")
    if chat_id.startswith("-100"):
        return f"https://t.me/c/{chat_id[4:]}/{message_id}"
    return None  # private chats and basic groups have no message links


def _error(status: int, body: dict[str, Any], method: str, token: str) -> PlatformError:
    """Classify ``{"ok": false, "error_code", "description", "parameters"?}`` (HTTP status = error_code)."""
    code = body.get("error_code") if isinstance(body.get("error_code"), int) else status
    description = _mask(str(body.get("description") or f"HTTP {status}"), token)
    parameters = body.get("parameters") or {}
    if parameters.get("migrate_to_chat_id"):
        new_id = parameters["migrate_to_chat_id"]
        return PlatformError(Outcome.PERMANENT, "chat_migrated",
                             f"telegram: the group became a supergroup; update the channel's chat_id to {new_id}",
                             http_status=status, details={"migrate_to_chat_id": new_id})
    if code == 429:
        # ResponseParameters.retry_after: "the number of seconds left to wait before the request can be
        # repeated" (core.telegram.org/bots/api), so from now. Flood limits are per chat and per bot,
        # and the bot token is this channel's own credential: the account scope.
        retry_after = parameters.get("retry_after")
        return PlatformError(Outcome.RATE_LIMITED, "rate_limited", f"telegram {method}: {description}", http_status=status,
                             retry_after_seconds=float(retry_after) if isinstance(retry_after, (int, float)) else None)
    if code == 401:
        return PlatformError(Outcome.AUTH, "bad_token", f"telegram {method}: {description}; check the bot token",
                             http_status=status)
    if code == 403:
        # PERMANENT, not AUTH: the token works (reconnecting changes nothing); the bot was blocked or
        # removed, and the fix is in the chat: add the bot back, as an admin who may post.
        return PlatformError(Outcome.PERMANENT, "bot_not_allowed",
                             f"telegram {method}: {description}; add the bot to the chat as an admin allowed to post",
                             http_status=status)
    # 400: chat not found, message too long, ...
    outcome = Outcome.TRANSIENT if code is not None and code >= 500 else Outcome.PERMANENT
    return PlatformError(outcome, f"http_{code}", f"telegram {method}: {description}", http_status=status)


def _chat_id(metadata: dict[str, Any]) -> str | int:
    chat_id = metadata.get("chat_id")
    if chat_id in (None, ""):
        raise PlatformError(Outcome.PERMANENT, "missing_chat_id", "telegram channels need metadata.chat_id",
                            details={"field": "metadata.chat_id"})
    return chat_id


def _mask(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
