"""Signal packs: ready signal lists for the metric names services already export.

A pack is data: its signals (golive.signals.Signal) and the two queries of the traffic split
(the canary's users' requests and all users' requests). `policy.signal_pack` names the pack a
target starts from; `policy.signals` changes it (see golive.signals.signal_list).

- `runbook`: the runbook's eight, as the sandbox's demo service exports them (`spark_*`).
- `router`: any HTTP service behind the sandbox router, its access log turned into series by
  `sandbox.router_metrics` (`golive_router_requests_total`, `golive_router_request_duration_seconds`).
- `fastapi-instrumentator`: prometheus-fastapi-instrumentator's defaults (`http_requests_total`
  by `status`, `http_request_duration_highr_seconds`).
- `flask-exporter`: prometheus-flask-exporter's defaults (`flask_http_request_total` by `status`,
  `flask_http_request_duration_seconds`).
- `starlette-exporter`: starlette-exporter's defaults (`starlette_requests_total` by
  `status_code`, `starlette_request_duration_seconds`).
- `opentelemetry`: OpenTelemetry's `http.server.request.duration` through its Prometheus
  exporter (`http_server_request_duration_seconds` by `http_response_status_code`).

An application's own metrics carry no `track` label: the scrape configuration gives each target
one (`labels: {track: canary}`), as the sandbox's does, so `$track` selects the version. The
exporters' names and labels are their defaults as of prometheus-fastapi-instrumentator 8.1,
prometheus-flask-exporter 0.23, starlette-exporter 0.24 and opentelemetry-exporter-prometheus
0.66b (status codes grouped as `5xx` by the instrumentator match `5..` as well).
"""

from __future__ import annotations

from dataclasses import dataclass

from golive.signals import CATALOGUE, TRAFFIC_CANARY_QUERY, TRAFFIC_TOTAL_QUERY, Signal

__all__ = ["DEFAULT_PACK", "PACKS", "SignalPack", "http_pack", "pack"]

DEFAULT_PACK = "runbook"


@dataclass(frozen=True)
class SignalPack:
    name: str
    description: str
    signals: tuple[Signal, ...]
    traffic_canary_query: str
    traffic_total_query: str


def http_pack(name: str, description: str, *, requests: str, duration_bucket: str, status_label: str,
              selector: str = "", p95_ms: float = 200.0, errors_pct: float = 1.0) -> SignalPack:
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

    Returns:
        The pack; its traffic split counts `requests` per track.
    """
    extra = f",{selector}" if selector else ""
    track = f'track="$track"{extra}'
    total = f"sum(increase({requests}{{{track}}}[$window]))"
    bad = f'sum(increase({requests}{{{track},{status_label}=~"5.."}}[$window])) or vector(0)'
    signals = (
        Signal(name="http_p95_ms", title="HTTP latency p95", column="p95", unit="ms", kind="quantile", rule="max",
               threshold=p95_ms, request_derived=True, role="latency", mirror_visible=True,
               value_query=("1000 * histogram_quantile(0.95, sum by (le) ("
                            f"rate({duration_bucket}{{{track}}}[$window])))")),
        Signal(name="http_5xx_pct", title="5xx responses", column="5xx%", unit="%", kind="ratio", rule="max",
               threshold=errors_pct, request_derived=True, role="errors", mirror_visible=True,
               value_query=(f'100 * (sum(rate({requests}{{{track},{status_label}=~"5.."}}[$window])) or vector(0))'
                            f" / sum(rate({requests}{{{track}}}[$window]))"),
               bad_query=bad, total_query=total),
    )
    return SignalPack(name, description, signals,
                      traffic_canary_query=f'sum(increase({requests}{{track="canary"{extra}}}[$window]))',
                      traffic_total_query=f"sum(increase({requests}{{{selector}}}[$window]))")


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
    http_pack("starlette-exporter", "a Starlette or FastAPI app instrumented by starlette-exporter",
              requests="starlette_requests_total", duration_bucket="starlette_request_duration_seconds_bucket",
              status_label="status_code"),
    http_pack("opentelemetry", "OpenTelemetry's HTTP server semantic conventions, exported to Prometheus",
              requests="http_server_request_duration_seconds_count",
              duration_bucket="http_server_request_duration_seconds_bucket",
              status_label="http_response_status_code"),
)}


def pack(name: str) -> SignalPack:
    """The pack named `name`; ``KeyError`` (one line naming the known packs) for another name."""
    try:
        return PACKS[name]
    except KeyError:
        raise KeyError(f"unknown pack {name!r} (known: {', '.join(PACKS)})") from None
