"""Connecting accounts through the API: OAuth (authorize URL, state, PKCE, callback) and credentials checked at the door.

Platform HTTP is mocked with respx in the platforms' real shapes (the adapters' own tests in
tests/platforms assert the exact requests); the Herald side runs through the real ASGI app.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import httpx
import pytest
import respx
from cryptography import fernet as fernet_module

from api.factory import create_app
from tests.api.conftest import make_settings

DASHBOARD = "https://dash.example.com/app"
CALLBACK = "http://herald.test/api/v1/channels/callback"
GRAPH = "https://graph.facebook.com/v25.0"
X_API = "https://api.x.com"
LINKEDIN_API = "https://api.linkedin.com"
LINKEDIN_OAUTH = "https://www.linkedin.com"
THREADS = "https://graph.threads.net"
BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
TELEGRAM = f"https://api.telegram.org/bot{BOT_TOKEN}"
BSKY = "https://bsky.social/xrpc"
DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
APP_PASSWORD = "abcd-efgh-ijkl-mnop"
INSTANCE = "https://mastodon.example"
MASTODON_TOKEN = "mastodon-secret-token-42"

OAUTH_APPS = {"meta_app_id": "meta-app", "meta_app_secret": "meta-shh", "x_client_id": "x-cid",
              "x_client_secret": "x-shh", "linkedin_client_id": "li-cid", "linkedin_client_secret": "li-shh",
              "threads_app_id": "th-app", "threads_app_secret": "th-shh",
              "google_client_id": "g-cid.apps.googleusercontent.com", "google_client_secret": "g-shh"}


@pytest.fixture
def settings():
    # herald_allow_private_hosts: mastodon.example has no DNS here; the URL rules have their own tests.
    return make_settings(herald_dashboard_url=DASHBOARD, herald_allow_private_hosts=True, **OAUTH_APPS)


@pytest.fixture
def platforms():
    """The platforms' APIs; any request nobody mocked fails the test (no real network)."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


@asynccontextmanager
async def serve(settings, store):
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        yield http, app
    if app.state.runtime is not None:
        await app.state.runtime.http.aclose()


def cipher(client):
    """The running app's own token cipher (the runtime exists once a request has been served)."""
    return client._transport.app.state.runtime.cipher


def stored_credentials(db) -> list[str]:
    """The credentials column as stored (the API never shows it)."""
    return [row[0] for row in db.execute("select credentials_encrypted from herald.channels order by created_at")]


async def channels_of(client, who) -> list[dict]:
    response = await client.get("/api/v1/channels", headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def authorize(client, who, platform: str) -> tuple[dict, dict[str, str]]:
    response = await client.get(f"/api/v1/channels/connect/{platform}", headers=who.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    query = {k: v[0] for k, v in parse_qs(urlsplit(body["authorize_url"]).query).items()}
    return body, query


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303, 307), response.text
    location = response.headers["location"]
    assert location.startswith(f"{DASHBOARD}/"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def form(call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(call.request.content.decode()).items()}


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


# --- OAuth: the authorize URL ---------------------------------------------------------------------


async def test_x_authorize_url_carries_a_signed_state_and_an_s256_pkce_challenge(client, alice):
    body, query = await authorize(client, alice, "x")
    parts = urlsplit(body["authorize_url"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://x.com/i/oauth2/authorize"
    assert body["platform"] == "x" and body["expires_in"] == 600
    assert query["client_id"] == "x-cid" and query["response_type"] == "code"
    assert query["redirect_uri"] == f"{CALLBACK}/x"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of a SHA-256 digest, unpadded
    # The state is opaque: neither the user nor the PKCE verifier can be read from it.
    assert query["state"] and str(alice.id) not in query["state"]
    assert str(alice.id) not in base64.urlsafe_b64decode(query["state"] + "==").decode("latin-1")
    again = (await authorize(client, alice, "x"))[1]
    assert again["state"] != query["state"] and again["code_challenge"] != query["code_challenge"]


@pytest.mark.parametrize(
    ("platform", "endpoint", "client_id"),
    [
        ("facebook", "https://www.facebook.com/v25.0/dialog/oauth", "meta-app"),
        ("instagram", "https://www.facebook.com/v25.0/dialog/oauth", "meta-app"),
        ("threads", "https://threads.net/oauth/authorize", "th-app"),
        ("linkedin", "https://www.linkedin.com/oauth/v2/authorization", "li-cid"),
    ],
)
async def test_platforms_without_pkce_get_a_plain_authorize_url(client, alice, platform, endpoint, client_id):
    body, query = await authorize(client, alice, platform)
    parts = urlsplit(body["authorize_url"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == endpoint
    assert query["client_id"] == client_id and query["redirect_uri"] == f"{CALLBACK}/{platform}"
    assert query["state"] and "code_challenge" not in query and "code_challenge_method" not in query


async def test_connect_needs_a_signed_in_user(client):
    response = await client.get("/api/v1/channels/connect/x")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("platform", ["sandbox", "webhook", "telegram", "bluesky", "mastodon"])
async def test_platforms_without_oauth_are_refused_by_connect(client, alice, platform):
    response = await client.get(f"/api/v1/channels/connect/{platform}", headers=alice.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "not_oauth" and error["field"] == "platform"
    assert "POST /channels" in error["message"]


async def test_connect_to_an_unknown_platform_is_422(client, alice):
    response = await client.get("/api/v1/channels/connect/myspace", headers=alice.headers)
    assert response.status_code == 422 and response.json()["error"]["code"] == "unknown_platform"


@pytest.mark.parametrize(
    ("platform", "variables"),
    [
        ("x", ["X_CLIENT_ID"]),
        ("facebook", ["META_APP_ID", "META_APP_SECRET"]),
        ("instagram", ["META_APP_ID", "META_APP_SECRET"]),
        ("threads", ["THREADS_APP_ID", "THREADS_APP_SECRET"]),
        ("linkedin", ["LINKEDIN_CLIENT_ID", "LINKEDIN_CLIENT_SECRET"]),
        ("youtube", ["GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET"]),
    ],
)
async def test_an_unconfigured_oauth_app_is_a_clear_error_naming_the_variable(store, alice, platform, variables):
    async with serve(make_settings(herald_dashboard_url=DASHBOARD), store) as (client, _):
        response = await client.get(f"/api/v1/channels/connect/{platform}", headers=alice.headers)
    assert 400 <= response.status_code < 600 and response.status_code != 500, response.text
    error = response.json()["error"]
    assert error["code"] == "oauth_not_configured"
    for variable in variables:
        assert variable in error["message"]


async def test_a_half_configured_meta_app_names_the_missing_secret(store, alice):
    async with serve(make_settings(meta_app_id="meta-app"), store) as (client, _):
        response = await client.get("/api/v1/channels/connect/facebook", headers=alice.headers)
    assert response.status_code == 503 and "META_APP_SECRET" in response.json()["error"]["message"]


# --- OAuth: the callback --------------------------------------------------------------------------


def mock_x(platforms, *, access="x-access-SECRET", refresh="x-refresh-SECRET"):
    token = platforms.post(f"{X_API}/2/oauth2/token").respond(200, json={
        "token_type": "bearer", "expires_in": 7200, "access_token": access, "scope": "tweet.read tweet.write",
        "refresh_token": refresh})
    me = platforms.get(f"{X_API}/2/users/me").respond(200, json={"data": {"id": "42", "name": "Herald", "username": "herald"}})
    return token, me


async def test_x_callback_exchanges_the_code_with_the_verifier_and_stores_the_channel(
        client, alice, bob, store, platforms, caplog, db):
    caplog.set_level(logging.DEBUG)
    token, me = mock_x(platforms)
    _, query = await authorize(client, alice, "x")
    before = datetime.now(UTC)
    response = await client.get("/api/v1/channels/callback/x", params={"code": "auth-code-1", "state": query["state"]})
    back = redirect_query(response)
    sent = form(token.calls.last)
    assert {k: sent[k] for k in ("grant_type", "code", "redirect_uri", "client_id")} == {
        "grant_type": "authorization_code", "code": "auth-code-1", "redirect_uri": f"{CALLBACK}/x", "client_id": "x-cid"}
    assert s256(sent["code_verifier"]) == query["code_challenge"]  # the verifier behind this very challenge
    assert token.calls.last.request.headers["authorization"] == "Basic " + base64.b64encode(b"x-cid:x-shh").decode()
    assert me.calls.last.request.headers["authorization"] == "Bearer x-access-SECRET"

    [channel] = await channels_of(client, alice)
    assert back == {"connected": "x", "channel_id": channel["id"]}
    assert (channel["platform"], channel["account_id"], channel["name"]) == ("x", "42", "Herald")
    assert channel["metadata"] == {"username": "herald"} and channel["status"] == "active"
    expires = datetime.fromisoformat(channel["token_expires_at"])
    assert before + timedelta(seconds=7190) <= expires <= datetime.now(UTC) + timedelta(seconds=7200)
    assert await channels_of(client, bob) == []  # the state bound the channel to alice

    [raw] = stored_credentials(db)
    assert "x-access-SECRET" not in raw and "x-refresh-SECRET" not in raw
    kept = cipher(client).decrypt(raw)
    assert kept["access_token"] == "x-access-SECRET" and kept["refresh_token"] == "x-refresh-SECRET"
    fetched = await client.get(f"/api/v1/channels/{channel['id']}", headers=alice.headers)
    for text in (response.headers["location"], fetched.text, json.dumps(channel), caplog.text):
        assert "x-access-SECRET" not in text and "x-refresh-SECRET" not in text


async def test_connecting_an_account_again_reconnects_it_in_place(client, alice, store, platforms, db):
    """The way out of "reconnect this account": the same account through OAuth again."""
    mock_x(platforms)
    _, query = await authorize(client, alice, "x")
    await client.get("/api/v1/channels/callback/x", params={"code": "c1", "state": query["state"]})
    [first] = await channels_of(client, alice)
    await store.mark_channel_needs_reconnect(UUID(first["id"]), reason="token revoked")

    platforms.routes.clear()
    mock_x(platforms, access="x-access-NEW", refresh="x-refresh-NEW")
    _, query = await authorize(client, alice, "x")
    response = await client.get("/api/v1/channels/callback/x", params={"code": "c2", "state": query["state"]})

    [channel] = await channels_of(client, alice)
    assert redirect_query(response) == {"connected": "x", "channel_id": first["id"]}
    assert channel["id"] == first["id"] and channel["status"] == "active"
    assert cipher(client).decrypt(stored_credentials(db)[0])["access_token"] == "x-access-NEW"


async def test_linkedin_callback_stores_the_member(client, alice, store, platforms, db):
    token = platforms.post(f"{LINKEDIN_OAUTH}/oauth/v2/accessToken").respond(200, json={
        "access_token": "li-access", "expires_in": 5183999, "scope": "openid,profile,w_member_social"})
    userinfo = platforms.get(f"{LINKEDIN_API}/v2/userinfo").respond(200, json={"sub": "abc123", "name": "Ada Lovelace"})
    _, query = await authorize(client, alice, "linkedin")
    response = await client.get("/api/v1/channels/callback/linkedin", params={"code": "c", "state": query["state"]})
    assert redirect_query(response)["connected"] == "linkedin"
    assert form(token.calls.last) == {"grant_type": "authorization_code", "code": "c",
                                      "redirect_uri": f"{CALLBACK}/linkedin", "client_id": "li-cid",
                                      "client_secret": "li-shh"}
    assert userinfo.calls.last.request.headers["authorization"] == "Bearer li-access"
    [channel] = await channels_of(client, alice)
    assert (channel["account_id"], channel["name"]) == ("abc123", "Ada Lovelace")
    assert channel["metadata"] == {"author_urn": "urn:li:person:abc123"}
    assert cipher(client).decrypt(stored_credentials(db)[0]) == {"access_token": "li-access"}


async def test_facebook_callback_stores_the_granted_page_with_its_page_token(client, alice, store, platforms, db):
    exchange = platforms.get(f"{GRAPH}/oauth/access_token").mock(side_effect=[
        httpx.Response(200, json={"access_token": "short", "token_type": "bearer", "expires_in": 3600}),
        httpx.Response(200, json={"access_token": "long", "token_type": "bearer", "expires_in": 5183944})])
    pages = platforms.get(f"{GRAPH}/me/accounts").respond(200, json={"data": [
        {"id": "pg1", "name": "Bakery", "access_token": "page-token"}]})
    _, query = await authorize(client, alice, "facebook")
    response = await client.get("/api/v1/channels/callback/facebook", params={"code": "fb-code", "state": query["state"]})
    assert redirect_query(response)["connected"] == "facebook"
    first = dict(exchange.calls[0].request.url.params)
    assert first == {"client_id": "meta-app", "client_secret": "meta-shh", "redirect_uri": f"{CALLBACK}/facebook",
                     "code": "fb-code"}
    assert dict(exchange.calls[1].request.url.params)["grant_type"] == "fb_exchange_token"
    assert pages.calls.last.request.headers["authorization"] == "Bearer long"
    [channel] = await channels_of(client, alice)
    assert (channel["account_id"], channel["name"]) == ("pg1", "Bakery")
    assert cipher(client).decrypt(stored_credentials(db)[0]) == {"access_token": "page-token"}


async def test_threads_callback_stores_the_profile(client, alice, platforms):
    platforms.post(f"{THREADS}/oauth/access_token").respond(200, json={"access_token": "short", "user_id": 1})
    platforms.get(f"{THREADS}/access_token").respond(200, json={"access_token": "long", "token_type": "bearer",
                                                                "expires_in": 5183944})
    platforms.get(f"{THREADS}/v1.0/me").respond(200, json={"id": "th1", "username": "dogs"})
    _, query = await authorize(client, alice, "threads")
    response = await client.get("/api/v1/channels/callback/threads", params={"code": "c", "state": query["state"]})
    assert redirect_query(response)["connected"] == "threads"
    [channel] = await channels_of(client, alice)
    assert (channel["account_id"], channel["name"]) == ("th1", "dogs") and channel["token_expires_at"]


async def test_a_tampered_state_creates_nothing_and_returns_with_an_error(client, alice, platforms):
    token, _ = mock_x(platforms)
    _, query = await authorize(client, alice, "x")
    state = query["state"]
    tampered = state[:-6] + ("AAAAAA" if state[-6:] != "AAAAAA" else "BBBBBB")
    for bad in (tampered, "not-a-state"):
        response = await client.get("/api/v1/channels/callback/x", params={"code": "c", "state": bad})
        back = redirect_query(response)
        assert back["platform"] == "x" and "tampered" in back["connect_error"]
        assert "connected" not in back
    for params in ({"code": "c"}, {"code": "c", "state": ""}):  # a callback without its state
        missing = redirect_query(await client.get("/api/v1/channels/callback/x", params=params))
        assert missing["platform"] == "x" and "state" in missing["connect_error"] and "connected" not in missing
    assert not token.called
    assert await channels_of(client, alice) == []


async def test_an_expired_state_creates_nothing(client, alice, platforms, monkeypatch):
    token, _ = mock_x(platforms)
    _, query = await authorize(client, alice, "x")
    issued = time.time()

    class Later:  # the clock Fernet reads when it checks the state's age
        offset = 0.0

        @classmethod
        def time(cls) -> float:
            return issued + cls.offset

    monkeypatch.setattr(fernet_module, "time", Later)
    Later.offset = 601
    back = redirect_query(await client.get("/api/v1/channels/callback/x", params={"code": "c", "state": query["state"]}))
    assert "expired" in back["connect_error"] and not token.called
    assert await channels_of(client, alice) == []
    Later.offset = 590  # the same state, still within its 10 minutes, works
    back = redirect_query(await client.get("/api/v1/channels/callback/x", params={"code": "c", "state": query["state"]}))
    assert back["connected"] == "x" and len(await channels_of(client, alice)) == 1


async def test_a_state_issued_for_another_platform_is_refused(client, alice, platforms):
    token, _ = mock_x(platforms)
    li_token = platforms.post(f"{LINKEDIN_OAUTH}/oauth/v2/accessToken").respond(200, json={"access_token": "t"})
    _, linkedin = await authorize(client, alice, "linkedin")
    back = redirect_query(await client.get("/api/v1/channels/callback/x", params={"code": "c", "state": linkedin["state"]}))
    assert back["platform"] == "x" and "another platform" in back["connect_error"]
    assert not token.called and not li_token.called
    assert await channels_of(client, alice) == []


async def test_an_error_from_the_platform_creates_nothing(client, alice, platforms):
    token, _ = mock_x(platforms)
    _, query = await authorize(client, alice, "x")
    response = await client.get("/api/v1/channels/callback/x", params={
        "error": "access_denied", "error_description": "The user denied access", "state": query["state"]})
    back = redirect_query(response)
    assert back == {"connect_error": "access_denied", "platform": "x"}
    assert not token.called
    assert await channels_of(client, alice) == []


async def test_a_code_the_platform_refuses_creates_nothing(client, alice, platforms):
    platforms.post(f"{X_API}/2/oauth2/token").respond(400, json={
        "error": "invalid_request", "error_description": "Value passed for the authorization code was invalid."})
    me = platforms.get(f"{X_API}/2/users/me").respond(200, json={"data": {"id": "42", "name": "H", "username": "h"}})
    _, query = await authorize(client, alice, "x")
    back = redirect_query(await client.get("/api/v1/channels/callback/x", params={"code": "used", "state": query["state"]}))
    assert "authorization code was invalid" in back["connect_error"] and "connected" not in back
    assert not me.called
    assert await channels_of(client, alice) == []


async def test_an_unconfigured_app_at_callback_time_returns_with_the_variable_named(store, alice, platforms):
    """A state issued while the app was configured, redeemed after the secret was removed."""
    keys = make_settings().herald_encryption_keys
    async with serve(make_settings(herald_encryption_keys=keys, herald_dashboard_url=DASHBOARD, **OAUTH_APPS),
                     store) as (client, _):
        _, query = await authorize(client, alice, "facebook")
    async with serve(make_settings(herald_encryption_keys=keys, herald_dashboard_url=DASHBOARD), store) as (client, _):
        back = redirect_query(await client.get("/api/v1/channels/callback/facebook",
                                               params={"code": "c", "state": query["state"]}))
        assert "META_APP_ID" in back["connect_error"]
        assert await channels_of(client, alice) == []


# --- Credentials checked at connection time (POST /channels) ---------------------------------------


def mock_telegram(platforms):
    me = platforms.post(f"{TELEGRAM}/getMe").respond(200, json={"ok": True, "result": {
        "id": 123456789, "is_bot": True, "first_name": "Herald", "username": "herald_bot"}})
    chat = platforms.post(f"{TELEGRAM}/getChat").respond(200, json={"ok": True, "result": {
        "id": -1001234567890, "type": "channel", "title": "Herald News", "username": "heraldnews"}})
    return me, chat


async def test_a_telegram_bot_is_checked_and_the_chat_it_reports_is_stored(client, alice, store, platforms, caplog, db):
    caplog.set_level(logging.DEBUG)
    me, chat = mock_telegram(platforms)
    response = await client.post("/api/v1/channels", headers=alice.headers, json={
        "platform": "telegram", "credentials": {"bot_token": BOT_TOKEN}, "metadata": {"chat_id": "@heraldnews"}})
    assert response.status_code == 201, response.text
    assert me.called and json.loads(chat.calls.last.request.content) == {"chat_id": "@heraldnews"}
    channel = response.json()
    assert (channel["account_id"], channel["name"]) == ("-1001234567890", "Herald News")
    assert channel["metadata"]["chat_id"] == -1001234567890 and channel["metadata"]["chat_username"] == "heraldnews"
    [raw] = stored_credentials(db)
    assert BOT_TOKEN not in raw and cipher(client).decrypt(raw) == {"bot_token": BOT_TOKEN}
    listed = await client.get("/api/v1/channels", headers=alice.headers)
    for text in (response.text, listed.text, caplog.text):
        assert BOT_TOKEN not in text and BOT_TOKEN.split(":")[1] not in text
    assert "getMe" in caplog.text  # httpx did log the calls: with the token masked


async def test_the_account_id_the_platform_reports_wins_over_a_typed_one(client, alice, platforms):
    mock_telegram(platforms)
    response = await client.post("/api/v1/channels", headers=alice.headers, json={
        "platform": "telegram", "name": "My channel", "account_id": "typed-wrong",
        "credentials": {"bot_token": BOT_TOKEN}, "metadata": {"chat_id": "@heraldnews"}})
    assert response.status_code == 201, response.text
    assert response.json()["account_id"] == "-1001234567890" and response.json()["name"] == "My channel"


async def test_a_bluesky_app_password_is_checked_and_kept_only_encrypted(client, alice, store, platforms, caplog, db):
    caplog.set_level(logging.DEBUG)
    session = platforms.post(f"{BSKY}/com.atproto.server.createSession").respond(200, json={
        "accessJwt": "access-jwt-SECRET", "refreshJwt": "refresh-jwt-SECRET", "handle": "author.bsky.social", "did": DID})
    response = await client.post("/api/v1/channels", headers=alice.headers, json={
        "platform": "bluesky", "credentials": {"identifier": "author.bsky.social", "app_password": APP_PASSWORD}})
    assert response.status_code == 201, response.text
    assert json.loads(session.calls.last.request.content) == {"identifier": "author.bsky.social", "password": APP_PASSWORD}
    channel = response.json()
    assert (channel["account_id"], channel["name"]) == (DID, "author.bsky.social")
    assert channel["metadata"] == {"handle": "author.bsky.social"}
    [raw] = stored_credentials(db)
    assert APP_PASSWORD not in raw and raw.startswith("gAAAA")
    kept = cipher(client).decrypt(raw)
    assert kept["app_password"] == APP_PASSWORD and kept["identifier"] == "author.bsky.social"
    row = db.execute("select * from herald.channels").fetchone()
    assert all(APP_PASSWORD not in str(column) for column in row)
    fetched = await client.get(f"/api/v1/channels/{channel['id']}", headers=alice.headers)
    for text in (response.text, fetched.text, caplog.text):
        assert APP_PASSWORD not in text and "access-jwt-SECRET" not in text and "refresh-jwt-SECRET" not in text


async def test_a_mastodon_token_is_checked_and_the_instance_limits_are_kept(client, alice, store, platforms, db):
    account = platforms.get(f"{INSTANCE}/api/v1/accounts/verify_credentials").respond(
        200, json={"id": "42", "username": "alice", "acct": "alice", "display_name": "Alice"})
    platforms.get(f"{INSTANCE}/api/v2/instance").respond(200, json={"domain": "mastodon.example", "configuration": {
        "statuses": {"max_characters": 1000, "max_media_attachments": 6, "characters_reserved_per_url": 23},
        "media_attachments": {"image_size_limit": 10485760, "video_size_limit": 41943040}}})
    response = await client.post("/api/v1/channels", headers=alice.headers, json={
        "platform": "mastodon", "credentials": {"access_token": MASTODON_TOKEN}, "metadata": {"instance_url": INSTANCE}})
    assert response.status_code == 201, response.text
    assert account.calls.last.request.headers["authorization"] == f"Bearer {MASTODON_TOKEN}"
    channel = response.json()
    assert (channel["account_id"], channel["name"]) == ("42", "@alice@mastodon.example")
    assert channel["metadata"]["max_characters"] == 1000 and channel["metadata"]["instance_url"] == INSTANCE
    assert MASTODON_TOKEN not in response.text
    assert cipher(client).decrypt(stored_credentials(db)[0]) == {"access_token": MASTODON_TOKEN}


def refuse_telegram(platforms):
    platforms.post(f"{TELEGRAM}/getMe").respond(401, json={"ok": False, "error_code": 401, "description": "Unauthorized"})


def refuse_telegram_chat(platforms):
    mock_telegram(platforms)
    platforms.post(f"{TELEGRAM}/getChat").respond(400, json={
        "ok": False, "error_code": 400, "description": "Bad Request: chat not found"})


def refuse_bluesky(platforms):
    platforms.post(f"{BSKY}/com.atproto.server.createSession").respond(
        401, json={"error": "AuthenticationRequired", "message": "Invalid identifier or password"})


def refuse_mastodon(platforms):
    platforms.get(f"{INSTANCE}/api/v1/accounts/verify_credentials").respond(
        401, json={"error": "The access token is invalid"})


def refuse_x(platforms):
    platforms.get(f"{X_API}/2/users/me").respond(401, json={
        "title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})


def refuse_facebook(platforms):
    platforms.get(f"{GRAPH}/me").respond(400, json={"error": {
        "message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}})


def refuse_linkedin(platforms):
    platforms.get(f"{LINKEDIN_API}/v2/userinfo").respond(401, json={
        "status": 401, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN", "message": "The token used in the request has expired"})


@pytest.mark.parametrize(
    ("refuse", "body", "secret", "says"),
    [
        (refuse_telegram, {"platform": "telegram", "credentials": {"bot_token": BOT_TOKEN},
                           "metadata": {"chat_id": "@heraldnews"}}, BOT_TOKEN, "check the bot token"),
        (refuse_telegram_chat, {"platform": "telegram", "credentials": {"bot_token": BOT_TOKEN},
                                "metadata": {"chat_id": "@nochat"}}, BOT_TOKEN, "chat not found"),
        (refuse_bluesky, {"platform": "bluesky", "credentials": {"identifier": "author.bsky.social",
                                                                 "app_password": APP_PASSWORD}},
         APP_PASSWORD, "Invalid identifier or password"),
        (refuse_mastodon, {"platform": "mastodon", "credentials": {"access_token": MASTODON_TOKEN},
                           "metadata": {"instance_url": INSTANCE}}, MASTODON_TOKEN, "access token is invalid"),
        (refuse_x, {"platform": "x", "credentials": {"access_token": "x-wrong-SECRET"}}, "x-wrong-SECRET", "refused"),
        (refuse_facebook, {"platform": "facebook", "credentials": {"access_token": "fb-wrong-SECRET"}},
         "fb-wrong-SECRET", "Invalid OAuth access token"),
        (refuse_linkedin, {"platform": "linkedin", "credentials": {"access_token": "li-wrong-SECRET"}},
         "li-wrong-SECRET", "expired"),
    ],
    ids=["telegram-token", "telegram-chat", "bluesky", "mastodon", "x", "facebook", "linkedin"],
)
async def test_wrong_credentials_are_a_422_at_connection_and_nothing_is_stored(
        client, alice, store, platforms, caplog, refuse, body, secret, says, db):
    caplog.set_level(logging.DEBUG)
    refuse(platforms)
    response = await client.post("/api/v1/channels", headers=alice.headers, json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"].startswith(f"{body['platform']}") and says in error["message"]
    assert error["field"].startswith("credentials") or error["field"].startswith("metadata")
    assert secret not in response.text and secret not in caplog.text
    assert await channels_of(client, alice) == [] and stored_credentials(db) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "telegram", "credentials": {}, "metadata": {"chat_id": "@c"}}, "credentials.bot_token"),
        ({"platform": "telegram", "credentials": {"bot_token": BOT_TOKEN}}, "metadata.chat_id"),
        ({"platform": "bluesky", "credentials": {"identifier": "author.bsky.social"}}, "credentials.app_password"),
        ({"platform": "mastodon", "credentials": {"access_token": MASTODON_TOKEN}}, "metadata.instance_url"),
        ({"platform": "mastodon", "credentials": {}, "metadata": {"instance_url": INSTANCE}}, "credentials.access_token"),
    ],
)
async def test_missing_credential_fields_are_named_and_no_platform_is_called(client, alice, platforms, body, field):
    response = await client.post("/api/v1/channels", headers=alice.headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert not platforms.calls
    assert await channels_of(client, alice) == []


async def test_a_mastodon_instance_on_a_private_address_is_refused(store, alice):
    async with serve(make_settings(), store) as (client, _):
        with respx.mock(assert_all_mocked=True) as platforms:
            response = await client.post("/api/v1/channels", headers=alice.headers, json={
                "platform": "mastodon", "credentials": {"access_token": MASTODON_TOKEN},
                "metadata": {"instance_url": "https://192.168.1.10"}})
            assert not platforms.calls
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "private_address"
        assert response.json()["error"]["field"] == "metadata.instance_url"
        assert await channels_of(client, alice) == []


async def test_youtube_connects_with_offline_access_and_stores_the_refresh_token(client, alice, platforms, db):
    token = platforms.post("https://oauth2.googleapis.com/token").respond(200, json={
        "access_token": "ya29.access-SECRET", "expires_in": 3599, "refresh_token": "1//refresh-SECRET",
        "scope": "https://www.googleapis.com/auth/youtube.upload https://www.googleapis.com/auth/youtube.readonly",
        "token_type": "Bearer"})
    channels = platforms.get("https://www.googleapis.com/youtube/v3/channels").respond(200, json={
        "kind": "youtube#channelListResponse", "items": [{"kind": "youtube#channel", "id": "UC_x5XG1OV2P6uZZ5FSM9Ttw",
                                                          "snippet": {"title": "Herald Videos"},
                                                          "contentDetails": {"relatedPlaylists": {
                                                              "uploads": "UU_x5XG1OV2P6uZZ5FSM9Ttw"}}}]})
    body, query = await authorize(client, alice, "youtube")
    assert body["authorize_url"].startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    assert (query["access_type"], query["prompt"], query["client_id"]) == (
        "offline", "consent", "g-cid.apps.googleusercontent.com")
    assert query["redirect_uri"] == f"{CALLBACK}/youtube" and "code_challenge" not in query

    response = await client.get("/api/v1/channels/callback/youtube", params={"code": "4/0Ad", "state": query["state"]})

    assert redirect_query(response)["connected"] == "youtube"
    assert form(token.calls.last) == {"grant_type": "authorization_code", "code": "4/0Ad",
                                      "redirect_uri": f"{CALLBACK}/youtube",
                                      "client_id": "g-cid.apps.googleusercontent.com", "client_secret": "g-shh"}
    assert channels.calls.last.request.headers["authorization"] == "Bearer ya29.access-SECRET"
    [channel] = await channels_of(client, alice)
    assert (channel["platform"], channel["account_id"], channel["name"]) == (
        "youtube", "UC_x5XG1OV2P6uZZ5FSM9Ttw", "Herald Videos")
    assert channel["metadata"] == {"uploads_playlist_id": "UU_x5XG1OV2P6uZZ5FSM9Ttw"}
    kept = cipher(client).decrypt(stored_credentials(db)[0])
    assert kept == {"access_token": "ya29.access-SECRET", "refresh_token": "1//refresh-SECRET"}


# --- OAuth in a team workspace ----------------------------------------------------------------------


async def test_a_connect_begun_in_a_team_workspace_lands_there_and_only_for_who_may_connect(
        client, alice, bob, platforms):
    """The signed state carries the workspace the connect began in; the callback (service role) checks
    again that the user may connect channels there, since a role can change in between."""
    platforms.post(f"{LINKEDIN_OAUTH}/oauth/v2/accessToken").respond(200, json={
        "access_token": "li-access", "expires_in": 5183999, "scope": "openid,profile,w_member_social"})
    platforms.get(f"{LINKEDIN_API}/v2/userinfo").respond(200, json={"sub": "abc123", "name": "Ada Lovelace"})
    ws = (await client.post("/api/v1/workspaces", json={"name": "Agency"}, headers=alice.headers)).json()["id"]
    invite = await client.post(f"/api/v1/workspaces/{ws}/invites", json={"role": "editor"}, headers=alice.headers)
    await client.post("/api/v1/invites/accept", json={"token": invite.json()["token"]}, headers=bob.headers)
    in_team = type(alice)(alice.id, {**alice.headers, "X-Workspace-Id": ws})
    bob_in_team = type(bob)(bob.id, {**bob.headers, "X-Workspace-Id": ws})

    _, query = await authorize(client, bob_in_team, "linkedin")
    refused = redirect_query(await client.get("/api/v1/channels/callback/linkedin",
                                              params={"code": "c", "state": query["state"]}))
    assert "connecting channels needs the admin role" in refused["connect_error"] and "connected" not in refused

    _, query = await authorize(client, in_team, "linkedin")
    back = redirect_query(await client.get("/api/v1/channels/callback/linkedin",
                                           params={"code": "c", "state": query["state"]}))
    assert back["connected"] == "linkedin"
    [channel] = await channels_of(client, in_team)
    assert channel["workspace_id"] == ws
    assert await channels_of(client, alice) == []  # not in alice's personal workspace
    assert [c["id"] for c in await channels_of(client, bob_in_team)] == [channel["id"]]
