"""Shared fixtures: a store harness per store kind, fresh for every test.

``harness`` is parametrised over both stores, so any test that takes it is a contract test run
against SqliteStore and SupabaseStore (through real supabase-py and the PostgREST-rpc fixture on
this machine's Postgres).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from services.domain.models import User
from services.store.sqlite import SqliteStore

# Tests build their Settings explicitly; nothing from the developer's shell leaks in.
for _name in list(os.environ):
    if _name.startswith(("HERALD_", "SUPABASE_")) or _name in {
        "CRON_SECRET", "MAX_POSTS_PER_RUN", "REQUEST_TIMEOUT", "MAX_RETRY_COUNT", "RUN_BUDGET_SECONDS",
        "PUBLISH_CONCURRENCY", "RETRY_BASE_SECONDS", "LEASE_SECONDS", "CORS_ORIGINS",
    }:
        del os.environ[_name]


@dataclass
class Harness:
    """One store under test, with a way to make users and to open a second store on the same data."""

    kind: str
    store: Any
    new_user: Callable[[], Any]
    another_store: Callable[[], Any]
    #: run SQL as the database's superuser on the store's data (rows no API call could write);
    #: returns the rows, or [] for a statement without a result
    sql: Callable[..., list] | None = None


@pytest.fixture
def sqlite_harness(tmp_path) -> Harness:
    path = str(tmp_path / "herald.db")
    opened: list[SqliteStore] = []

    def open_store() -> SqliteStore:
        store = SqliteStore(path)
        opened.append(store)
        return store

    harness = Harness(
        kind="sqlite",
        store=open_store(),
        new_user=lambda: User(id=uuid.uuid4()),
        another_store=open_store,
    )
    yield harness
    for store in opened:
        store.close()


@pytest.fixture(params=["sqlite", "supabase"])
def harness(request) -> Harness:
    return request.getfixturevalue(f"{request.param}_harness")


pytest_plugins = ["tests.support.supabase_fixtures"]
