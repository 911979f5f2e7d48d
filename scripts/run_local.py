"""Run Herald locally on the embedded default: PostgreSQL from a pip wheel, sandbox platform, no accounts.

Development mode lives only here: it makes (and keeps, in .herald-local.json) a JWT secret, a
cron secret and an encryption key; starts the embedded PostgreSQL under .herald/ and applies the
migrations (what Supabase would run, RLS included); creates a demo user with a sandbox channel;
prints a ready token; and runs a ticker that plays the external cron every minute so scheduled
posts really publish. The embedded server stops when this process stops.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

STATE = ROOT / ".herald-local.json"


def local_secrets(path: Path = STATE) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    state = {
        "jwt_secret": secrets.token_urlsafe(48),
        "cron_secret": secrets.token_urlsafe(32),
        "encryption_key": Fernet.generate_key().decode(),
        "demo_user_id": str(uuid.uuid4()),
    }
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)
    return state


async def tick_forever(base: str, cron_secret: str, every: float) -> None:
    """Play the external cron: call the publish endpoint every ``every`` seconds, like cron-job.org."""
    headers = {"X-Cron-Secret": cron_secret, "X-Herald-Trigger": "local"}
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        await asyncio.sleep(2)
        while True:
            try:
                response = await http.post("/api/v1/cron/publish-scheduled", headers=headers)
                summary = response.json()
                if response.status_code != 200:
                    error = summary.get("error", {}).get("message", response.text) if isinstance(summary, dict) else ""
                    print(f"[ticker] cron call answered {response.status_code}: {error}", flush=True)
                elif summary.get("processed"):
                    print(f"[ticker] claimed {summary['processed']}: published {summary['published']}, "
                          f"failed {summary['failed']}, retrying {summary['retry_scheduled']}", flush=True)
            except (httpx.HTTPError, ValueError) as exc:
                print(f"[ticker] cron call failed: {exc}", flush=True)
            await asyncio.sleep(every)


def ensure_demo_user(store, user_id: str) -> None:
    """The demo user in auth.users (what Supabase Auth would hold for a signed-in user)."""
    import psycopg

    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        conn.execute("insert into auth.users (id, email) values (%s, 'demo@herald.local') on conflict do nothing",
                     [user_id])


async def demo_channel(store, user) -> str:
    """The demo user's sandbox channel, created on first start so the first curl can schedule."""
    from services.channels import ChannelInput, connect_channel
    from services.platforms.registry import build_platforms
    from services.security.crypto import TokenCipher

    existing = [c for c in await store.list_channels(user) if c.platform == "sandbox"]
    if existing:
        return str(existing[0].id)
    import httpx

    cipher = TokenCipher(os.environ["HERALD_ENCRYPTION_KEYS"].split(","))
    async with httpx.AsyncClient() as http:  # the sandbox makes no call; others would
        channel = await connect_channel(
            store, build_platforms(outbox=store, public_url=os.environ["HERALD_PUBLIC_URL"]), cipher, user,
            ChannelInput(platform="sandbox", name="Local sandbox", account_id="local-sandbox",
                         credentials={"access_token": "placeholder"}),
            http=http,
        )
    return str(channel.id)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
    parser.add_argument("--tick", type=float, default=60.0, help="seconds between cron calls (default 60)")
    parser.add_argument("--state", type=Path, default=STATE, help=f"where the local secrets are kept (default {STATE.name})")
    args = parser.parse_args()

    # SIGTERM exits through SystemExit, which runs the atexit hooks that stop the embedded
    # PostgreSQL; set before the server starts, so a stop during start-up stops it too (uvicorn
    # re-raises SIGTERM to this handler after its graceful shutdown).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    state = local_secrets(args.state)
    base = f"http://{args.host}:{args.port}"
    os.environ.setdefault("HERALD_STORE", "embedded")
    os.environ.setdefault("HERALD_EMBEDDED_DIR", str(ROOT / ".herald" / "postgres"))
    os.environ.setdefault("SUPABASE_JWT_SECRET", state["jwt_secret"])
    os.environ.setdefault("CRON_SECRET", state["cron_secret"])
    os.environ.setdefault("HERALD_ENCRYPTION_KEYS", state["encryption_key"])
    os.environ.setdefault("HERALD_PUBLIC_URL", base)
    os.environ.setdefault("CORS_ORIGINS", "http://localhost:3000")

    from api.factory import create_app
    from services.domain.models import User
    from services.security.jwt import issue_token
    from services.settings import get_settings
    from services.store.factory import open_store

    settings = get_settings()
    store = open_store(settings)  # starts the embedded server (or reaches HERALD_DATABASE_URL) and migrates
    app = create_app(settings, store=store)
    token = issue_token(state["demo_user_id"], os.environ["SUPABASE_JWT_SECRET"], ttl_seconds=30 * 86400)
    if settings.herald_store != "supabase":
        ensure_demo_user(store, state["demo_user_id"])
    channel_id = await demo_channel(store, User(id=uuid.UUID(state["demo_user_id"]), token=token))
    where = settings.herald_embedded_dir if settings.herald_store == "embedded" else "HERALD_DATABASE_URL"
    print(f"""
Herald is running at {base}  (API docs: {base}/docs)
  store:        {settings.herald_store} PostgreSQL ({where})
  demo user:    {state['demo_user_id']}
  cron secret:  {os.environ['CRON_SECRET']}
  ticker:       calls the publish endpoint every {args.tick:g} s

  sandbox channel for the demo user: {channel_id}

Try it (the token is valid for 30 days): schedule a post a minute from now, then watch it publish.
  export TOKEN={token}
  export CHANNEL={channel_id} CRON_SECRET={os.environ['CRON_SECRET']}
  curl -s -X POST {base}/api/v1/posts -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
    -d '{{"content":{{"text":"Hello from Herald"}},"channel_ids":["{channel_id}"],'\\
'"scheduled_at":"'$(date -u -v+1M +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -d '+1 min' +%Y-%m-%dT%H:%M:%SZ)'"}}'
  curl -s {base}/api/v1/posts -H "Authorization: Bearer $TOKEN"              # status: scheduled, then published
  curl -s {base}/api/v1/sandbox/outbox -H "Authorization: Bearer $TOKEN"     # what the sandbox published
""", flush=True)

    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="info"))
    ticker = asyncio.create_task(tick_forever(base, os.environ["CRON_SECRET"], args.tick))
    try:
        await server.serve()
    finally:
        ticker.cancel()
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
