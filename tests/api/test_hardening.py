"""What a new-user trial broke at the door: extreme instants, unexpected errors, redirects, huge bodies,
errors that did not name their field, HEAD probes and the CORS-exposed replay header."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse

from api.factory import create_app
from api.limits import MAX_BODY_BYTES, BodyLimit
from api.routes import activity, analytics, channels, cron, health, posts
from api.schemas.posts import _local
from tests.api.conftest import CRON, sandbox_channel

DASHBOARD = "https://dash.example.com"


async def create(client, who, **body):
    payload = {"content": {"text": "Hello from Herald"}, **body}
    return await client.post("/api/v1/posts", json=payload, headers=who.headers)


async def no_posts(client, who) -> bool:
    listed = await client.get("/api/v1/posts", headers=who.headers)
    return listed.status_code == 200 and listed.json()["total"] == 0


def field_of(response: httpx.Response) -> str | None:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()["error"].get("field")


# 1. Instants outside years 2000..2999 (UTC) are refused before anything is written.

OUT_OF_RANGE = [
    ("9999-12-31T20:00:00Z", "Pacific/Kiritimati"),  # local time would be past year 9999
    ("9999-12-31T23:59:59", "America/Los_Angeles"),  # naive: UTC would be past year 9999
    ("0001-01-01T00:00:00+14:00", "UTC"),  # UTC would be before year 1
    ("3000-01-01T00:00:00Z", "UTC"),
    ("1999-12-31T23:59:59Z", "UTC"),
    ("2000-01-01T05:00:00", "Pacific/Kiritimati"),  # naive, in range as written, 1999 in UTC
    ("2999-12-31T20:00:00", "America/Los_Angeles"),  # naive, in range as written, 3000 in UTC
]


class TestInstantRange:
    @pytest.mark.parametrize(("at", "tz"), OUT_OF_RANGE)
    async def test_create_refuses_and_writes_nothing(self, client, alice, at, tz):
        channel = await sandbox_channel(client, alice)
        response = await create(client, alice, channel_ids=[channel["id"]], scheduled_at=at, timezone=tz)
        assert response.status_code == 422 and field_of(response) == "scheduled_at", response.text
        assert "2000" in response.json()["error"]["message"]
        assert await no_posts(client, alice)

    async def test_the_edges_of_the_range_are_accepted_and_shown_locally(self, client, alice):
        channel = await sandbox_channel(client, alice)
        response = await create(client, alice, channel_ids=[channel["id"]], scheduled_at="2999-12-31T20:00:00Z",
                                timezone="Pacific/Kiritimati")
        assert response.status_code == 201, response.text
        assert response.json()["local_scheduled_at"] == "3000-01-01T10:00:00+14:00"

    async def test_bulk_names_the_item(self, client, alice):
        channel = await sandbox_channel(client, alice)
        good = {"content": {"text": "ok"}, "channel_ids": [channel["id"]], "scheduled_at": "2030-01-01T00:00:00Z"}
        for bad_at, tz in (("9999-12-31T20:00:00Z", "Pacific/Kiritimati"), ("2000-01-01T05:00:00", "Pacific/Kiritimati")):
            bad = {**good, "scheduled_at": bad_at, "timezone": tz}
            response = await client.post("/api/v1/posts/bulk", json={"posts": [good, bad]}, headers=alice.headers)
            assert response.status_code == 422 and field_of(response) == "posts.1.scheduled_at", response.text
        assert await no_posts(client, alice)

    @pytest.mark.parametrize(("method", "action"), [("PATCH", ""), ("PUT", ""), ("POST", "/schedule")])
    @pytest.mark.parametrize(("at", "tz"), OUT_OF_RANGE[:3] + OUT_OF_RANGE[-2:])
    async def test_edit_and_schedule_refuse_and_change_nothing(self, client, alice, method, action, at, tz):
        channel = await sandbox_channel(client, alice)
        draft = (await create(client, alice, channel_ids=[channel["id"]])).json()
        url = f"/api/v1/posts/{draft['id']}{action}"
        body = {"scheduled_at": at, "timezone": tz}
        if method == "PUT":  # a replacement: the whole post
            body |= {"content": draft["content"], "channel_ids": [channel["id"]]}
        response = await client.request(method, url, json=body, headers=alice.headers)
        assert response.status_code == 422 and field_of(response) == "scheduled_at", response.text
        assert "2000" in response.json()["error"]["message"]
        after = await client.get(f"/api/v1/posts/{draft['id']}", headers=alice.headers)
        assert after.json() == draft

    async def test_a_naive_edit_read_in_the_posts_zone_cannot_overflow(self, client, alice):
        channel = await sandbox_channel(client, alice)
        draft = (await create(client, alice, channel_ids=[channel["id"]], timezone="America/Los_Angeles")).json()
        response = await client.patch(f"/api/v1/posts/{draft['id']}", json={"scheduled_at": "9999-12-31T23:59:59"},
                                      headers=alice.headers)
        assert response.status_code == 422 and field_of(response) == "scheduled_at", response.text

    @pytest.mark.parametrize("name", ["from", "to", "updated_since"])
    @pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "3000-01-01T00:00:00Z"])
    async def test_list_filters(self, client, alice, name, value):
        response = await client.get("/api/v1/posts", params={name: value}, headers=alice.headers)
        assert response.status_code == 422 and field_of(response) == name, response.text

    @pytest.mark.parametrize(("params", "field"), [
        ({"from": "9999-12-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}, "from"),
        ({"from": "2999-12-31T00:00:00Z", "to": "3000-01-02T00:00:00Z"}, "to"),
        ({"from": "9999-12-01T00:00:00", "to": "9999-12-31T23:59:59", "timezone": "Pacific/Kiritimati"}, "from"),
        ({"from": "2999-12-01T00:00:00", "to": "2999-12-31T23:00:00", "timezone": "America/Los_Angeles"}, "to"),
        ({"from": "0001-01-01T00:00:00+14:00", "to": "0001-01-02T00:00:00Z"}, "from"),
    ])
    async def test_calendar_range(self, client, alice, params, field):
        response = await client.get("/api/v1/posts/calendar", params=params, headers=alice.headers)
        assert response.status_code == 422 and field_of(response) == field, response.text

    async def test_calendar_at_the_end_of_the_range_works(self, client, alice):
        params = {"from": "2999-12-01T00:00:00", "to": "2999-12-31T23:59:59", "timezone": "Pacific/Kiritimati"}
        response = await client.get("/api/v1/posts/calendar", params=params, headers=alice.headers)
        assert response.status_code == 200, response.text

    async def test_channel_token_expiry(self, client, alice):
        body = {"platform": "sandbox", "name": "S", "account_id": "x",
                "credentials": {"access_token": "placeholder", "expires_at": "9999-12-31T23:59:59-14:00"}}
        response = await client.post("/api/v1/channels", json=body, headers=alice.headers)
        assert response.status_code == 422 and field_of(response) == "credentials.expires_at", response.text

    def test_a_stored_extreme_time_is_shown_without_local_time(self):
        assert _local(datetime(9999, 12, 31, 20, tzinfo=timezone.utc), "Pacific/Kiritimati") is None
        assert _local(None, "UTC") is None


# 2. Anything unexpected answers JSON, says nothing of the cause, and is logged.

@pytest.fixture
async def fragile(settings, store):
    """A client that gets the 500 answer instead of the exception (as a real server would)."""
    app = create_app(settings, store=store)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as http:
        yield http
    if app.state.runtime is not None:
        await app.state.runtime.http.aclose()


async def test_unexpected_errors_answer_json_without_the_cause(fragile, store, alice, monkeypatch, caplog):
    async def explode(*args, **kwargs):
        raise RuntimeError("password=hunter2 in the cause")

    monkeypatch.setattr(store, "list_posts", explode)
    caplog.set_level(logging.ERROR, logger="herald")
    response = await fragile.get("/api/v1/posts", headers={**alice.headers, "Origin": DASHBOARD})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "internal_error" and response.json()["error"]["message"]
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert response.headers["access-control-allow-origin"] == DASHBOARD  # the dashboard can read it
    [record] = [r for r in caplog.records if "api.unhandled" in r.getMessage()]
    assert record.exc_info and record.exc_info[0] is RuntimeError and "/api/v1/posts" in record.getMessage()
    token = alice.headers["Authorization"].split()[1]
    assert token not in caplog.text


async def test_unexpected_errors_from_other_origins_get_no_cors_header(fragile, store, alice, monkeypatch):
    async def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(store, "list_posts", explode)
    response = await fragile.get("/api/v1/posts", headers={**alice.headers, "Origin": "https://evil.example.com"})
    assert response.status_code == 500 and "access-control-allow-origin" not in response.headers


# 3. Nothing under /api/v1 redirects.

def _concrete(path: str) -> str:
    return (path.replace("{post_id}", str(uuid.uuid4())).replace("{channel_id}", str(uuid.uuid4()))
            .replace("{platform}", "sandbox"))


def _variants(path: str) -> list[str]:
    bare = path.rstrip("/")
    return sorted({bare, bare + "/", bare + "//", path + "/", path + "//"} - {path})


async def test_no_path_under_api_v1_redirects(settings, store, alice):
    app = create_app(settings, store=store)
    routes = [(f"/api/v1{r.path}", r.methods) for module in (activity, analytics, channels, cron, health, posts)
              for r in module.router.routes if isinstance(r, APIRoute)]
    assert len(routes) > 20
    headers = {**alice.headers, **CRON}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as client:
        for route_path, methods in routes:
            path = _concrete(route_path)
            for variant in _variants(path):
                for method in methods:
                    response = await client.request(method, variant, headers=headers)
                    assert not 300 <= response.status_code < 400, (method, variant, response.status_code)
                    assert response.headers["content-type"].startswith("application/json"), (method, variant)
    await app.state.runtime.http.aclose()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_cron_double_slash_does_not_redirect(client, method):
    response = await client.request(method, "/api/v1/cron/publish-scheduled//", headers=CRON)
    assert response.status_code == 404 and "location" not in response.headers
    for exact in ("/api/v1/cron/publish-scheduled", "/api/v1/cron/publish-scheduled/"):
        assert (await client.request(method, exact, headers=CRON)).status_code == 200


# 4. Request size limits.

async def _chunks(total: int, sent: list[int], size: int = 256 * 1024):
    while sum(sent) < total:
        sent.append(size)
        yield b" " * size


class TestBodyLimits:
    async def test_a_huge_body_with_content_length_is_refused_unread(self, client, alice):
        metadata = {"blob": "x" * (20 * 1024 * 1024)}
        body = {"platform": "sandbox", "name": "S", "account_id": "x",
                "credentials": {"access_token": "placeholder"}, "metadata": metadata}
        response = await client.post("/api/v1/channels", json=body, headers=alice.headers)
        assert response.status_code == 413, response.text[:200]
        assert response.json()["error"]["code"] == "payload_too_large" and response.json()["error"]["message"]
        assert (await client.get("/api/v1/channels", headers=alice.headers)).json()["total"] == 0

    async def test_a_huge_unknown_field_on_a_post_is_refused(self, client, alice):
        response = await create(client, alice, junk="y" * (30 * 1024 * 1024))
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
        assert await no_posts(client, alice)

    async def test_a_streamed_body_is_counted_and_not_read_past_the_limit(self, client, alice):
        sent: list[int] = []
        headers = {**alice.headers, "Content-Type": "application/json", "Origin": DASHBOARD}
        response = await client.post("/api/v1/posts", content=_chunks(64 * 1024 * 1024, sent), headers=headers)
        assert "content-length" not in response.request.headers
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
        assert response.headers["access-control-allow-origin"] == DASHBOARD
        assert sum(sent) <= MAX_BODY_BYTES + 256 * 1024
        assert await no_posts(client, alice)

    async def test_a_small_streamed_body_still_works(self, client, alice):
        async def small():
            yield json.dumps({"content": {"text": "streamed"}}).encode()

        headers = {**alice.headers, "Content-Type": "application/json"}
        response = await client.post("/api/v1/posts", content=small(), headers=headers)
        assert response.status_code == 201, response.text

    async def test_the_middleware_answers_when_the_body_is_read_outside_fastapi(self):
        async def reads_everything(scope, receive, send):
            while (await receive()).get("more_body"):
                pass
            await JSONResponse({"ok": True})(scope, receive, send)

        async def body():
            for _ in range(4):
                yield b"x" * 10

        app = BodyLimit(reads_everything, max_bytes=25)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            refused = await http.post("/", content=body())
            assert refused.status_code == 413 and refused.json()["error"]["code"] == "payload_too_large"
            assert (await http.post("/", content=b"x" * 25)).status_code == 200
            assert (await http.post("/", content=b"x" * 26)).status_code == 413

    async def test_channel_metadata_is_capped_at_16_kib(self, client, alice):
        body = {"platform": "sandbox", "name": "S", "account_id": "x", "credentials": {"access_token": "placeholder"}}
        response = await client.post("/api/v1/channels", json={**body, "metadata": {"note": "n" * (17 * 1024)}},
                                      headers=alice.headers)
        assert response.status_code == 422 and field_of(response) == "metadata", response.text
        assert "16 KiB" in response.json()["error"]["message"]
        ok = await client.post("/api/v1/channels", json={**body, "metadata": {"note": "n" * (15 * 1024)}},
                               headers=alice.headers)
        assert ok.status_code == 201, ok.text

    @pytest.mark.parametrize(("extra", "field"), [
        ({"metadata": {"x": json.loads("[" * 500 + "]" * 500)}}, "metadata"),  # stored, then unserializable
        ({"credentials": {"access_token": "p", "x": json.loads("[" * 500 + "]" * 500)}}, "credentials"),
        ({"credentials": {"access_token": "p", "x": "y" * (3 * 1024 * 1024)}}, "credentials"),
    ])
    async def test_channel_json_is_shallow_and_small(self, client, alice, extra, field):
        body = {"platform": "sandbox", "name": "S", "account_id": "x", "credentials": {"access_token": "placeholder"},
                **extra}
        response = await client.post("/api/v1/channels", content=json.dumps(body),
                                     headers={**alice.headers, "Content-Type": "application/json"})
        assert response.status_code == 422 and field_of(response) == field, response.text[:300]
        assert "y" * 50 not in response.text
        assert (await client.get("/api/v1/channels", headers=alice.headers)).json()["total"] == 0


# 5. Every validation error names its field.

class TestErrorsNameTheField:
    @pytest.mark.parametrize(("content", "message"), [
        (b'{"content":', "invalid JSON"),
        (b"", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"null", "JSON object"),
    ])
    async def test_a_bad_body_is_field_body(self, client, alice, content, message):
        headers = {**alice.headers, "Content-Type": "application/json"}
        response = await client.post("/api/v1/posts", content=content, headers=headers)
        assert response.status_code == 422 and field_of(response) == "body", response.text
        assert message in response.json()["error"]["message"]
        assert await no_posts(client, alice)

    @pytest.mark.parametrize("content", [b"[" * 100_000 + b"]" * 100_000, b'{"content": {"text": "\xff"}}'])
    async def test_an_unreadable_body_is_field_body(self, client, alice, content):
        headers = {**alice.headers, "Content-Type": "application/json"}
        response = await client.post("/api/v1/posts", content=content, headers=headers)
        assert response.status_code == 400 and field_of(response) == "body", response.text
        assert await no_posts(client, alice)

    @pytest.mark.parametrize("name", ["timezone", "content", "channel_ids"])
    async def test_patch_with_null_names_the_field(self, client, alice, name):
        draft = (await create(client, alice)).json()
        response = await client.patch(f"/api/v1/posts/{draft['id']}", json={name: None}, headers=alice.headers)
        assert response.status_code == 422 and field_of(response) == name, response.text
        assert "null" in response.json()["error"]["message"]

    async def test_patch_with_null_scheduled_at_is_still_allowed(self, client, alice):
        draft = (await create(client, alice)).json()
        response = await client.patch(f"/api/v1/posts/{draft['id']}", json={"scheduled_at": None}, headers=alice.headers)
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize("path", ["/api/v1/posts", "/api/v1/posts/bulk"])
    async def test_a_reused_idempotency_key_names_the_header(self, client, alice, path):
        headers = {**alice.headers, "Idempotency-Key": "k-1"}

        def body(text):
            post = {"content": {"text": text}}
            return post if path.endswith("posts") else {"posts": [post]}

        assert (await client.post(path, json=body("one"), headers=headers)).status_code == 201
        response = await client.post(path, json=body("two"), headers=headers)
        assert response.status_code == 409 and field_of(response) == "Idempotency-Key", response.text
        assert response.json()["error"]["code"] == "idempotency_key_reused"


# 6. Uptime monitors probe with HEAD.

@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/cron/health"])
async def test_health_answers_head(client, path):
    response = await client.head(path)
    assert response.status_code == 200 and response.content == b""
    assert (await client.get(path)).status_code == 200


# 7. A browser dashboard can read Idempotent-Replayed.

async def test_idempotent_replayed_is_exposed_to_the_dashboard(client, alice):
    headers = {**alice.headers, "Idempotency-Key": "dash-1", "Origin": DASHBOARD}
    payload = {"content": {"text": "hi"}}
    await client.post("/api/v1/posts", json=payload, headers=headers)
    replay = await client.post("/api/v1/posts", json=payload, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    exposed = [h.strip().lower() for h in replay.headers["access-control-expose-headers"].split(",")]
    assert "idempotent-replayed" in exposed
