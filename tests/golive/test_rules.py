"""The generated rules pass `promtool check rules`, and `promtool test rules` proves each alert
fires on a bad series and clears when it mends (Debian's `prometheus` package ships promtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from golive.rules import BURN_ALERT, CRITICAL_ALERT, RuleOptions, build_rules, options_for, render_rules
from golive.settings import load_settings
from golive.signals import CATALOGUE, SIGNAL_NAMES

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")

STEP = "15s"


def _counter(*phases: tuple[float, int]) -> str:
    """A counter in promtool's notation: (increase per step, steps) per phase."""
    value, parts = 0.0, []
    for increase, steps in (p for p in phases if p[1]):
        parts.append(f"{value:g}+{increase:g}x{steps}")
        value += increase * steps
    return " ".join(parts)


def _gauge(*phases: tuple[float, int]) -> str:
    return " ".join(f"{value:g}+0x{steps}" for value, steps in phases if steps)


def _track_series(track: str, bad_steps: int, good_steps: int) -> list[dict]:
    """The sandbox's raw metrics for one track: every signal far over its threshold for
    `bad_steps`, then healthy for `good_steps` (stable: healthy throughout)."""
    def phases(bad: float, good: float) -> tuple[tuple[float, int], ...]:
        return ((bad, bad_steps), (good, good_steps))

    t = f'track="{track}"'
    series = {
        f'spark_http_requests_total{{{t},code="200",source="user"}}': _counter(*phases(150, 150)),
        f'spark_http_requests_total{{{t},code="500",source="user"}}': _counter(*phases(15, 0)),
        f'spark_risk_blocks_total{{{t}}}': _counter(*phases(5, 0)),
        f'spark_idempotency_keyed_requests_total{{{t}}}': _counter(*phases(100, 100)),
        f'spark_idempotency_conflicts_total{{{t}}}': _counter(*phases(10, 0)),
        f'spark_csp_violations_total{{{t}}}': _counter(*phases(10, 1)),
        f'spark_ws_last_message_age_seconds{{{t}}}': _gauge(*phases(100, 5)),
        f'spark_gc_pause_seconds_count{{{t}}}': _counter(*phases(10, 10)),
        f'spark_gc_pause_seconds_sum{{{t}}}': _counter(*phases(0.5, 0.05)),
    }
    # Histograms: healthy requests all in the lowest bucket, bad ones in the third.
    for name, extra, buckets in (
        ("spark_http_request_duration_seconds_bucket", ',route="/api/orders"', ("0.1", "0.5", "1", "+Inf")),
        ("spark_event_loop_lag_seconds_bucket", "", ("0.01", "0.05", "0.2", "+Inf")),
    ):
        for i, le in enumerate(buckets):
            bad = 150 if i >= 2 else 0
            series[f'{name}{{{t}{extra},le="{le}"}}'] = _counter(*phases(bad, 150))
    return [{"series": k, "values": v} for k, v in series.items()]


def _critical(signal: str, track: str, options: RuleOptions) -> dict:
    sig = next(s for s in CATALOGUE if s.name == signal)
    return {
        "exp_labels": {"severity": "critical", "service": options.service, "signal": signal, "track": track},
        "exp_annotations": {"summary": f"{options.service} {track}: {sig.title} "
                                       f"{options.severe_factor:g}x over its rule ({sig.rule_text()})"},
    }


def _burn(window: str, severity: str, factor: str, budget: str, track: str = "canary") -> dict:
    long, short = window.split("/")
    shares = {"1h/5m": "2%", "6h/30m": "5%", "1d/2h": "10%", "3d/6h": "10%"}
    return {
        "exp_labels": {"severity": severity, "service": "spark", "track": track, "window": window},
        "exp_annotations": {
            "summary": f"spark {track} burns its error budget over {factor}x ({window})",
            "description": (f"5xx ratio over {long} and {short} both above {factor} x the budget of a {budget} SLO: "
                            f"{shares[window]} of the 720 h budget in {long}."),
        },
    }


def _run_promtool(tmp_path: Path, rules: dict, tests: list[dict], every: str = STEP) -> subprocess.CompletedProcess:
    rules_file = tmp_path / "golive.rules.yml"
    rules_file.write_text(render_rules(rules))
    test_file = tmp_path / "golive.rules.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [rules_file.name], "evaluation_interval": every,
                                         "tests": tests}, sort_keys=False))
    return subprocess.run([PROMTOOL, "test", "rules", test_file.name], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_rules_record_every_signal_per_track_and_alert_per_signal():
    rules = build_rules(CATALOGUE)
    groups = {g["name"]: g["rules"] for g in rules["groups"]}
    recorded = {(r["record"], r["labels"]["track"]) for r in groups["golive-signals"]}
    assert recorded == {(f"golive:{name}:1m", track) for name in SIGNAL_NAMES for track in ("stable", "canary")}
    assert sorted(r["labels"]["signal"] for r in groups["golive-critical"]) == sorted(SIGNAL_NAMES)
    assert all(r["alert"] == CRITICAL_ALERT and r["labels"]["severity"] == "critical"
               for r in groups["golive-critical"])
    assert [r["labels"]["window"] for r in groups["golive-burn"]] == ["1h/5m", "6h/30m", "1d/2h", "3d/6h"]
    assert [r["labels"]["severity"] for r in groups["golive-burn"]] == ["critical", "critical", "warning", "warning"]


def test_a_threshold_changed_in_settings_changes_the_alert():
    settings = load_settings({"release": "1.4.0", "policy": {"signals": {"api_p95_ms": {"threshold": 300}},
                                                             "judge": {"severe_factor": 3}}})
    rules = build_rules(settings.policy.catalogue(), options_for(settings, service="shop"))
    critical = {r["labels"]["signal"]: r for r in rules["groups"][-1]["rules"]}
    assert critical["api_p95_ms"]["expr"] == 'golive:api_p95_ms:1m{service="shop"} > 900'


@pytest.mark.parametrize("options", [
    {"service": 'a"b'}, {"window_seconds": 0}, {"slo_objective": 1.0}, {"severe_factor": float("nan")},
])
def test_options_out_of_range_are_refused(options):
    with pytest.raises(ValueError):
        RuleOptions(**options)


@needs_promtool
def test_promtool_checks_the_rules(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(render_rules(build_rules(CATALOGUE)))
    result = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_each_signal_alert_fires_on_the_canary_far_over_and_clears(tmp_path):
    options = RuleOptions()
    # 10 minutes with the canary far over on every signal, then 10 minutes healthy.
    series = _track_series("canary", 40, 40) + _track_series("stable", 0, 80)
    fired = [_critical(name, "canary", options) for name in SIGNAL_NAMES]
    tests = [{
        "interval": STEP,
        "input_series": series,
        "alert_rule_test": [
            # Over since the start, but `for: 1m` is not over yet.
            {"eval_time": "45s", "alertname": CRITICAL_ALERT, "exp_alerts": []},
            {"eval_time": "9m", "alertname": CRITICAL_ALERT, "exp_alerts": fired},
            # Healthy for 5 minutes: the 1-minute window no longer holds the bad samples.
            {"eval_time": "15m", "alertname": CRITICAL_ALERT, "exp_alerts": []},
        ],
        "promql_expr_test": [
            {"expr": 'golive:api_p95_ms:1m{track="stable"} < 100', "eval_time": "9m",
             "exp_samples": [{"labels": 'golive:api_p95_ms:1m{service="spark",track="stable"}', "value": 95}]},
        ],
    }]
    result = _run_promtool(tmp_path, build_rules(CATALOGUE, options), tests)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_each_burn_window_fires_on_a_fast_burn_and_clears_after_its_short_window(tmp_path):
    # 5 % errors for 70 minutes (50 times a 99.9 % SLO's budget), then none for 6 hours.
    minutes_bad, minutes_good = 70, 370
    series = []
    for track, errors in (("canary", 5), ("stable", 0)):
        series += [
            {"series": f'spark_http_requests_total{{track="{track}",code="200",source="user"}}',
             "values": _counter((100 - errors, minutes_bad), (100, minutes_good))},
            {"series": f'spark_http_requests_total{{track="{track}",code="500",source="user"}}',
             "values": _counter((errors, minutes_bad), (0, minutes_good))},
        ]
    page_fast, page_slow = _burn("1h/5m", "critical", "14.4", "0.999"), _burn("6h/30m", "critical", "6", "0.999")
    ticket_fast, ticket_slow = _burn("1d/2h", "warning", "3", "0.999"), _burn("3d/6h", "warning", "1", "0.999")
    checks = [
        (65, [page_fast, page_slow, ticket_fast, ticket_slow]),
        (80, [page_slow, ticket_fast, ticket_slow]),  # the 5-minute window has mended
        (105, [ticket_fast, ticket_slow]),  # … the 30-minute one
        (195, [ticket_slow]),  # … the 2-hour one
        (435, []),  # … and the 6-hour one
    ]
    tests = [{
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": f"{minute}m", "alertname": BURN_ALERT, "exp_alerts": expected}
                            for minute, expected in checks],
    }]
    result = _run_promtool(tmp_path, build_rules(CATALOGUE), tests, every="1m")
    assert result.returncode == 0, result.stdout + result.stderr
