"""The README's "Try it", followed literally by a newcomer: start `make run`'s script, paste the
export lines it prints, run the README's commands, and see the post published."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: a first start makes the embedded database cluster and applies every migration
STARTUP_SECONDS = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _try_it_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Try it"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def test_the_readme_try_it_publishes_a_post(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HERALD_", "SUPABASE_", "CRON_"))}
    env.update(HERALD_EMBEDDED_DIR=str(tmp_path / "postgres"), PYTHONUNBUFFERED="1")
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run_local.py"), "--port", str(port), "--tick", "3600",
         "--state", str(tmp_path / "state.json")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        exports, printed = [], []
        deadline = time.monotonic() + STARTUP_SECONDS
        while len(exports) < 2 and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                break
            printed.append(line)
            if line.strip().startswith("export "):
                exports.append(line.strip())
        assert len(exports) == 2, "".join(printed[-40:])
        wait_for_port(port)
        script = "\n".join([*exports, _try_it_block().replace("localhost:8000", f"localhost:{port}")])
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        answers = _json_values(done.stdout)  # curl prints each answer with no line break after it
        created, run, published, outbox, recurring = answers
        assert created["status"] == "scheduled" and run["published"] == 1
        assert [p["id"] for p in published["items"]] == [created["id"]]
        assert [e["text"] for e in outbox["items"]] == ["Hello from Herald"]
        assert recurring["local_scheduled_at"] == "2030-06-03T09:00:00+02:00" and recurring["rrule"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        server.stdout.close()


def _json_values(text: str) -> list:
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")
