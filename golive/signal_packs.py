"""Signal packs: ready signal lists for the metric names services already export.

A pack is data: its signals (golive.signals.Signal), the two queries of the traffic split (the
canary's users' requests and all users' requests) and how a track is selected. `policy.signal_pack`
names the pack a target starts from; `policy.signals` changes it (see golive.signals.signal_list).

- `runbook`: the runbook's eight, as the sandbox's demo service exports them (`spark_*`).
- `router`: any HTTP service behind the sandbox router, its access log turned into series by
  `sandbox.router_metrics` (`golive_router_requests_total`, `golive_router_request_duration_seconds`).
- `fastapi-instrumentator`: prometheus-fastapi-instrumentator's defaults (`http_requests_total`
  by `status`, `http_request_duration_highr_seconds`).
- `flask-exporter`: prometheus-flask-exporter's defaults (`flask_http_request_total` by `status`,
  `flask_http_request_duration_seconds`).
- `starlette-exporter`: starlette-exporter's defaults (`starlette_requests_total` by
  `status_code`, `starlette_request_duration_seconds`), its own `/metrics` left out (`path`).
- `opentelemetry`: OpenTelemetry's `http.server.request.duration` through its Prometheus
  exporter (`http_server_request_duration_seconds` by `http_response_status_code`), `/metrics`
  left out by `http_route`: the FastAPI and Starlette instrumentations record the route, the bare
  ASGI middleware none (give it `excluded_urls="/metrics"` so that it records no scrape).
- `ingress-nginx`: the ingress-nginx controller's own metrics on Kubernetes
  (`nginx_ingress_controller_requests` by `status`, `nginx_ingress_controller_request_duration_seconds`).
- `gateway-istio`: what Istio's gateway reports for a Gateway API route (`istio_requests_total` by
  `response_code`, `istio_request_duration_milliseconds`).

How a track is selected is the pack's: its queries write `$track_selector`, which
golive.signals.render_query fills with the track's label matchers. An application's own metrics
carry no `track` label: the scrape configuration gives each target one (`labels: {track:
canary}`), as the sandbox's does, and `track="$track"` selects the version (the packs above
write it out). On Kubernetes one router's series hold both versions, so a pack has a track rule
(`SignalPack.track_rule`) over the cluster's names (`ClusterNames`, from target.router.kubernetes):
- ingress-nginx counts every request on the primary Ingress; one its balancer sent to the canary
  Ingress' backend carries that upstream's name in `canary` (`<namespace>-<service>-<port>`), any
  other an empty one (rootfs/etc/nginx/lua/monitor.lua and balancer.lua): stable is
  `namespace,ingress,canary=""`, the canary `canary!=""` (as Flagger's nginx metrics select it).
- Istio's gateway reports each request as its client (`reporter="source"`) by the backend Service
  the route's weight sent it to: `destination_service_name` is the stable or the canary Service.
The settings put the rule's matchers, or the policy's own (`policy.track_selectors`), into every
query of the list (`selected_by`); the traffic split selects the canary and both by the same rule.

The exporters' names and labels are their defaults as of prometheus-fastapi-instrumentator 8.1,
prometheus-flask-exporter 0.23, starlette-exporter 0.24 and opentelemetry-exporter-prometheus
0.66b (status codes grouped as `5xx` by the instrumentator, or by ingress-nginx's
`--report-status-classes`, match `5..` as well); ingress-nginx's as of its controller's
internal/ingress/metric/collectors/socket.go, Istio's as its standard metrics.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from golive.signals import (
    CATALOGUE,
    QUERIES,
    TRACK_SELECTOR,
    TRACKS,
    TRAFFIC_CANARY_QUERY,
    TRAFFIC_TOTAL_QUERY,
    Signal,
    select_track,
    with_track_selectors,
)

__all__ = [
    "DEFAULT_PACK", "PACKS", "ClusterNames", "SignalPack", "http_pack", "pack", "selected_by",
    "track_selectors_problem",
]

DEFAULT_PACK = "runbook"


@dataclass(frozen=True)
class ClusterNames:
    """The Kubernetes objects a pack's track rule selects by: target.router.kubernetes' names
    (these defaults are its defaults)."""

    namespace: str = "default"
    ingress: str = "spark"
    stable_service: str = "spark-stable"
    canary_service: str = "spark-canary"


# A pack's track rule: the label matchers of stable's requests, of the canary's, and of both
# (the traffic split's total), from the cluster's names.
TrackRule = Callable[[ClusterNames], Mapping[str, str]]


@dataclass(frozen=True)
class SignalPack:
    name: str
    description: str
    signals: tuple[Signal, ...]
    # Templates; a pack with a track rule writes `$track_selector` where the track is selected.
    traffic_canary_query: str
    traffic_total_query: str
    # None: each version's series carry `track` from the scrape (`$track_selector` is track="$track").
    track_rule: TrackRule | None = None

    def track_selectors(self, names: ClusterNames = ClusterNames()) -> dict[str, str] | None:
        """The matchers per track (stable, canary) its queries' `$track_selector` is filled with;
        None for a pack without a track rule."""
        if self.track_rule is None:
            return None
        rule = self.track_rule(names)
        return {track: rule[track] for track in TRACKS}

    def traffic_queries(self, names: ClusterNames = ClusterNames()) -> tuple[str, str]:
        """The traffic split's two queries (the canary's requests, all requests) for `names`."""
        if self.track_rule is None:
            return self.traffic_canary_query, self.traffic_total_query
        rule = self.track_rule(names)
        return (select_track(self.traffic_canary_query, rule["canary"]),
                select_track(self.traffic_total_query, rule["all"]))


def http_pack(name: str, description: str, *, requests: str, duration_bucket: str, status_label: str,
              selector: str = "", p95_ms: float = 200.0, errors_pct: float = 1.0, duration_unit_ms: float = 1000.0,
              track_rule: TrackRule | None = None) -> SignalPack:
    """A pack of the two signals every HTTP service has: latency p95 and the 5xx ratio, from a
    request counter (`requests`, with a status label) and a duration histogram in seconds.

    Args:
        name: the pack's name (`policy.signal_pack`).
        description: one line for `golive signals packs`.
        requests: the counter of requests (or a histogram's `_count`), labelled by status.
        duration_bucket: the duration histogram's `_bucket` series, in seconds.
        status_label: the label of `requests` that holds the status code.
        selector: more label matchers for every series (`handler!="/metrics"`), or "".
        p95_ms, errors_pct: the thresholds.
        duration_unit_ms: milliseconds in the histogram's unit (1000 for seconds, 1 for milliseconds).
        track_rule: how a track is selected (`$track_selector`); None: the scrape's `track` label.

    Returns:
        The pack; its traffic split counts `requests` per track.
    """
    extra = f",{selector}" if selector else ""
    track = f"{'$track_selector' if track_rule else TRACK_SELECTOR}{extra}"
    scale = f"{duration_unit_ms:g} * " if duration_unit_ms != 1 else ""
    total = f"sum(increase({requests}{{{track}}}[$window]))"
    bad = f'sum(increase({requests}{{{track},{status_label}=~"5.."}}[$window])) or vector(0)'
    signals = (
        Signal(name="http_p95_ms", title="HTTP latency p95", column="p95", unit="ms", kind="quantile", rule="max",
               threshold=p95_ms, request_derived=True, role="latency", mirror_visible=True,
               value_query=(f"{scale}histogram_quantile(0.95, sum by (le) ("
                            f"rate({duration_bucket}{{{track}}}[$window])))")),
        Signal(name="http_5xx_pct", title="5xx responses", column="5xx%", unit="%", kind="ratio", rule="max",
               threshold=errors_pct, request_derived=True, role="errors", mirror_visible=True,
               value_query=(f'100 * (sum(rate({requests}{{{track},{status_label}=~"5.."}}[$window])) or vector(0))'
                            f" / sum(rate({requests}{{{track}}}[$window]))"),
               bad_query=bad, total_query=total),
    )
    if track_rule is not None:
        every = f"sum(increase({requests}{{{track}}}[$window]))"
        return SignalPack(name, description, signals, every, every, track_rule)
    return SignalPack(name, description, signals,
                      traffic_canary_query=f'sum(increase({requests}{{track="canary"{extra}}}[$window]))',
                      traffic_total_query=f"sum(increase({requests}{{{selector}}}[$window]))")


def _quoted(value: str) -> str:
    """`value` as a PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    """`value` as a regular expression matching it alone, inside a PromQL string literal."""
    pattern = re.sub(r"[\\.+*?()|\[\]{}^$]", lambda m: "\\" + m.group(0), value)
    return pattern.replace("\\", "\\\\").replace('"', '\\"')


def _ingress_nginx_tracks(names: ClusterNames) -> dict[str, str]:
    # The controller counts every request on the primary Ingress (`ingress`); one its balancer sent
    # to the canary Ingress' backend carries that upstream's name in `canary` (`<namespace>-<service>-
    # <port>`), any other an empty `canary` (rootfs/etc/nginx/lua/monitor.lua, balancer.lua).
    ingress = f"namespace={_quoted(names.namespace)},ingress={_quoted(names.ingress)}"
    return {"stable": f'{ingress},canary=""', "canary": f'{ingress},canary!=""', "all": ingress}


def _istio_tracks(names: ClusterNames) -> dict[str, str]:
    # The gateway's Envoy reports each request as its client (`reporter="source"`), by the backend
    # Service the HTTPRoute's weight sent it to (`destination_service_name`).
    where = f'reporter="source",destination_service_namespace={_quoted(names.namespace)}'
    both = "|".join(_literal(n) for n in (names.stable_service, names.canary_service))
    return {"stable": f"{where},destination_service_name={_quoted(names.stable_service)}",
            "canary": f"{where},destination_service_name={_quoted(names.canary_service)}",
            "all": f'{where},destination_service_name=~"{both}"'}


_ROUTER = http_pack(
    "router", "any HTTP service behind the sandbox router: its access log counted per track",
    requests="golive_router_requests_total", duration_bucket="golive_router_request_duration_seconds_bucket",
    status_label="code")
# The router counts golive's own probes and drills apart (`source`): the split is users' requests only.
_ROUTER = SignalPack(
    _ROUTER.name, _ROUTER.description, _ROUTER.signals,
    traffic_canary_query='sum(increase(golive_router_requests_total{source="user",track="canary"}[$window]))',
    traffic_total_query='sum(increase(golive_router_requests_total{source="user"}[$window]))')

PACKS: dict[str, SignalPack] = {p.name: p for p in (
    SignalPack("runbook", "the runbook's eight golden signals, as the sandbox's demo service exports them",
               CATALOGUE, TRAFFIC_CANARY_QUERY, TRAFFIC_TOTAL_QUERY),
    _ROUTER,
    http_pack("fastapi-instrumentator", "a FastAPI app instrumented by prometheus-fastapi-instrumentator",
              requests="http_requests_total", duration_bucket="http_request_duration_highr_seconds_bucket",
              status_label="status", selector='handler!="/metrics"'),
    http_pack("flask-exporter", "a Flask app instrumented by prometheus-flask-exporter",
              requests="flask_http_request_total", duration_bucket="flask_http_request_duration_seconds_bucket",
              status_label="status"),
    # starlette-exporter and OpenTelemetry count Prometheus' scrapes of /metrics too, by their route.
    http_pack("starlette-exporter", "a Starlette or FastAPI app instrumented by starlette-exporter",
              requests="starlette_requests_total", duration_bucket="starlette_request_duration_seconds_bucket",
              status_label="status_code", selector='path!="/metrics"'),
    http_pack("opentelemetry", "OpenTelemetry's HTTP server semantic conventions, exported to Prometheus",
              requests="http_server_request_duration_seconds_count",
              duration_bucket="http_server_request_duration_seconds_bucket",
              status_label="http_response_status_code", selector='http_route!="/metrics"'),
    http_pack("ingress-nginx", "any HTTP service behind ingress-nginx: the controller's own request metrics",
              requests="nginx_ingress_controller_requests",
              duration_bucket="nginx_ingress_controller_request_duration_seconds_bucket",
              status_label="status", track_rule=_ingress_nginx_tracks),
    http_pack("gateway-istio", "any HTTP service behind a Gateway API route on Istio: the gateway's request metrics",
              requests="istio_requests_total", duration_bucket="istio_request_duration_milliseconds_bucket",
              status_label="response_code", duration_unit_ms=1, track_rule=_istio_tracks),
)}


def pack(name: str) -> SignalPack:
    """The pack named `name`; ``KeyError`` (one line naming the known packs) for another name."""
    try:
        return PACKS[name]
    except KeyError:
        raise KeyError(f"unknown pack {name!r} (known: {', '.join(PACKS)})") from None


# Label matchers, comma-separated: `name="value"`, `name!="value"`, `name=~"re"`, `name!~"re"`.
_MATCHER = r'\s*[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\\n]|\\.)*"\s*'
_MATCHERS = re.compile(rf"{_MATCHER}(?:,{_MATCHER})*,?\s*")


def track_selectors_problem(selectors: object) -> str | None:
    """Why `selectors` cannot be a target's matchers per track (`<track>: …`); None when it can:
    a mapping of stable and canary, each label matchers without braces (`canary!=""`)."""
    if not isinstance(selectors, Mapping):
        return f": expected a mapping of stable and canary to label matchers, got {type(selectors).__name__}"
    unknown = [str(k) for k in selectors if k not in TRACKS]
    if unknown:
        return f"{unknown[0]}: unknown track (expected {' and '.join(TRACKS)})"
    for track in TRACKS:
        value = selectors.get(track)
        if value is None:
            return f"{track}: required (the matchers that select its requests, such as canary!=\"\")"
        if not isinstance(value, str) or not _MATCHERS.fullmatch(value):
            return f'{track}: expected label matchers such as namespace="shop",canary!="", got {value!r}'
    return None


def selected_by(signals: tuple[Signal, ...], selectors: Mapping[str, str] | None) -> tuple[Signal, ...]:
    """The signals, each query that says `$track_selector` carrying `selectors` (stable, canary):
    rendered for a track, it selects the track by them (golive.signals.render_query)."""
    if selectors is None:
        return signals
    pair = {track: selectors[track] for track in TRACKS}
    return tuple(replace(sig, **{name: getattr(sig, name) and with_track_selectors(getattr(sig, name), pair)
                                 for name in QUERIES})
                 for sig in signals)
