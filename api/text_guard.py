"""No string the API takes may hold a NUL character or a lone surrogate.

PostgreSQL cannot store NUL in text or JSON (22P05), and a lone surrogate (``"\\ud800"`` in JSON)
is not Unicode: both would fail deep in the store, or come back as a codec's error text. This
dependency reads the query and the JSON body once (Starlette caches the body for the route) and
refuses the first such string with a 422 naming where it is.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from services.errors import ValidationError

_NUL = "\x00"


def _problem(text: str) -> str | None:
    if _NUL in text:
        return "cannot contain a NUL character (\\u0000)"
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return "cannot contain a lone surrogate (\\ud800-\\udfff): it is not valid Unicode"
    return None


def _walk(value: Any, path: str) -> tuple[str, str] | None:
    """(field, problem) of the first bad string in a parsed JSON value, keys included."""
    if isinstance(value, str):
        problem = _problem(value)
        return (path or "body", problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            problem = _problem(key)
            if problem:
                return where, f"a key {problem}"
            found = _walk(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _walk(item, f"{path}[{index}]")
            if found:
                return found
    return None


async def refuse_bad_text(request: Request) -> None:
    for name, value in request.query_params.multi_items():
        problem = _problem(value) or _problem(name)
        if problem:
            raise ValidationError(f"{name} {problem}", field=name)
    if "json" not in request.headers.get("content-type", ""):
        return
    body = await request.body()
    if not body:
        return
    try:
        parsed = json.loads(body)
    except ValueError:
        return  # malformed JSON is the body parser's to refuse, with its own message
    found = _walk(parsed, "")
    if found:
        field, problem = found
        raise ValidationError(f"{field} {problem}", field=field)
