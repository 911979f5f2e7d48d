"""What the run does with stored data it cannot read: fail it on its own, send nothing, stall nothing.

Two levels, both with the error code ``unreadable_post``:

- a post whose row cannot be read (``UnreadablePost``, found while reading the claim) fails as a
  whole: its content, schedule or targets are what every target would send;
- a target whose channel cannot be used as stored (a channel row the claim could not read, or
  credentials that no HERALD_ENCRYPTION_KEYS key decrypts to a JSON object) fails alone, like a
  deleted channel or one that needs reconnecting: the post's other channels are fine, and holding
  them back would turn one broken account into a missed post everywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.domain.models import (
    UNREADABLE_POST,
    Channel,
    Outcome,
    PostResult,
    PostStatus,
    TargetResult,
    TargetStatus,
    UnreadablePost,
)
from services.domain.transitions import derive_post_status
from services.errors import HeraldError
from services.security.crypto import TokenCipher

#: what a target a dead run may have sent is told, when its post cannot be read to check or resend it
MAYBE_SENT = "a run that stopped mid-call may have sent it: check whether it is live, then resolve it"


def post_result(entry: UnreadablePost, *, now: datetime) -> PostResult:
    """Record ``entry`` as failed with UNREADABLE_POST, nothing sent: pure.

    Its open (pending) targets fail; one a run that died had marked sending becomes unknown (it may
    be live, and nothing here can look it up); settled targets keep their status. The post is
    failed, or partial / needs_review when a target is live or may be. A recurring post's series
    stops here: its next occurrence would copy the same unreadable row (and a rule or zone that
    cannot be read gives no next time at all); the user fixes the post and retries it.
    """
    message = f"the stored post cannot be read: {entry.reason}"
    results: list[TargetResult] = []
    statuses: list[TargetStatus] = []
    for target in entry.targets:
        if target.id in entry.maybe_sent:
            outcome, status, text = Outcome.UNKNOWN, TargetStatus.UNKNOWN, f"{message}; {MAYBE_SENT}"
        elif target.status in (TargetStatus.PENDING, TargetStatus.PUBLISHING):
            outcome, status, text = Outcome.PERMANENT, TargetStatus.FAILED, f"{message}; nothing was sent"
        else:
            statuses.append(target.status)
            continue
        statuses.append(status)
        results.append(TargetResult(
            target_id=target.id, outcome=outcome, status=status, attempt=target.attempts + 1, started_at=now,
            finished_at=now, error_code=UNREADABLE_POST, error_message=text,
        ))
    post_status = derive_post_status(statuses)
    if post_status is PostStatus.CANCELLED:  # no target left (or all cancelled): the post itself failed
        post_status = PostStatus.FAILED
    return PostResult(post_id=entry.post_id, lease_id=entry.lease_id, status=post_status,
                      error=f"{UNREADABLE_POST}: {message}", targets=tuple(results))


def read_credentials(cipher: TokenCipher, channel: Channel) -> dict[str, Any]:
    """The channel's decrypted credentials (a JSON object; none stored, or an empty value: empty).

    Raises HeraldError ``unreadable_post`` when they do not decrypt with any key, or decrypt to
    something else than a JSON object. The message never quotes what was stored.
    """
    if not channel.credentials_encrypted:  # e.g. the seed's sandbox channel: it needs none
        return {}
    try:
        credentials = cipher.decrypt(channel.credentials_encrypted)
    except HeraldError:
        raise HeraldError("the channel's stored credentials do not decrypt with any HERALD_ENCRYPTION_KEYS key "
                          "(was a key removed?): restore the key or reconnect this account",
                          code=UNREADABLE_POST) from None
    except ValueError:  # decrypted, but not JSON text
        credentials = None
    if not isinstance(credentials, dict):
        raise HeraldError("the channel's stored credentials are not a JSON object: reconnect this account",
                          code=UNREADABLE_POST)
    return credentials
