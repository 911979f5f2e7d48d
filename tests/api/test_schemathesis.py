"""Schemathesis against the app, every check on: generated requests (valid and not) for every
operation in the OpenAPI, answered by the real app on a real store, as a signed-in user with
the cron secret. No answer may be a 5xx, differ from the documented schema, or carry an
undocumented status; invalid input must be refused and valid input taken.

Bounded (``MAX_EXAMPLES`` per operation, derandomized so a run is repeatable) to stay well under a
minute here; raise it locally to search harder.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from typing import Any

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.factory import create_app
from services.security.jwt import issue_token
from services.store.postgres import PostgresStore
from tests.api.conftest import CRON_SECRET, JWT_SECRET, make_settings
from tests.support.supabase_fixtures import cloned_database

MAX_EXAMPLES = 10
SETTINGS = make_settings()
USER_ID = uuid.uuid4()
CONFIG = schemathesis.Config.from_dict({
    # Credentials go through the security schemes the OpenAPI declares, so Schemathesis knows them: it
    # leaves them out to test that they are required, and tells such a request from a wrong one.
    "auth": {"openapi": {
        "SupabaseJWT": {"bearer": issue_token(USER_ID, JWT_SECRET, ttl_seconds=24 * 3600)},
        "CronSecret": {"api_key": CRON_SECRET},
    }},
    # Schemathesis's list of refusals, and 413: a body over the limit is refused before it is read
    # (so before it can be found invalid), e.g. a bulk create of 100 generated posts.
    "checks": {"negative_data_rejection": {"expected-statuses": [
        "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]}},
})
#: Hypothesis builds no string this long (its buffer is 8 KiB of choices), so Schemathesis cannot
#: make a too-long one and stops with InvalidSchema; such a limit (a post's text: 100,000
#: characters) is left out of the document it reads and tested in test_openapi instead
LONGEST_GENERATED = 10_000


def _without_huge_limits(document: Any) -> Any:
    if isinstance(document, dict):
        return {key: _without_huge_limits(value) for key, value in document.items()
                if not (key == "maxLength" and value > LONGEST_GENERATED)}
    if isinstance(document, list):
        return [_without_huge_limits(item) for item in document]
    return document


def _document_app():
    """An app with no store (the document needs none) that serves the document Schemathesis reads."""
    app = create_app(SETTINGS)
    app.openapi_schema = _without_huge_limits(app.openapi())
    return app


# Each test calls an app of its own (below); this one only hands out the document.
schema = schemathesis.openapi.from_asgi("/openapi.json", _document_app(), config=CONFIG)


@pytest.fixture(scope="module")
def database(herald_template):
    """One database for the module (what one operation's requests create, the next ones meet), with the user."""
    with cloned_database(herald_template) as dsn:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute("insert into auth.users (id, email) values (%s, %s)", [USER_ID, f"{USER_ID}@herald.test"])
        yield dsn


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Generated URLs (media, webhook endpoints, channels) never reach the network: every name but
    localhost fails to resolve at once (addresses are taken as they are), as a name that does not exist would (the app accepts
    those at creation and checks them again when it calls them). The database is reached by libpq,
    which resolves names itself."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = str(host or "").lower()
        try:
            ipaddress.ip_address(name.strip("[]"))
            return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)  # an address: no lookup
        except ValueError:
            pass
        if name == "localhost":
            return real(host, port, family, type, proto, flags)
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def app(database):
    """The app on the module's database, closing its store when Schemathesis ends the app's lifespan.

    Schemathesis runs every app on one event loop of its own and ends their lifespans after each
    test: the store's connection pool is opened and closed on that loop.
    """
    store = PostgresStore(database, max_connections=4)
    herald = create_app(SETTINGS, store=store)

    async def with_lifespan(scope, receive, send):
        if scope["type"] != "lifespan":
            await herald(scope, receive, send)
            return
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await store.close()
        if herald.state.runtime is not None:
            await herald.state.runtime.http.aclose()
        await send({"type": "lifespan.shutdown.complete"})

    return with_lifespan


def positive_data_acceptance_but_for_rules_a_schema_cannot_state(ctx, response, case):
    """Schemathesis's positive_data_acceptance, but for the 422s Herald's services answer.

    Some rules have no words in JSON Schema: a time zone must exist, a rule parse as RFC 5545, a
    time lie ahead, a channel be the caller's, content fit each target's platform. The services
    check those after the request is read and answer a 422 without ``errors``. A 422 *with*
    ``errors`` comes from reading the request against the models the OpenAPI is generated from:
    for a request the OpenAPI accepts, that is a disagreement between the two, and still fails.
    """
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code == 422 and "errors" not in response.json()["error"]:
            return None
        raise


@schema.parametrize()
# the app is meant to be shared by one operation's examples (it is what a deployment is: one app, many requests)
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_the_api_answers_as_its_openapi_says(case, app):
    case.call_and_validate(app=app, excluded_checks=[positive_data_acceptance],
                           additional_checks=[positive_data_acceptance_but_for_rules_a_schema_cannot_state])
