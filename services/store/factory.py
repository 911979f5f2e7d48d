"""Open the store the settings name: the embedded PostgreSQL, a PostgreSQL URL, or Supabase."""

from __future__ import annotations

import httpx

from services.settings import ConfigurationError, Settings


def open_store(settings: Settings, *, http: httpx.AsyncClient | None = None):
    """The configured store. ``embedded`` starts (or attaches to) the local server and migrates it."""
    if settings.herald_store == "supabase":
        from services.store.supabase import SupabaseStore  # imported lazily: supabase-py is slow to import

        url, service_key, anon_key = settings.supabase_url, settings.supabase_service_role_key, settings.supabase_anon_key
        if not (url and service_key and anon_key):  # Settings.check() refuses this: a caller skipped it
            raise ConfigurationError("HERALD_STORE=supabase needs SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY and SUPABASE_ANON_KEY")
        return SupabaseStore(url, service_key, anon_key, http=http)
    from services.store.migrate import apply_migrations
    from services.store.postgres import PostgresStore

    if settings.herald_store == "embedded":
        from services.store.embedded import start_embedded

        url = start_embedded(settings.herald_embedded_dir)
    elif settings.herald_database_url:
        url = settings.herald_database_url
    else:  # Settings.check() refuses this: a caller skipped it
        raise ConfigurationError("HERALD_STORE=postgres needs HERALD_DATABASE_URL")
    apply_migrations(url)
    return PostgresStore(url)
