"""The sandbox's made-up metrics: the same for the same post and moment, growing with age, no I/O."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from itertools import pairwise

import httpx
import pytest

from services import clock
from services.platforms.base import MetricsRequest
from services.platforms.sandbox import SandboxPlatform

PUBLISHED = datetime(2030, 1, 1, 9, tzinfo=timezone.utc)


def metrics_request(post_id: str, published_at: datetime | None = PUBLISHED) -> MetricsRequest:
    return MetricsRequest(platform_post_id=post_id, platform_post_url=None, published_at=published_at,
                          channel_id=uuid.uuid4(), account_id="", metadata={}, credentials={})


@pytest.fixture
def platform():
    return SandboxPlatform(outbox=None)  # type: ignore[arg-type]  # metrics never touch the outbox


async def figures_at(platform, monkeypatch, moment: datetime, post_id: str = "6b0c8f0e-0000-4000-8000-000000000001",
                     published_at: datetime | None = PUBLISHED):
    monkeypatch.setattr(clock, "utcnow", lambda: moment)
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: pytest.fail("the sandbox made a request"))) as http:
        return await platform.metrics(metrics_request(post_id, published_at), http)


async def test_the_same_post_at_the_same_moment_has_the_same_figures(platform, monkeypatch):
    first = await figures_at(platform, monkeypatch, PUBLISHED + timedelta(hours=5))
    again = await figures_at(platform, monkeypatch, PUBLISHED + timedelta(hours=5))
    other = await figures_at(platform, monkeypatch, PUBLISHED + timedelta(hours=5), post_id=str(uuid.uuid4()))
    assert first == again
    assert first != other  # each post has its own reach and rates


async def test_figures_start_at_zero_and_only_grow(platform, monkeypatch):
    seen = [await figures_at(platform, monkeypatch, PUBLISHED + timedelta(hours=h)) for h in (0, 1, 6, 24, 72, 720)]
    assert (seen[0].impressions, seen[0].likes, seen[0].clicks) == (0, 0, 0)
    for earlier, later in pairwise(seen):
        for name in ("likes", "comments", "shares", "impressions", "clicks", "saves"):
            assert getattr(later, name) >= getattr(earlier, name), name
    month = seen[-1]
    assert 200 <= month.impressions < 5000
    assert 0 < month.likes <= month.impressions and month.clicks <= month.impressions
    assert month.raw["made_up"] is True


async def test_a_post_without_a_publish_time_has_all_zeros(platform, monkeypatch):
    figures = await figures_at(platform, monkeypatch, PUBLISHED, published_at=None)
    assert (figures.likes, figures.comments, figures.shares, figures.impressions, figures.clicks, figures.saves) == (
        0, 0, 0, 0, 0, 0)
