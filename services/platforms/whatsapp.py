"""WhatsApp (Cloud API): each post sent as messages from a business number to the channel's recipients.

Channel: ``metadata.phone_number_id`` (the sending number) and ``metadata.recipients`` (phone
numbers, digits with country code); ``credentials.access_token`` is a system-user token (no
refresh grant: unconfirmed). A text post is one text message; a post with media is one message
per item, the text as the first item's caption.

Partial success: recipients are sent to in order and ``details["sent"]`` maps each recipient to
the message ids WhatsApp accepted for it (the first k messages of the post), kept in
``request.progress`` as it grows. Handed back in ``request.resume``, nothing already accepted is
sent again. A failure tied
to one recipient (outside the 24-hour window, undeliverable) skips that recipient only; any
other failure stops the run there.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx

from services.domain.models import Content, Media, Outcome
from services.platforms import meta
from services.platforms.base import AccountInfo, Feature, PlatformError, Problem, Published, PublishRequest
from services.platforms.medialimits import MB, MediaLimits

MAX_TEXT = 4096
MAX_CAPTION = 1024
#: failures that concern one recipient: the others can still be sent to
_RECIPIENT_CODES = {131047, 131026}
_ADVICE = {
    131047: "the recipient has not messaged this number in the last 24 hours, so WhatsApp only delivers an "
            "approved template to them; ask them to message you first (Herald does not send templates)",
    131026: "WhatsApp cannot deliver to this number (not on WhatsApp, or an old app version)",
}
_TEMPLATE_ADVICE = "the message template was refused; use an approved template whose name, language and parameters match"


def _messages(content: Content) -> list[dict[str, Any]]:
    """The message bodies (without the recipient) that make up the post."""
    if not content.media:
        return [{"type": "text", "text": {"body": content.text, "preview_url": True}}]
    return [{"type": m.type, m.type: _media(m, content.text if i == 0 else "")} for i, m in enumerate(content.media)]


def _media(media: Media, caption: str) -> dict[str, str]:
    return {"link": media.url, **({"caption": caption} if caption else {})}


def _advised(exc: PlatformError, recipient: str) -> PlatformError:
    code = exc.details.get("graph_code")
    advice = (_ADVICE.get(code) if isinstance(code, int) else None) or (
        _TEMPLATE_ADVICE if isinstance(code, int) and 132000 <= code <= 132999 else None)
    message = f"{exc.message} for {recipient}" + (f": {advice}" if advice else "")
    return dataclasses.replace(exc, message=message)


#: Cloud API supported media: JPEG/PNG images up to 5 MB, MP4/3GPP video up to 16 MB
_MEDIA_LIMITS = MediaLimits(
    "WhatsApp", image_bytes=5 * MB, image_types=("image/jpeg", "image/png"), video_bytes=16 * MB,
    video_types=("video/mp4", "video/3gpp"))


class WhatsAppPlatform:
    name = "whatsapp"
    features = frozenset({Feature.VERIFY})
    required_credentials: tuple[str, ...] = ("access_token",)

    def __init__(self, base_url: str = "https://graph.facebook.com", *, client_id: str | None = None,
                 client_secret: str | None = None):
        # No OAuth app is used: system-user tokens are created in Meta's Business settings, each for
        # an app of its owner's. So an app-level throttle (Graph code 4) is one channel's app, not
        # Herald's, and pauses that channel only (``shared_app=False`` on every Graph call here).
        del client_id, client_secret
        self._graph = f"{base_url.rstrip('/')}/{meta.GRAPH_VERSION}"

    def media_limits(self, metadata: dict[str, Any]) -> MediaLimits:
        return _MEDIA_LIMITS

    def validate(self, content: Content, metadata: dict | None = None) -> list[Problem]:
        metadata = metadata or {}
        problems = []
        if not metadata.get("phone_number_id"):
            problems.append(Problem("metadata.phone_number_id", "whatsapp: the channel needs metadata.phone_number_id"))
        recipients = metadata.get("recipients")
        if not isinstance(recipients, list) or not recipients or not all(isinstance(r, str) and r for r in recipients):
            problems.append(Problem("metadata.recipients",
                                    "whatsapp: the channel needs metadata.recipients, a list of phone numbers"))
        if not content.text.strip() and not content.media:
            problems.append(Problem("content.text", "whatsapp: a message needs text or media"))
        if any(m.type not in ("image", "video") for m in content.media):
            problems.append(Problem("content.media", "whatsapp: media must be images or videos"))
        limit = MAX_CAPTION if content.media else MAX_TEXT
        if len(content.text) > limit:
            what = "caption" if content.media else "text"
            problems.append(Problem("content.text", f"whatsapp: {what} is {len(content.text)} characters; the limit is {limit}"))
        return problems

    async def publish(self, request: PublishRequest, http: httpx.AsyncClient) -> Published:
        """Send to every recipient; ``request.resume`` is what this target's previous attempt left.

        Raises with ``details["sent"]`` (all accepted so far, resumed ones included) and
        ``details["failed"]`` (recipient -> error code). Recipient-only failures end PERMANENT once
        the others are done; otherwise the failure that stopped the run is raised.
        """
        token = request.credentials["access_token"]
        number, recipients = request.metadata.get("phone_number_id"), request.metadata.get("recipients")
        if not number or not isinstance(recipients, list) or not recipients:
            raise PlatformError(Outcome.PERMANENT, "bad_channel", "whatsapp: the channel needs metadata.phone_number_id "
                                "and metadata.recipients", details={"field": "metadata"})
        messages = _messages(request.content)
        sent: dict[str, list[str]] = {r: list(ids) for r, ids in ((request.resume or {}).get("sent") or {}).items()}
        request.progress["sent"] = sent  # the same lists, kept up to date: a cut-off call still says who got what
        failed: dict[str, PlatformError] = {}

        def partial(exc: PlatformError) -> PlatformError:
            """``exc`` restated for the whole post: who got everything, and why the rest did not."""
            done = sum(len(sent.get(r, ())) == len(messages) for r in recipients)
            said = exc.message.removeprefix("whatsapp: ")
            return dataclasses.replace(exc, message=f"whatsapp: sent to {done} of {len(recipients)} recipients; {said}",
                                       details={**exc.details, "sent": {r: ids for r, ids in sent.items() if ids},
                                                "failed": {r: e.code for r, e in failed.items()}})

        for recipient in recipients:
            accepted = sent.setdefault(recipient, [])
            for body in messages[len(accepted):]:
                if request.deadline is not None and time.monotonic() >= request.deadline:
                    raise partial(PlatformError(Outcome.TRANSIENT, "deadline_reached",
                                                "the run ended before every recipient was sent to"))
                try:
                    answer, _ = await meta.call_graph(
                        http, "POST", f"{self._graph}/{number}/messages", platform=self.name, idempotent=False,
                        shared_app=False,
                        json={"messaging_product": "whatsapp", "recipient_type": "individual", "to": recipient, **body},
                        headers=meta.bearer(token))
                except PlatformError as exc:
                    if exc.details.get("graph_code") not in _RECIPIENT_CODES:
                        raise partial(_advised(exc, recipient)) from exc
                    failed[recipient] = _advised(exc, recipient)
                    break
                accepted.append(str(answer["messages"][0]["id"]))
        if failed:
            raise partial(next(iter(failed.values())))
        return Published(sent[recipients[0]][0], None)

    async def verify(self, credentials: dict[str, Any], metadata: dict[str, Any], http: httpx.AsyncClient) -> AccountInfo:
        number = metadata.get("phone_number_id")
        if not number:
            raise PlatformError(Outcome.PERMANENT, "missing_phone_number_id", "whatsapp channels need metadata.phone_number_id",
                                details={"field": "metadata.phone_number_id"})
        body, _ = await meta.call_graph(http, "GET", f"{self._graph}/{number}", platform=self.name, idempotent=True,
                                        shared_app=False, params={"fields": "display_phone_number,verified_name"},
                                        headers=meta.bearer(credentials["access_token"]))
        return AccountInfo(account_id=str(number),
                           name=str(body.get("verified_name") or body.get("display_phone_number") or number))
