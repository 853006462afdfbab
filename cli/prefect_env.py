"""Prefect settings golive needs on small machines, set before Prefect is imported, and the
temporary server of a command that runs a go-live in its own process.

A flow run with no server configured starts a temporary one; on two cores it needs more than
Prefect's default 20 s to start, and analytics would only log errors offline. Defaults only:
anything already in the environment (a real server's PREFECT_API_URL, say) wins.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import tomllib
from contextlib import closing
from pathlib import Path

from golive.cache import cache_dir

__all__ = ["ServerError", "ServerStart", "configure_prefect", "keep_as_template", "seed_database", "server_configured",
           "start_a_server_of_its_own", "start_server", "stop_server", "use_a_server_of_its_own",
           "wait_until_healthy"]

STARTUP_SECONDS = 120.0
# How SQLAlchemy reports a database file SQLite cannot use (not a database, malformed, an
# unknown migration) in the server's log.
_DATABASE_REFUSED = re.compile(r"DatabaseError|file is not a database|malformed|Can't locate revision")


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
    return start_a_server_of_its_own().ready()


class ServerStart:
    """A temporary server on its way up: started at once, in the calling thread (it dies with that
    thread), so that other work can go on while it boots; `ready()` waits for it. `name_it`: its
    URL becomes PREFECT_API_URL once it answers."""

    def __init__(self, home: Path | None, name_it: bool = False):
        self.home, self.name_it, self.server, self.api_url, self.answered = home, name_it, None, None, False
        if home is not None:
            self.seeded = seed_database(home)
            self.log_from = _log_size(home)
            self.server, self.api_url = _spawn_server(home)

    def ready(self) -> str | None:
        """The server's API URL once it answers (None: none was started). ServerError when it
        cannot start."""
        if self.server is None or self.answered:
            return self.api_url
        for attempt in range(3):
            try:
                _wait_for_server(self.home, self.server, self.api_url)
                break
            except ServerError:
                said, last = _said_since(self.home, self.log_from), attempt == 2
                if not last and self.seeded and _DATABASE_REFUSED.search(said):
                    # A template this server would not start on: made again, from nothing.
                    _forget_database(self.home)
                    if (template := _database_template()) is not None:
                        template.unlink(missing_ok=True)
                    self.seeded = False
                elif last or "address already in use" not in said.lower():
                    raise
                # Else its port, free when chosen, was taken before it bound it (the demo starts
                # the sandbox meanwhile): again, on another.
                self.log_from = _log_size(self.home)
                self.server, self.api_url = _spawn_server(self.home)
        self.answered = True
        if self.seeded is False:
            keep_as_template(self.home)
        if self.name_it:
            os.environ["PREFECT_API_URL"] = self.api_url
        return self.api_url

    def stop(self) -> None:
        if self.server is not None:
            stop_server(self.server)


def start_a_server_of_its_own() -> ServerStart:
    """`use_a_server_of_its_own`, without waiting: the server boots while the caller goes on;
    `ready()` waits and names it."""
    if server_configured():
        return ServerStart(None)
    starting = ServerStart(Path(os.environ["PREFECT_HOME"]), name_it=True)
    # Registered before Prefect registers its own exit handlers, so run after them.
    atexit.register(starting.stop)
    return starting


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    """Prefect's temporary server (its database in `home`, no UI) on a free loopback port, in a
    session of its own and ending with this process; the app asks again what SQLite refused as
    busy (`cli.prefect_server_app`). A new database starts as a copy of the template of this
    Prefect version (`seed_database`); a server that will not start on it starts again on a
    database of its own making, and that one becomes the template; one whose port was taken
    before it bound it starts again on another. Returns the server and its API URL once it
    answers; its output goes to `home`/server.log. ServerError when it cannot start."""
    starting = ServerStart(home)
    starting.ready()
    return starting.server, starting.api_url


def _spawn_server(home: Path) -> tuple[subprocess.Popen, str]:
    from sandbox.processes import die_with_parent, free_ports

    port = free_ports(1)[0]
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
           "PREFECT__SERVER_FINAL": "1"}
    with (home / "server.log").open("ab") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).resolve().parent.parent),
             "--factory", "cli.prefect_server_app:create_app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=die_with_parent)
    return server, f"http://127.0.0.1:{port}/api"


def _wait_for_server(home: Path, server: subprocess.Popen, api_url: str) -> None:
    try:
        started = wait_until_healthy(api_url, server, STARTUP_SECONDS)
    except ServerError:
        stop_server(server)
        raise
    if not started:
        tail = (home / "server.log").read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise ServerError(f"the temporary Prefect server stopped as it started: {tail[0]}")


def _log_size(home: Path) -> int:
    try:
        return (home / "server.log").stat().st_size
    except OSError:
        return 0


def _said_since(home: Path, offset: int) -> str:
    """What the server wrote to its log since `offset`."""
    try:
        with (home / "server.log").open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
    except OSError:
        return ""


def _forget_database(home: Path) -> None:
    for name in ("prefect.db", "prefect.db-wal", "prefect.db-shm"):
        (home / name).unlink(missing_ok=True)


def _database_template() -> Path | None:
    """The migrated, empty database the temporary servers of this Prefect version start from; None
    where Prefect's database is not its default SQLite file (a configured URL)."""
    if os.environ.get("PREFECT_SERVER_DATABASE_CONNECTION_URL") or os.environ.get(
            "PREFECT_API_DATABASE_CONNECTION_URL"):
        return None
    from importlib.metadata import version

    return cache_dir() / "prefect-database" / f"prefect-{version('prefect')}.db"


def seed_database(home: Path) -> bool | None:
    """A new temporary server's database, copied from the template when there is one: migrating an
    empty SQLite file takes about half of the server's start. True: seeded; False: the server will
    make its database from nothing; None: the home already has one, or Prefect's is not SQLite."""
    template, database = _database_template(), home / "prefect.db"
    if template is None or database.exists():
        return None
    partial = home / f".prefect.db.seeding.{os.getpid()}"
    try:
        shutil.copyfile(template, partial)
        for stale in ("prefect.db-wal", "prefect.db-shm"):  # a removed database's: SQLite would apply them
            (home / stale).unlink(missing_ok=True)
        os.link(partial, database)  # never over a database another process made meanwhile
        return True
    except FileExistsError:
        return None
    except OSError:  # none yet (or unreadable): this server makes the database, and the template
        return False
    finally:
        partial.unlink(missing_ok=True)


def keep_as_template(home: Path) -> None:
    """Once a server has migrated a database from nothing (and registered Prefect's block types,
    before it answered): a consistent copy as the template, with no row of a session of its own."""
    template = _database_template()
    if template is None:
        return
    partial = template.with_name(f".{template.name}.{os.getpid()}")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        # Read-only: a server whose database is configured elsewhere made no file here to copy.
        with closing(sqlite3.connect(f"file:{home / 'prefect.db'}?mode=ro", uri=True)) as source, \
                closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)
            tables = {name for (name,) in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in tables:
                raise sqlite3.DatabaseError("not a migrated Prefect database")
            if "configuration" in tables:
                copy.execute("DELETE FROM configuration WHERE key = 'TELEMETRY_SESSION'")
                copy.commit()
        os.replace(partial, template)
    except (OSError, sqlite3.Error):
        for name in (partial.name, f"{partial.name}-wal", f"{partial.name}-shm"):  # a cache: the next
            partial.with_name(name).unlink(missing_ok=True)  # server from nothing tries again


def server_configured() -> bool:
    """A Prefect API to use is named (in Prefect's settings, the environment or the active profile)."""
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
