"""`golive server up|down|status`: a local Prefect server, a process work pool and a worker.

The Prefect path on one machine: `prefect server start` on 127.0.0.1 (on SQLite, or on PostgreSQL:
a local one of its own, or a given URL), the `golive-local` process pool, the safety net's automation (a go-live whose heartbeats stop is Crashed) and `prefect worker
start` on the pool, server and worker each in its own process group (so `down` stops a worker and
the flow runs it started together). Pids with their start times are kept in the stack's
folder, so `down` stops exactly what `up` started and nothing that reused a pid.
"""

from __future__ import annotations

import contextlib
import json
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cli.deployments import HEARTBEAT_SECONDS, install_safety_net
from cli.prefect_env import ServerError, wait_until_healthy
from sandbox import processes

__all__ = ["POOL", "LocalPostgres", "Stack", "StackError", "asyncpg_url"]

POOL = "golive-local"
POSTGRES_BINARIES = "/usr/lib/postgresql/*/bin"
POSTGRES_PREFIX = "golive-postgres-"
POSTGRES_INSTALL_HINT = "sudo apt-get install -y --no-install-recommends postgresql (or GOLIVE_POSTGRES=1 scripts/setup.sh)"


class StackError(RuntimeError):
    """The stack could not start or stop; one line saying why."""


def asyncpg_url(url: str) -> str:
    """A PostgreSQL URL in the form Prefect's server connects with (the asyncpg driver)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        # Never the URL, which may hold a password: its scheme, when it is one.
        is_scheme = sep and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,19}", scheme)
        shown = f"a {scheme!r} URL" if is_scheme else "something else"
        raise StackError(f"--database: expected sqlite, postgresql or a postgresql:// URL, got {shown}")
    return f"postgresql+asyncpg://{rest}"


@dataclass
class LocalPostgres:
    """A throwaway PostgreSQL cluster on a loopback port: `initdb` in a temp folder, `postgres`
    in the foreground as our child, a database for Prefect; `remove` deletes the folder."""

    data_dir: Path
    port: int
    user: str = "golive"
    database: str = "prefect"

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @staticmethod
    def binaries() -> Path:
        found = sorted(glob.glob(POSTGRES_BINARIES), key=lambda p: int(Path(p).parent.name))
        if not found:
            raise StackError(f"PostgreSQL is not installed; install it with: {POSTGRES_INSTALL_HINT}")
        return Path(found[-1])

    @staticmethod
    def _owner() -> str | None:
        """initdb refuses root: as root the cluster belongs to Debian's `postgres` user."""
        if os.getuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres").pw_name
        except KeyError:
            raise StackError("initdb refuses to run as root and there is no `postgres` user; "
                             "install PostgreSQL's package or run as another user") from None

    @classmethod
    def create(cls, port: int) -> LocalPostgres:
        owner, initdb = cls._owner(), cls.binaries() / "initdb"
        data_dir = Path(tempfile.mkdtemp(prefix=POSTGRES_PREFIX))  # a temp folder the owner can reach
        if owner:
            shutil.chown(data_dir, owner, owner)
        cluster = cls(data_dir, port)
        done = subprocess.run([str(initdb), "-D", str(data_dir / "data"), "-U", cluster.user,
                               "-A", "trust", "-E", "UTF8", "--no-sync"], user=owner, cwd=data_dir,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            cluster.remove()
            raise StackError(f"initdb: {(done.stdout + done.stderr).strip()[-300:]}")
        return cluster

    def start(self, log: Path, tie_to_parent: bool) -> subprocess.Popen:
        with open(log, "ab") as out:
            return subprocess.Popen(
                [str(self.binaries() / "postgres"), "-D", str(self.data_dir / "data"), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data_dir}"],
                user=self._owner(), cwd=self.data_dir, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=processes.die_with_parent if tie_to_parent else None)

    def wait_ready(self, server: subprocess.Popen, timeout: float) -> None:
        """Until it accepts connections; then make Prefect's database."""
        deadline = time.monotonic() + timeout
        ready = [str(self.binaries() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user]
        while subprocess.run(ready, capture_output=True).returncode != 0:
            if server.poll() is not None:
                raise StackError(f"PostgreSQL exited ({server.returncode}); see postgres.log")
            if time.monotonic() > deadline:
                raise StackError(f"PostgreSQL did not accept connections within {timeout:g} s")
            time.sleep(0.2)
        made = subprocess.run([str(self.binaries() / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                               "-U", self.user, self.database], capture_output=True, text=True, timeout=60)
        if made.returncode != 0:
            raise StackError(f"createdb: {made.stderr.strip()[-300:]}")

    def remove(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _own_postgres_folder(path: object) -> bool:
    """A folder `LocalPostgres.create` made: directly in the temp folder, named by its prefix."""
    if not isinstance(path, str):
        return False
    folder = Path(path)
    return (folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith(POSTGRES_PREFIX)
            and not folder.is_symlink())


@dataclass
class Stack:
    folder: Path = Path(".golive/server")

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    def state(self) -> dict | None:
        """The stack's state file, checked before anything trusts it: processes named with a pid and
        the start it was recorded with, a PostgreSQL folder of its own making. None when there is
        no state; StackError naming the file when it is not one `up` wrote."""
        try:
            if not self.state_path.is_file():
                return None
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            raise StackError(f"{self.state_path}: not a state file golive wrote; move it away") from None
        recorded = state.get("processes") if isinstance(state, dict) else None
        if not isinstance(recorded, dict) or not all(
                isinstance(p, dict) and type(p.get("pid")) is int and p["pid"] > 1 and type(p.get("ticks")) is int
                for p in recorded.values()):
            raise StackError(f"{self.state_path}: not a state file golive wrote (each process needs its pid and "
                             "start); move it away")
        postgres = state.get("postgres")
        if postgres is not None and not _own_postgres_folder(postgres.get("data_dir") if isinstance(postgres, dict)
                                                             else None):
            raise StackError(f"{self.state_path}: names a PostgreSQL folder golive did not make; move it away")
        return state

    def running(self) -> dict[str, bool]:
        state = self.state() or {}
        return {name: processes.alive(p["pid"], p["ticks"]) for name, p in state.get("processes", {}).items()}

    def env(self, api_url: str) -> dict[str, str]:
        home = os.environ.get("PREFECT_HOME", str(Path.cwd() / ".golive" / "prefect"))
        Path(home).mkdir(parents=True, exist_ok=True)
        return {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_HOME": home,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "2",
                "PREFECT_WORKER_CANCELLATION_POLL_SECONDS": "5",  # when the event stream is down
                "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}

    def _prefect(self, *args: str, env: dict, log: str, tie_to_parent: bool) -> subprocess.Popen:
        with open(self.folder / log, "ab") as out:
            return subprocess.Popen([sys.executable, "-m", "prefect", *args], env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=processes.die_with_parent if tie_to_parent else None)

    def up(self, port: int = 4200, timeout: float = 120.0, tie_to_parent: bool = False, say=print,
           database: str = "sqlite") -> str:
        """Start the server (on `database`: sqlite, postgresql for a local cluster of its own, or a
        postgresql:// URL), make the pool, start the worker; returns PREFECT_API_URL. A stack
        already running in the folder is reused."""
        running = self.running()
        if running and all(running.values()):
            state = self.state()
            say(f"a stack already runs in {self.folder} ({state.get('database', 'sqlite')}); using it")
            return state["api_url"]
        if any(running.values()):
            raise StackError(f"part of a stack is still running ({self.state_path}); stop it with `golive server down`")
        if not processes.port_free(port):
            raise StackError(f"port {port} is in use; choose another with --port")
        self.folder.mkdir(parents=True, exist_ok=True)
        api_url = f"http://127.0.0.1:{port}/api"
        env = self.env(api_url)
        server_env, started, extra = dict(env), {}, {"database": "sqlite"}
        try:
            if database == "postgresql":
                cluster = LocalPostgres.create(processes.free_ports(1)[0])
                extra = {"database": f"postgresql (local, port {cluster.port})",
                         "postgres": {"data_dir": str(cluster.data_dir), "port": cluster.port, "user": cluster.user,
                                      "database": cluster.database}}
                self._record(started, api_url, extra)
                say(f"starting PostgreSQL on 127.0.0.1:{cluster.port} …")
                started["postgres"] = cluster.start(self.folder / "postgres.log", tie_to_parent)
                self._record(started, api_url, extra)
                cluster.wait_ready(started["postgres"], timeout)
                server_env["PREFECT_API_DATABASE_CONNECTION_URL"] = cluster.url
            elif database != "sqlite":
                server_env["PREFECT_API_DATABASE_CONNECTION_URL"] = asyncpg_url(database)
                extra = {"database": "postgresql (given URL)"}
            started["server"] = self._prefect("server", "start", "--host", "127.0.0.1", "--port", str(port),
                                              env=server_env, log="server.log", tie_to_parent=tie_to_parent)
            self._record(started, api_url, extra)
            say(f"starting the Prefect server on {api_url} ({extra['database']}) …")
            self._wait_healthy(api_url, started["server"], timeout)
            created = subprocess.run([sys.executable, "-m", "prefect", "work-pool", "create", POOL, "--type", "process"],
                                     env=env, capture_output=True, text=True, timeout=120)
            if created.returncode != 0 and "already exists" not in created.stdout + created.stderr:
                raise StackError(f"work pool {POOL}: {(created.stdout + created.stderr).strip()[-300:]}")
            install_safety_net(api_url)
            say("automation installed: a go-live whose heartbeats stop is marked Crashed")
            started["worker"] = self._prefect("worker", "start", "--pool", POOL, env=env, log="worker.log",
                                              tie_to_parent=tie_to_parent)
            self._record(started, api_url, extra)
        except BaseException:
            self.down()
            raise
        say(f"worker polling pool {POOL}; logs in {self.folder}")
        return api_url

    def start_worker(self, tie_to_parent: bool = False) -> int:
        """Start another worker on the pool, in place of the recorded one (which must be gone: a
        lost machine's worker, say); returns its pid."""
        state = self.state()
        if state is None:
            raise StackError(f"no stack is recorded in {self.state_path}; start one with `golive server up`")
        worker = self._prefect("worker", "start", "--pool", POOL, env=self.env(state["api_url"]), log="worker.log",
                               tie_to_parent=tie_to_parent)
        state["processes"]["worker"] = {"pid": worker.pid, "ticks": processes.start_ticks(worker.pid)}
        self.state_path.write_text(json.dumps(state, indent=2))
        return worker.pid

    def _record(self, started: dict[str, subprocess.Popen], api_url: str, extra: dict) -> None:
        self.state_path.write_text(json.dumps({"api_url": api_url, **extra, "processes": {
            name: {"pid": p.pid, "ticks": processes.start_ticks(p.pid)} for name, p in started.items()}}, indent=2))

    @staticmethod
    def _wait_healthy(api_url: str, server: subprocess.Popen, timeout: float) -> None:
        try:
            healthy = wait_until_healthy(api_url, server, timeout)
        except ServerError as exc:
            raise StackError(str(exc)) from None
        if not healthy:
            raise StackError(f"the Prefect server exited ({server.returncode}); see server.log")

    def down(self, timeout: float = 20.0) -> list[str]:
        """Stop the worker (and its flow runs), the server, then its own PostgreSQL (whose folder is
        removed); returns what was stopped."""
        state = self.state() or {}
        stopped = []
        for name in ("worker", "server", "postgres"):
            meta = state.get("processes", {}).get(name)
            if not meta or not processes.alive(meta["pid"], meta["ticks"]):
                continue
            with contextlib.suppress(ProcessLookupError):  # PostgreSQL's fast shutdown is SIGINT
                os.killpg(meta["pid"], signal.SIGINT if name == "postgres" else signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while processes.alive(meta["pid"], meta["ticks"]) and time.monotonic() < deadline:
                processes.reap(meta["pid"])
                time.sleep(0.2)
            # Its group's stragglers (flow runs): the group was the recorded process's (checked
            # above), and a pid is not reused while a group of that id has members.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(meta["pid"], signal.SIGKILL)
            processes.reap(meta["pid"])
            stopped.append(name)
        if "postgres" in state:
            shutil.rmtree(state["postgres"]["data_dir"], ignore_errors=True)
        self.state_path.unlink(missing_ok=True)
        return stopped
