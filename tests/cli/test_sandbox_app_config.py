"""The settings `golive sandbox up --app` writes take a user's application live as it is: judged on
its pack, drilled on its paths, its traffic split counted by the router."""

from __future__ import annotations

from pathlib import Path

from cli.sandbox_commands import sandbox_config
from golive.settings import load_settings
from golive.signal_packs import PACKS


class _Running:
    workdir = Path("/tmp/sandbox")

    def __init__(self, app: dict | None):
        self.config = {"app": app}

    def golive_settings(self) -> dict:
        return {"prometheus": {"url": "http://127.0.0.1:19090"},
                "target": {"router": {"kind": "sandbox", "control_url": "http://127.0.0.1:18070"}}}


def test_an_app_sandbox_is_judged_on_its_pack_and_drilled_on_its_paths():
    app = {"spec": "pypiserver:app", "factory": True, "paths": ["/", "/simple/"], "pack": "fastapi-instrumentator"}
    settings = load_settings({"release": "1.4.0", **sandbox_config(_Running(app), 12, 4)})
    assert [s.name for s in settings.policy.catalogue()] == ["http_p95_ms", "http_5xx_pct"]
    assert settings.policy.signal_pack == "fastapi-instrumentator"
    assert settings.target.drill_paths == ("/", "/simple/")
    assert settings.prometheus.traffic_canary_query == PACKS["router"].traffic_canary_query


def test_the_demo_sandbox_keeps_the_runbooks_eight():
    settings = load_settings({"release": "1.4.0", **sandbox_config(_Running(None), 12, 4)})
    assert len(settings.policy.catalogue()) == 8 and settings.target.drill_paths is None
    assert settings.prometheus.traffic_canary_query == PACKS["runbook"].traffic_canary_query
