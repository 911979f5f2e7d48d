"""An event's ``data`` as the API shows its post or channel: handed to the delivery of events."""

from __future__ import annotations

from typing import Any

from api.schemas.channels import ChannelOut
from api.schemas.posts import PostOut
from services.domain.events import Event
from services.store import rows

_EXTRA = ("until", "reason", "webhook_id")


def render_event(event: Event) -> dict[str, Any]:
    subject, data = event.subject, {}
    if "post" in subject:
        data["post"] = PostOut.of(rows.post_from_row(subject["post"])).model_dump(mode="json")
    if "channel" in subject:
        channel = rows.channel_from_row(subject["channel"])
        data["channel"] = ChannelOut.of(channel, now=event.created_at).model_dump(mode="json")
    data.update({key: subject[key] for key in _EXTRA if key in subject})
    return data
