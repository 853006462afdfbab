"""Starts the sandbox's processes, records them, and stops them all together.

    python -m sandbox.supervisor WORKDIR      (WORKDIR/config.json is written by `golive sandbox up`)

Each child runs in the supervisor's process group and is told by the kernel to stop when the
supervisor dies; the supervisor itself stops everything on SIGTERM/SIGINT, and when its owner
(the process that asked for the sandbox, e.g. a test run) is gone. A child that dies is not
restarted: `golive sandbox status` says which one it was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sandbox import processes
from sandbox.configs import (
    CANARY_PIN_FILE, Ports, render_alertmanager, render_nginx, render_prometheus, write_atomic,
)
from sandbox.app_wrapper import app_command, loadgen_args
from sandbox.router import NginxRouter, load_fence, serve_control
from sandbox.store import create_database

STOP_ORDER = ("loadgen", "router", "canary", "secondary", "stable", "prometheus", "pushgateway", "alertmanager")


class Supervisor:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.config = json.loads((workdir / "config.json").read_text())
        self.ports = Ports(**self.config["ports"])
        self.children: dict[str, subprocess.Popen] = {}
        self.meta: dict[str, dict] = {}
        self.stopping = False
        self.control = None

    def _state(self, status: str) -> None:
        state = {
            "status": status,
            "started_at": self.config.get("started_at"),
            "supervisor": {"pid": os.getpid(), "ticks": processes.start_ticks(os.getpid())},
            "components": self.meta,
        }
        write_atomic(self.workdir / "state.json", json.dumps(state, indent=2))

    def _spawn(self, name: str, cmd: list[str], port: int | None) -> None:
        log_path = self.workdir / "logs" / f"{name}.log"
        with open(log_path, "ab") as log:
            child = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=processes.die_with_parent, cwd=self.workdir,
            )
        self.children[name] = child
        self.meta[name] = {"pid": child.pid, "ticks": processes.start_ticks(child.pid), "port": port,
                           "log": str(log_path)}
        self._state("starting")

    def _wait_listening(self, ports: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            if all(processes.listening(p) for p in ports):
                return
            time.sleep(0.05)

    def start(self) -> None:
        cfg, ports, py = self.config, self.ports, sys.executable
        (self.workdir / "logs").mkdir(exist_ok=True)
        prom_dir = self.workdir / "prometheus"
        prom_dir.mkdir(exist_ok=True)
        (prom_dir / "rules").mkdir(exist_ok=True)
        write_atomic(prom_dir / "prometheus.yml", render_prometheus(ports, prom_dir / "rules"))
        alertmanager_dir = self.workdir / "alertmanager"
        alertmanager_dir.mkdir(exist_ok=True)
        write_atomic(alertmanager_dir / "alertmanager.yml", render_alertmanager())
        nginx_dir = self.workdir / "nginx"
        for sub in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
            (nginx_dir / "temp" / sub).mkdir(parents=True, exist_ok=True)
        write_atomic(nginx_dir / "nginx.conf", render_nginx(nginx_dir, ports, 0, load_fence(nginx_dir)["generation"]),
                     private=True)
        db = self.workdir / "spark.sqlite"
        create_database(str(db))

        self._spawn("alertmanager", [
            cfg["binaries"]["alertmanager"], f"--config.file={alertmanager_dir / 'alertmanager.yml'}",
            f"--storage.path={alertmanager_dir / 'data'}", f"--web.listen-address=127.0.0.1:{ports.alertmanager}",
            "--cluster.listen-address=", "--log.level=warn",  # one instance: no gossip port to claim
        ], ports.alertmanager)
        self._spawn("pushgateway", [
            cfg["binaries"]["pushgateway"], f"--web.listen-address=127.0.0.1:{ports.pushgateway}", "--log.level=warn",
        ], ports.pushgateway)
        self._spawn("prometheus", [
            cfg["binaries"]["prometheus"], f"--config.file={prom_dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={prom_dir / 'data'}", f"--web.listen-address=127.0.0.1:{ports.prometheus}",
            "--web.enable-lifecycle", "--storage.tsdb.retention.time=1d", "--log.level=warn",
        ], ports.prometheus)
        for track, port, admin, version in (
            ("stable", ports.stable, ports.stable_admin, cfg["stable_version"]),
            ("canary", ports.canary, ports.canary_admin, cfg["release"]),
        ):
            cmd = [py, "-m", "sandbox.service", "--track", track, "--version", version, "--port", str(port),
                   "--admin-port", str(admin), "--db", str(db)]
            if cfg.get("seed") is not None:
                cmd += ["--seed", str(cfg["seed"] + (track == "canary"))]
            cmd = app_command(cfg, py, track, version, port, admin) or cmd  # a user's app in the demo's place
            self._spawn(track, cmd, port)
        if not cfg.get("app"):  # a user's application knows no shadow traffic: only the demo has a secondary
            cmd = [py, "-m", "sandbox.service", "--track", "secondary", "--version", cfg["stable_version"],
                   "--port", str(ports.secondary), "--admin-port", str(ports.secondary_admin), "--db", str(db)]
            if cfg.get("seed") is not None:
                cmd += ["--seed", str(cfg["seed"] + 2)]
            self._spawn("secondary", cmd, ports.secondary)
        self._spawn("router", [
            cfg["binaries"]["nginx"], "-p", str(nginx_dir), "-c", str(nginx_dir / "nginx.conf"),
            "-e", str(nginx_dir / "error.log"),
        ], ports.router)
        self._wait_listening([ports.stable, ports.canary, ports.router]
                             + ([] if cfg.get("app") else [ports.secondary]), timeout=20)
        router = NginxRouter(nginx_dir, ports, cfg["binaries"]["nginx"], self.children["router"].pid)
        self.control = serve_control(router, ports.control)
        self.meta["control"] = {"pid": os.getpid(), "ticks": processes.start_ticks(os.getpid()),
                                "port": ports.control, "log": str(self.workdir / "logs" / "supervisor.log")}
        cmd = [py, "-m", "sandbox.loadgen", "--target", f"http://127.0.0.1:{ports.router}",
               "--canary-pin-file", str(nginx_dir / CANARY_PIN_FILE),
               "--rate", str(cfg["rate"]), "--probe-rate", str(cfg["probe_rate"]), "--duration", str(cfg["duration"])]
        if cfg.get("seed") is not None:
            cmd += ["--seed", str(cfg["seed"])]
        self._spawn("loadgen", cmd + loadgen_args(cfg), None)
        self._state("running")

    def _owner_gone(self) -> bool:
        owner = self.config.get("owner_pid")
        return owner is not None and not processes.alive(owner, self.config.get("owner_ticks"))

    def watch(self) -> None:
        while not self.stopping and not self._owner_gone():
            for child in self.children.values():
                child.poll()  # reap, so that a killed child reads as dead, not as a zombie
            time.sleep(0.25)

    def stop(self) -> None:
        self._state("stopping")
        if self.control is not None:
            self.control.shutdown()
            self.control.server_close()
        for name in STOP_ORDER:
            child = self.children.get(name)
            if child and child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 8
        for name in STOP_ORDER:
            child = self.children.get(name)
            if child is None:
                continue
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self._state("stopped")


def main(argv: list[str] | None = None) -> None:
    workdir = Path((argv or sys.argv[1:])[0]).resolve()
    supervisor = Supervisor(workdir)

    def request_stop(_signum, _frame):
        supervisor.stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        supervisor.start()
        supervisor.watch()
    finally:
        supervisor.stop()


if __name__ == "__main__":
    main()

