"""Shared fixtures: a store harness per store kind, fresh for every test.

``harness`` is parametrised over both transports of the one store logic (the SQL functions), so
any test that takes it is a contract test run against PostgresStore (psycopg, as ``make run`` uses
it) and SupabaseStore (through real supabase-py and the PostgREST fixture), both on real
PostgreSQL (``tests/support/supabase_fixtures.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

# Tests build their Settings explicitly; nothing from the developer's shell leaks in (but the
# choice of test database server, HERALD_TEST_DATABASE_URL).
for _name in list(os.environ):
    if _name == "HERALD_TEST_DATABASE_URL":
        continue
    if _name.startswith(("HERALD_", "SUPABASE_")) or _name in {
        "CRON_SECRET", "MAX_POSTS_PER_RUN", "REQUEST_TIMEOUT", "MAX_RETRY_COUNT", "RUN_BUDGET_SECONDS",
        "PUBLISH_CONCURRENCY", "RETRY_BASE_SECONDS", "LEASE_SECONDS", "CORS_ORIGINS", "LOOKAHEAD_SECONDS",
        "MAX_PARALLEL_RUNS", "MAX_ANALYTICS_PER_RUN", "YOUTUBE_DAILY_QUOTA_UNITS", "YOUTUBE_INSERT_UNITS",
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


@pytest.fixture(params=["postgres", "supabase"])
def harness(request) -> Harness:
    return request.getfixturevalue(f"{request.param}_harness")


pytest_plugins = ["tests.support.supabase_fixtures"]
