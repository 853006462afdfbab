"""The exporter packs against the real exporters: a small app instrumented by prometheus-flask-exporter,
by starlette-exporter, and by OpenTelemetry (opentelemetry-instrumentation-fastapi through the SDK's
MeterProvider and opentelemetry-exporter-prometheus), each served as stable and canary behind the sandbox
router with the load generator's GETs and scraped by the sandbox's Prometheus, the canary given an error
rate. On one sandbox per app:

- `golive signals check` on the app's pack finds data for every signal on both tracks (exit 0);
- the pack's traffic split counts the requests the router sent each track, and not Prometheus' scrapes
  of /metrics, which starlette-exporter and OpenTelemetry count among their requests;
- the pack's 5xx count of the canary is the router's: the wrapper's injected error is seen by the
  exporter inside a Starlette or FastAPI app (a WSGI app's exporter never sees it: the fault is outside).

The pack's names and labels are the exporter's own, not a guess written down as data."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from prometheus_api_client import PrometheusConnect

from cli.main import main
from golive.signal_packs import PACKS
from golive.signals import readiness_queries, render_query
from sandbox.control import Sandbox

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]  # where the apps' module path `tests.sandbox.apps` starts
PATHS = ["/", "/items/1", "/items/2"]
WINDOW = 6  # seconds each query looks back over
EDGE_SECONDS = 1.5  # how far the edges of two targets' windows may fall apart on a busy machine
WEIGHT = 50  # the canary's share of users' requests while the pack is checked
ERROR_RATE = 0.3  # the canary's injected errors

# (app, pack, the exporter's own request counter with its route label, whether it sees the wrapper's errors)
APPS = [
    pytest.param("tests.sandbox.apps.flask_exporter_app:app", "flask-exporter", None, False, id="flask-exporter"),
    pytest.param("tests.sandbox.apps.starlette_exporter_app:app", "starlette-exporter",
                 ("starlette_requests_total", "path"), True, id="starlette-exporter"),
    pytest.param("tests.sandbox.apps.opentelemetry_app:app", "opentelemetry",
                 ("http_server_request_duration_seconds_count", "http_route"), True, id="opentelemetry"),
]


def _number(prom: PrometheusConnect, query: str, at: float) -> float:
    result = prom.custom_query(query, params={"time": f"{at:.3f}"})
    assert len(result) == 1, f"{query}: {result}"
    return float(result[0]["value"][1])


@pytest.mark.parametrize(("spec", "pack_name", "scraped", "sees_errors"), APPS)
def test_the_pack_answers_for_both_tracks_on_the_real_exporter(spec, pack_name, scraped, sees_errors, tmp_path,
                                                                capsys):
    pack = PACKS[pack_name]
    sandbox = Sandbox.up(tmp_path / "sandbox", free_ports=True, owner_pid=os.getpid(), rate=20, probe_rate=5,
                         ready_queries=readiness_queries(pack.signals),
                         app={"spec": spec, "factory": False, "paths": PATHS, "path": str(ROOT)})
    try:
        sandbox.set_faults("canary", {"error_rate": ERROR_RATE})
        assert sandbox.set_weight(WEIGHT) == WEIGHT
        time.sleep(WINDOW + 2)  # a whole window of users' requests split between the tracks

        config = tmp_path / "golive.yaml"
        config.write_text(yaml.safe_dump({"release": "1.4.0", "prometheus": sandbox.golive_settings()["prometheus"],
                                          "policy": {"signal_pack": pack_name}}))
        code = main(["signals", "check", "--config", str(config), "--window", str(WINDOW)])
        captured = capsys.readouterr()
        lines = captured.out.splitlines()
        assert code == 0, captured.out + captured.err
        assert [line.split(":")[0] for line in lines[:-1]] == [f"ok    {sig.name}" for sig in pack.signals]
        assert lines[-1] == f"{len(pack.signals)}/{len(pack.signals)} signals answer for both tracks over {WINDOW} s"

        # One instant for every query, so that the pack's counts and the router's cover the same window.
        prom = PrometheusConnect(url=sandbox.prometheus_url, disable_ssl=True)
        at = time.time()

        def number(query: str) -> float:
            return _number(prom, query, at)

        # The split: the pack's request counter per track, against the router's count of what it sent
        # (users' requests and golive's probes). The app and the router are scraped once a second each,
        # at different moments: over a 6-s window a scrape that comes late on a busy machine moves one
        # count by a second of requests or more, so the two agree within a second and a half. A split
        # that took one track only, or both twice, is off by half or more. A WSGI app's exporter never
        # sees the wrapper's errors (answered outside the app): not counted there.
        canary_query, total_query = pack.traffic_queries()
        canary = number(render_query(canary_query, "canary", WINDOW))
        total = number(render_query(total_query, "", WINDOW))
        routed = number(f"sum(increase(golive_router_requests_total[{WINDOW}s]))")
        routed_canary = number(f'sum(increase(golive_router_requests_total{{track="canary"}}[{WINDOW}s]))')
        routed_5xx = number(f'sum(increase(golive_router_requests_total{{track="canary",code=~"5.."}}[{WINDOW}s]))')
        unseen = 0.0 if sees_errors else routed_5xx
        scrapes = 0.0
        if scraped:
            # Prometheus' scrapes of /metrics, which this exporter counts among its requests, are exactly
            # what its whole counter holds beyond the split's total: same series, same samples.
            counter, route_label = scraped
            scrapes = number(f'sum(increase({counter}{{{route_label}="/metrics"}}[{WINDOW}s]))')
            counted = number(f"sum(increase({counter}[{WINDOW}s]))")
            assert scrapes >= WINDOW  # the exporter does count them: both tracks, one a second each
            assert counted - total == pytest.approx(scrapes, abs=0.01)
        print(f"{pack_name}: split canary {canary:.0f} of {total:.0f}; router canary {routed_canary:.0f} "
              f"of {routed:.0f}, canary 5xx {routed_5xx:.0f}; scrapes {scrapes:.0f}")
        assert abs(total - (routed - unseen)) <= EDGE_SECONDS * routed / WINDOW + 2
        assert abs(canary - (routed_canary - unseen)) <= EDGE_SECONDS * routed_canary / WINDOW + 2
        assert 0.3 < canary / total < 0.7

        # The canary's injected errors, by the pack's 5xx count and by the router's.
        errors = next(sig for sig in pack.signals if sig.role == "errors")
        pack_5xx = number(render_query(errors.bad_query, "canary", WINDOW))
        print(f"{pack_name}: canary 5xx {pack_5xx:.0f}; router {routed_5xx:.0f}")
        assert routed_5xx >= 0.1 * routed_canary
        if sees_errors:
            assert abs(pack_5xx - routed_5xx) <= 0.25 * routed_5xx + 3
        else:
            assert pack_5xx == 0
    finally:
        sandbox.down()
