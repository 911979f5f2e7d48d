"""Open the store the settings name: the embedded PostgreSQL, a PostgreSQL URL, or Supabase."""

from __future__ import annotations

import httpx

from services.settings import Settings


def open_store(settings: Settings, *, http: httpx.AsyncClient | None = None):
    """The configured store. ``embedded`` starts (or attaches to) the local server and migrates it."""
    if settings.herald_store == "supabase":
        from services.store.supabase import SupabaseStore  # imported lazily: supabase-py is slow to import

        return SupabaseStore(settings.supabase_url, settings.supabase_service_role_key, settings.supabase_anon_key,
                             http=http)
    from services.store.migrate import apply_migrations
    from services.store.postgres import PostgresStore

    if settings.herald_store == "embedded":
        from services.store.embedded import start_embedded

        url = start_embedded(settings.herald_embedded_dir)
    else:
        url = settings.herald_database_url
    apply_migrations(url)
    return PostgresStore(url)
