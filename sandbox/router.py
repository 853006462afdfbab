"""The sandbox's traffic router: nginx's canary weight, set by configuration reload and read back
from the workers in force. Served over HTTP by the supervisor (the sandbox's "ingress API").

One writer at a time, fenced here where the traffic is: the router keeps a generation beside
the weight (`fence.json` in nginx's folder, so it survives a restart of the supervisor) and the
nginx configuration names the generation that wrote it. `POST /fence` takes the next generation
(only while the newest is `if_generation`, when given); `PUT /weight` must carry the newest
generation, or it is refused with 409 and the fence that stands. The check and the reload happen
under one lock, so no write can slip between a newer writer's fence and its own write.
`PUT /weight {"weight": 0, "mirror": true}` is the shadow stage's mirror (see `render_nginx`), of
the routes in `mirror_routes` (`[{"methods": ["GET"], "path": "/quote*"}]`; the sandbox's default
without); a write without `mirror` turns it off, so a rollback's does.

For the fault suite, the control API can be told to refuse the next writes or to answer them
late (`POST /faults {"refuse": N, "delay_seconds": S}`, `DELETE /faults`). `GET /metrics` is every
request the router proxied, per track, status and source, in Prometheus' format
(sandbox.router_metrics).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from prometheus_client import CONTENT_TYPE_LATEST

from sandbox import processes
from sandbox.configs import DEFAULT_MIRROR_ROUTES, Ports, canary_pin, check_mirror_routes, render_nginx, write_atomic
from sandbox.router_metrics import ACCESS_LOG, RouterMetrics


class RouterError(Exception):
    pass


class Fenced(RouterError):
    def __init__(self, message: str, fence: dict):
        super().__init__(message)
        self.fence = fence


HOLDER_KINDS = ("go-live", "rollback", "operator")
FENCE_FILE = "fence.json"


def _describe(fence: dict) -> str:
    holder = fence.get("holder")
    if not holder:
        return f"generation {fence['generation']}"
    run = f" (flow run {holder['run']})" if holder.get("run") else ""
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(holder["at"]))
    return f"generation {fence['generation']}, taken by {holder['name']}{run} at {when}"


def _holder(raw) -> dict:
    if not isinstance(raw, dict):
        raise RouterError("holder: expected an object {kind, name, run}")
    kind, name, run = raw.get("kind"), raw.get("name"), raw.get("run")
    if kind not in HOLDER_KINDS:
        raise RouterError(f"holder.kind: expected one of {', '.join(HOLDER_KINDS)}")
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise RouterError("holder.name: expected a string of 1 to 200 characters")
    if run is not None and (not isinstance(run, str) or len(run) > 100):
        raise RouterError("holder.run: expected a string of at most 100 characters, or null")
    return {"kind": kind, "name": name, "run": run, "at": time.time()}


def _generation(raw, field: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise RouterError(f"{field}: expected a whole number from 0")
    return raw


def load_fence(folder: Path) -> dict:
    """The fence kept in nginx's folder (generation 0, no holder, when there is none yet)."""
    try:
        fence = json.loads((folder / FENCE_FILE).read_text())
        return {"generation": _generation(fence["generation"], "generation"), "holder": fence.get("holder")}
    except (OSError, ValueError, KeyError, TypeError, RouterError):
        return {"generation": 0, "holder": None}


class NginxRouter:
    def __init__(self, folder: Path, ports: Ports, nginx: str, master_pid: int):
        self.folder, self.ports, self.nginx, self.master_pid = folder, ports, nginx, master_pid
        self._lock = threading.Lock()
        self.fence = load_fence(folder)
        self.pin = canary_pin(folder)  # read once: a write, a rollback's above all, never reads the file
        self.faults = {"refuse": 0, "delay_seconds": 0.0}
        self.metrics = RouterMetrics(folder / ACCESS_LOG)

    @property
    def _fence_path(self) -> Path:
        return self.folder / FENCE_FILE

    def take_generation(self, holder: dict, if_generation=None) -> dict:
        """The next generation, for `holder`; refused (Fenced) unless the newest is `if_generation`."""
        holder = _holder(holder)
        if if_generation is not None:
            _generation(if_generation, "if_generation")
        with self._lock:
            if if_generation is not None and if_generation != self.fence["generation"]:
                raise Fenced(f"the target moved on from generation {if_generation}: it is at {_describe(self.fence)}",
                             self.fence)
            fence = {"generation": self.fence["generation"] + 1, "holder": holder}
            write_atomic(self._fence_path, json.dumps(fence, indent=2))
            self.fence = fence
            return fence

    def in_force(self) -> tuple[int, bool]:
        """The weight in force and whether the mirror is on, as the router's workers serve them (a
        fresh connection each time)."""
        response = httpx.get(f"http://127.0.0.1:{self.ports.router}/__golive/weight",
                             headers={"Connection": "close"}, timeout=5)
        response.raise_for_status()
        return int(response.text.strip()), response.headers.get("x-golive-mirror") == "on"

    def weight(self) -> int:
        return self.in_force()[0]

    def set_weight(self, weight: int, generation: int, timeout: float = 10.0, mirror: bool = False,
                   mirror_routes=None) -> int:
        """Write the weight (and the mirror: on only when asked, so that every other write, a
        rollback's above all, turns it off; copying `mirror_routes`, `DEFAULT_MIRROR_ROUTES` unless
        given) with the newest generation, and wait until it is in force."""
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise RouterError(f"weight: expected a whole number from 0 to 100, got {weight!r}")
        if not isinstance(mirror, bool):
            raise RouterError(f"mirror: expected true or false, got {mirror!r}")
        if mirror and weight != 0:
            raise RouterError(f"mirror: expected only at weight 0 (the shadow stage), not at {weight}")
        try:
            routes = check_mirror_routes(DEFAULT_MIRROR_ROUTES if mirror_routes is None else mirror_routes)
        except ValueError as exc:
            raise RouterError(str(exc)) from None
        generation = _generation(generation, "generation")
        with self._lock:
            if generation != self.fence["generation"]:
                older = "is fenced" if generation < self.fence["generation"] else "was never issued"
                raise Fenced(f"generation {generation} {older}: the target is at {_describe(self.fence)}", self.fence)
            config = render_nginx(self.folder, self.ports, weight, generation, mirror, self.pin, routes)
            write_atomic(self.folder / "nginx.conf", config, private=True)
            reloaded_at = processes.clock_ticks_now()
            result = subprocess.run(
                [self.nginx, "-p", str(self.folder), "-c", str(self.folder / "nginx.conf"),
                 "-e", str(self.folder / "error.log"), "-s", "reload"],
                capture_output=True, text=True, timeout=10,
            )
            if result.returncode != 0:
                raise RouterError(f"nginx reload failed: {result.stderr.strip()}")
            self._wait_in_force((weight, mirror), reloaded_at, timeout)
            return weight

    def _wait_in_force(self, wanted: tuple[int, bool], reloaded_at: int, timeout: float) -> None:
        # In force means every accepting worker runs the new configuration: nginx starts new
        # workers before it tells the old ones to quit, and until then either may take a new
        # connection. A worker "shutting down" takes none; it only finishes what it has.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            accepting = [w for w in processes.children(self.master_pid) if "shutting down" not in processes.title(w)]
            fresh = accepting and all((processes.start_ticks(w) or 0) >= reloaded_at for w in accepting)
            try:
                if fresh and self.in_force() == wanted:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RouterError(f"weight {wanted[0]}{' with the mirror' if wanted[1] else ''} not in force after "
                          f"{timeout:g} s")


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

        def _body(self) -> dict:
            try:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}") if 0 <= length <= 65536 else None
            except (ValueError, RecursionError):
                body = None
            if not isinstance(body, dict):
                raise RouterError("expected a JSON object of at most 64 KiB")
            return body

        def _write(self, change) -> None:
            """A write through the fault switch: refused or late when the fault suite says so."""
            faults = router.faults
            if faults["refuse"] > 0:
                faults["refuse"] -= 1
                return self._reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "refused by the router's fault switch"})
            if faults["delay_seconds"] > 0:
                time.sleep(faults["delay_seconds"])
            try:
                self._reply(HTTPStatus.OK, change(self._body()))
            except Fenced as exc:
                self._reply(HTTPStatus.CONFLICT, {"error": str(exc), "fence": exc.fence})
            except RouterError as exc:
                status = HTTPStatus.UNPROCESSABLE_ENTITY if "expected" in str(exc) else HTTPStatus.BAD_GATEWAY
                self._reply(status, {"error": str(exc)})

        def do_GET(self):  # noqa: N802 - the stdlib's naming
            if self.path == "/weight":
                try:
                    weight, mirror = router.in_force()
                    self._reply(HTTPStatus.OK, {"weight": weight, "mirror": mirror, "fence": router.fence})
                except httpx.HTTPError as exc:
                    self._reply(HTTPStatus.BAD_GATEWAY, {"error": f"router does not answer: {exc}"})
            elif self.path == "/metrics":
                data = router.metrics.exposition()
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif self.path == "/healthz":
                self._reply(HTTPStatus.OK, {"status": "ok"})
            elif self.path == "/faults":
                self._reply(HTTPStatus.OK, router.faults)
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})

        def do_PUT(self):  # noqa: N802
            if self.path != "/weight":
                return self._reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})

            def change(body: dict) -> dict:
                started = time.monotonic()
                mirror = body.get("mirror", False)
                weight = router.set_weight(body.get("weight"), body.get("generation"), mirror=mirror,
                                           mirror_routes=body.get("mirror_routes"))
                return {"weight": weight, "mirror": mirror, "generation": body["generation"],
                        "seconds": round(time.monotonic() - started, 3)}

            self._write(change)

        def do_POST(self):  # noqa: N802
            if self.path == "/fence":
                return self._write(lambda body: router.take_generation(body.get("holder"), body.get("if_generation")))
            if self.path == "/faults":
                try:
                    body = self._body()
                    refuse, delay = body.get("refuse", 0), body.get("delay_seconds", 0)
                    if isinstance(refuse, bool) or not isinstance(refuse, int) or refuse < 0:
                        raise RouterError("refuse: expected a whole number from 0")
                    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 600:
                        raise RouterError("delay_seconds: expected a number from 0 to 600")
                except RouterError as exc:
                    return self._reply(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(exc)})
                router.faults.update(refuse=refuse, delay_seconds=float(delay))
                return self._reply(HTTPStatus.OK, router.faults)
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})

        def do_DELETE(self):  # noqa: N802
            if self.path != "/faults":
                return self._reply(HTTPStatus.NOT_FOUND, {"error": f"no {self.path}"})
            router.faults.update(refuse=0, delay_seconds=0.0)
            self._reply(HTTPStatus.OK, router.faults)

        def log_message(self, *_args):  # the supervisor's log is for lifecycle, not requests
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="router-control", daemon=True).start()
    return server
