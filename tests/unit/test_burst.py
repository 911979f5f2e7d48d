"""Starting the runs that drain a burst: how many, and what each call carries and reports."""

from __future__ import annotations

import uuid

import httpx
import pytest
import respx

from services.publishing.burst import PARENT_HEADER, runs_needed, start_runs

URL = "https://herald.example/api/v1/cron/publish-scheduled"


@pytest.mark.parametrize(("due", "max_posts", "max_parallel", "started"), [
    (0, 50, 10, 0), (50, 50, 10, 0), (51, 50, 10, 1), (300, 50, 10, 5), (10_000, 50, 10, 9), (300, 50, 1, 0),
])
def test_a_tick_starts_one_run_per_share_of_the_burst_beyond_its_own(due, max_posts, max_parallel, started):
    assert runs_needed(due, max_posts=max_posts, max_parallel=max_parallel) == started


@respx.mock
async def test_each_started_run_carries_the_secret_its_parent_and_the_vercel_bypass():
    parent = uuid.uuid4()
    answers = iter([
        httpx.Response(200, json={"run_id": "r1", "processed": 50, "published": 49}),
        httpx.Response(401, text="<html>Vercel Authentication</html>"),
        httpx.ConnectError("refused"),
    ])

    def answer(request):
        reply = next(answers)
        if isinstance(reply, Exception):
            raise reply
        return reply

    route = respx.post(URL).mock(side_effect=answer)
    async with httpx.AsyncClient() as http:
        helpers = await start_runs(http, URL, count=3, parent_run_id=parent, cron_secret="s" * 20, wait_seconds=5,
                                   vercel_bypass="bypass-secret")
    sent = route.calls[0].request.headers
    assert (sent["authorization"], sent[PARENT_HEADER], sent["x-vercel-protection-bypass"]) == (
        f"Bearer {'s' * 20}", str(parent), "bypass-secret")
    assert sorted((h.status_code or 0, h.processed, h.error or "") for h in helpers) == [
        (0, 0, "could not start: ConnectError"), (200, 50, ""), (401, 0, "answered 401")]


@respx.mock
async def test_a_run_whose_answer_is_late_is_reported_and_left_to_finish():
    respx.post(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    async with httpx.AsyncClient() as http:
        [helper] = await start_runs(http, URL, count=1, parent_run_id=uuid.uuid4(), cron_secret="s" * 20,
                                    wait_seconds=1)
    assert helper.status_code is None and "goes on by itself" in helper.error
    assert "x-vercel-protection-bypass" not in respx.calls[0].request.headers
