"""The exporter packs against the real exporters: a small app instrumented by prometheus-flask-exporter,
by starlette-exporter, and by OpenTelemetry (opentelemetry-instrumentation-asgi through the SDK's
MeterProvider and opentelemetry-exporter-prometheus), each served as stable and canary behind the sandbox
router with the load generator's GETs and scraped by the sandbox's Prometheus. `golive signals check` on
the app's pack finds data for every signal on both tracks (exit 0), and the pack's traffic split counts
the requests the router sent each track: the pack's names and labels are the exporter's own, not a
guess written down as data."""

from __future__ import annotations

import os
import time

import pytest
import yaml
from prometheus_api_client import PrometheusConnect

from cli.main import main
from golive.signal_packs import PACKS
from golive.signals import readiness_queries, render_query
from sandbox.control import Sandbox

pytestmark = pytest.mark.sandbox

PATHS = ["/", "/items/1", "/items/2"]
WINDOW = 10  # seconds each query looks back over
WEIGHT = 50  # the canary's share of users' requests while the pack is checked

APPS = [
    pytest.param("tests.sandbox.apps.flask_exporter_app:app", "flask-exporter", id="flask-exporter"),
    pytest.param("tests.sandbox.apps.starlette_exporter_app:app", "starlette-exporter", id="starlette-exporter"),
    pytest.param("tests.sandbox.apps.opentelemetry_app:app", "opentelemetry", id="opentelemetry"),
]


def _number(prom: PrometheusConnect, query: str) -> float:
    result = prom.custom_query(query)
    assert len(result) == 1, f"{query}: {result}"
    return float(result[0]["value"][1])


@pytest.mark.parametrize(("spec", "pack_name"), APPS)
def test_the_pack_answers_for_both_tracks_on_the_real_exporter(spec, pack_name, tmp_path, capsys):
    pack = PACKS[pack_name]
    sandbox = Sandbox.up(tmp_path / "sandbox", free_ports=True, owner_pid=os.getpid(), rate=40, probe_rate=5,
                         ready_queries=readiness_queries(pack.signals),
                         app={"spec": spec, "factory": False, "paths": PATHS, "path": os.getcwd()})
    try:
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

        # The split: the pack's request counter per track, against the router's count of what it sent
        # (users' requests and golive's probes). starlette-exporter and OpenTelemetry count Prometheus'
        # scrapes of /metrics too (the sandbox's: one a second per track); prometheus-flask-exporter does not.
        prom = PrometheusConnect(url=sandbox.prometheus_url, disable_ssl=True)
        canary_query, total_query = pack.traffic_queries()
        canary = _number(prom, render_query(canary_query, "canary", WINDOW))
        total = _number(prom, render_query(total_query, "", WINDOW))
        routed = _number(prom, f"sum(increase(golive_router_requests_total[{WINDOW}s]))")
        routed_canary = _number(prom, f'sum(increase(golive_router_requests_total{{track="canary"}}[{WINDOW}s]))')
        print(f"{pack_name}: split canary {canary:.0f} of {total:.0f}; router canary {routed_canary:.0f} "
              f"of {routed:.0f}")
        assert 0 < canary < total
        assert 0.8 * routed <= total <= 1.2 * routed + 2 * WINDOW  # scrapes: one a second per track at most
        assert 0.3 < canary / total < 0.7
    finally:
        sandbox.down()
