"""supabase/migrations as a history (issue 10, item 4): replaying it step by step equals applying it
at once, applying it again changes nothing, every file runs the way the Supabase CLI runs it, and a
released function keeps its signature.

The first release is the three files up to ``FIRST_RELEASE``; every later file evolves a deployment
that may already hold data. Rules for a new file (the README's "Changing the database"):

* a new file, never an edit of one that may be applied (the CLI never runs a recorded version again);
* a body-only change of a function: ``create or replace`` with the same signature;
* a signature change: a new ``herald_<name>_v<N+1>`` beside the old one, which a later file drops.

What the Supabase CLI does, read in its source (github.com/supabase/cli, the commits the test
index holds):

* ``pkg/migration/file.go`` (078ef54): a migration is a file named ``^([0-9]+)_(.*)\\.sql$``, the
  digits its version and the rest its name. ``ExecBatch`` queues the file's statements and the
  history insert in one ``pgconn.Batch`` ("ExecBatch is implicitly transactional"): one
  transaction per file, recorded only if every statement succeeds.
* ``pkg/migration/list.go`` (0e8d7c4): ``ListLocalMigrations`` *skips* a file that does not match,
  printing "Skipping migration ... (file name must match pattern "<timestamp>_name.sql")".
* ``internal/migration/new/new.go`` (086b98b) and ``internal/utils/misc.go`` (00a6434):
  ``supabase migration new <name>`` writes ``<timestamp>_<name>.sql`` with the timestamp
  ``time.Now().UTC().Format("20060102150405")``: 14 digits, UTC.
* ``pkg/migration/history.go`` (2aef3bf): the history is ``supabase_migrations.schema_migrations``
  (``version text not null primary key``, ``statements text[]``, ``name text``), written by
  ``INSERT ... (version, name, statements)``.
* ``pkg/migration/apply.go`` (034ff09): ``FindPendingMigrations`` compares versions as strings and
  refuses a local file older than the newest applied one (``ErrMissingRemote``, unless
  ``--include-all``); ``ApplyMigrations`` runs ``RESET ALL`` before each file.
* ``pkg/parser/token.go`` (4eb3f34) and ``state.go`` (13d2571): ``SplitAndTrim`` cuts the file at
  ``;`` outside quotes, comments, dollar quotes and ``BEGIN ATOMIC`` bodies, each statement sent
  on its own in the batch.
* supabase/cli#2898 (maintainer, 2025-02-10): "We are running each migration file in its own
  transaction to ensure all SQL statements are executed atomically"; ``create index concurrently``
  there fails with "cannot be executed within a pipeline (SQLSTATE 25001)". Since v2.109.0
  (supabase/cli#5156, #6009, #6276) the CLI instead runs ``CREATE [UNIQUE] INDEX CONCURRENTLY``,
  ``REINDEX ... CONCURRENTLY``, ``VACUUM``, ``ALTER SYSTEM``, ``CLUSTER`` and ``DROP INDEX
  CONCURRENTLY`` outside the file's transaction: accepted, but no longer atomic.
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import pairwise

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from services.store import migrate
from tests.support.supabase_fixtures import _maintenance
from tests.support.supabase_fixtures import empty_database as new_database

#: the last file of the first release: what a deployment may already run, with data
FIRST_RELEASE = "20261124000300"
FILES = migrate.migration_files()
VERSIONS = [version for version, _, _ in FILES]
LATER = [version for version in VERSIONS if version > FIRST_RELEASE]
NOW = datetime(2030, 1, 15, 12, 0, tzinfo=timezone.utc)


# --- databases --------------------------------------------------------------------------------

def empty_database():
    """A new empty database, dropped on exit (``with empty_database() as dsn``)."""
    return new_database("herald_history")


def rpc(db: psycopg.Connection, role: str, function: str, user: uuid.UUID | None = None, **args):
    """Call public.<function> as PostgREST would: one transaction, the role, the JWT claims."""
    claims = {"role": role} | ({"sub": str(user), "aud": "authenticated"} if user else {})
    named = sql.SQL(", ").join(sql.SQL("{} => {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in args)
    with db.transaction():
        db.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        db.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        return db.execute(sql.SQL("select public.{}({})").format(sql.Identifier(function), named), args).fetchone()[0]


def write_first_release_data(dsn: str) -> None:
    """A row in every table of the first release, written through its herald_*_v1 functions."""
    with psycopg.connect(dsn, autocommit=True) as db:
        owner = uuid.uuid4()
        db.execute("insert into auth.users (id, email) values (%s, 'history@herald.test')", [owner])
        channel = rpc(db, "authenticated", "herald_create_channel_v1", owner, p_platform="sandbox",
                      p_account_id="acct", p_name="Sandbox", p_credentials_encrypted="gAAAA-secret")
        rpc(db, "authenticated", "herald_create_posts_v1", owner, p_idempotency_key="bulk", p_request_hash="h",
            p_posts=Jsonb([
                {"content": {"text": "due"}, "channel_ids": [channel["id"]], "status": "scheduled",
                 "scheduled_at": (NOW - timedelta(minutes=1)).isoformat()},
                {"content": {"text": "daily"}, "channel_ids": [channel["id"]], "status": "scheduled",
                 "scheduled_at": (NOW + timedelta(hours=1)).isoformat(), "rrule": "FREQ=DAILY"},
                {"content": {"text": "draft"}, "status": "draft"}]))
        [claimed] = rpc(db, "service_role", "herald_claim_due_posts_v1", p_now=NOW, p_limit=10,
                        p_lease_seconds=60)["posts"]
        [target] = claimed["post"]["targets"]
        rpc(db, "service_role", "herald_deliver_to_outbox_v1", p_id=uuid.uuid4(), p_channel_id=channel["id"],
            p_target_id=target["id"], p_text="due", p_media=Jsonb([]), p_published_at=NOW)
        run = {"started_at": NOW.isoformat(), "finished_at": NOW.isoformat(), "duration_ms": 5}
        rpc(db, "service_role", "herald_record_results_v1", p_now=NOW, p_results=Jsonb([{
                "post_id": claimed["post"]["id"], "lease_id": claimed["lease_id"], "status": "published",
                "targets": [{"target_id": target["id"], "outcome": "published", "status": "published",
                             "attempt": 1, "platform_post_id": "p1", **run}]}]),
            p_cron_run=Jsonb({"id": str(uuid.uuid4()), "trigger": "vercel", "claimed": 1, "published": 1,
                              "failed": 0, "error": None, **run}))
        tables = [name for (name,) in db.execute("select tablename from pg_tables where schemaname = 'public'")]
        empty = [t for t in tables if not db.execute(
            sql.SQL("select exists (select from public.{})").format(sql.Identifier(t))).fetchone()[0]]
        assert tables and empty == [], f"tables the first release's data left empty: {empty}"


def recorded(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as db:
        return db.execute("select version, name from supabase_migrations.schema_migrations order by version").fetchall()


# --- the schema, as the server's own pg_dump prints it (or the catalog, without one) -----------

@lru_cache(maxsize=1)
def server_pg_dump() -> str | None:
    """The pg_dump installed with the test server (its BINDIR, from the pg_config view), else one on
    PATH of the server's major version or later; None when neither is on this machine."""
    with _maintenance() as admin:
        major = admin.execute("select current_setting('server_version_num')::int / 10000").fetchone()[0]
        try:
            bindir = admin.execute("select setting from pg_config where name = 'BINDIR'").fetchone()[0]
        except psycopg.Error:
            bindir = None
    for found in (bindir and shutil.which("pg_dump", path=bindir), shutil.which("pg_dump")):
        if found:
            version = re.search(r"(\d+)(?:\.\d+)?", subprocess.run([found, "--version"], capture_output=True,
                                                                   text=True).stdout)
            if version and int(version.group(1)) >= major:
                return found
    return None


def schema_of(dsn: str) -> str:
    """The database's schema as text: ``pg_dump --schema-only --no-owner``, so no rows at all (not
    the recorded migrations either). A fixed ``--restrict-key`` (pg_dump 13.22/14.19/15.14/16.10/17.6
    and later) replaces a random one; nothing else is normalised."""
    pg_dump = server_pg_dump()
    if pg_dump is None:
        return catalog_of(dsn)
    command = [pg_dump, "--schema-only", "--no-owner", "--dbname", dsn]
    if "--restrict-key" in subprocess.run([pg_dump, "--help"], capture_output=True, text=True).stdout:
        command.insert(-2, "--restrict-key=herald")
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


#: without pg_dump: what the migrations create, one sorted line per catalog row (names qualified)
CATALOG = {
    "schema": "select n.nspname, n.nspacl::text from pg_namespace n where {user_schema}",
    "extension": "select extname, extversion, extnamespace::regnamespace::text from pg_extension",
    "relation": "select c.oid::regclass::text, c.relkind, c.relacl::text, c.relrowsecurity, c.relforcerowsecurity,"
                " c.reloptions::text from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where {user_schema} and c.relkind <> 'i'",
    "column": "select a.attrelid::regclass::text, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),"
              " a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, a.attacl::text"
              " from pg_attribute a join pg_class c on c.oid = a.attrelid"
              " join pg_namespace n on n.oid = c.relnamespace"
              " left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum"
              " where {user_schema} and a.attnum > 0 and not a.attisdropped and c.relkind <> 'i'",
    "constraint": "select conrelid::regclass::text, contypid::regtype::text, conname, pg_get_constraintdef(c.oid)"
                  " from pg_constraint c join pg_namespace n on n.oid = c.connamespace where {user_schema}",
    "index": "select pg_get_indexdef(i.indexrelid) from pg_index i join pg_class c on c.oid = i.indexrelid"
             " join pg_namespace n on n.oid = c.relnamespace where {user_schema}",
    "trigger": "select pg_get_triggerdef(t.oid), t.tgenabled from pg_trigger t join pg_class c on c.oid = t.tgrelid"
               " join pg_namespace n on n.oid = c.relnamespace where {user_schema} and not t.tgisinternal",
    "policy": "select p.polrelid::regclass::text, p.polname, p.polcmd, p.polpermissive, p.polroles::regrole[]::text,"
              " pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) from pg_policy p",
    "type": "select t.oid::regtype::text, t.typtype, array(select e.enumlabel from pg_enum e"
            " where e.enumtypid = t.oid order by e.enumsortorder)::text from pg_type t"
            " join pg_namespace n on n.oid = t.typnamespace where {user_schema} and t.typtype in ('d', 'e', 'r')",
    "function": "select pg_get_functiondef(p.oid), p.proacl::text from pg_proc p"
                " join pg_namespace n on n.oid = p.pronamespace where {user_schema} and p.prokind in ('f', 'p')",
    "default privilege": "select defaclrole::regrole::text, defaclnamespace::regnamespace::text, defaclobjtype,"
                         " defaclacl::text from pg_default_acl",
}
USER_SCHEMA = "n.nspname not like 'pg\\_%' and n.nspname <> 'information_schema'"


def catalog_of(dsn: str) -> str:
    with psycopg.connect(dsn) as db:
        db.execute("set search_path = ''")  # every name printed with its schema
        lines = [f"{kind}: " + " | ".join(map(str, row))
                 for kind, query in CATALOG.items()
                 for row in db.execute(query.format(user_schema=USER_SCHEMA)).fetchall()]
    return "\n".join(sorted(lines)) + "\n"


def differences(expected: str, actual: str, expected_name: str, actual_name: str, limit: int = 120) -> str:
    diff = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(), expected_name, actual_name,
                                     lineterm="", n=2))
    return "\n".join(diff[:limit] + ([f"... {len(diff) - limit} more lines"] if len(diff) > limit else []))


# --- public functions, step by step -------------------------------------------------------------

PUBLIC_FUNCTIONS = (
    "select p.proname, pg_get_function_identity_arguments(p.oid) || ' -> ' || pg_get_function_result(p.oid)"
    " from pg_proc p join pg_namespace n on n.oid = p.pronamespace"
    " where n.nspname = 'public' and p.proname like 'herald\\_%'"
)


def public_functions(dsn: str) -> dict[str, set[str]]:
    """Each public herald_* function's signatures: argument names and types, and the result type."""
    found: dict[str, set[str]] = {}
    with psycopg.connect(dsn) as db:
        for name, signature in db.execute(PUBLIC_FUNCTIONS).fetchall():
            found.setdefault(name, set()).add(signature)
    return found


VERSIONED = re.compile(r"^(?P<base>herald_\w+?)_v(?P<n>\d+)$")


def function_change_problems(before: dict[str, set[str]], after: dict[str, set[str]]) -> list[str]:
    """What a migration did to the public herald_* functions that breaks code already deployed.

    Vercel and ``supabase db push`` land at different moments, so each migration must keep every
    call of the code before it working: a released name keeps its arguments and result; a new
    signature is a new ``_vN+1``; a name is dropped only once its successor was already released.
    """
    problems = []

    def version(name: str) -> tuple[str, int] | None:
        match = VERSIONED.match(name)
        return (match["base"], int(match["n"])) if match else None

    for name, signatures in sorted(after.items()):
        if len(signatures) > 1:
            problems.append(f"{name} is overloaded {sorted(signatures)}: a new signature is a new _vN")
        if name in before and signatures != before[name]:
            problems.append(f"{name} changed its signature in place {sorted(before[name])} -> {sorted(signatures)}:"
                            " keep the old one and add the next _vN")
        if name not in before:
            if version(name) is None:
                problems.append(f"{name} has no _vN suffix: it could never change its signature")
            else:
                base, n = version(name)
                older = [other for other in before if version(other) and version(other)[0] == base
                         and version(other)[1] >= n]
                if older:
                    problems.append(f"{name} is not a later version than {sorted(older)}")
    for name in sorted(before.keys() - after.keys()):
        base, n = version(name) or (name, 0)
        if not any(version(other) and version(other)[0] == base and version(other)[1] > n for other in before):
            problems.append(f"{name} was dropped in the migration that would add its successor (or with none):"
                            " drop it in a later file, once the code calling it is gone")
    return problems


# --- the history, replayed once per module ------------------------------------------------------

@dataclass
class History:
    scratch: str  #: every migration at once, on an empty database
    stepwise: str  #: the first release, data, then one later file at a time
    scratch_schema: str = ""
    stepwise_schema: str = ""
    #: (version, public functions after it), from the first release on
    functions: list[tuple[str, dict[str, set[str]]]] = field(default_factory=list)


@pytest.fixture(scope="module")
def history() -> Iterator[History]:
    with ExitStack() as stack:
        found = History(scratch=stack.enter_context(empty_database()),
                        stepwise=stack.enter_context(empty_database()))
        assert migrate.apply_migrations(found.scratch) == VERSIONS
        found.scratch_schema = schema_of(found.scratch)

        assert migrate.apply_migrations(found.stepwise, until=FIRST_RELEASE) == [v for v in VERSIONS if v not in LATER]
        write_first_release_data(found.stepwise)
        found.functions.append((FIRST_RELEASE, public_functions(found.stepwise)))
        for version in LATER:
            assert migrate.apply_migrations(found.stepwise, until=version) == [version]
            found.functions.append((version, public_functions(found.stepwise)))
        found.stepwise_schema = schema_of(found.stepwise)
        yield found


def test_migrating_from_scratch_equals_migrating_a_first_release_database_with_data_one_file_at_a_time(history):
    """What ``supabase db reset`` builds equals what ``supabase db push`` made of a deployment that
    has been running since the first release: same pg_dump, same recorded history."""
    assert history.stepwise_schema == history.scratch_schema, differences(
        history.scratch_schema, history.stepwise_schema, "from scratch", f"first release + data, then {LATER}")
    assert recorded(history.stepwise) == recorded(history.scratch)


def test_applying_the_migrations_again_changes_nothing(history):
    before = recorded(history.scratch)
    assert migrate.apply_migrations(history.scratch) == []
    assert recorded(history.scratch) == before
    again = schema_of(history.scratch)
    assert again == history.scratch_schema, differences(history.scratch_schema, again, "applied once", "applied twice")


def test_a_database_at_the_first_release_is_migrated_forward_and_records_every_file():
    """The CLI's history, as ``supabase migration list`` reads it: every file's version and name."""
    with empty_database() as dsn:
        migrate.apply_migrations(dsn, until=FIRST_RELEASE)
        write_first_release_data(dsn)
        assert migrate.apply_migrations(dsn) == LATER
        assert recorded(dsn) == [(version, name) for version, name, _ in FILES]
        assert migrate.apply_migrations(dsn) == []


def test_a_released_function_keeps_its_signature_and_is_dropped_only_after_its_successor(history):
    problems = {version: function_change_problems(before, after)
                for (_, before), (version, after) in pairwise(history.functions)}
    assert {version: found for version, found in problems.items() if found} == {}


@pytest.mark.parametrize(("before", "after", "problem"), [
    ({"herald_a_v1": {"p uuid -> jsonb"}}, {"herald_a_v1": {"p uuid -> jsonb"}}, None),  # body-only change
    ({"herald_a_v1": {"p uuid -> jsonb"}}, {"herald_a_v1": {"p uuid -> jsonb"},
                                             "herald_a_v2": {"p uuid, q int -> jsonb"}}, None),  # v2 beside v1
    ({"herald_a_v1": {"p uuid -> jsonb"}, "herald_a_v2": {"p uuid, q int -> jsonb"}},
     {"herald_a_v2": {"p uuid, q int -> jsonb"}}, None),  # v1 dropped after v2 was released
    ({"herald_a_v1": {"p uuid -> jsonb"}}, {"herald_a_v1": {"p uuid, q int -> jsonb"}}, "changed its signature"),
    ({"herald_a_v1": {"p uuid -> jsonb"}}, {"herald_a_v1": {"p uuid -> text"}}, "changed its signature"),
    ({"herald_a_v1": {"p uuid -> jsonb"}}, {"herald_a_v1": {"p uuid -> jsonb", "p uuid, q int -> jsonb"}},
     "overloaded"),
    ({"herald_a_v1": {"p uuid -> jsonb"}}, {"herald_a_v2": {"p uuid, q int -> jsonb"}}, "was dropped"),
    ({"herald_a_v1": {"p uuid -> jsonb"}}, {}, "was dropped"),
    ({"herald_a_v2": {"p uuid -> jsonb"}}, {"herald_a_v2": {"p uuid -> jsonb"}, "herald_a_v1": {"p -> int"}},
     "not a later version"),
    ({}, {"herald_a": {"p uuid -> jsonb"}}, "no _vN suffix"),
])
def test_the_function_rule_tells_a_compatible_change_from_a_breaking_one(before, after, problem):
    found = function_change_problems(before, after)
    assert (found == []) if problem is None else any(problem in p for p in found), found


# --- the Supabase CLI's conventions ------------------------------------------------------------

#: the project's name for a migration, within the CLI's ^([0-9]+)_(.*)\.sql$: what
#: ``supabase migration new <lower_snake_name>`` writes
PROJECT_FILE_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")


def test_migration_files_are_named_as_supabase_migration_new_names_them_with_increasing_versions():
    """14 UTC digits then a lower_snake name, as ``supabase migration new`` writes; versions strictly
    increase in file order. The CLI compares versions as strings (``FindPendingMigrations``), so a
    fixed width is what makes string order the order of time."""
    paths = sorted(migrate.MIGRATIONS.glob("*.sql"))
    misnamed = [p.name for p in paths if not PROJECT_FILE_NAME.match(p.name)]
    assert misnamed == [], "a migration is <YYYYMMDDHHMMSS>_<lower_snake_name>.sql"
    versions = [PROJECT_FILE_NAME.match(p.name)["version"] for p in paths]
    for version in versions:
        datetime.strptime(version, "%Y%m%d%H%M%S")  # a real timestamp, not just 14 digits
    assert all(a < b for a, b in pairwise(versions)), f"versions must be unique and increasing: {versions}"
    assert [path.name for _, _, path in FILES] == [p.name for p in paths]  # the runner sees the same files
    assert FIRST_RELEASE in versions


@pytest.mark.parametrize("misnamed", ["20261124000100-schema.sql", "schema.sql", "20261124000100_.sql"])
def test_the_runner_refuses_a_misnamed_file_before_applying_anything(history, tmp_path, misnamed):
    """The CLI skips the first two with a warning (``ListLocalMigrations``): ``supabase db push``
    would silently leave them out, so the local runner refuses them. The third the CLI's pattern
    accepts, with an empty name; the runner refuses it too."""
    shutil.copy(FILES[0][2], tmp_path / FILES[0][2].name)
    shutil.copy(FILES[0][2], tmp_path / misnamed)
    with pytest.raises(ValueError, match=re.escape(misnamed)):
        migrate.migration_files(tmp_path)
    before = recorded(history.scratch)
    with pytest.raises(ValueError, match=re.escape(misnamed)):
        migrate.apply_migrations(history.scratch, directory=tmp_path)
    assert recorded(history.scratch) == before


def test_the_runner_refuses_a_file_older_than_the_newest_applied_one(history, tmp_path):
    """``supabase db push`` refuses local files that sort before the last applied version (they
    came from a merge or a rename); applying them here would order the history differently on
    each database. The runner refuses too, and applies nothing."""
    first, *rest = FILES
    for _, _, path in FILES:
        shutil.copy(path, tmp_path / path.name)
    late = f"{int(first[0]) + 1}_added_late.sql"
    (tmp_path / late).write_text("create table public.added_late (id int);")
    before = recorded(history.scratch)
    with pytest.raises(ValueError, match=re.escape(late)):
        migrate.apply_migrations(history.scratch, directory=tmp_path)
    assert recorded(history.scratch) == before


@dataclass
class Statement:
    line: int
    #: the statement's SQL, lower case, comments and quoted text and dollar-quoted bodies left out
    code: str
    #: the dollar-quoted bodies in it (DO blocks, functions), as written
    bodies: list[str]


#: what is not a statement's own code: comments, quoted text, dollar-quoted bodies (a nested block
#: comment, which PostgreSQL allows, is not recognised: it shows as a false problem, never hides one)
LEFT_OUT = re.compile(r"""
      --[^\n]*                                    # a line comment
    | /\*.*?\*/                                   # a block comment
    | (?<!\w)[eE]'(?:[^'\\]|\\.|'')*'             # an escape string, E'it\'s'
    | '(?:[^']|'')*'                              # a string
    | "(?:[^"]|"")*"                              # a quoted name
    | (?<![\w$])(?P<tag>\$(?:[A-Za-z_]\w*)?\$)(?P<body>.*?)(?P=tag)   # a dollar-quoted body
""", re.VERBOSE | re.DOTALL)


def statements(text: str) -> list[Statement]:
    """The file's top-level statements, cut at ``;`` outside comments, quotes, dollar quotes and
    ``BEGIN ATOMIC ... END`` bodies (where ``pkg/parser`` cuts; each is one entry of the batch)."""
    bodies = [(m.start(), m["body"]) for m in LEFT_OUT.finditer(text) if m["tag"] is not None]
    # left out as spaces, so that offsets and line numbers stay those of the file
    code = LEFT_OUT.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)

    found, start, atomic = [], 0, None
    for semicolon in [m.start() for m in re.finditer(";", code)] + [len(code)]:
        begin, start = start, semicolon + 1
        words = " ".join(code[begin:semicolon].split()).lower()
        if atomic is not None:  # inside BEGIN ATOMIC: up to the statement that is just END
            if words == "end":
                found.append((atomic, semicolon))
                atomic = None
        elif re.search(r"\bbegin atomic\b", words):
            atomic = begin
        elif words:
            found.append((begin, semicolon))
    result = []
    for begin, end in found:
        first = begin + len(code[begin:end]) - len(code[begin:end].lstrip())
        result.append(Statement(line=code.count("\n", 0, first) + 1, code=" ".join(code[begin:end].split()).lower(),
                                bodies=[body for at, body in bodies if begin <= at < end]))
    return result


TRANSACTION_CONTROL = re.compile(r"^(begin|start transaction|commit|end|rollback|abort|savepoint|release"
                                 r"|prepare transaction)\b")
NO_TRANSACTION = re.compile(r"^(create (unique )?index concurrently|drop index concurrently|reindex .*\bconcurrently"
                            r"|vacuum|alter system|cluster|(create|drop) (database|tablespace))\b")
SESSION_STATE = re.compile(r"^(set (?!local\b|constraints\b)|reset\b|discard\b)|\bset_config\(.*\bfalse\s*\)")
SUPABASE_ONLY = re.compile(r"\b(cron\.(schedule|unschedule|alter_job)|vault\.|net\.http_)")
GUARD = re.compile(r"\b(pg_extension|pg_available_extensions|to_regnamespace|to_regproc|to_regprocedure"
                   r"|to_regclass)\b")

#: rule -> why, as the failure message says it
RULES = {
    "transaction control": "the CLI runs each file in one transaction of its own (ExecBatch); a COMMIT in"
                           " the file would record the migration apart from what it committed",
    "cannot run in a transaction": "the CLI (v2.109+) runs it outside the file's transaction, older CLIs and"
                                   " the local runner fail on it; put it in a file of its own, or do without",
    "psql meta-command": "the CLI sends SQL to the server, not to psql",
    "session setting": "the CLI runs RESET ALL before each file, the local runner does not: use SET LOCAL or"
                       " a function's own SET",
    "Supabase-only call outside a guard": "plain PostgreSQL (the embedded server, CI) has no pg_cron, vault or"
                                          " pg_net: call them only in a DO block that checks they exist",
}


def convention_problems(text: str) -> list[str]:
    problems = [f"line {n}: psql meta-command {line.strip()[:60]!r}"
                for n, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith("\\")]
    for statement in statements(text):
        where = f"line {statement.line}: {statement.code[:70]!r}"
        if TRANSACTION_CONTROL.match(statement.code):
            problems.append(f"{where}: transaction control")
        if NO_TRANSACTION.match(statement.code):
            problems.append(f"{where}: cannot run in a transaction")
        if SESSION_STATE.search(statement.code):
            problems.append(f"{where}: session setting")
        unguarded = [body for body in statement.bodies
                     if SUPABASE_ONLY.search(re.sub(r"--[^\n]*", "", body)) and not GUARD.search(body)]
        if SUPABASE_ONLY.search(statement.code) or unguarded:
            problems.append(f"{where}: Supabase-only call outside a guard")
    return problems


@pytest.mark.parametrize("path", [path for _, _, path in FILES], ids=[path.name for _, _, path in FILES])
def test_every_migration_runs_as_one_transaction_the_way_the_supabase_cli_runs_it(path):
    """No transaction control, nothing that cannot run in a transaction, no psql meta-command, no
    session state left for the next file, nothing Supabase-only outside a guard (``RULES``)."""
    problems = convention_problems(path.read_text())
    reasons = {rule: why for rule, why in RULES.items() if any(rule in p for p in problems)}
    assert problems == [], reasons


@pytest.mark.parametrize(("text", "rule"), [
    ("begin;\ncreate table t (a int);\ncommit;", "transaction control"),
    ("create table t (a int);\nrollback;", "transaction control"),
    ("create index concurrently t_a on t (a);", "cannot run in a transaction"),
    ("vacuum analyze t;", "cannot run in a transaction"),
    ("\\set ON_ERROR_STOP on\ncreate table t (a int);", "psql meta-command"),
    ("set search_path = herald;", "session setting"),
    ("select set_config('search_path', 'herald', false);", "session setting"),
    ("select cron.schedule('publish', '* * * * *', 'select 1');", "Supabase-only call outside a guard"),
    ("do $$ begin perform vault.create_secret('x'); end $$;", "Supabase-only call outside a guard"),
    # what is fine: bodies, comments, quoted text, BEGIN ATOMIC, SET LOCAL, a guarded Supabase call
    ("create function f() returns int language plpgsql as $body$\nbegin\n  return 1;\nend\n$body$;", None),
    ("create function f() returns int language sql\nbegin atomic\n  select 1;\n  select 2;\nend;\n"
     "create table t (a int);", None),
    ("-- begin; vacuum; \\set\n/* commit;\n rollback; */\ncomment on table t is E'it\\'s; commit; vacuum';", None),
    ("set local search_path = herald;\nselect set_config('x.y', 'z', true);", None),
    ("do $$ begin\n  if exists (select from pg_extension where extname = 'pg_cron') then\n"
     "    perform cron.schedule('publish', '* * * * *', 'select 1');\n  end if;\nend $$;", None),
    ("select herald_private.log(null, null, 'cron.run', '{}');", None),
])
def test_the_convention_check_tells_what_the_cli_runs_from_what_it_does_not(text, rule):
    problems = convention_problems(text)
    assert (problems == []) if rule is None else (problems and all(rule in p for p in problems)), problems
