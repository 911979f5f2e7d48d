"""Every OAuth platform's connect flow end to end: the real app and a loopback platform simulator.

Each platform's every host (its API and, through ``<platform>.oauth``, its authorize page and token
endpoint) is pointed at the simulator with HERALD_PLATFORM_BASE_URLS. The test asks Herald for the
authorize URL, follows it to the simulator's authorize page (which approves at once and redirects
with a code and the state), calls Herald's callback with what came back, and finds the channel
connected with its tokens stored encrypted. The simulator is shaped like each platform's token and
identity endpoints; the exact requests are the adapters' own tests' (tests/platforms).
"""

from __future__ import annotations

import base64
import hashlib
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.factory import create_app
from services.platforms.registry import build_platforms
from tests.api.conftest import make_settings
from tests.support.simulator import Reply, Simulator

DASHBOARD = "https://dash.example.com/app"
CALLBACK = "http://herald.test/api/v1/channels/callback"
OAUTH_APPS = {"meta_app_id": "meta-app", "meta_app_secret": "meta-shh", "x_client_id": "x-cid",
              "x_client_secret": "x-shh", "linkedin_client_id": "li-cid", "linkedin_client_secret": "li-shh",
              "threads_app_id": "th-app", "threads_app_secret": "th-shh", "tiktok_client_key": "tt-key",
              "tiktok_client_secret": "tt-shh", "google_client_id": "g-cid.apps.googleusercontent.com",
              "google_client_secret": "g-shh"}
GRAPH = "/v25.0"


@dataclass(frozen=True)
class Flow:
    """What the simulator plays for one platform, and what Herald must end up storing."""

    authorize_path: str
    token_path: str  #: where the code is traded (its request carries the code and redirect_uri)
    token_method: str
    account_id: str
    name: str
    credentials: dict[str, str]


def meta_tokens(sim: Simulator) -> None:
    """Facebook Login: the code for a short-lived user token, that for a long-lived one (same path)."""
    sim.script(f"{GRAPH}/oauth/access_token",
               Reply(body={"access_token": "short-user", "token_type": "bearer", "expires_in": 3600}),
               Reply(body={"access_token": "long-user", "token_type": "bearer", "expires_in": 5183944}),
               method="GET")


def play_facebook(sim: Simulator) -> Flow:
    meta_tokens(sim)
    sim.answer(f"{GRAPH}/me/accounts", Reply(body={"data": [
        {"id": "104000000000001", "name": "Bakery", "access_token": "page-token-SECRET"}]}))
    return Flow(f"{GRAPH}/dialog/oauth", f"{GRAPH}/oauth/access_token", "GET", "104000000000001", "Bakery",
                {"access_token": "page-token-SECRET"})


def play_instagram(sim: Simulator) -> Flow:
    meta_tokens(sim)
    sim.answer(f"{GRAPH}/me/accounts", Reply(body={"data": [
        {"id": "104000000000001", "instagram_business_account": {"id": "17841400000000001", "username": "cats"}}]}))
    return Flow(f"{GRAPH}/dialog/oauth", f"{GRAPH}/oauth/access_token", "GET", "17841400000000001", "cats",
                {"access_token": "long-user"})


def play_threads(sim: Simulator) -> Flow:
    sim.answer("/oauth/access_token", Reply(body={"access_token": "short-th", "user_id": 1}), method="POST")
    sim.answer("/access_token", Reply(body={"access_token": "long-th-SECRET", "token_type": "bearer",
                                            "expires_in": 5183944}))
    sim.answer("/v1.0/me", Reply(body={"id": "th1", "username": "dogs"}))
    return Flow("/oauth/authorize", "/oauth/access_token", "POST", "th1", "dogs", {"access_token": "long-th-SECRET"})


def play_x(sim: Simulator) -> Flow:
    sim.answer("/2/oauth2/token", Reply(body={"token_type": "bearer", "expires_in": 7200,
                                              "access_token": "x-access-SECRET", "scope": "tweet.read tweet.write",
                                              "refresh_token": "x-refresh-SECRET"}))
    sim.answer("/2/users/me", Reply(body={"data": {"id": "42", "name": "Herald", "username": "herald"}}))
    return Flow("/i/oauth2/authorize", "/2/oauth2/token", "POST", "42", "Herald",
                {"access_token": "x-access-SECRET", "refresh_token": "x-refresh-SECRET",
                 "scope": "tweet.read tweet.write"})


def play_linkedin(sim: Simulator) -> Flow:
    sim.answer("/oauth/v2/accessToken", Reply(body={"access_token": "li-access-SECRET", "expires_in": 5183999,
                                                    "scope": "openid,profile,w_member_social"}))
    sim.answer("/v2/userinfo", Reply(body={"sub": "abc123", "name": "Ada Lovelace"}))
    return Flow("/oauth/v2/authorization", "/oauth/v2/accessToken", "POST", "abc123", "Ada Lovelace",
                {"access_token": "li-access-SECRET"})


def play_tiktok(sim: Simulator) -> Flow:
    sim.answer("/v2/oauth/token/", Reply(body={
        "access_token": "tt-access-SECRET", "expires_in": 86400, "open_id": "tt-open-1",
        "refresh_token": "tt-refresh-SECRET", "refresh_expires_in": 31536000,
        "scope": "user.info.basic,video.publish", "token_type": "Bearer"}), method="POST")
    sim.answer("/v2/post/publish/creator_info/query/", Reply(body={
        "data": {"creator_username": "herald", "creator_nickname": "Herald", "creator_avatar_url": "",
                 "privacy_level_options": ["SELF_ONLY"], "comment_disabled": False, "duet_disabled": False,
                 "stitch_disabled": False, "max_video_post_duration_sec": 600},
        "error": {"code": "ok", "message": "", "log_id": "log-1"}}), method="POST")
    return Flow("/v2/auth/authorize/", "/v2/oauth/token/", "POST", "tt-open-1", "Herald",
                {"access_token": "tt-access-SECRET", "refresh_token": "tt-refresh-SECRET", "open_id": "tt-open-1",
                 "scope": "user.info.basic,video.publish"})


def play_youtube(sim: Simulator) -> Flow:
    """Google OAuth (youtube.oauth: the consent screen; youtube.token: the token endpoint), then the channel."""
    sim.answer("/token", Reply(body={"access_token": "ya29.access-SECRET", "expires_in": 3599,
                                     "refresh_token": "1//refresh-SECRET", "token_type": "Bearer",
                                     "scope": "https://www.googleapis.com/auth/youtube.upload"}), method="POST")
    sim.answer("/youtube/v3/channels", Reply(body={"kind": "youtube#channelListResponse", "items": [{
        "kind": "youtube#channel", "id": "UC_x5XG1OV2P6uZZ5FSM9Ttw", "snippet": {"title": "Herald Videos"},
        "contentDetails": {"relatedPlaylists": {"uploads": "UU_x5XG1OV2P6uZZ5FSM9Ttw"}}}]}), method="GET")
    return Flow("/o/oauth2/v2/auth", "/token", "POST", "UC_x5XG1OV2P6uZZ5FSM9Ttw", "Herald Videos",
                {"access_token": "ya29.access-SECRET", "refresh_token": "1//refresh-SECRET"})


PLAYS = {"facebook": play_facebook, "instagram": play_instagram, "threads": play_threads, "x": play_x,
         "linkedin": play_linkedin, "tiktok": play_tiktok, "youtube": play_youtube}


def test_every_oauth_platform_in_the_registry_has_a_flow_here():
    """A new OAuth platform (TikTok, YouTube, ...) gets its connect flow covered here too."""
    platforms = build_platforms(outbox=None, public_url="http://localhost")  # type: ignore[arg-type]
    assert {name for name, p in platforms.items() if "oauth" in {f.value for f in p.features}} == set(PLAYS)


@asynccontextmanager
async def herald(store, base_urls: dict[str, str]):
    app = create_app(make_settings(herald_dashboard_url=DASHBOARD, herald_platform_base_urls=base_urls,
                                   **OAUTH_APPS), store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        yield http, app
    if app.state.runtime is not None:
        await app.state.runtime.http.aclose()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def connect_through_the_simulator(client, who, sim: Simulator, platform: str) -> tuple[str, httpx.Response]:
    """Herald's authorize URL -> the simulator's authorize page -> Herald's callback. Returns the
    authorize URL and the callback's answer."""
    response = await client.get(f"/api/v1/channels/connect/{platform}", headers=who.headers)
    assert response.status_code == 200, response.text
    authorize_url = response.json()["authorize_url"]
    async with httpx.AsyncClient() as browser:  # the user's browser, at the "platform"
        approved = await browser.get(authorize_url)
    assert approved.status_code == 302, approved.text
    back = urlsplit(approved.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{CALLBACK}/{platform}"
    return authorize_url, await client.get(f"{back.path}?{back.query}")


@pytest.mark.parametrize("platform", sorted(PLAYS))
@pytest.mark.parametrize("keys", ["platform", "dotted"], ids=["one-key-per-platform", "a-key-per-host"])
async def test_connecting_through_the_simulator_stores_the_channel_with_its_tokens_encrypted(
        store, alice, bob, sim, db, platform, keys):
    flow = PLAYS[platform](sim)
    sim.authorize(flow.authorize_path)
    # one key moves every host of the platform; dotted keys move each host on its own
    base_urls = ({platform: sim.url} if keys == "platform"
                 else {platform: sim.url, f"{platform}.oauth": sim.url})
    async with herald(store, base_urls) as (client, app):
        authorize_url, response = await connect_through_the_simulator(client, alice, sim, platform)

        parts = urlsplit(authorize_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{sim.url}{flow.authorize_path}"
        sent = query_of(authorize_url)
        assert sent["redirect_uri"] == f"{CALLBACK}/{platform}" and sent["response_type"] == "code"
        [code] = sim.codes
        [exchange] = [r for r in sim.received(flow.token_path, method=flow.token_method)
                      if (r.params() if flow.token_method == "GET" else r.form()).get("code") == code]
        traded = exchange.params() if flow.token_method == "GET" else exchange.form()
        assert traded["redirect_uri"] == f"{CALLBACK}/{platform}"
        if platform in ("x", "tiktok"):  # PKCE: the verifier behind the challenge of this very authorize URL
            digest = hashlib.sha256(traded["code_verifier"].encode()).digest()
            assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == sent["code_challenge"]

        assert response.status_code in (302, 303, 307), response.text
        location = response.headers["location"]
        assert location.startswith(f"{DASHBOARD}/") and query_of(location)["connected"] == platform, location
        listed = await client.get("/api/v1/channels", headers=alice.headers)
        [channel] = listed.json()["items"]
        assert query_of(location)["channel_id"] == channel["id"]
        assert (channel["platform"], channel["account_id"], channel["name"], channel["status"]) == (
            platform, flow.account_id, flow.name, "active")
        assert (await client.get("/api/v1/channels", headers=bob.headers)).json()["items"] == []

        [raw] = [row[0] for row in db.execute("select credentials_encrypted from herald.channels")]
        for key, secret in flow.credentials.items():
            assert secret not in raw
            if key.endswith("token"):  # the tokens; an open_id is the account's public id
                assert secret not in listed.text and secret not in location
        assert app.state.runtime.cipher.decrypt(raw) == flow.credentials


async def test_a_dotted_key_moves_only_its_own_host(store, alice, sim):
    """``linkedin.oauth`` alone: the authorize page and token endpoint move, the API stays real."""
    async with herald(store, {"linkedin.oauth": sim.url}) as (client, _):
        response = await client.get("/api/v1/channels/connect/linkedin", headers=alice.headers)
    assert response.json()["authorize_url"].startswith(f"{sim.url}/oauth/v2/authorization?")
