"""`golive judge` as a command, to contracts/judge.md: exit codes, errors, --jsonl, stdin."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from golive.signals import SIGNAL_NAMES
from tests.golive.builders import healthy, set_values


def golive(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_verdict_on_stdout_exit_zero(tmp_path):
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(healthy()))
    result = golive("judge", str(path))
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["decision"] == "proceed"
    assert set(verdict["signals"]) == set(SIGNAL_NAMES)
    assert verdict["triggers"] == []


def test_scenario_from_stdin():
    scenario = healthy()
    del scenario["signals"]["ws_staleness_s"]
    result = golive("judge", "-", stdin=json.dumps(scenario))
    verdict = json.loads(result.stdout)
    assert result.returncode == 0
    assert verdict["decision"] == "hold"
    assert verdict["signals"]["ws_staleness_s"]["verdict"] == "nodata"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["signals"]["api_p95_ms"]["canary"][3].update(value="fast"),
         "signals.api_p95_ms.canary[3].value: expected a number or null"),
        (lambda s: s.pop("stage_percent"), "stage_percent: required"),
        (lambda s: s.update(stage_percent=0), "stage_percent: expected a number in (0, 100]"),
        (lambda s: s["signals"].update(latency={"canary": [], "baseline": []}), "signals.latency: unknown signal"),
        (lambda s: s["signals"]["http_5xx_pct"]["baseline"].pop(), "signals.http_5xx_pct.baseline: expected 10"),
        (lambda s: s["signals"]["http_5xx_pct"]["canary"][0].update(bad=-1), "signals.http_5xx_pct.canary[0].bad"),
        (lambda s: s.update(thresholds={"api_p95_ms": {"min": 3}}), "thresholds.api_p95_ms: expected one of"),
        (lambda s: s.update(policy={"patience": 3}), "policy.patience: unknown policy field"),
    ],
)
def test_invalid_input_exits_2_with_one_line_naming_the_field(mutate, message):
    scenario = healthy()
    mutate(scenario)
    result = golive("judge", "-", stdin=json.dumps(scenario))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]


def test_invalid_json_is_one_line_too():
    result = golive("judge", "-", stdin="{not json")
    assert result.returncode == 2
    assert result.stderr.startswith("golive: scenario: invalid JSON")


def test_missing_file_exits_2():
    result = golive("judge", "/nonexistent/scenario.json")
    assert result.returncode == 2
    assert "No such file" in result.stderr


def test_jsonl_keeps_going_past_a_bad_line_in_order(tmp_path):
    bad = healthy()
    bad["interval_seconds"] = -1
    rolled = set_values(healthy(), "gc_pause_avg_ms", "canary", [35, 38, 36, 40, 37, 39], start=4)
    lines = [json.dumps(healthy()), json.dumps(bad), "not json", json.dumps(rolled)]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = golive("judge", "--jsonl", str(path))
    assert result.returncode == 0
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 4
    assert out[0]["decision"] == "proceed"
    assert out[1] == {"error": "interval_seconds: expected a number > 0"}
    assert out[2]["error"].startswith("scenario: invalid JSON")
    assert out[3]["decision"] == "rollback"


def test_judge_imports_neither_prefect_nor_httpx():
    code = (
        "import sys, golive.judge, cli.main; "
        "bad = [m for m in ('prefect', 'httpx', 'requests') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
