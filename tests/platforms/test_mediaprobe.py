"""Looking at a media file before the post is due: one bounded range request per hop, public
addresses only (every redirect checked again), and what the first bytes and headers say."""

from __future__ import annotations

import httpx
import pytest
import respx

from services.domain.models import Outcome
from services.platforms.base import PlatformError
from services.platforms.medialimits import MB
from services.platforms.mediaprobe import HEAD_BYTES, MAX_REDIRECTS, probe_media
from tests.support import mediafiles

CDN = "https://cdn.example.com"
#: what the test's names resolve to (documentation and private ranges)
ADDRESSES = {"cdn.example.com": {"93.184.215.14"}, "other.example.net": {"93.184.215.15"},
             "intranet.example.com": {"10.0.0.7"}}


async def resolve(host: str, port: int) -> set[str]:
    return ADDRESSES[host]


@pytest.fixture
def cdn():
    """The media hosts: every request must be one a test mocked."""
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


async def probe(url: str):
    async with httpx.AsyncClient() as http:
        return await probe_media(http, url, allow_private=False, resolver=resolve)


async def refusal(url: str) -> PlatformError:
    with pytest.raises(PlatformError) as err:
        await probe(url)
    return err.value


async def test_a_range_answer_gives_the_whole_size_and_the_header_facts(cdn):
    photo = mediafiles.jpeg(4032, 3024)
    route = cdn.get(f"{CDN}/photo.jpg").respond(206, content=photo, headers={
        "Content-Type": "image/jpeg", "Content-Range": f"bytes 0-{len(photo) - 1}/13002342"})
    facts = await probe(f"{CDN}/photo.jpg")
    assert route.calls.last.request.headers["Range"] == f"bytes=0-{HEAD_BYTES - 1}"
    assert (facts.content_type, facts.size, facts.width, facts.height) == ("image/jpeg", 13002342, 4032, 3024)
    assert facts.redirected is False


async def test_a_server_ignoring_the_range_is_read_no_further_than_the_budget(cdn):
    video = mediafiles.mp4(95.0) + b"\x00" * (4 * HEAD_BYTES)
    cdn.get(f"{CDN}/clip.mp4").respond(200, content=video, headers={"Content-Type": "application/octet-stream"})
    facts = await probe(f"{CDN}/clip.mp4")
    # the type from the file's own signature (the server said only octet-stream); the size from Content-Length
    assert (facts.content_type, facts.size, facts.duration_seconds) == ("video/mp4", len(video), 95.0)


async def test_a_too_big_content_length_is_reported_without_reading_the_body(cdn):
    sent = []

    async def body():
        for _ in range(1000):  # 1000 × 1 MB, if anyone read it all
            sent.append(1)
            yield b"\x00" * MB

    cdn.get(f"{CDN}/huge.mp4").mock(return_value=httpx.Response(
        200, headers={"Content-Type": "video/mp4", "Content-Length": str(1000 * MB)}, content=body()))
    facts = await probe(f"{CDN}/huge.mp4")
    assert facts.size == 1000 * MB and facts.content_type == "video/mp4"
    assert len(sent) <= 2  # the first chunk(s) only


async def test_a_404_is_a_refusal_that_will_not_change(cdn):
    cdn.get(f"{CDN}/gone.jpg").respond(404)
    error = await refusal(f"{CDN}/gone.jpg")
    assert (error.outcome, error.code, error.http_status) == (Outcome.PERMANENT, "media_unavailable", 404)
    assert "HTTP 404" in error.message


async def test_a_5xx_or_no_answer_is_only_unreachable_for_now(cdn):
    cdn.get(f"{CDN}/busy.jpg").respond(503)
    cdn.get(f"{CDN}/down.jpg").mock(side_effect=httpx.ConnectError("refused"))
    for name in ("busy.jpg", "down.jpg"):
        error = await refusal(f"{CDN}/{name}")
        assert (error.outcome, error.code) == (Outcome.TRANSIENT, "media_unavailable")


async def test_a_redirect_to_a_private_address_is_refused_before_it_is_called(cdn):
    cdn.get(f"{CDN}/a.jpg").respond(302, headers={"Location": "https://intranet.example.com/a.jpg"})
    inside = cdn.get("https://intranet.example.com/a.jpg").respond(200, content=mediafiles.png(1, 1))
    error = await refusal(f"{CDN}/a.jpg")
    assert (error.outcome, error.code) == (Outcome.PERMANENT, "private_address")
    assert "redirect to https://intranet.example.com/a.jpg" in error.message
    assert not inside.called


async def test_a_redirect_to_a_public_address_is_followed_and_noted(cdn):
    cdn.get(f"{CDN}/a.png").respond(301, headers={"Location": "https://other.example.net/files/a.png"})
    cdn.get("https://other.example.net/files/a.png").respond(206, content=mediafiles.png(1080, 1080), headers={
        "Content-Type": "image/png", "Content-Range": "bytes 0-99/2048000"})
    facts = await probe(f"{CDN}/a.png")
    assert (facts.size, facts.width, facts.redirected) == (2048000, 1080, True)


async def test_a_redirect_loop_stops_after_the_limit(cdn):
    route = cdn.get(f"{CDN}/loop.jpg").respond(302, headers={"Location": "/loop.jpg"})
    error = await refusal(f"{CDN}/loop.jpg")
    assert (error.outcome, error.code) == (Outcome.PERMANENT, "too_many_redirects")
    assert route.call_count == MAX_REDIRECTS + 1


async def test_an_http_url_is_refused_without_a_request(cdn):
    error = await refusal("http://cdn.example.com/a.jpg")
    assert cdn.calls.call_count == 0 and error.code == "insecure_url"
