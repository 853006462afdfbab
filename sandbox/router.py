"""The sandbox's traffic router: nginx's canary weight, set by configuration reload and read back
from the workers in force. Served over HTTP by the supervisor (the sandbox's "ingress API")."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from sandbox import processes
from sandbox.configs import Ports, render_nginx, write_atomic


class RouterError(Exception):
    pass


class NginxRouter:
    def __init__(self, folder: Path, ports: Ports, nginx: str, master_pid: int):
        self.folder, self.ports, self.nginx, self.master_pid = folder, ports, nginx, master_pid
        self._lock = threading.Lock()

    def weight(self) -> int:
        """The weight in force, as the router's workers serve it (a fresh connection each time)."""
        response = httpx.get(f"http://127.0.0.1:{self.ports.router}/__golive/weight",
                             headers={"Connection": "close"}, timeout=5)
        response.raise_for_status()
        return int(response.text.strip())

    def set_weight(self, weight: int, timeout: float = 10.0) -> int:
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise RouterError(f"weight: expected a whole number from 0 to 100, got {weight!r}")
        with self._lock:
            write_atomic(self.folder / "nginx.conf", render_nginx(self.folder, self.ports, weight))
            reloaded_at = processes.clock_ticks_now()
            result = subprocess.run(
                [self.nginx, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                 "-e", str(self.folder / "error.log"), "-s", "reload"],
                capture_output=True, text=True, timeout=10,
            )
            if result.returncode != 0:
                raise RouterError(f"nginx reload failed: {result.stderr.strip()}")
            self._wait_in_force(weight, reloaded_at, timeout)
            return weight

    def _wait_in_force(self, weight: int, reloaded_at: int, timeout: float) -> None:
        # In force means every accepting worker runs the new configuration: nginx starts new
        # workers before it tells the old ones to quit, and until then either may take a new
        # connection. A worker "shutting down" takes none; it only finishes what it has.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            accepting = [w for w in processes.children(self.master_pid) if "shutting down" not in processes.title(w)]
            fresh = accepting and all((processes.start_ticks(w) or 0) >= reloaded_at for w in accepting)
            try:
                if fresh and self.weight() == weight:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RouterError(f"weight {weight} not in force after {timeout:g} s")


def serve_control(router: NginxRouter, port: int) -> ThreadingHTTPServer:
    """`GET /weight` and `PUT /weight {"weight": N}` on 127.0.0.1:port, in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: HTTPStatus, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - the stdlib's naming
            if self.path == "/weight":
                try:
                    self._reply(HTTPStatus.OK, {"weight": router.weight()})
                except httpx.HTTPError as exc:
                    self._reply(HTTPStatus.BAD_GATEWAY, {"error": f"router does not answer: {exc}"})
            elif self.path == "/healthz":
                self._reply(HTTPStatus.OK, {"status": "ok"})
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})

        def do_PUT(self):  # noqa: N802
            if self.path != "/weight":
                return self._reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                weight = body.get("weight") if isinstance(body, dict) else None
                started = time.monotonic()
                router.set_weight(weight)
                self._reply(HTTPStatus.OK, {"weight": weight, "seconds": round(time.monotonic() - started, 3)})
            except json.JSONDecodeError:
                self._reply(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": "expected JSON {\"weight\": N}"})
            except RouterError as exc:
                status = HTTPStatus.UNPROCESSABLE_ENTITY if "expected" in str(exc) else HTTPStatus.BAD_GATEWAY
                self._reply(status, {"error": str(exc)})

        def log_message(self, *_args):  # the supervisor's log is for lifecycle, not requests
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="router-control", daemon=True).start()
    return server
