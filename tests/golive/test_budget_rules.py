"""The error budget's rules: sloth's names and labels, and `promtool test rules` (Debian's
`prometheus` package ships promtool) on series where the prediction fires and where it must not.

The scenarios run a 99 % SLO over a 24 h period, 100 requests a minute on each track, for 12
hours (sampled every minute, the rules evaluated every 5), so every window's numbers are exact:
the period window holds the whole 12 hours (72 000 requests), the 6 h window 36 000, the 1 h 6 000.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from golive.rules import (EXHAUSTION_ALERT, EXHAUSTION_SERIES, RuleOptions, build_rules, options_for,
                          render_rules)
from golive.settings import load_settings
from golive.signals import CATALOGUE

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")

OPTIONS = RuleOptions(slo_objective=0.99, slo_period_hours=24, burn_windows=())
# promtool evaluates every rule at every step of the 12 hours: only the 5xx signal's, for speed.
ERRORS_ONLY = tuple(s for s in CATALOGUE if s.name == "http_5xx_pct")
SLO = {"sloth_id": "spark-requests-availability", "sloth_service": "spark", "sloth_slo": "requests-availability"}
MINUTES = 720


def _counter(*phases: tuple[float, int]) -> str:
    """A counter sampled every minute from 0: (increase a minute, minutes) per phase, each phase
    starting where the one before ended (no repeated sample)."""
    value, parts, first = 0.0, [], True
    for increase, minutes in phases:
        if first:
            parts.append(f"0+{increase:g}x{minutes}")
            value, first = increase * minutes, False
        else:
            parts.append(f"{value + increase:g}+{increase:g}x{minutes - 1}")
            value += increase * minutes
    return " ".join(parts)


def _track(track: str, *error_phases: tuple[float, int]) -> list[dict]:
    """100 requests a minute on `track`; `error_phases` are (5xx a minute, minutes)."""
    return [
        {"series": f'spark_http_requests_total{{track="{track}",code="200",source="user"}}',
         "values": _counter(*((100 - errors, minutes) for errors, minutes in error_phases))},
        {"series": f'spark_http_requests_total{{track="{track}",code="500",source="user"}}',
         "values": _counter(*error_phases)},
    ]


def _humanize_duration(seconds: float) -> str:
    """Prometheus' `humanizeDuration` for whole and fractional seconds of at least one."""
    if seconds == 0:
        return "0s"
    whole = int(seconds)
    days, hours, minutes, secs = whole // 86400, whole // 3600 % 24, whole // 60 % 60, whole % 60
    if days:
        return f"{days}d {hours}h {minutes}m {secs}s"
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _exhaustion_alert(track: str, severity: str, seconds: float) -> dict:
    horizon = "24" if severity == "warning" else "2"
    return {
        "exp_labels": {**SLO, "track": track, "burn_window": "6h", "severity": severity, "service": "spark",
                       "horizon": f"{horizon}h"},
        "exp_annotations": {
            "summary": (f"spark {track}: error budget gone in {_humanize_duration(seconds)} at this rate "
                        f"(6h burn; under {horizon} h)"),
            "description": (f"remaining x period / burn over 6h and 1h both under {horizon} h "
                            "for the 0.99 SLO over 24 h"),
        },
    }


def _run_promtool(tmp_path: Path, rules: dict, tests: list[dict]) -> subprocess.CompletedProcess:
    (tmp_path / "budget.rules.yml").write_text(render_rules(rules))
    (tmp_path / "budget.test.yml").write_text(yaml.safe_dump(
        {"rule_files": ["budget.rules.yml"], "evaluation_interval": "5m", "tests": tests}, sort_keys=False))
    return subprocess.run([PROMTOOL, "test", "rules", "budget.test.yml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def _groups(rules: dict) -> dict[str, list[dict]]:
    return {g["name"]: g["rules"] for g in rules["groups"]}


def test_the_budget_is_recorded_under_sloths_names_and_labels():
    budget = _groups(build_rules(CATALOGUE))["golive-budget"]
    sli = [r for r in budget if r.get("record", "").startswith("slo:sli_error:")]
    meta = [r for r in budget if "record" in r and r not in sli and r["record"].startswith("slo:")]
    assert {r["record"] for r in sli if r["labels"]["track"] == "canary"} == {
        f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")}
    assert all(r["labels"]["sloth_window"] == r["record"].removeprefix("slo:sli_error:ratio_rate") for r in sli)
    assert [r["record"] for r in meta if r["labels"]["track"] == "canary"] == [
        "slo:objective:ratio", "slo:error_budget:ratio", "slo:time_period:days", "slo:current_burn_rate:ratio",
        "slo:period_burn_rate:ratio", "slo:period_error_budget_remaining:ratio"]
    assert all({k: r["labels"][k] for k in SLO} == SLO for r in sli + meta)
    current = next(r for r in meta if r["record"] == "slo:current_burn_rate:ratio")
    assert current["expr"].startswith("slo:sli_error:ratio_rate5m{")  # sloth's: the quick page's short window


def test_the_horizons_and_windows_come_from_the_budget_settings():
    settings = load_settings({"release": "1.5.0", "process": {"budget": {
        "ticket_horizon_hours": 12, "page_horizon_hours": 1, "predict_windows_hours": [2, 24]}}})
    groups = _groups(build_rules(CATALOGUE, options_for(settings)))
    predicted = groups["golive-budget"]
    assert sorted({r["labels"]["burn_window"] for r in predicted if "burn_window" in r["labels"]}) == ["1d", "2h"]
    alerts = {r["labels"]["severity"]: r["expr"] for r in predicted if r.get("alert") == EXHAUSTION_ALERT}
    assert "< 43200" in alerts["warning"] and "< 3600" in alerts["critical"]
    assert 'burn_window="1d"' in alerts["critical"] and 'burn_window="2h"' in alerts["critical"]


def test_without_a_5xx_signal_no_budget_rules_are_made():
    catalogue = tuple(s for s in CATALOGUE if s.name != "http_5xx_pct")
    names = {g["name"] for g in build_rules(catalogue)["groups"]}
    assert "golive-budget" not in names


@pytest.mark.parametrize("options", [{"predict_windows_hours": ()}, {"page_horizon_hours": 0},
                                     {"predict_windows_hours": (1.0, float("inf"))}])
def test_prediction_options_out_of_range_are_refused(options):
    with pytest.raises(ValueError, match=next(iter(options))):
        RuleOptions(**options)


@needs_promtool
def test_promtool_a_ticket_when_both_windows_predict_under_a_day_and_nothing_on_a_short_spike(tmp_path):
    # canary: healthy 10 h, then 3 % errors for 2 h: half the budget left, gone in 4 h at the 1 h
    # burn (3) and in 12 h at the 6 h burn (1): a ticket, no page.
    # stable: healthy, then 3 % errors for the last 20 minutes: gone in 22 h at the 1 h burn, but
    # in 132 h at the 6 h burn: a spike, not a trend, so nothing fires.
    series = _track("canary", (0, 600), (3, 120)) + _track("stable", (0, 700), (3, 20))
    canary = {**SLO, "track": "canary"}
    tests = [{
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {"expr": f'round(slo:period_error_budget_remaining:ratio{{track="canary"}} * 1000)',
             "eval_time": f"{MINUTES}m",
             "exp_samples": [{"labels": _labels({**canary, "sloth_window": "1d"}), "value": 500}]},
            {"expr": f'round(slo:current_burn_rate:ratio{{track="canary"}} * 1000)',
             "eval_time": f"{MINUTES}m",
             "exp_samples": [{"labels": _labels({**canary, "sloth_window": "5m"}), "value": 3000}]},
            {"expr": f"round({EXHAUSTION_SERIES})", "eval_time": f"{MINUTES}m", "exp_samples": [
                {"labels": _labels({**canary, "burn_window": "1h"}), "value": 4 * 3600},
                {"labels": _labels({**canary, "burn_window": "6h"}), "value": 12 * 3600},
                {"labels": _labels({**SLO, "track": "stable", "burn_window": "1h"}), "value": 22 * 3600},
                {"labels": _labels({**SLO, "track": "stable", "burn_window": "6h"}), "value": 132 * 3600}]},
            # Nothing burns before the errors: no prediction at all, never an infinite one.
            {"expr": EXHAUSTION_SERIES, "eval_time": "600m", "exp_samples": []},
        ],
        "alert_rule_test": [
            {"eval_time": "600m", "alertname": EXHAUSTION_ALERT, "exp_alerts": []},
            {"eval_time": f"{MINUTES}m", "alertname": EXHAUSTION_ALERT,
             "exp_alerts": [_exhaustion_alert("canary", "warning", 12 * 3600)]},
        ],
    }]
    result = _run_promtool(tmp_path, build_rules(ERRORS_ONLY, OPTIONS), tests)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_a_page_before_the_budget_is_gone_and_zero_once_it_is(tmp_path):
    # canary: healthy 6 h, then 1.9 % errors for 6 h: 5 % of the budget left, gone in 38 minutes
    # at both burns (1.9): a page and a ticket.
    # stable: 3 % errors for the last 6 h: the budget is overspent, so it is gone now (0 s).
    series = _track("canary", (0, 360), (1.9, 360)) + _track("stable", (0, 360), (3, 360))
    left = 0.05 * 86400 / 1.9
    tests = [{
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {"expr": f'round({EXHAUSTION_SERIES}{{burn_window="1h"}})', "eval_time": f"{MINUTES}m", "exp_samples": [
                {"labels": _labels({**SLO, "track": "canary", "burn_window": "1h"}), "value": round(left)},
                {"labels": _labels({**SLO, "track": "stable", "burn_window": "1h"}), "value": 0}]},
        ],
        "alert_rule_test": [
            {"eval_time": f"{MINUTES}m", "alertname": EXHAUSTION_ALERT, "exp_alerts": [
                _exhaustion_alert("canary", "warning", left), _exhaustion_alert("canary", "critical", left),
                _exhaustion_alert("stable", "warning", 0), _exhaustion_alert("stable", "critical", 0)]},
        ],
    }]
    result = _run_promtool(tmp_path, build_rules(ERRORS_ONLY, OPTIONS), tests)
    assert result.returncode == 0, result.stdout + result.stderr


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def test_without_burn_alerts_the_current_burn_is_still_sloths_five_minutes():
    budget = _groups(build_rules(CATALOGUE, RuleOptions(burn_windows=())))["golive-budget"]
    current = next(r for r in budget if r.get("record") == "slo:current_burn_rate:ratio")
    assert current["expr"].startswith("slo:sli_error:ratio_rate5m{")
    assert "slo:sli_error:ratio_rate5m" in {r.get("record") for r in budget}
