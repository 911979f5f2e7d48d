"""Herald as real server processes: ``uvicorn api.index:app --workers N`` on a cloned test database.

What the in-process ASGI tests cannot show needs real processes: a cron tick whose parallel runs
are HTTP calls to Herald's own endpoint, served by other workers (as separate serverless
invocations would be). ``herald_server(kind, database_url)`` starts one, configured only through
the environment (``api.index`` reads it, as in production), on either store transport:

- ``postgres``: ``HERALD_STORE=postgres``, ``HERALD_DATABASE_URL`` = the clone;
- ``supabase``: ``HERALD_STORE=supabase``, ``SUPABASE_URL`` = the PostgREST fixture
  (``tests/support/postgrest.py``) on the clone, served over real HTTP by uvicorn in a background
  thread of this process (``postgrest_server``), logging in as ``authenticator`` like PostgREST.

It waits until every worker has started and ``/api/v1/health`` answers 200, and on exit stops
the processes (SIGTERM, then SIGKILL to the group it started) and the thread. The server's stderr
goes to a file: a start-up failure raises with its tail, and an exception inside the ``with``
block gets the tail as a note. Users and their tokens are ``supabase_fixtures``' (the server
trusts ``JWT_SECRET``); ``HeraldServer.cipher`` encrypts credentials for channels a caller writes
straight into the store.

    with cloned_database(ensure_template()) as dsn, herald_server("postgres", dsn, workers=3,
                                                                  env={"MAX_POSTS_PER_RUN": "5"}) as server:
        httpx.post(server.url + "/api/v1/cron/publish-scheduled", headers=server.cron_headers)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from cryptography.fernet import Fernet
from psycopg.conninfo import make_conninfo

from services.security.crypto import TokenCipher
from tests.support.postgrest import PostgrestRpc
from tests.support.supabase_fixtures import ANON_KEY, JWT_SECRET, SERVICE_ROLE_KEY

ROOT = Path(__file__).resolve().parents[2]
CRON_SECRET = "herald-server-cron-secret-0123456789"
STARTUP_SECONDS = 60.0
STOP_SECONDS = 15.0

#: the settings a developer's shell might carry; the server gets none of them but ours
_OWN_SETTINGS = {
    "CRON_SECRET", "MAX_POSTS_PER_RUN", "REQUEST_TIMEOUT", "MAX_RETRY_COUNT", "RUN_BUDGET_SECONDS",
    "PUBLISH_CONCURRENCY", "RETRY_BASE_SECONDS", "LEASE_SECONDS", "CORS_ORIGINS", "LOOKAHEAD_SECONDS",
    "MAX_PARALLEL_RUNS", "WEB_CONCURRENCY",
}


class ServerError(RuntimeError):
    """A server did not start (the message carries its stderr)."""


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _free_port() -> int:
    with _listening_socket() as sock:
        return sock.getsockname()[1]


# --- the Supabase Data API (the PostgREST fixture) over real HTTP --------------------------------


@contextmanager
def postgrest_server(database_url: str) -> Iterator[str]:
    """The PostgREST fixture on ``database_url``'s database, logging in as ``authenticator``,
    served by uvicorn in a background thread; yields its URL (a ``SUPABASE_URL``)."""
    rpc = PostgrestRpc(make_conninfo(database_url, user="authenticator"), JWT_SECRET)
    sock = _listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(rpc.app, log_level="critical", lifespan="off", timeout_keep_alive=60,
                            backlog=1024)
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    async def serve() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            await rpc.close()  # its connections belong to this thread's event loop

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # surfaced to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name="postgrest-fixture", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if failure or not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise ServerError(f"the PostgREST fixture did not start: {failure[0] if failure else 'timeout'!r}")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_SECONDS)
        sock.close()
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        if failure:
            raise ServerError(f"the PostgREST fixture failed: {failure[0]!r}") from failure[0]


# --- Herald itself ---------------------------------------------------------------------------------


@dataclass
class HeraldServer:
    kind: str
    url: str
    workers: int
    encryption_key: str
    process: subprocess.Popen
    stderr_path: Path
    #: the environment the server runs with (what Herald's settings see)
    env: dict[str, str] = field(default_factory=dict)
    supabase_url: str | None = None
    cron_secret: str = CRON_SECRET

    @property
    def cron_headers(self) -> dict[str, str]:
        """What Vercel Cron sends: ``Authorization: Bearer <CRON_SECRET>``."""
        return {"Authorization": f"Bearer {self.cron_secret}"}

    @property
    def cipher(self) -> TokenCipher:
        """Encrypts channel credentials the way this server decrypts them."""
        return TokenCipher([self.encryption_key])

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_tail(self, chars: int = 4000) -> str:
        return self.stderr()[-chars:]

    def tracebacks(self) -> list[str]:
        """Tracebacks the workers logged (an unhandled error in a request or at start-up)."""
        text = self.stderr()
        return [part.split("\n\n")[0] for part in text.split("Traceback (most recent call last):")[1:]]


def server_env(kind: str, database_url: str, *, supabase_url: str | None = None, encryption_key: str,
               extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server on ``kind``: this process's, without any Herald setting but ours."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("HERALD_", "SUPABASE_")) and name not in _OWN_SETTINGS}
    env.update({
        "HERALD_STORE": kind,
        "SUPABASE_JWT_SECRET": JWT_SECRET,
        "CRON_SECRET": CRON_SECRET,
        "HERALD_ENCRYPTION_KEYS": encryption_key,
        "HERALD_ALLOW_PRIVATE_HOSTS": "true",
        "PYTHONUNBUFFERED": "1",
    })
    if kind == "postgres":
        env["HERALD_DATABASE_URL"] = database_url
    elif kind == "supabase":
        if supabase_url is None:
            raise ValueError("a supabase server needs the Data API's URL")
        env.update({"SUPABASE_URL": supabase_url, "SUPABASE_SERVICE_ROLE_KEY": SERVICE_ROLE_KEY,
                    "SUPABASE_ANON_KEY": ANON_KEY})
    else:
        raise ValueError(f"unknown store transport {kind!r} (postgres or supabase)")
    env.update(extra or {})
    return env


def _start(env: dict[str, str], workers: int, workdir: Path, stderr_path: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    command = [sys.executable, "-m", "uvicorn", "api.index:app", "--app-dir", str(ROOT), "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--log-level", "info", "--no-access-log",
               "--timeout-keep-alive", "60", "--backlog", "1024"]
    with open(stderr_path, "wb") as stderr:
        # Its own session: the whole group (supervisor and workers) can be stopped together, and
        # a Ctrl-C in the terminal reaches only the caller, which then stops the server itself.
        process = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    return process, port


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # the supervisor stops its workers, each finishing its requests
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_SECONDS)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the group started above: the supervisor and its workers
    process.wait(timeout=5)


def _wait_ready(server: HeraldServer) -> None:
    """Until every worker has started and /api/v1/health answers 200; then one health call per
    worker or so, at once, so each opens its store before the caller's first request."""
    deadline = time.monotonic() + STARTUP_SECONDS
    last = "no answer"
    with httpx.Client(base_url=server.url, timeout=5) as http:
        while True:
            if server.process.poll() is not None:
                raise ServerError(f"the {server.kind} server exited with {server.process.returncode}:\n"
                                  f"{server.stderr_tail()}")
            if time.monotonic() > deadline:
                raise ServerError(f"the {server.kind} server did not become healthy in {STARTUP_SECONDS:.0f} s "
                                  f"({last}):\n{server.stderr_tail()}")
            started = server.stderr().count("Application startup complete.")
            if started >= server.workers:
                try:
                    response = http.get("/api/v1/health")
                    last = f"health answered {response.status_code}: {response.text[:200]}"
                    if response.status_code == 200:
                        break
                except httpx.HTTPError as exc:
                    last = f"health: {type(exc).__name__}"
            time.sleep(0.05)

    # Threads rather than an event loop: the caller may be inside one (an async test).
    with httpx.Client(base_url=server.url, timeout=30,
                      limits=httpx.Limits(max_connections=server.workers * 4)) as http, \
            ThreadPoolExecutor(max_workers=server.workers * 4) as pool:
        list(pool.map(lambda _: http.get("/api/v1/health"), range(server.workers * 4)))


@contextmanager
def herald_server(kind: str, database_url: str, *, workers: int = 2, env: dict[str, str] | None = None,
                  encryption_key: str | None = None) -> Iterator[HeraldServer]:
    """Herald (``api.index:app``) under uvicorn with ``workers`` processes on ``database_url``'s
    database through the ``kind`` transport; ``env`` adds or overrides settings
    (e.g. ``{"MAX_POSTS_PER_RUN": "5"}``)."""
    key = encryption_key or Fernet.generate_key().decode()
    with ExitStack() as stack:
        supabase_url = stack.enter_context(postgrest_server(database_url)) if kind == "supabase" else None
        environment = server_env(kind, database_url, supabase_url=supabase_url, encryption_key=key, extra=env)
        # An empty working directory: no developer's .env is read (settings come from env only).
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="herald-server-")))
        server = None
        for attempt in range(3):
            stderr_path = workdir / f"uvicorn-{attempt}.log"
            process, port = _start(environment, workers, workdir, stderr_path)
            server = HeraldServer(kind=kind, url=f"http://127.0.0.1:{port}", workers=workers, encryption_key=key,
                                  process=process, stderr_path=stderr_path, env=environment,
                                  supabase_url=supabase_url)
            try:
                _wait_ready(server)
                break
            except ServerError:
                _stop(process)
                if attempt < 2 and "address already in use" in server.stderr().lower():
                    continue  # the free port was taken meanwhile: another one
                raise
        assert server is not None
        stack.callback(_stop, server.process)
        try:
            yield server
        except BaseException as exc:
            exc.add_note(f"--- {kind} server stderr (last 4000 characters) ---\n{server.stderr_tail()}")
            raise
