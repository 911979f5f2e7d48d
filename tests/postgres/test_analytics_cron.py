"""supabase/cron/refresh_analytics_hourly.sql does what it promises, on the stand-ins for pg_cron,
pg_net and Vault that tests/postgres/test_seed.py runs the publish job's file on: it needs the
publish job's secret, keeps its URL in Vault (updated in place), schedules one hourly job, and the
job posts with the secret it reads from Vault."""

from __future__ import annotations

import psycopg
import pytest

from tests.postgres.test_seed import PG_CRON, PG_NET, ROOT, URL, cron_db, cron_sql, db, secrets

ANALYTICS_CRON = ROOT / "supabase" / "cron" / "refresh_analytics_hourly.sql"
PLACEHOLDER = "https://YOUR-APP.vercel.app/api/v1/cron/refresh-analytics"
ANALYTICS_URL = "https://herald.example.com/api/v1/cron/refresh-analytics"
__all__ = ["cron_db", "db"]  # fixtures: a clone with the stand-ins


def analytics_sql(url: str = PLACEHOLDER) -> str:
    text = ANALYTICS_CRON.read_text()
    for line in (PG_CRON, PG_NET, PLACEHOLDER):
        assert text.count(line) == 1, f"{ANALYTICS_CRON.name} no longer has {line!r}"
    return text.replace(PG_CRON, "").replace(PG_NET, "").replace(PLACEHOLDER, url)


def test_the_analytics_job_refuses_its_placeholder_and_a_vault_without_the_secret(cron_db):
    with pytest.raises(psycopg.errors.RaiseException, match="herald_cron_secret"):
        cron_db.execute(analytics_sql(ANALYTICS_URL))
    cron_db.execute(cron_sql(url=URL, secret="the-secret-0123456789"))
    with pytest.raises(psycopg.errors.RaiseException, match="analytics_url"):
        cron_db.execute(analytics_sql())
    assert "herald_analytics_url" not in secrets(cron_db)


def test_the_analytics_job_runs_hourly_with_the_publish_jobs_secret(cron_db):
    cron_db.execute(cron_sql(url=URL, secret="the-secret-0123456789"))
    cron_db.execute(analytics_sql("https://old.example.com/api/v1/cron/refresh-analytics"))
    ids = dict(cron_db.execute("select name, id from vault.secrets").fetchall())
    cron_db.execute(analytics_sql(ANALYTICS_URL))  # again, with a new URL: updated in place, still one job
    assert dict(cron_db.execute("select name, id from vault.secrets").fetchall()) == ids
    assert secrets(cron_db)["herald_analytics_url"] == ANALYTICS_URL
    jobs = dict(cron_db.execute("select jobname, schedule from cron.job").fetchall())
    assert jobs == {"herald-publish": "* * * * *", "herald-refresh-analytics": "30 * * * *"}

    # a rotated secret (the publish file run again) reaches this job too: it reads Vault on every run
    cron_db.execute(cron_sql(url=URL, secret="rotated-secret-0123456789"))
    [command] = cron_db.execute("select command from cron.job where jobname = 'herald-refresh-analytics'").fetchone()
    assert "rotated-secret" not in command
    cron_db.execute(command)
    url, headers, timeout = cron_db.execute(
        "select url, headers, timeout_milliseconds from net.sent order by id desc limit 1").fetchone()
    assert url == ANALYTICS_URL
    assert headers["Authorization"] == "Bearer rotated-secret-0123456789"
    assert timeout >= 55_000
