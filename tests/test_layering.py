"""Imports flow api -> services, never back; adapters know nothing of stores, and stores nothing of adapters."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RULES = [
    ("services", ("api",)),
    ("services/domain", ("api", "services.store", "services.platforms", "services.publishing", "httpx", "supabase")),
    ("services/scheduling", ("api", "services.store", "services.platforms", "services.publishing", "httpx")),
    ("services/platforms", ("api", "services.store", "services.publishing", "supabase", "psycopg")),
    ("services/store", ("api", "services.platforms", "services.publishing")),
    ("services/publishing/retry.py", ("api", "services.store", "services.platforms", "httpx")),
]


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(("where", "forbidden"), RULES)
def test_forbidden_imports(where, forbidden):
    target = ROOT / where
    files = [target] if target.is_file() else sorted(target.rglob("*.py"))
    assert files
    offences = [
        f"{f.relative_to(ROOT)} imports {name}"
        for f in files for name in imports_of(f)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    ]
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
