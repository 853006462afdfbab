"""Services no one here wrote, taken live by the go-live flow: pypiserver (a WSGI application from
PyPI with no metrics of its own, judged on the router's signals) and a FastAPI service instrumented
by prometheus-fastapi-instrumentator (judged on that pack), each as stable and canary behind the
sandbox router. Healthy, each goes Live; given a defect by the wrapper at 50 % (an error rate, added
latency), each is rolled back on the right trigger. No query of the demo's metrics is asked."""

from __future__ import annotations

import json
import os

import pytest

from golive import layout
from golive.signal_packs import PACKS
from golive.signals import readiness_queries
from sandbox.control import Sandbox
from tests.flows.helpers import EvidenceWatcher, flow_settings, stage_started

pytestmark = pytest.mark.sandbox

APPS = [
    pytest.param({"spec": "pypiserver:app", "factory": True, "paths": ["/", "/simple/"], "pack": "router"},
                 {"error_rate": 0.3}, "breach:http_5xx_pct", id="pypiserver"),
    pytest.param({"spec": "tests.sandbox.apps.instrumented_fastapi:app", "factory": False,
                  "paths": ["/", "/items/1", "/items/2"], "pack": "fastapi-instrumentator"},
                 {"latency_ms": 400}, "breach:http_p95_ms", id="fastapi-instrumentator"),
]


def _settings(sandbox, signing_key, root, stages, app) -> dict:
    router = PACKS["router"]
    return flow_settings(sandbox, signing_key, root, stages, policy={"signal_pack": app["pack"]},
                         # users' share as the router counts it: the app's own counters include golive's probes
                         prometheus={"traffic_canary_query": router.traffic_canary_query,
                                     "traffic_total_query": router.traffic_total_query},
                         target={"drill_paths": app["paths"]})


def _queries_asked(folder, percent: int) -> list[str]:
    asked = []
    for snapshot in folder.glob(layout.snapshot_files(percent)):
        queries = json.loads(snapshot.read_text())["series"]["queries"]
        asked += [q for tracks in queries.values() for kinds in tracks.values() for q in kinds.values()]
    return asked


@pytest.mark.parametrize(("app", "fault", "trigger"), APPS)
def test_a_third_party_app_goes_live_and_its_faulted_canary_is_rolled_back(app, fault, trigger, signing_key,
                                                                          tmp_path):
    from flows.go_live import go_live

    sandbox = Sandbox.up(tmp_path / "sandbox", free_ports=True, owner_pid=os.getpid(), rate=40, probe_rate=5,
                         ready_queries=readiness_queries(PACKS[app["pack"]].signals),
                         app={**app, "path": os.getcwd()})
    try:
        settings = _settings(sandbox, signing_key, tmp_path / "live", [100], app)
        state = go_live("1.4.0", settings=settings, return_state=True)
        assert (state.type.value, state.name) == ("COMPLETED", "Live"), state.message
        folder = tmp_path / "live" / "v1.4.0"
        stage = json.loads((folder / layout.stage_record(100)).read_text())
        assert list(stage["decisions"][-1]["signals"]) == ["http_p95_ms", "http_5xx_pct"]
        asked = _queries_asked(folder, 100)
        assert asked and not any("spark_" in q for q in asked)
        drill = json.loads((folder / layout.MICRO_BLAST_RADIUS).read_text())
        assert drill["ok"] and drill["stable_requests"] == 0 and drill["canary_requests"] > 0

        sandbox.set_weight(0)
        settings = _settings(sandbox, signing_key, tmp_path / "faulted", [50, 100], app)
        folder = tmp_path / "faulted" / "v1.4.0"
        try:
            with EvidenceWatcher(folder, stage_started(50), lambda: sandbox.set_faults("canary", fault)):
                state = go_live("1.4.0", settings=settings, return_state=True)
        finally:
            sandbox.clear_faults("canary")
        assert (state.type.value, state.name) == ("FAILED", "RolledBack"), state.message
        assert trigger in state.message
        assert sandbox.weight() == 0
    finally:
        sandbox.down()
