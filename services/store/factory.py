"""Open the store the settings name: the embedded SQLite file, or Supabase."""

from __future__ import annotations

import httpx

from services.settings import Settings


def open_store(settings: Settings, *, http: httpx.AsyncClient | None = None):
    if settings.herald_store == "supabase":
        from services.store.supabase import SupabaseStore  # imported lazily: supabase-py is slow to import

        return SupabaseStore(settings.supabase_url, settings.supabase_service_role_key, settings.supabase_anon_key,
                             http=http)
    from services.store.sqlite import SqliteStore

    return SqliteStore(settings.herald_sqlite_path)
