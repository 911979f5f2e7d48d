"""One deadline per platform call: the earlier of REQUEST_TIMEOUT from the call's start and the
run's budget. The adapter is told it (``PublishRequest.deadline``, ``MetricsRequest.deadline``);
a hard stop a little past it catches an adapter that overruns it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

#: past the call's deadline, how long the run waits for an adapter to return before it stops it
CALL_GRACE_SECONDS = 1.0

T = TypeVar("T")


def call_deadline(monotonic: Callable[[], float], request_timeout: float, run_deadline: float) -> float:
    """The deadline of a call starting now (``monotonic()`` values)."""
    return min(monotonic() + request_timeout, run_deadline)


async def within(call: Awaitable[T], deadline: float, monotonic: Callable[[], float]) -> T:
    """``call``'s answer, or asyncio.TimeoutError once ``deadline`` and the grace have passed."""
    return await asyncio.wait_for(call, timeout=max(0.0, deadline - monotonic()) + CALL_GRACE_SECONDS)
