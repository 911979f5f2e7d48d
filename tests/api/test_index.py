"""The deployable entry point: settings from the environment, `app` for Vercel, `handler` for Lambda."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys

import pytest
from cryptography.fernet import Fernet

from services.settings import ConfigurationError, get_settings

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
