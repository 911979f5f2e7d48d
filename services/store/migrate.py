"""Apply ``supabase/migrations`` to a PostgreSQL database, recording each as the Supabase CLI does.

On a database that is not a Supabase project (the embedded server, a plain PostgreSQL), the
bootstrap in ``supabase/local/bootstrap.sql`` first creates what Supabase provides (the API roles,
``auth.users``, ``auth.uid()``, ``auth.jwt()``). Each migration file then runs in one transaction
and is recorded in ``supabase_migrations.schema_migrations`` (the CLI's own table and columns), so
applying twice is a no-op, an existing database is migrated forward, and ``supabase db push``
and this runner agree on what is applied.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "supabase" / "migrations"
BOOTSTRAP = ROOT / "supabase" / "local" / "bootstrap.sql"

#: the Supabase CLI's migration file name: <version (digits)>_<name>.sql
FILE_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>.+)\.sql$")

_LOCK = 7_320_117  # pg_advisory_lock key: one migrator at a time per database


def migration_files(directory: Path = MIGRATIONS) -> list[tuple[str, str, Path]]:
    """(version, name, path) of every migration, in the order they apply; ValueError for a misnamed file."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = FILE_NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path.name}: a migration is named <version>_<name>.sql, as the Supabase CLI requires")
        found.append((match["version"], match["name"], path))
    return found


def apply_migrations(conninfo: str, *, directory: Path = MIGRATIONS, until: str | None = None) -> list[str]:
    """Bring the database up to date; return the versions applied now (empty when it already was).

    ``until`` stops after that version (tests replay history step by step). Needs psycopg.
    """
    import psycopg

    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", [_LOCK])
        try:
            if _scalar(conn.execute("select to_regclass('auth.users') is null").fetchone()):
                with conn.transaction():
                    conn.execute(BOOTSTRAP.read_text())
            with conn.transaction():
                conn.execute("create schema if not exists supabase_migrations")
                conn.execute("create table if not exists supabase_migrations.schema_migrations"
                             " (version text not null primary key, statements text[], name text)")
            done = {row[0] for row in conn.execute("select version from supabase_migrations.schema_migrations")}
            files = migration_files(directory)
            _refuse_out_of_order(files, done)
            for version, name, path in files:
                if until is not None and version > until:
                    break
                if version in done:
                    continue
                text = path.read_text()
                try:
                    with conn.transaction():
                        conn.execute(text)
                        conn.execute("insert into supabase_migrations.schema_migrations (version, statements, name)"
                                     " values (%s, %s, %s)", [version, [text], name])
                except psycopg.Error as exc:
                    raise RuntimeError(f"migration {path.name} failed: {exc}") from exc
                applied_now.append(version)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", [_LOCK])
    return applied_now


def _refuse_out_of_order(files: list[tuple[str, str, Path]], done: set[str]) -> None:
    """A file older than the newest applied one was added after it (a merge, a rename): the
    Supabase CLI refuses to push it ("Found local migration files to be inserted before the last
    migration on remote database"), and so does this runner, before applying anything."""
    newest = max(done, default=None)
    late = [path.name for version, _, path in files if version not in done and newest is not None and version < newest]
    if late:
        raise ValueError(f"{', '.join(late)}: older than the newest applied migration ({newest}); "
                         "rename it with a later timestamp (supabase migration new) so every database applies "
                         "the files in the same order")


def _scalar(row: tuple[Any, ...] | None) -> Any:
    """The first column of a row a query always returns."""
    if row is None:
        raise RuntimeError("the query returned no row")
    return row[0]
