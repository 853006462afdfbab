"""Services no one here wrote, behind the sandbox router: pypiserver (a WSGI application from
PyPI, no metrics of its own: judged on the router's signals) and a FastAPI service instrumented by
prometheus-fastapi-instrumentator (judged on that pack). Each runs as stable and canary through
sandbox.app_wrapper; the signals read from the real Prometheus judge a healthy canary without a
rollback, and a canary given a defect by the wrapper (an error rate, added latency) rolled back on
the right trigger. No query of the demo's metrics is asked."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from cli.demo import demo_settings
from golive.judge import judge
from golive.settings import load_settings, merge_settings
from golive.signal_packs import PACKS
from golive.signals import readiness_queries
from sandbox.control import Sandbox

pytestmark = pytest.mark.sandbox

INTERVAL = 2.0
APPS = [
    pytest.param({"spec": "pypiserver:app", "factory": True, "paths": ["/", "/simple/"], "pack": "router"},
                 {"error_rate": 0.3}, "breach:http_5xx_pct", id="pypiserver-router-pack"),
    pytest.param({"spec": "tests.sandbox.apps.instrumented_fastapi:app", "factory": False,
                  "paths": ["/", "/items/1", "/items/2"], "pack": "fastapi-instrumentator"},
                 {"latency_ms": 400}, "breach:http_p95_ms", id="fastapi-instrumentator-pack"),
]


def _window(settings, seconds: float):
    from tasks.prometheus import query_signals

    start = time.time()
    time.sleep(seconds)
    end = time.time()
    return query_signals.fn(settings.prometheus, settings.policy, 50, start, end)


@pytest.mark.parametrize(("app", "fault", "trigger"), APPS)
def test_a_third_party_app_is_judged_healthy_and_its_faulted_canary_rolled_back(app, fault, trigger, tmp_path):
    pack = PACKS[app["pack"]]
    sandbox = Sandbox.up(tmp_path / "sandbox", free_ports=True, owner_pid=os.getpid(), rate=40, probe_rate=5,
                         ready_queries=readiness_queries(pack.signals), app={**app, "path": os.getcwd()})
    try:
        assert httpx.get(f"{sandbox.service_url('canary')}/version").json() == {"version": "1.4.0", "track": "canary"}
        settings = load_settings(merge_settings(
            demo_settings("1.4.0", sandbox.golive_settings(), 6 * INTERVAL, INTERVAL, str(tmp_path / "evidence")),
            {"policy": {"signal_pack": app["pack"]}}))
        sandbox.set_weight(50)
        healthy = _window(settings, 4 * INTERVAL)
        verdict = judge(healthy.scenario)
        assert verdict.decision != "rollback" and not verdict.triggers, verdict.reason
        assert set(verdict.signals) == {"http_p95_ms", "http_5xx_pct"}
        asked = [q for tracks in healthy.queries.values() for kinds in tracks.values() for q in kinds.values()]
        assert asked and not any("spark_" in q for q in asked)

        sandbox.set_faults("canary", fault)
        time.sleep(1)
        faulted = judge(_window(settings, 5 * INTERVAL).scenario)
        assert faulted.decision == "rollback" and trigger in faulted.triggers, faulted.reason
    finally:
        sandbox.down()
