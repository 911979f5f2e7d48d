"""Structured log lines: a stable event name plus ids as key=value fields. Never pass a token."""

from __future__ import annotations

import json
import logging

logger = logging.getLogger("herald")


def log_event(event: str, *, level: int = logging.INFO, **fields: object) -> None:
    if not logger.isEnabledFor(level):
        return
    parts = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in fields.items() if v is not None)
    logger.log(level, "event=%s %s", event, parts, extra={"event": event, **{f"herald_{k}": v for k, v in fields.items()}})
