"""The PostgREST-rpc test fixture answers like PostgREST, and SupabaseStore maps those answers."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import httpx
import jwt
import pytest

from services.domain.models import User
from services.errors import AuthenticationError, StoreError
from services.store.supabase import SupabaseStore
from tests.support.supabase_fixtures import ANON_KEY, JWT_SECRET, SERVICE_ROLE_KEY, SUPABASE_URL, user_token


@pytest.fixture
async def http(postgrest_rpc):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=postgrest_rpc.app), base_url=SUPABASE_URL) as client:
        yield client


def headers(token: str, apikey: str | None = ANON_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **({"apikey": apikey} if apikey else {})}


async def test_a_request_without_an_apikey_is_refused(http):
    response = await http.post("/rest/v1/rpc/herald_ping_v1", json={}, headers=headers(ANON_KEY, apikey=None))
    assert response.status_code == 401


@pytest.mark.parametrize(("token", "code"), [
    ("not-a-jwt", "PGRST301"),                                                        # garbage
    (jwt.encode({"role": "service_role"}, "another-secret-of-thirty-two-bytes!!"), "PGRST301"),  # forged
    (user_token(uuid.uuid4(), expires_in=-60), "PGRST303"),                             # expired
])
async def test_a_bad_jwt_is_a_401_with_postgrests_code(http, token, code):
    response = await http.post("/rest/v1/rpc/herald_ping_v1", json={}, headers=headers(token))
    assert response.status_code == 401 and response.json()["code"] == code


async def test_a_user_calling_a_cron_function_gets_403_insufficient_privilege(http):
    response = await http.post("/rest/v1/rpc/herald_count_due_v1", json={"p_now": "2030-01-01T00:00:00+00:00"},
                               headers=headers(user_token(uuid.uuid4())))
    assert response.status_code == 403 and response.json()["code"] == "42501"


async def test_unknown_functions_and_arguments_are_404(http):
    for fn, body in [("herald_nope_v1", {}), ("herald_count_due_v1", {"p_when": "x"}), ("pg_sleep; --", {})]:
        response = await http.post(f"/rest/v1/rpc/{fn}", json=body, headers=headers(SERVICE_ROLE_KEY))
        assert response.status_code == 404 and response.json()["code"] == "PGRST202", fn


async def test_sql_errors_come_back_in_postgrests_shape(http):
    response = await http.post("/rest/v1/rpc/herald_get_post_v1", json={"p_post_id": str(uuid.uuid4())},
                               headers=headers(user_token(uuid.uuid4())))
    assert response.status_code == 400
    assert response.json() == {"code": "HR404", "message": "post not found", "details": None, "hint": "post_id"}


async def test_void_functions_answer_204(http):
    response = await http.post("/rest/v1/rpc/herald_mark_sending_v1",
                               json={"p_target_ids": [], "p_now": "2030-01-01T00:00:00+00:00"},
                               headers=headers(SERVICE_ROLE_KEY))
    assert response.status_code == 204


async def test_store_maps_refused_credentials_and_unexpected_errors(http):
    store = SupabaseStore(SUPABASE_URL, SERVICE_ROLE_KEY, ANON_KEY, http=http)
    await store.ping()
    expired = User(id=uuid.uuid4(), token=user_token(uuid.uuid4(), expires_in=-60))
    with pytest.raises(AuthenticationError):
        await store.list_channels(expired)
    broken = SupabaseStore(SUPABASE_URL, jwt.encode({"role": "authenticated"}, JWT_SECRET), ANON_KEY, http=http)
    with pytest.raises(StoreError) as err:
        await broken.count_due(now=datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert "42501" in err.value.message and JWT_SECRET not in err.value.message
