"""API fixtures: the real ASGI app on PostgresStore over a fresh database clone, and callers with
Supabase-shaped tokens who exist in ``auth.users`` (as every signed-in Supabase user does)."""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet

from api.factory import create_app
from services import clock
from services.security.jwt import issue_token
from services.settings import Settings
from services.store.postgres import PostgresStore
from tests.support.simulator import Simulator

JWT_SECRET = "test-jwt-secret-that-is-long-enough-for-hs256"
CRON_SECRET = "test-cron-secret-0123456789"


@dataclass
class Caller:
    id: uuid.UUID
    headers: dict[str, str]


def make_settings(**overrides) -> Settings:
    values = dict(
        herald_store="postgres", herald_database_url="postgresql://unused.invalid/herald", supabase_jwt_secret=JWT_SECRET, cron_secret=CRON_SECRET,
        herald_encryption_keys=[Fernet.generate_key().decode()], cors_origins=["https://dash.example.com"],
        herald_public_url="http://herald.test",
        # no media file is fetched unless a test asks for it (and mocks the media host)
        herald_media_checks=False,
    )
    values.update(overrides)
    settings = Settings(_env_file=None, **values)
    settings.check()
    return settings


@pytest.fixture
def settings() -> Settings:
    return make_settings()


#: names reserved for examples and tests (RFC 2606, RFC 6761): the ones tests put in URLs
TEST_DOMAINS = ("example", "example.com", "example.net", "example.org", "test", "invalid")


@pytest.fixture
def dns(monkeypatch) -> dict[str, str]:
    """Name resolution for test URLs without the network, as tests/platforms/test_urls.py does it:
    a name in the returned table resolves to its address, any other name under TEST_DOMAINS fails as
    one that does not exist, and everything else (the test database's host) resolves as usual.
    Herald's media URL check (getaddrinfo in the loop's executor) sees it."""
    table: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host in table:
            return real(table[host], port, family, type, proto, flags | socket.AI_NUMERICHOST)
        name = str(host or "").lower().rstrip(".")
        if any(name == d or name.endswith(f".{d}") for d in TEST_DOMAINS):
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: not in the test's DNS table")
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
async def store(pg_database):
    store = PostgresStore(pg_database, max_connections=4)
    yield store
    await store.close()


@pytest.fixture
def db(pg_database):
    """A superuser connection to the app's database (for what no API call shows, e.g. ciphertext)."""
    with psycopg.connect(pg_database, autocommit=True) as conn:
        yield conn


@pytest.fixture
async def client(settings, store):
    app = create_app(settings, store=store)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://herald.test") as http:
        yield http
    if app.state.runtime is not None:
        await app.state.runtime.http.aclose()


@pytest.fixture
def sim():
    """The loopback platform simulator (tests/support/simulator.py) the end-to-end tests point hosts at."""
    with Simulator() as simulator:
        yield simulator


@pytest.fixture
def later(monkeypatch):
    """``later(seconds)`` moves Herald's clock that far past the real one."""
    def move(seconds: float) -> datetime:
        moved = datetime.now(timezone.utc) + timedelta(seconds=seconds)
        monkeypatch.setattr(clock, "utcnow", lambda: moved)
        return moved
    return move


@pytest.fixture
def new_caller(db):
    """Make a signed-in user: an auth.users row and an access token for it."""

    def make() -> Caller:
        user_id = uuid.uuid4()
        db.execute("insert into auth.users (id, email) values (%s, %s)", [user_id, f"{user_id}@herald.test"])
        return Caller(user_id, {"Authorization": f"Bearer {issue_token(user_id, JWT_SECRET)}"})

    return make


@pytest.fixture
def alice(new_caller) -> Caller:
    return new_caller()


@pytest.fixture
def bob(new_caller) -> Caller:
    return new_caller()


CRON = {"X-Cron-Secret": CRON_SECRET}


async def sandbox_channel(client, who: Caller, account: str = "demo", **extra) -> dict:
    body = {"platform": "sandbox", "name": f"Sandbox {account}", "account_id": account,
            "credentials": {"access_token": "placeholder"}, **extra}
    response = await client.post("/api/v1/channels", json=body, headers=who.headers)
    assert response.status_code == 201, response.text
    return response.json()
