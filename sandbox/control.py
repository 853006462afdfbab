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
import stat
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
from sandbox.configs import CANARY_PIN_FILE, Ports, read_canary_pin, write_atomic
from sandbox.release_repo import create_release_repo

__all__ = ["INSTALL_HINT", "Sandbox", "SandboxError", "SandboxFolderError", "default_workdir"]

INSTALL_HINT = ("apt-get install -y --no-install-recommends prometheus prometheus-alertmanager "
                "prometheus-pushgateway nginx")
# The stable version's secondary answers only the shadow stage's mirror: the noise the canary's
# response differences are measured against.
TRACKS = ("stable", "canary", "secondary")
# Where Debian puts the binaries, in case they are not on this user's PATH.
_SBIN = ("/usr/sbin", "/usr/bin", "/sbin")

Progress = Callable[[str], None]


class SandboxError(Exception):
    """Something the user can act on; the message says what."""


class SandboxFolderError(SandboxError):
    """The sandbox's folder, or a file in it, is not what the sandbox made: one line naming
    which; nothing is started, stopped or written."""


def default_workdir() -> Path:
    """$GOLIVE_SANDBOX_DIR, or `golive-sandbox-<uid>` in the temp folder: a name anyone can
    predict, so `Sandbox` uses it only when this user owns it (and makes it private)."""
    env = os.environ.get("GOLIVE_SANDBOX_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"golive-sandbox-{os.getuid()}"


def _check_folder(folder: Path) -> None:
    """The sandbox's folder, when it exists, is a folder of this user's and not a symbolic link:
    its configuration names the programs it starts and the processes it stops."""
    try:
        info = folder.lstat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SandboxFolderError(f"{_quoted(folder)}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise SandboxFolderError(f"{_quoted(folder)}: a symbolic link; the sandbox's folder must be a folder of "
                                 "its own")
    if not stat.S_ISDIR(info.st_mode):
        raise SandboxFolderError(f"{_quoted(folder)}: not a folder")
    if info.st_uid != os.geteuid():
        raise SandboxFolderError(f"{_quoted(folder)}: owned by uid {info.st_uid}, not by this user "
                                 f"(uid {os.geteuid()}); choose another with --workdir")


def _make_own_folder(folder: Path) -> None:
    """Make the sandbox's folder private to this user (0700) where it is not there yet, then check
    it again: another user may have made it in between."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    _check_folder(folder)


def _quoted(value: object) -> str:
    """A name from a file or the disk on one line: control characters written as escapes."""
    return repr(str(value))[1:-1]


def _process(record: object, where: str) -> dict:
    """A process as the state file records it: a pid and, when known, its start time."""
    if not isinstance(record, dict):
        raise SandboxFolderError(f"{where}: expected an object with pid and ticks")
    pid, ticks, port = record.get("pid"), record.get("ticks"), record.get("port")
    if type(pid) is not int or not 0 < pid < 2 ** 31:
        raise SandboxFolderError(f"{where}.pid: expected a process id, got {_quoted(pid)[:40]}")
    if ticks is not None and (type(ticks) is not int or ticks < 0):
        raise SandboxFolderError(f"{where}.ticks: expected a start time in clock ticks or null, "
                                 f"got {_quoted(ticks)[:40]}")
    if port is not None and (type(port) is not int or not 0 < port < 65536):
        raise SandboxFolderError(f"{where}.port: expected a port number or null, got {_quoted(port)[:40]}")
    return record


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
        folder = Path(workdir) if workdir else default_workdir()
        _check_folder(folder)
        self.workdir = folder.resolve()

    # -- files ------------------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.workdir / "state.json"

    def _read(self, name: str) -> object | None:
        """A JSON file of the folder; None when it is not there, SandboxFolderError when it is not
        a regular file (a link, a FIFO that would never end the read) or not JSON."""
        path = self.workdir / name
        try:
            if not stat.S_ISREG(path.lstat().st_mode):
                raise SandboxFolderError(f"{_quoted(path)}: not a file the sandbox wrote")
            return json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SandboxFolderError(f"{_quoted(path)}: {exc.strerror}") from None
        except (ValueError, RecursionError):
            raise SandboxFolderError(f"{_quoted(path)}: not JSON the sandbox wrote") from None

    def _state(self) -> dict | None:
        """state.json, every process in it checked for shape; None when no sandbox recorded one."""
        state = self._read("state.json")
        if state is None:
            return None
        where = _quoted(self._state_path)
        if not isinstance(state, dict) or not isinstance(state.get("components"), dict):
            raise SandboxFolderError(f"{where}: expected an object with supervisor and components")
        if not isinstance(state.get("status"), str):
            raise SandboxFolderError(f"{where}: status: expected text")
        _process(state.get("supervisor"), f"{where}: supervisor")
        for name, record in state["components"].items():
            _process(record, f"{where}: components.{_quoted(name)}")
        return state

    @property
    def config(self) -> dict:
        config = self._read("config.json")
        if config is None:
            raise SandboxError(f"no sandbox in {self.workdir}; start one with `golive sandbox up`")
        if not isinstance(config, dict):
            raise SandboxFolderError(f"{_quoted(self.workdir / 'config.json')}: expected an object")
        return config

    @property
    def ports(self) -> Ports:
        ports = self.config.get("ports")
        try:
            if not isinstance(ports, dict) or not all(type(p) is int and 0 < p < 65536 for p in ports.values()):
                raise ValueError
            return Ports(**ports)
        except (TypeError, ValueError):
            raise SandboxFolderError(f"{_quoted(self.workdir / 'config.json')}: ports: expected each part's "
                                     "port number") from None

    @staticmethod
    def _proven_alive(record: dict) -> bool:
        """The recorded process runs and is provably the one recorded: its start time matches."""
        return record.get("ticks") is not None and processes.alive(record["pid"], record["ticks"])

    def _supervisor_alive(self) -> bool:
        state = self._state()
        return bool(state) and self._proven_alive(state["supervisor"])

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

    @property
    def pushgateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.pushgateway}"

    def service_url(self, track: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, _track(track))}"

    def admin_url(self, track: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, _track(track) + '_admin')}"

    @property
    def canary_pin_file(self) -> Path:
        """The file holding the router's canary pin: `X-Canary: <pin>` goes to the canary."""
        return self.workdir / "nginx" / CANARY_PIN_FILE

    def canary_pin(self) -> str:
        return read_canary_pin(self.canary_pin_file)

    def urls(self) -> dict[str, str]:
        return {
            "router (nginx)": self.router_url,
            "stable": self.service_url("stable"),
            "canary": self.service_url("canary"),
            "stable admin": self.admin_url("stable"),
            "canary admin": self.admin_url("canary"),
            "secondary (shadow only)": self.service_url("secondary"),
            "prometheus": self.prometheus_url,
            "alertmanager": self.alertmanager_url,
            "pushgateway": self.pushgateway_url,
            "router control": self.control_url,
        }

    def golive_settings(self) -> dict:
        """How golive reaches this sandbox: the fields of its settings' sections that name
        addresses (`prometheus`, `target`) and the release repository (`process`)."""
        return {
            "prometheus": {"url": self.prometheus_url, "alertmanager_url": self.alertmanager_url,
                           "pushgateway_url": self.pushgateway_url},
            "target": {
                "router": {"kind": "sandbox", "control_url": self.control_url,
                           "canary_pin_file": str(self.canary_pin_file)},
                "traffic_url": self.router_url,
                "canary_url": self.service_url("canary"),
                "stable_url": self.service_url("stable"),
                "canary_admin_url": self.admin_url("canary"),
                # The demo's secondary (the response difference's noise) and its page a browser renders.
                **({} if self.config.get("app") else {"secondary_url": self.service_url("secondary"),
                                                      "browser_pages": ["/app"]}),
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
        app: Mapping | None = None,
    ) -> Sandbox:
        """Start everything and wait until every part listens and Prometheus answers each of
        `ready_queries` (name → PromQL: what the caller will read) with a number. Prometheus
        evaluates `rules_file` (recording and alerting rules), when given, from the start.

        On failure everything started is stopped again and SandboxError says what was missing.
        """
        sandbox = cls(workdir)
        say = progress or (lambda _msg: None)
        binaries = {"prometheus": _binary("prometheus"), "nginx": _binary("nginx"),
                    "alertmanager": _binary("prometheus-alertmanager"),
                    "pushgateway": _binary("prometheus-pushgateway")}
        if sandbox._supervisor_alive():
            state = sandbox._state()
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
        _make_own_folder(sandbox.workdir)
        for stale in ("prometheus/data", "prometheus/rules", "alertmanager/data", "spark.sqlite", "spark.sqlite-wal", "spark.sqlite-shm"):
            path = sandbox.workdir / stale
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        config = {
            "ports": ports.as_dict(), "release": release, "stable_version": stable_version, "rate": rate,
            "probe_rate": probe_rate, "seed": seed, "duration": duration, "binaries": binaries,
            "owner_pid": owner_pid, "owner_ticks": processes.start_ticks(owner_pid) if owner_pid else None,
            "app": dict(app) if app else None,  # sandbox.app_wrapper: a user's application in the demo's place
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
            state = self._state()
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
                values = [r["value"][1] for r in prom.custom_query(query)]
            except Exception:  # noqa: BLE001 - not answering yet (or not as Prometheus does) is what we wait for
                values = []
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
        """Every recorded part; one whose start time was not recorded reads as not alive, since
        whatever runs under its pid now cannot be told from it."""
        state = self._state()
        if not state:
            return []
        result = []
        for name, meta in state["components"].items():
            port = meta.get("port")
            result.append(ComponentStatus(name, meta["pid"], port, self._proven_alive(meta),
                                          processes.listening(port) if port else None))
        return result

    def unproven(self) -> list[str]:
        """The recorded processes that run under their pid with no start time recorded: golive
        cannot prove it started them, so it never stops them; one line each, for the operator."""
        state = self._state()
        if not state:
            return []
        records = {"supervisor": state["supervisor"], **state["components"]}
        return [f"{_quoted(name)} (pid {meta['pid']}: no start time recorded, so not provably the sandbox's)"
                for name, meta in records.items()
                if meta.get("ticks") is None and processes.alive(meta["pid"])]

    def down(self, timeout: float = 15.0) -> list[str]:
        """Stop what `up` started (and only that: a process whose pid and start time both match
        the record); returns the names of what was running. A state file that is not the sandbox's
        is SandboxFolderError, and then nothing is stopped."""
        state = self._state()
        if not state:
            return []
        ports = list(self.ports.as_dict().values())
        stopped = [c.name for c in self.status() if c.alive]
        sup = state["supervisor"]
        processes.send(sup["pid"], signal.SIGTERM, sup["ticks"])
        deadline = time.monotonic() + timeout
        while self._proven_alive(sup) and time.monotonic() < deadline:
            processes.reap(sup["pid"])
            time.sleep(0.1)
        processes.reap(sup["pid"])
        self._stop_leftovers()
        while any(processes.listening(p) for p in ports) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
        self._state_path.unlink(missing_ok=True)
        return stopped

    def _stop_leftovers(self) -> None:
        """Kill anything recorded in a state file whose supervisor is gone (killed by hand, say):
        only a process still running under its recorded pid and start time."""
        state = self._state()
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
        weight = self._control("GET", "/weight").get("weight")
        if type(weight) is not int:
            raise SandboxError(f"the router's control API answered no weight (`weight`: {_quoted(weight)[:40]})")
        return weight

    def fence(self) -> dict:
        """The router's fencing generation and who took it (`{"generation": N, "holder": …}`)."""
        return self._control("GET", "/weight")["fence"]

    def set_weight(self, weight: int, holder: str = "golive sandbox weight (by hand)", mirror: bool = False,
                   mirror_routes: list[dict] | None = None) -> int:
        """Set the canary weight as an operator: a new fencing generation first (so any go-live
        still writing is fenced off), then the weight; returns once every accepting router worker
        serves it. The router checks the value (0-100) and says what is wrong. `mirror` (at weight 0):
        copy users' requests to the canary as shadow traffic (`sandbox.configs.render_nginx`), those
        of `mirror_routes` when given."""
        fence = self._control("POST", "/fence", json={"holder": {"kind": "operator", "name": holder}})
        routes = {} if mirror_routes is None else {"mirror_routes": mirror_routes}
        return self._control("PUT", "/weight", json={"weight": weight, "generation": fence["generation"],
                                                     "mirror": mirror, **routes})["weight"]

    def mirroring(self) -> bool:
        """Whether the router's workers copy users' requests to the canary."""
        return self._control("GET", "/weight").get("mirror") is True

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
        return _answer(response, f"the router's control API ({self.control_url})")

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
        return _answer(response, f"the {track} service's admin port ({self.admin_url(track)})")


def _answer(response: httpx.Response, who: str) -> dict:
    """The JSON object of a 200 answer; SandboxError in one line for anything else: the error a
    refusal names, or what came instead of an object (whatever listens on the port may answer)."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, not text, nested too deeply
        body = None
    if not isinstance(body, dict):
        raise SandboxError(f"{who} answered {response.status_code} without a JSON object: "
                           f"{_quoted(response.text[:80])}")
    if response.status_code != 200:
        raise SandboxError(_quoted(body.get("error", f"{who} answered {response.status_code}"))[:300])
    return body


def _track(track: str) -> str:
    if track not in TRACKS:
        raise SandboxError(f"track: expected {', '.join(TRACKS)}, got {track!r}")
    return track


def _import_root() -> str:
    """The folder that holds the `sandbox` package, for the supervisor's `python -m`."""
    root = str(Path(__file__).resolve().parent.parent)
    existing = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root
