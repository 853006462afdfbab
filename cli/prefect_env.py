"""Prefect settings golive needs on small machines, set before Prefect is imported, and the
temporary server of a command that runs a go-live in its own process.

A flow run with no server configured starts a temporary one; on two cores it needs more than
Prefect's default 20 s to start, and analytics would only log errors offline. Defaults only:
anything already in the environment (a real server's PREFECT_API_URL, say) wins.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

__all__ = ["ServerError", "configure_prefect", "start_server", "stop_server", "use_a_server_of_its_own",
           "wait_until_healthy"]

STARTUP_SECONDS = 120.0


class ServerError(Exception):
    """The temporary Prefect server could not be started; the message says why."""


def configure_prefect(home: Path | None = None) -> None:
    os.environ.setdefault("PREFECT_HOME", str(home or Path.cwd() / ".golive" / "prefect"))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)  # Prefect makes no parents
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def use_a_server_of_its_own() -> str | None:
    """Where no server is configured, start the temporary server Prefect would start (the same
    app, on a free loopback port, its database in PREFECT_HOME), but in a session of its own: a
    Ctrl-C at the terminal reaches the whole foreground group, and Prefect's own temporary server
    would stop with it just when the rollback needs it. PREFECT_API_URL then names it, for this
    process and those it starts, so call this before Prefect is imported (it reads its settings
    once). The server stops at exit, after Prefect has sent what it still holds, or with this
    process if it dies. Returns its API URL, or None where a server is configured."""
    if _server_configured():
        return None
    server, api_url = start_server(Path(os.environ["PREFECT_HOME"]))
    # Registered before Prefect registers its own exit handlers, so run after them.
    atexit.register(stop_server, server)
    os.environ["PREFECT_API_URL"] = api_url
    return api_url


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    """Prefect's temporary server (its database in `home`, no UI) on a free loopback port, in a
    session of its own and ending with this process; the app asks again what SQLite refused as
    busy (`cli.prefect_server_app`). Returns the server and its API URL once it answers; its
    output goes to `home`/server.log. ServerError when it cannot start."""
    from sandbox.processes import die_with_parent, free_ports

    port = free_ports(1)[0]
    log = home / "server.log"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
           "PREFECT__SERVER_FINAL": "1"}
    with log.open("ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).resolve().parent.parent),
             "--factory", "cli.prefect_server_app:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=die_with_parent)
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        started = wait_until_healthy(api_url, server, STARTUP_SECONDS)
    except ServerError:
        stop_server(server)
        raise
    if not started:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise ServerError(f"the temporary Prefect server stopped as it started: {tail[0]}")
    return server, api_url


def _server_configured() -> bool:
    if "prefect" in sys.modules:  # its settings are read: ask them (a test harness sets them in a context)
        from prefect.settings import get_current_settings

        return bool(get_current_settings().api.url)
    if os.environ.get("PREFECT_API_URL"):
        return True
    profiles = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")) / "profiles.toml"
    try:
        document = tomllib.loads(profiles.read_text())
    except (OSError, ValueError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or document.get("active", "ephemeral")
    profile = document.get("profiles", {}).get(active, {})
    return isinstance(profile, dict) and bool(profile.get("PREFECT_API_URL"))


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def wait_until_healthy(api_url: str, server: subprocess.Popen, timeout: float) -> bool:
    """Until a Prefect server started as `server` answers `api_url`/health: True once it does,
    False when it exits first; ServerError when `timeout` seconds pass."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ServerError(f"the Prefect server did not answer within {timeout:g} s")
