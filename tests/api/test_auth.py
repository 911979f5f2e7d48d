"""User endpoints require a valid Supabase JWT; CORS follows CORS_ORIGINS."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric import ec

from api.factory import create_app
from tests.api.conftest import JWT_SECRET, make_settings

USER_ENDPOINTS = [
    ("GET", "/api/v1/posts"), ("POST", "/api/v1/posts"), ("GET", f"/api/v1/posts/{uuid.uuid4()}"),
    ("PATCH", f"/api/v1/posts/{uuid.uuid4()}"), ("DELETE", f"/api/v1/posts/{uuid.uuid4()}"),
    ("GET", "/api/v1/posts/statistics"), ("GET", "/api/v1/channels"), ("POST", "/api/v1/channels"),
    ("DELETE", f"/api/v1/channels/{uuid.uuid4()}"), ("GET", "/api/v1/activity"), ("GET", "/api/v1/sandbox/outbox"),
]


def token(**claims) -> str:
    now = int(time.time())
    base = {"sub": str(uuid.uuid4()), "aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 600}
    base.update(claims)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, JWT_SECRET, algorithm="HS256")


@pytest.mark.parametrize(("method", "path"), USER_ENDPOINTS)
async def test_every_user_endpoint_needs_a_token(client, method, path):
    response = await client.request(method, path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("bearer", "code"),
    [
        (token(exp=int(time.time()) - 10), "token_expired"),
        (token(aud="anon"), "unauthorized"),  # wrong audience
        (token(aud=None), "unauthorized"),  # a project API key has no aud
        (token(sub="not-a-uuid"), "unauthorized"),
        (jwt.encode({"sub": str(uuid.uuid4()), "aud": "authenticated", "exp": int(time.time()) + 60},
                    "another-secret-entirely-0123456789", algorithm="HS256"), "unauthorized"),
        ("not.a.jwt", "unauthorized"),
    ],
)
async def test_bad_tokens_are_401(client, bearer, code):
    response = await client.get("/api/v1/posts", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 401 and response.json()["error"]["code"] == code


async def test_asymmetric_tokens_are_verified_with_the_projects_jwks(store):
    key = ec.generate_private_key(ec.SECP256R1())
    public = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "k1", "alg": "ES256"}
    url = "https://proj.supabase.co"
    app = create_app(make_settings(supabase_url=url, supabase_jwt_secret=JWT_SECRET), store=store)
    user = uuid.uuid4()
    signed = jwt.encode({"sub": str(user), "aud": "authenticated", "exp": int(time.time()) + 60}, key,
                        algorithm="ES256", headers={"kid": "k1"})
    with respx.mock(assert_all_called=True) as mock:
        jwks = mock.get(f"{url}/auth/v1/.well-known/jwks.json").respond(200, json={"keys": [public]})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
            ok = await http.get("/api/v1/posts", headers={"Authorization": f"Bearer {signed}"})
            assert ok.status_code == 200, ok.text
            await http.get("/api/v1/posts", headers={"Authorization": f"Bearer {signed}"})
            forged = jwt.encode({"sub": str(user), "aud": "authenticated", "exp": int(time.time()) + 60},
                                ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "k1"})
            bad = await http.get("/api/v1/posts", headers={"Authorization": f"Bearer {forged}"})
            assert bad.status_code == 401
        assert jwks.call_count == 1  # cached between requests
    await app.state.runtime.http.aclose()


async def test_cors_allows_only_configured_origins(client):
    allowed = await client.options("/api/v1/posts", headers={
        "Origin": "https://dash.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example.com"
    denied = await client.options("/api/v1/posts", headers={
        "Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in denied.headers


async def test_unknown_route_is_a_json_404(client):
    response = await client.get("/api/v1/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
