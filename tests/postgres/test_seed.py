"""supabase/seed.sql does what it promises: the first cron run publishes its demo post."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
from cryptography.fernet import Fernet

from services.platforms.sandbox import SandboxPlatform
from services.publishing.run import RunLimits, publish_due
from services.security.crypto import TokenCipher

SEED = Path(__file__).resolve().parents[2] / "supabase" / "seed.sql"


async def test_the_first_run_publishes_the_seeded_demo_post(supabase_harness, pg_database):
    with psycopg.connect(pg_database, autocommit=True) as db:
        db.execute(SEED.read_text())
    store = supabase_harness.store
    any_key = TokenCipher([Fernet.generate_key().decode()])  # the seed knows no key, and needs none
    async with httpx.AsyncClient() as http:
        summary = await publish_due(store, {"sandbox": SandboxPlatform(store)}, any_key, http, RunLimits(),
                                    trigger="manual", now=datetime.now(timezone.utc) + timedelta(minutes=2))
    assert (summary.claimed, summary.published) == (1, 1), summary.posts
