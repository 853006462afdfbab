"""Configuration files for the sandbox's nginx and Prometheus, rendered into its working folder."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from sandbox.router_metrics import ACCESS_LOG, LOG_FORMAT

__all__ = ["CANARY_PIN_FILE", "DEFAULT_MIRROR_ROUTES", "Ports", "canary_pin", "check_mirror_routes",
           "read_canary_pin", "render_alertmanager", "render_nginx", "render_prometheus", "write_atomic"]

# In nginx's folder: the value of `X-Canary` that sends a request to the canary.
CANARY_PIN_FILE = "canary_pin"

# What the mirror may copy unless told otherwise: any GET or HEAD, and the demo's orders, which
# its canary fills on paper. A path is exact, or a prefix when it ends in `*`.
DEFAULT_MIRROR_ROUTES = ((("GET", "HEAD"), "/*"), (("POST",), "/api/exec/order"))
MIRROR_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Letters, digits and `/ . _ ~ -` only: a path goes into nginx's configuration as a regex.
_MIRROR_PATH = re.compile(r"/[A-Za-z0-9._~/-]*\*?")


@dataclass(frozen=True)
class Ports:
    router: int = 18080  # nginx: the service's front door
    stable: int = 18081
    canary: int = 18082
    stable_admin: int = 18091
    canary_admin: int = 18092
    prometheus: int = 19090
    control: int = 18070  # the router's control API (set / read the canary weight)
    alertmanager: int = 19093
    secondary: int = 18083  # the stable version's second instance: the shadow stage's noise
    secondary_admin: int = 18093
    pushgateway: int = 19091  # golive's own series (the shadow stage's), pushed as a batch job's

    @classmethod
    def from_base(cls, base: int) -> Ports:
        return cls(base, base + 1, base + 2, base + 11, base + 12, base + 1010, base - 10, base + 1013,
                   base + 3, base + 13, base + 1011)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def write_atomic(path: Path, text: str, private: bool = False) -> None:
    """Write via a temporary file and rename, so no reader ever sees half a file; `private`: its
    owner's only from its creation (nginx's configuration names the canary pin)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


_PIN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def canary_pin(folder: Path) -> str:
    """The router's canary pin: the value of `X-Canary` that sends a request to the canary, made
    (random, readable by its owner only, written whole) the first time it is asked for, kept for
    the router's life. A file that holds anything else is refused: an empty pin in nginx's map
    would send every request without the header to the canary."""
    path = folder / CANARY_PIN_FILE
    if not path.exists():
        write_atomic(path, secrets.token_urlsafe(18) + "\n", private=True)
    return read_canary_pin(path)


def read_canary_pin(path: Path) -> str:
    """The pin a router made (`canary_pin`), checked as it was made."""
    pin = path.read_text().strip()
    if not _PIN.fullmatch(pin):
        raise ValueError(f"{path}: expected a canary pin of 16 to 64 letters, digits, - or _; remove the file "
                         "to have a new one made")
    return pin


def check_mirror_routes(routes) -> tuple[tuple[tuple[str, ...], str], ...]:
    """Routes the mirror may copy, as `[{"methods": ["GET"], "path": "/quote*"}, ...]` (the control
    API's) or as `DEFAULT_MIRROR_ROUTES` holds them; ValueError naming the entry otherwise."""
    if not isinstance(routes, (list, tuple)) or not routes or len(routes) > 100:
        raise ValueError(f"mirror_routes: expected 1 to 100 routes, got {str(routes)[:80]!r}")
    checked = []
    for i, route in enumerate(routes):
        if isinstance(route, dict):
            methods, path = route.get("methods"), route.get("path")
        elif isinstance(route, tuple) and len(route) == 2:
            methods, path = route
        else:
            raise ValueError(f"mirror_routes[{i}]: expected methods and a path, got {str(route)[:80]!r}")
        if (not isinstance(methods, (list, tuple)) or not methods
                or not all(isinstance(m, str) and m in MIRROR_METHODS for m in methods)):
            raise ValueError(f"mirror_routes[{i}].methods: expected some of {', '.join(MIRROR_METHODS)}, "
                             f"got {str(methods)[:80]!r}")
        if not isinstance(path, str) or len(path) > 200 or not _MIRROR_PATH.fullmatch(path):
            raise ValueError(f"mirror_routes[{i}].path: expected / and letters, digits, . _ ~ - / (a trailing * "
                             f"for a prefix), got {str(path)[:80]!r}")
        checked.append((tuple(dict.fromkeys(methods)), path))
    return tuple(checked)


def _mirrorable_entries(routes) -> str:
    """The map's patterns over `$http_x_synthetic|$request_method|$request_uri|$http_upgrade`: a
    user's request (no X-Synthetic), of a method and path allowed, that upgrades to nothing."""
    entries = []
    for methods, path in check_mirror_routes(routes):
        uri = re.escape(path[:-1]) + "[^|]*" if path.endswith("*") else re.escape(path) + "(\\?[^|]*)?"
        entries.append(f'"~^\\|({"|".join(methods)})\\|{uri}\\|$" 1;')
    return "\n        ".join(entries)


def render_nginx(folder: Path, ports: Ports, weight: int, generation: int = 0, mirror: bool = False,
                 pin: str | None = None, mirror_routes=DEFAULT_MIRROR_ROUTES) -> str:
    """nginx in front of both tracks, splitting like ingress-nginx's canary annotations.

    `canary-weight` is the `weighted` upstream (smooth weighted round-robin: exact shares);
    `canary-by-header` with `canary-by-header-value` is the `X-Canary` map: the router's pin
    (`canary_pin`, which golive's drills and the load generator read from its file; matched exactly,
    a map's plain strings ignore case) sends a request to the canary, `never` to stable, any other
    value by the weight. `always` does not pin:
    any client could send it, and reach a canary a rollback has taken all traffic from. A weight of
    0 or 100 leaves the other server out entirely, since nginx has no zero weight. The weight in force is served at
    /__golive/weight by the workers running this very configuration; its first line names the
    fencing generation that wrote it. Snippets in `conf.d/` are included as a real ingress
    controller includes its users' (a broken one makes every reload fail, as it would there).
    Every proxied request is logged to `access.log` with the track that served it (read off the
    upstream's address), its status, its time and its source (`X-Synthetic`: none for users,
    `1` for golive's probes, `drill` for its drills): `sandbox.router_metrics` counts them.

    `mirror` (at weight 0 only: the shadow stage) copies each user request that cannot change
    anything (`mirror_routes`, by default GET and HEAD but websockets, and the orders the canary
    fills on paper; websockets are never copied) to the canary, and to the stable version's
    secondary (whose differences from stable are the noise the canary's are judged against),
    with `X-Golive-Shadow: 1`, nginx's `mirror`: the user is answered by stable and the copies'
    answers are dropped. No user request reaches the secondary any other way. nginx holds the
    user's keep-alive connection until the copies end, so a slow canary (or secondary)
    delays that connection's next request by up to the copy's 2-s read limit: the shadow stage
    must watch stable's latency with the mirror on. No client can send that header: it is taken
    off every request the router proxies. The copies are subrequests, which the access log leaves
    out, so the router's counts stay the users'. The workers say whether they mirror in the
    `X-Golive-Mirror` header of /__golive/weight.

    Every proxied request carries nginx's `$request_id` as `X-Request-Id`, a client's own
    overwritten: a user's order and its mirrored copy carry the same one (a subrequest shares its
    main request's variables), which is what the services match a live fill and its paper fill by,
    and which no client can forge. The services' own `/__golive/` endpoints (their fills) are not
    reachable through the router.
    """
    if not 0 <= weight <= 100:
        raise ValueError(f"weight: expected 0 to 100, got {weight}")
    if mirror and weight != 0:
        raise ValueError(f"mirror: only at weight 0 (users on stable, their copies to the canary), not {weight}")
    # max_fails=0: nginx's passive check would send the canary's share to stable for 10 s after
    # one failed connection (a keep-alive closed under load), so the split would lie about the weight.
    servers = []
    if weight < 100:
        servers.append(f"server 127.0.0.1:{ports.stable} weight={100 - weight} max_fails=0;")
    if weight > 0:
        servers.append(f"server 127.0.0.1:{ports.canary} weight={weight} max_fails=0;")
    weighted = "\n        ".join(servers)
    temp = folder / "temp"
    (folder / "conf.d").mkdir(exist_ok=True)
    return f"""# rendered by golive sandbox: canary weight {weight}, fencing generation {generation}
daemon off;
worker_processes 1;
worker_shutdown_timeout 10s;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    map $upstream_addr $golive_track {{
        "127.0.0.1:{ports.stable}" stable; "127.0.0.1:{ports.canary}" canary; default other;
    }}
    map $http_x_synthetic $golive_source {{ "" user; "1" probe; "drill" drill; default other; }}
    log_format golive_router '{LOG_FORMAT}';
    access_log {folder}/{ACCESS_LOG} golive_router;
    client_body_temp_path {temp}/client;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;

    upstream stable {{ server 127.0.0.1:{ports.stable}; keepalive 16; }}
    upstream canary {{ server 127.0.0.1:{ports.canary}; keepalive 16; }}
    upstream secondary {{ server 127.0.0.1:{ports.secondary}; keepalive 16; }}
    upstream weighted {{
        {weighted}
        keepalive 32;
    }}
    map $http_x_canary $spark_pool {{ "~^{pin or canary_pin(folder)}$" canary; never stable; default weighted; }}
    map $http_upgrade $connection_upgrade {{ default upgrade; "" ""; }}
    # What a mirror may copy: a user's (no X-Synthetic) request on an allowed route that upgrades to nothing.
    map "$http_x_synthetic|$request_method|$request_uri|$http_upgrade" $golive_mirrorable {{
        default 0;
        {_mirrorable_entries(mirror_routes)}
    }}
    include {folder}/conf.d/*.conf;

    server {{
        listen 127.0.0.1:{ports.router};
        location = /__golive/weight {{
            access_log off;
            default_type text/plain;
            add_header X-Golive-Mirror {"on" if mirror else "off"} always;
            return 200 "{weight}\\n";
        }}
        location ^~ /__golive/ {{
            access_log off;
            return 404;
        }}
        location / {{
            {"mirror /__golive/mirror; mirror /__golive/mirror-secondary;" if mirror else "mirror off;"}
            proxy_pass http://$spark_pool;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header X-Golive-Shadow "";
            proxy_read_timeout 3600s;
        }}
{_mirror_location("/__golive/mirror", "canary")}
{_mirror_location("/__golive/mirror-secondary", "secondary")}
    }}
}}
"""


def _mirror_location(path: str, upstream: str) -> str:
    """An internal location that copies a mirrorable request to `upstream` as shadow traffic."""
    return f"""        location = {path} {{
            internal;
            if ($golive_mirrorable = 0) {{ return 204; }}
            proxy_pass http://{upstream}$request_uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header X-Golive-Shadow 1;
            proxy_connect_timeout 200ms;
            proxy_send_timeout 2s;
            proxy_read_timeout 2s;
        }}"""


def render_prometheus(ports: Ports, rules_folder: Path) -> str:
    """Prometheus scraping both tracks, the router's request counts (its control API's /metrics;
    not the stable version's secondary, whose shadow traffic no signal judges) and the Pushgateway
    golive pushes its own series to (with the labels pushed: `honor_labels`), evaluating
    every rule file in `rules_folder` (none is fine) and sending its alerts
    to the sandbox's Alertmanager. Each track's target is labelled with its `track`, so the
    metrics of an application that knows nothing of tracks carry one; the demo's own `track`
    label is kept as it is (`honor_labels`)."""
    return f"""# rendered by golive sandbox
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - "{rules_folder}/*.yml"
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:{ports.alertmanager}"]
scrape_configs:
  - job_name: spark
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{ports.stable}"]
        labels: {{track: stable}}
      - targets: ["127.0.0.1:{ports.canary}"]
        labels: {{track: canary}}
  - job_name: router
    static_configs:
      - targets: ["127.0.0.1:{ports.control}"]
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{ports.pushgateway}"]
"""


def render_alertmanager() -> str:
    """Alertmanager holding alerts for its API; it notifies no one (its one receiver is empty)."""
    return """# rendered by golive sandbox
route:
  receiver: sandbox
  group_by: [alertname, service, track]
  group_wait: 1s
  group_interval: 5s
receivers:
  - name: sandbox
"""
