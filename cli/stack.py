"""`golive server up|down|status`: a local Prefect server, a process work pool and a worker.

The Prefect path on one machine: `prefect server start` on 127.0.0.1, the `golive-local` process
pool, the safety net's automation (a go-live whose heartbeats stop is Crashed) and `prefect worker
start` on the pool, server and worker each in its own process group (so `down` stops a worker and
the flow runs it started together). Pids with their start times are kept in the stack's
folder, so `down` stops exactly what `up` started and nothing that reused a pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from cli.deployments import HEARTBEAT_SECONDS, install_safety_net
from sandbox import processes

__all__ = ["POOL", "Stack", "StackError"]

POOL = "golive-local"


class StackError(RuntimeError):
    """The stack could not start or stop; one line saying why."""


@dataclass
class Stack:
    folder: Path = Path(".golive/server")

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    def state(self) -> dict | None:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None

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

    def up(self, port: int = 4200, timeout: float = 120.0, tie_to_parent: bool = False, say=print) -> str:
        """Start the server, make the pool, start the worker; returns PREFECT_API_URL."""
        if any(self.running().values()):
            raise StackError(f"a stack is already running ({self.state_path}); stop it with `golive server down`")
        if not processes.port_free(port):
            raise StackError(f"port {port} is in use; choose another with --port")
        self.folder.mkdir(parents=True, exist_ok=True)
        api_url = f"http://127.0.0.1:{port}/api"
        env = self.env(api_url)
        server = self._prefect("server", "start", "--host", "127.0.0.1", "--port", str(port), env=env,
                               log="server.log", tie_to_parent=tie_to_parent)
        started = {"server": server}
        try:
            self._record(started, api_url)
            say(f"starting the Prefect server on {api_url} …")
            self._wait_healthy(api_url, server, timeout)
            created = subprocess.run([sys.executable, "-m", "prefect", "work-pool", "create", POOL, "--type", "process"],
                                     env=env, capture_output=True, text=True, timeout=120)
            if created.returncode != 0 and "already exists" not in created.stdout + created.stderr:
                raise StackError(f"work pool {POOL}: {(created.stdout + created.stderr).strip()[-300:]}")
            install_safety_net(api_url)
            say("automation installed: a go-live whose heartbeats stop is marked Crashed")
            started["worker"] = self._prefect("worker", "start", "--pool", POOL, env=env, log="worker.log",
                                              tie_to_parent=tie_to_parent)
            self._record(started, api_url)
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

    def _record(self, started: dict[str, subprocess.Popen], api_url: str) -> None:
        self.state_path.write_text(json.dumps({"api_url": api_url, "processes": {
            name: {"pid": p.pid, "ticks": processes.start_ticks(p.pid)} for name, p in started.items()}}, indent=2))

    @staticmethod
    def _wait_healthy(api_url: str, server: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise StackError(f"the Prefect server exited ({server.returncode}); see server.log")
            try:
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise StackError(f"the Prefect server did not answer within {timeout:g} s")

    def down(self, timeout: float = 20.0) -> list[str]:
        """Stop the worker (and its flow runs), then the server; returns what was stopped."""
        state = self.state() or {}
        stopped = []
        for name in ("worker", "server"):
            meta = state.get("processes", {}).get(name)
            if not meta or not processes.alive(meta["pid"], meta["ticks"]):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(meta["pid"], signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while processes.alive(meta["pid"], meta["ticks"]) and time.monotonic() < deadline:
                processes.reap(meta["pid"])
                time.sleep(0.2)
            with contextlib.suppress(ProcessLookupError):  # stragglers of the group (flow runs)
                os.killpg(meta["pid"], signal.SIGKILL)
            processes.reap(meta["pid"])
            stopped.append(name)
        self.state_path.unlink(missing_ok=True)
        return stopped
