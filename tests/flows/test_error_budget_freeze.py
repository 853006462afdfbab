"""The error budget as policy on the sandbox: 5xx on the canary spend the budget, the freeze
labels the open pull requests (the GitHub stand-in), is an event and a record, the preflight
refuses the next go-live naming the budget, a recorded override lets it through, and the freeze
lifts with a record once the budget has been back above the line for the configured time."""

from __future__ import annotations

import json
import time

import httpx

from golive import layout
from golive.error_budget import read_freeze, record_override
from golive.settings import load_settings
from tests.flows.helpers import flow_settings

LABEL = "error-budget-freeze"


def _canary_errors_seen(prometheus_url: str) -> bool:
    query = 'sum(increase(spark_http_requests_total{track="canary",code=~"5.."}[30s]))'
    result = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=5).json()["data"]["result"]
    return bool(result) and float(result[0]["value"][1]) > 20


def test_a_spent_budget_freezes_refuses_the_go_live_until_overridden_and_lifts_after_recovery(
        sandbox, canary_weight, signing_key, github, monkeypatch, tmp_path):
    from flows.error_budget_freeze import enforce_budget, error_budget_freeze
    from flows.go_live import go_live
    from flows.preflight import preflight
    from tests.flows.test_notify import _events

    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    root = tmp_path / "evidence"
    settings = flow_settings(sandbox, signing_key, root, [100], process={
        "github": {"repository": github.repository, "api_url": github.url, "max_wait_seconds": 10},
        # A compressed hour: the 30-day period is 720 s of the sandbox's traffic.
        "first_night": {"hour_seconds": 1.0}, "budget": {"lift_after_seconds": 600}})
    canary_weight(50)
    sandbox.set_faults("canary", {"error_rate": 0.5})
    deadline = time.monotonic() + 30
    while not _canary_errors_seen(sandbox.prometheus_url) and time.monotonic() < deadline:
        time.sleep(0.5)

    state = error_budget_freeze(settings=settings, return_state=True)

    assert state.name == "Frozen", state.message
    assert "error budget" in state.message and "< 10 %" in state.message
    labelled = {n for n, item in github.items.items() if LABEL in item.labels}
    assert labelled == {1, 2, 3, 6}  # every open pull request; not the issue, not the closed one
    folder = root / "error-budget"
    frozen = read_freeze(folder)
    assert frozen.frozen and frozen.remaining < 0.10 and sorted(frozen.pull_requests) == [1, 2, 3, 6]
    record = json.loads(next(folder.glob("freeze_*.json")).read_text())
    assert record["change"] == "freeze" and record["source"] == "error-budget-freeze (schedule)"
    assert _events("golive.error-budget.frozen", "0.0.0-error-budget", reason=frozen.reason)

    # The next go-live: NoGo at its flight check, naming the budget; no weight moved.
    sandbox.clear_faults("canary")
    canary_weight(0)
    cfg = load_settings(settings, release="1.5.0")
    refused = go_live("1.5.0", settings={**settings, "release": "1.5.0"}, return_state=True)
    assert (refused.type.value, refused.name) == ("FAILED", "NoGo"), refused.message
    assert "error_budget: error budget " in refused.message and "< 10 %: frozen" in refused.message
    assert sandbox.weight() == 0
    check = json.loads((cfg.evidence_dir / layout.preflight_check("error_budget")).read_text())
    assert check["ok"] is False

    # A person's override for this release, on record: the budget no longer stops it.
    record_override(folder, "1.5.0", "Ayşe (incident commander)", "fix for the outage itself", time.time())
    result = preflight(cfg, time.time())
    assert not [r for r in result["reasons"] if r.startswith("error_budget")]
    assert "overridden by Ayşe (incident commander)" in result["checks"]["error_budget"]["detail"]

    # Back above the line: still frozen until it has stayed there lift_after_seconds, then lifted.
    now = time.time()
    kept = enforce_budget(cfg, 0.5, {"1h": None, "6h": None}, source="test", now=now)
    assert kept["change"] is None and kept["frozen"] is True
    lifted = enforce_budget(cfg, 0.5, {"1h": None, "6h": None}, source="test", now=now + 600)
    assert lifted["change"] == "lift" and lifted["unlabelled"] == [1, 2, 3, 6]
    assert not any(LABEL in item.labels for item in github.items.values())
    assert not read_freeze(folder).frozen
    assert json.loads(next(folder.glob("lift_*.json")).read_text())["reason"].startswith("error budget 50 % ≥ 10 %")


def test_the_budget_and_its_predictions_from_the_counts():
    from flows.error_budget_freeze import prediction_windows, predictions

    cfg = load_settings({"release": "1.5.0", "process": {"first_night": {"hour_seconds": 10.0}}})
    assert prediction_windows(cfg) == {"period": 7200.0, "1h": 10.0, "6h": 60.0}
    # 99.9 % SLO: 600 5xx in 1 000 000 requests leaves 40 %; the 1 h burn of 6 spends it in 48 h,
    # the 6 h window had no requests (no burn: no prediction), nothing answered: unknown.
    remaining, exhaustion = predictions(cfg, {"period": [600, 1_000_000], "1h": [6, 1000], "6h": [0, 0]})
    assert round(remaining, 6) == 0.4 and round(exhaustion["1h"]) == 48 * 3600 and exhaustion["6h"] is None
    assert predictions(cfg, {"period": None, "1h": None, "6h": None}) == (None, {"1h": None, "6h": None})
