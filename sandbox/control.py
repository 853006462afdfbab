"""Start, inspect, steer and stop the sandbox. Used by `golive sandbox …` and by the tests.

The sandbox lives in one working folder: `config.json` (what was asked for), `state.json`
(what runs: pids with their start times, ports), `logs/`, nginx's and Prometheus' files and the
service database. Everything talks to it over HTTP or through those files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from sandbox import processes
from sandbox.configs import Ports, write_atomic
from sandbox.release_repo import create_release_repo

__all__ = ["INSTALL_HINT", "Sandbox", "SandboxError", "default_workdir"]

INSTALL_HINT = "apt-get install -y --no-install-recommends prometheus prometheus-alertmanager nginx"
TRACKS = ("stable", "canary")
# Where Debian puts the binaries, in case they are not on this user's PATH.
_SBIN = ("/usr/sbin", "/usr/bin", "/sbin")

Progress = Callable[[str], None]


class SandboxError(Exception):
    """Something the user can act on; the message says what."""


def default_workdir() -> Path:
    env = os.environ.get("GOLIVE_SANDBOX_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"golive-sandbox-{os.getuid()}"


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SBIN))
    if not found:
        raise SandboxError(f"{name} is not installed; install it with: {INSTALL_HINT}")
    return found


@dataclass
class ComponentStatus:
    name: str
    pid: int
    port: int | None
    alive: bool
    listening: bool | None

    @property
    def healthy(self) -> bool:
        return self.alive and self.listening is not False


class Sandbox:
    """A handle on the sandbox in `workdir` (running or not)."""

    def __init__(self, workdir: Path | None = None):
        self.workdir = (workdir or default_workdir()).resolve()

    # -- files ------------------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.workdir / "state.json"

    def _read(self, name: str) -> dict | None:
        try:
            return json.loads((self.workdir / name).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    @property
    def config(self) -> dict:
        config = self._read("config.json")
        if config is None:
            raise SandboxError(f"no sandbox in {self.workdir}; start one with `golive sandbox up`")
        return config

    @property
    def ports(self) -> Ports:
        return Ports(**self.config["ports"])

    def _supervisor_alive(self) -> bool:
        state = self._read("state.json")
        return bool(state) and processes.alive(state["supervisor"]["pid"], state["supervisor"]["ticks"])

    # -- urls -------------------------------------------------------------------------------------

    @property
    def router_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.router}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.alertmanager}"

    def service_url(self, track: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, _track(track))}"

    def admin_url(self, track: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, _track(track) + '_admin')}"

    def urls(self) -> dict[str, str]:
        return {
            "router (nginx)": self.router_url,
            "stable": self.service_url("stable"),
            "canary": self.service_url("canary"),
            "stable admin": self.admin_url("stable"),
            "canary admin": self.admin_url("canary"),
            "prometheus": self.prometheus_url,
            "alertmanager": self.alertmanager_url,
            "router control": self.control_url,
        }

    def golive_settings(self) -> dict:
        """How golive reaches this sandbox: the fields of its settings' sections that name
        addresses (`prometheus`, `target`) and the release repository (`process`)."""
        return {
            "prometheus": {"url": self.prometheus_url, "alertmanager_url": self.alertmanager_url},
            "target": {
                "router": {"kind": "sandbox", "control_url": self.control_url},
                "traffic_url": self.router_url,
                "canary_url": self.service_url("canary"),
                "stable_url": self.service_url("stable"),
                "canary_admin_url": self.admin_url("canary"),
            },
            "process": {"git": {"repo": str(self.workdir / "spark"), "remote": "origin"}},
        }

    # -- up ---------------------------------------------------------------------------------------

    @classmethod
    def up(
        cls,
        workdir: Path | None = None,
        *,
        release: str = "1.4.0",
        stable_version: str = "1.3.2",
        rate: float = 50.0,
        probe_rate: float = 1.0,
        port_base: int | None = None,
        free_ports: bool = False,
        owner_pid: int | None = None,
        seed: int | None = None,
        duration: float = 4 * 3600,
        timeout: float = 45.0,
        progress: Progress | None = None,
        ready_queries: Mapping[str, str] | None = None,
        rules_file: Path | None = None,
    ) -> Sandbox:
        """Start everything and wait until every part listens and Prometheus answers each of
        `ready_queries` (name → PromQL: what the caller will read) with a number. Prometheus
        evaluates `rules_file` (recording and alerting rules), when given, from the start.

        On failure everything started is stopped again and SandboxError says what was missing.
        """
        sandbox = cls(workdir)
        say = progress or (lambda _msg: None)
        binaries = {"prometheus": _binary("prometheus"), "nginx": _binary("nginx"),
                    "alertmanager": _binary("prometheus-alertmanager")}
        if sandbox._supervisor_alive():
            state = sandbox._read("state.json")
            raise SandboxError(
                f"a sandbox is already running in {sandbox.workdir} (supervisor pid {state['supervisor']['pid']}, "
                f"started {state.get('started_at')}); stop it first with `golive sandbox down`"
            )
        sandbox._stop_leftovers()
        if free_ports:
            ports = Ports(*processes.free_ports(len(Ports.__dataclass_fields__)))
        else:
            ports = Ports.from_base(port_base) if port_base else Ports()
            for name, port in ports.as_dict().items():
                if not processes.port_free(port):
                    raise SandboxError(f"port {port} ({name}) is in use; choose other ports with --port-base")
        sandbox.workdir.mkdir(parents=True, exist_ok=True)
        for stale in ("prometheus/data", "prometheus/rules", "alertmanager/data", "spark.sqlite", "spark.sqlite-wal", "spark.sqlite-shm"):
            path = sandbox.workdir / stale
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        config = {
            "ports": ports.as_dict(), "release": release, "stable_version": stable_version, "rate": rate,
            "probe_rate": probe_rate, "seed": seed, "duration": duration, "binaries": binaries,
            "owner_pid": owner_pid, "owner_ticks": processes.start_ticks(owner_pid) if owner_pid else None,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_atomic(sandbox.workdir / "config.json", json.dumps(config, indent=2))
        create_release_repo(sandbox.workdir, release, stable_version)
        if rules_file is not None:
            sandbox._place_rules(Path(rules_file))
        (sandbox.workdir / "logs").mkdir(exist_ok=True)
        say(f"starting the sandbox in {sandbox.workdir}")
        with open(sandbox.workdir / "logs" / "supervisor.log", "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "sandbox.supervisor", str(sandbox.workdir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=sandbox.workdir, env={**os.environ, "PYTHONPATH": _import_root()},
            )
        try:
            sandbox.wait_ready(timeout=timeout, progress=say, ready_queries=ready_queries)
        except BaseException:
            sandbox.down()
            raise
        return sandbox

    def wait_ready(self, timeout: float = 45.0, progress: Progress | None = None,
                   ready_queries: Mapping[str, str] | None = None) -> None:
        """Until every component listens and Prometheus answers every one of `ready_queries`."""
        say = progress or (lambda _msg: None)
        deadline = time.monotonic() + timeout
        missing: list[str] = ["supervisor state"]
        last_said = 0.0
        while time.monotonic() < deadline:
            state = self._read("state.json")
            if state and state["status"] == "running":
                dead = [c.name for c in self.status() if not c.healthy]
                missing = [f"{name} not up" for name in dead] or self.queries_missing(ready_queries or {})
                if not missing:
                    return
            elif state and state["status"] in ("stopping", "stopped"):
                raise SandboxError(f"the sandbox stopped while starting; see {self.workdir / 'logs'}")
            if time.monotonic() - last_said > 3:
                say(f"waiting for: {', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}")
                last_said = time.monotonic()
            time.sleep(0.5)
        raise SandboxError(f"not ready after {timeout:g} s; still waiting for: {', '.join(missing)} "
                           f"(logs in {self.workdir / 'logs'})")

    def queries_missing(self, queries: Mapping[str, str]) -> list[str]:
        """The names of `queries` (name → PromQL) that Prometheus does not answer with a number yet."""
        from prometheus_api_client import PrometheusConnect

        prom = PrometheusConnect(url=self.prometheus_url, disable_ssl=True)
        missing = []
        for name, query in queries.items():
            try:
                result = prom.custom_query(query)
            except Exception:  # noqa: BLE001 - not answering yet is what we wait for
                result = []
            values = [r["value"][1] for r in result]
            if not values or values[0] in ("NaN", "+Inf", "-Inf"):
                missing.append(name)
        return missing

    # -- rules ------------------------------------------------------------------------------------

    @property
    def _rules_folder(self) -> Path:
        return self.workdir / "prometheus" / "rules"

    def _place_rules(self, rules_file: Path) -> None:
        try:
            text = rules_file.read_text()
        except OSError as exc:
            raise SandboxError(f"rules file {rules_file}: {exc.strerror}") from None
        self._rules_folder.mkdir(parents=True, exist_ok=True)
        write_atomic(self._rules_folder / "golive.yml", text)

    def load_rules(self, rules_file: Path | None) -> None:
        """Have the running Prometheus evaluate `rules_file` instead of the rules it had (None: no
        rules); a file Prometheus refuses is taken out again and SandboxError quotes why."""
        if not self.running():
            raise SandboxError(f"no sandbox running in {self.workdir}; start one with `golive sandbox up`")
        if rules_file is None:
            (self._rules_folder / "golive.yml").unlink(missing_ok=True)
        else:
            self._place_rules(Path(rules_file))
        try:
            response = httpx.post(f"{self.prometheus_url}/-/reload", timeout=30)
        except httpx.TransportError as exc:
            raise SandboxError(f"Prometheus does not answer ({exc})") from None
        if response.status_code != 200:
            (self._rules_folder / "golive.yml").unlink(missing_ok=True)
            httpx.post(f"{self.prometheus_url}/-/reload", timeout=30)
            raise SandboxError(f"Prometheus refused {rules_file}: {response.text.strip()}")

    # -- status / down ----------------------------------------------------------------------------

    def running(self) -> bool:
        return self._supervisor_alive()

    def status(self) -> list[ComponentStatus]:
        state = self._read("state.json")
        if not state:
            return []
        result = []
        for name, meta in state["components"].items():
            is_alive = processes.alive(meta["pid"], meta["ticks"])
            port = meta.get("port")
            result.append(ComponentStatus(name, meta["pid"], port, is_alive,
                                          processes.listening(port) if port else None))
        return result

    def down(self, timeout: float = 15.0) -> list[str]:
        """Stop what `up` started (and only that); returns the names of what was running."""
        state = self._read("state.json")
        if not state:
            return []
        stopped = [c.name for c in self.status() if c.alive]
        sup = state["supervisor"]
        processes.send(sup["pid"], signal.SIGTERM, sup["ticks"])
        deadline = time.monotonic() + timeout
        while processes.alive(sup["pid"], sup["ticks"]) and time.monotonic() < deadline:
            processes.reap(sup["pid"])
            time.sleep(0.1)
        processes.reap(sup["pid"])
        self._stop_leftovers()
        ports = [p for p in self.ports.as_dict().values()]
        while any(processes.listening(p) for p in ports) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
        self._state_path.unlink(missing_ok=True)
        return stopped

    def _stop_leftovers(self) -> None:
        """Kill anything recorded in a state file whose supervisor is gone (killed by hand, say)."""
        state = self._read("state.json")
        if not state:
            return
        recorded = [state["supervisor"], *state["components"].values()]
        for meta in recorded:
            processes.send(meta["pid"], signal.SIGKILL, meta["ticks"])
        for meta in recorded:
            processes.reap(meta["pid"])
        self._state_path.unlink(missing_ok=True)

    # -- steering ---------------------------------------------------------------------------------

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.control}"

    def weight(self) -> int:
        """The canary weight in force, read back from the router's workers."""
        return self._control("GET", "/weight")["weight"]

    def fence(self) -> dict:
        """The router's fencing generation and who took it (`{"generation": N, "holder": …}`)."""
        return self._control("GET", "/weight")["fence"]

    def set_weight(self, weight: int, holder: str = "golive sandbox weight (by hand)") -> int:
        """Set the canary weight as an operator: a new fencing generation first (so any go-live
        still writing is fenced off), then the weight; returns once every accepting router worker
        serves it. The router checks the value (0-100) and says what is wrong."""
        fence = self._control("POST", "/fence", json={"holder": {"kind": "operator", "name": holder}})
        return self._control("PUT", "/weight", json={"weight": weight, "generation": fence["generation"]})["weight"]

    def router_faults(self) -> dict:
        return self._control("GET", "/faults")

    def set_router_faults(self, refuse: int = 0, delay_seconds: float = 0.0) -> dict:
        """Make the router's control API refuse its next `refuse` writes (503) and answer each
        write `delay_seconds` late."""
        return self._control("POST", "/faults", json={"refuse": refuse, "delay_seconds": delay_seconds})

    def clear_router_faults(self) -> dict:
        return self._control("DELETE", "/faults")

    def _control(self, method: str, path: str, **kwargs) -> dict:
        if not self.running():
            raise SandboxError(f"no sandbox running in {self.workdir}; start one with `golive sandbox up`")
        try:
            response = httpx.request(method, f"{self.control_url}{path}", timeout=20, **kwargs)
        except httpx.TransportError as exc:
            raise SandboxError(f"the router's control API does not answer ({exc})") from None
        if response.status_code != 200:
            raise SandboxError(response.json().get("error", response.text))
        return response.json()

    def faults(self, track: str) -> dict:
        return self._admin("GET", track)

    def set_faults(self, track: str, values: dict[str, float]) -> dict:
        return self._admin("POST", track, json=values)

    def clear_faults(self, track: str) -> dict:
        return self._admin("DELETE", track)

    def _admin(self, method: str, track: str, **kwargs) -> dict:
        try:
            response = httpx.request(method, f"{self.admin_url(track)}/faults", timeout=5, **kwargs)
        except httpx.TransportError as exc:
            raise SandboxError(f"the {track} service does not answer on its admin port ({exc})") from None
        if response.status_code == 422:
            raise SandboxError(response.json()["error"])
        response.raise_for_status()
        return response.json()


def _track(track: str) -> str:
    if track not in TRACKS:
        raise SandboxError(f"track: expected stable or canary, got {track!r}")
    return track


def _import_root() -> str:
    """The folder that holds the `sandbox` package, for the supervisor's `python -m`."""
    root = str(Path(__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root
