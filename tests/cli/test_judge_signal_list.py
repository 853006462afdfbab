"""`golive judge --signals golive.yaml` judges on the settings' signal list: every signal of it in
the verdict, its own signals known; a list that cannot be judged is one line, exit 2."""

from __future__ import annotations

import json

import yaml

from cli.main import main

QUEUE = {"kind": "gauge", "rule": "max", "threshold": 100,
         "value_query": 'max(max_over_time(jobs_queued{track="$track"}[$window]))'}
SCENARIO = {"stage_percent": 25, "interval_seconds": 60, "signals": {"queue_depth": {
    "canary": [{"value": v} for v in (400, 420, 450, 480)], "baseline": [{"value": v} for v in (10, 11, 10, 12)]}}}


def test_judge_on_the_settings_signal_list(tmp_path, capsys):
    config, scenario = tmp_path / "golive.yaml", tmp_path / "scenario.json"
    config.write_text(yaml.safe_dump({"release": "1.4.0", "policy": {"signal_pack": "router",
                                                                     "signals": {"queue_depth": QUEUE}}}))
    scenario.write_text(json.dumps(SCENARIO))
    assert main(["judge", "--signals", str(config), str(scenario)]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert list(verdict["signals"]) == ["http_p95_ms", "http_5xx_pct", "queue_depth"]
    assert verdict["decision"] == "rollback" and "breach:queue_depth" in verdict["triggers"]

    assert main(["judge", str(scenario)]) == 2  # the runbook's eight know no queue_depth
    assert "signals.queue_depth: unknown signal" in capsys.readouterr().err

    config.write_text(yaml.safe_dump({"release": "1.4.0", "policy": {"signals": []}}))
    assert main(["judge", "--signals", str(config), str(scenario)]) == 2
    assert capsys.readouterr().err == ("golive: --signals policy.signals: an empty list: nothing to judge a go-live "
                                       "on\n")
