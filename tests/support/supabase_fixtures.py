"""Placeholder: the Supabase harness (PostgREST-rpc fixture on real Postgres) lands here."""
import pytest


@pytest.fixture
def supabase_harness():
    pytest.skip("supabase harness not built yet")
