"""API fixtures: the real ASGI app on a fresh SQLite store, and tokens shaped like Supabase's."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx
import pytest
from cryptography.fernet import Fernet

from api.factory import create_app
from services.security.jwt import issue_token
from services.settings import Settings
from services.store.sqlite import SqliteStore

JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256"
CRON_SECRET = "test-cron-secret-0123456789"


@dataclass
class Caller:
    id: uuid.UUID
    headers: dict[str, str]


def make_settings(**overrides) -> Settings:
    values = dict(
        herald_store="sqlite", supabase_jwt_secret=JWT_SECRET, cron_secret=CRON_SECRET,
        herald_encryption_keys=[Fernet.generate_key().decode()], cors_origins=["https://dash.example.com"],
        herald_public_url="http://herald.test",
    )
    values.update(overrides)
    settings = Settings(_env_file=None, **values)
    settings.check()
    return settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def store(tmp_path):
    store = SqliteStore(str(tmp_path / "api.db"))
    yield store
    store.close()


@pytest.fixture
async def client(settings, store):
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        yield http
    if app.state.runtime is not None:
        await app.state.runtime.http.aclose()


def caller() -> Caller:
    user_id = uuid.uuid4()
    return Caller(user_id, {"Authorization": f"Bearer {issue_token(user_id, JWT_SECRET)}"})


@pytest.fixture
def alice() -> Caller:
    return caller()


@pytest.fixture
def bob() -> Caller:
    return caller()


CRON = {"X-Cron-Secret": CRON_SECRET}


async def sandbox_channel(client, who: Caller, account: str = "demo", **extra) -> dict:
    body = {"platform": "sandbox", "name": f"Sandbox {account}", "account_id": account,
            "credentials": {"access_token": "placeholder"}, **extra}
    response = await client.post("/api/v1/channels", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()
