"""Signals are the target's data: a list of 3 or of 12 is loaded, refused when it cannot be judged,
and judged, tabled, charted and summed up as the list says, not as the runbook's eight."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest

from golive import warroom
from golive.blast_radius import DrillSample, evaluate
from golive.card import card_markdown, deployment_summary
from golive.closing import release_oneliner, success_criteria
from golive.dashboard import build_dashboard, dashboard_json, panel_queries
from golive.judge import judge
from golive.scenario import parse_scenario
from golive.settings import SettingsError, load_settings
from golive.signal_packs import PACKS
from golive.signals import CATALOGUE, ROLES, by_role, check_signal_list, render_query
from tests.golive.builders import WOBBLE, healthy

QUEUE_DEPTH = {"kind": "gauge", "rule": "max", "threshold": 100, "unit": "jobs", "column": "queue",
               "value_query": 'max(max_over_time(jobs_queued{track="$track"}[$window]))'}
DECLINES = {"kind": "ratio", "rule": "max", "threshold": 2, "unit": "%", "request_derived": True,
            "value_query": '100 * sum(rate(payments_declined_total{track="$track"}[$window]))'
                           ' / sum(rate(payments_total{track="$track"}[$window]))',
            "bad_query": 'sum(increase(payments_declined_total{track="$track"}[$window]))',
            "total_query": 'sum(increase(payments_total{track="$track"}[$window]))'}
# Healthy observations (canary, stable) of the signals no pack has, and of the router pack's.
EXTRA = {
    "queue_depth": ({"value": 12.0}, {"value": 12.0}),
    "declines_pct": ({"value": 0.5, "bad": 5, "total": 1000}, {"value": 0.5, "bad": 15, "total": 3000}),
    "http_p95_ms": ({"value": 90.0}, {"value": 90.0}),
    "signups_per_min": ({"value": 40.0}, {"value": 40.0}),
    "cache_hit_pct": ({"value": 95.0}, {"value": 95.0}),
}

KNOWN_PACKS = ("runbook, router, fastapi-instrumentator, flask-exporter, starlette-exporter, opentelemetry, "
               "ingress-nginx, gateway-istio")
THREE = {"release": "1.4.0", "policy": {"signal_pack": "router", "signals": {"queue_depth": QUEUE_DEPTH}}}
TWELVE = {"release": "1.4.0", "policy": {"signals": {
    "queue_depth": QUEUE_DEPTH, "declines_pct": DECLINES,
    "signups_per_min": {"kind": "gauge", "rule": "max_ratio_to_baseline", "threshold": 1.5, "unit": "/min",
                        "value_query": '60 * sum(rate(signups_total{track="$track"}[$window]))'},
    "cache_hit_pct": {"kind": "gauge", "rule": "max", "threshold": 100, "unit": "%",
                      "value_query": '100 * avg(cache_hit_ratio{track="$track"})'},
}}}


def _scenario(names: list[str], intervals: int = 10) -> dict:
    """A healthy 25 % stage for the signals `names`."""
    runbook = healthy(intervals)["signals"]
    signals = {}
    for name in names:
        if name in runbook:
            signals[name] = runbook[name]
            continue
        if name == "http_5xx_pct":
            signals[name] = runbook["http_5xx_pct"]
            continue
        canary, baseline = EXTRA[name]
        entry = {"canary": [], "baseline": []}
        for i in range(intervals):
            c, b = copy.deepcopy(canary), copy.deepcopy(baseline)
            if "bad" not in c:
                c["value"] = round(c["value"] * (1 + WOBBLE[i % len(WOBBLE)]), 3)
                b["value"] = round(b["value"] * (1 - WOBBLE[i % len(WOBBLE)]), 3)
            entry["canary"].append(c)
            entry["baseline"].append(b)
        signals[name] = entry
    return {"stage_percent": 25, "interval_seconds": 60, "signals": signals}


@pytest.fixture(params=[("three", THREE, 3), ("twelve", TWELVE, 12)], ids=lambda p: p[0])
def listed(request):
    _, data, count = request.param
    settings = load_settings(data)
    catalogue = settings.policy.catalogue()
    assert len(catalogue) == count
    return settings, catalogue


# -- loading: the list is the user's, refused whole when it cannot be judged ------------------------

def test_a_list_of_three_starts_from_the_router_pack_with_its_traffic_split():
    settings = load_settings(THREE)
    assert [s.name for s in settings.policy.catalogue()] == ["http_p95_ms", "http_5xx_pct", "queue_depth"]
    assert "golive_router_requests_total" in settings.prometheus.traffic_total_query
    assert not any("spark_" in q for s in settings.policy.catalogue() for q in (s.value_query, s.total_query) if q)


def test_the_whole_list_given_as_a_list_keeps_a_named_pack_signal_as_it_is():
    settings = load_settings({"release": "1.4.0", "policy": {"signals": [
        {"name": "api_p95_ms"}, {"name": "http_5xx_pct", "threshold": 2}, {"name": "queue_depth", **QUEUE_DEPTH}]}})
    api, errors, queue = settings.policy.catalogue()
    assert api == CATALOGUE[0] and errors.threshold == 2 and errors.role == "errors"
    assert (queue.title, queue.column, queue.rule_text()) == ("queue_depth", "queue", "<= 100 jobs")


def test_a_signal_is_removed_with_null_and_renamed_with_name():
    settings = load_settings({"release": "1.4.0", "policy": {"signals": {
        "ws_staleness_s": None, "csp_violations_per_min": None, "api_p95_ms": {"name": "latency_p95_ms"}}}})
    names = [s.name for s in settings.policy.catalogue()]
    assert len(names) == 6 and "ws_staleness_s" not in names and names[0] == "latency_p95_ms"


def test_the_default_is_the_runbooks_eight_and_old_overrides_still_work():
    settings = load_settings({"release": "1.4.0", "policy": {"signals": {"api_p95_ms": {"threshold": 250}}}})
    assert [s.name for s in settings.policy.catalogue()] == [s.name for s in CATALOGUE]
    assert settings.policy.catalogue()[0].threshold == 250
    assert settings.prometheus.traffic_total_query == PACKS["runbook"].traffic_total_query


def policy(**fields) -> dict:
    return {"release": "1.4.0", "policy": fields}


REFUSED = [
    (policy(signals=[]), "policy.signals: an empty list: nothing to judge a go-live on"),
    (policy(signals={name: None for name in [s.name for s in CATALOGUE]}),
     "policy.signals: an empty list: nothing to judge a go-live on"),
    (policy(signals={"queue_depth": {k: v for k, v in QUEUE_DEPTH.items() if k != "threshold"}}),
     "policy.signals.queue_depth.threshold: required for a signal new to the list (kind, rule, threshold, "
     "value_query are; a rule without a threshold cannot be judged)"),
    (policy(signals={"queue_depth": {k: v for k, v in QUEUE_DEPTH.items() if k != "value_query"}}),
     "policy.signals.queue_depth.value_query: required for a signal new to the list (kind, rule, threshold, "
     "value_query are; a rule without a threshold cannot be judged)"),
    (policy(signals={"api_p95_ms": {"value_query": "  "}}),
     "policy.signals.api_p95_ms.value_query: expected a PromQL query, got an empty one"),
    (policy(signals={"declines_pct": {k: v for k, v in DECLINES.items() if k not in ("bad_query", "total_query")}}),
     "policy.signals.declines_pct.bad_query: a ratio needs bad_query and total_query (the events and the requests "
     "they are counted among)"),
    (policy(signals=[{"name": "api_p95_ms"}, {"name": "api_p95_ms", "threshold": 300}]),
     "policy.signals.api_p95_ms.name: 'api_p95_ms' is in the list twice"),
    (policy(signals=[{"name": "api_p95_ms"}, {"name": "q", **QUEUE_DEPTH, "column": "p95"}]),
     "policy.signals.q.column: 'p95' is already api_p95_ms's column"),
    (policy(signals={"declines_pct": {**DECLINES, "role": "errors"}}),
     "policy.signals.declines_pct.role: 'errors' is already http_5xx_pct's role"),
    (policy(signals={"queue_depth": {**QUEUE_DEPTH, "role": "errors"}, "http_5xx_pct": {"role": None}}),
     "policy.signals.queue_depth.role: the errors role needs a ratio with bad_query and total_query"),
    (policy(signals=[{"name": "queue_depth", **QUEUE_DEPTH, "mirror_visible": "yes"}]),
     "policy.signals.queue_depth.mirror_visible: expected true or false, got 'yes'"),
    (policy(signals={"api_p95_ms": {"title": "p95 {{ oops"}}),
     "policy.signals.api_p95_ms.title: expected text without {{ or }} (an alert's summary is a template), "
     "got 'p95 {{ oops'"),
    (policy(signals={"queue_depth": {**QUEUE_DEPTH, "unit": "}}"}}),
     "policy.signals.queue_depth.unit: expected text without {{ or }} (an alert's summary is a template), got '}}'"),
    (policy(signals=[{"name": "queue_depth", **QUEUE_DEPTH, "column": "{{q}}"}]),
     "policy.signals.queue_depth.column: expected text without {{ or }} (an alert's summary is a template), "
     "got '{{q}}'"),
    (policy(signals=[{"kind": "gauge"}]), "policy.signals[0].name: required"),
    (policy(signals=[5]), "policy.signals[0]: expected a mapping of a signal's fields"),
    (policy(signals="api_p95_ms"),
     "policy.signals: expected a mapping of changes to the pack's signals, or a list of signals"),
    (policy(signal_pack="nginx"), f"policy.signal_pack: unknown pack 'nginx' (known: {KNOWN_PACKS})"),
    (policy(signal_pack=["router"]), f"policy.signal_pack: expected a pack's name, got a list (known: {KNOWN_PACKS})"),
    (policy(signal_pack={"router": None}),
     f"policy.signal_pack: expected a pack's name, got a dict (known: {KNOWN_PACKS})"),
]


@pytest.mark.parametrize(("data", "error"), REFUSED, ids=[r[1].split(":")[0] + f"-{i}" for i, r in enumerate(REFUSED)])
def test_a_list_that_cannot_be_judged_is_refused_at_load_in_one_line(data, error):
    with pytest.raises(SettingsError) as exc:
        load_settings(data)
    assert str(exc.value) == error
    assert "\n" not in str(exc.value)


def test_every_pack_can_be_judged_and_names_its_roles():
    for pack in PACKS.values():
        check_signal_list(pack.signals)
        assert all(by_role(pack.signals, role) for role in ROLES), pack.name
        for sig in pack.signals:
            for query in (sig.value_query, sig.bad_query, sig.total_query):
                if query:
                    assert "$" not in render_query(query, "canary", 60).replace("$track", ""), (pack.name, query)
    exporters = {name: " ".join(s.value_query for s in PACKS[name].signals) for name in PACKS}
    assert "http_requests_total" in exporters["fastapi-instrumentator"]
    assert "flask_http_request_total" in exporters["flask-exporter"]
    assert "http_server_request_duration_seconds_bucket" in exporters["opentelemetry"]
    assert 'http_response_status_code=~"5.."' in exporters["opentelemetry"]


# -- the judge, the war room, the dashboard, the closing and the card follow the list ----------------

def test_the_judge_gives_every_signal_of_the_list_a_verdict_and_proceeds_when_all_pass(listed):
    settings, catalogue = listed
    names = [s.name for s in catalogue]
    verdict = judge(parse_scenario(_scenario(names), catalogue))
    assert list(verdict.signals) == names
    assert verdict.decision == "proceed", verdict.reason
    assert verdict.reason == f"{len(names)}/{len(names)} green over 10 intervals"


def test_a_breach_of_a_signal_of_the_users_own_rolls_back_naming_it(listed):
    settings, catalogue = listed
    scenario = _scenario([s.name for s in catalogue])
    for i, obs in enumerate(scenario["signals"]["queue_depth"]["canary"]):
        obs["value"] = 400.0 + i * 20  # far over 100 jobs and rising
    verdict = judge(parse_scenario(scenario, catalogue))
    assert verdict.decision == "rollback"
    assert "breach:queue_depth" in verdict.triggers


def test_a_signal_the_list_removed_is_unknown_to_the_judge():
    catalogue = load_settings(THREE).policy.catalogue()
    with pytest.raises(ValueError, match="signals.api_p95_ms: unknown signal"):
        parse_scenario(_scenario(["api_p95_ms"]), catalogue)


def test_the_war_room_has_one_column_per_signal_of_the_list(listed):
    settings, catalogue = listed
    verdict = judge(parse_scenario(_scenario([s.name for s in catalogue]), catalogue))
    signals = {name: v.to_dict() for name, v in verdict.signals.items()}
    at = datetime(2026, 12, 4, 10, 0, tzinfo=timezone.utc)
    row = json.loads(json.dumps(warroom.WarRoomRow.from_verdict(at, 25, "Proceed", signals, catalogue=catalogue)))
    rollback = warroom.WarRoomRow.from_verdict(at, 25, "Rollback", {})
    expected = ["Time", "Stage", *(s.column for s in catalogue), "Decision"]
    assert warroom.columns([row, rollback]) == expected
    header, _, line, last = warroom.to_markdown([row, rollback]).splitlines()[:4]
    assert header == "| " + " | ".join(expected) + " |"
    assert line.count(" pass") + line.count(" within noise") == len(catalogue)
    assert last.endswith("| Rollback |") and last.count("|") == len(expected) + 1
    assert warroom.to_csv([row]).splitlines()[0] == ",".join(expected)
    assert warroom.to_html([row]).count("<th>") == len(expected)
    table = warroom.channel_message("1.4.0", "proceed", 25, verdict.reason, row).splitlines()[1]
    assert table.count(" pass") + table.count(" within noise") == len(catalogue)


def test_the_dashboard_draws_one_panel_per_signal_of_the_list(listed):
    settings, catalogue = listed
    board = build_dashboard(catalogue, traffic_canary_query=settings.prometheus.traffic_canary_query,
                            traffic_total_query=settings.prometheus.traffic_total_query)
    model = board.build()
    descriptions = [p.description for p in model.panels if getattr(p, "description", None)]
    assert [d for d in descriptions if d in {s.name for s in catalogue}][:len(catalogue)] == [s.name for s in catalogue]
    queries = " ".join(q.expr for q in panel_queries(model))
    assert f"golive:{catalogue[0].name}:" in queries
    if len(catalogue) == 3:
        assert "spark_" not in queries and "golive_router_requests_total" in queries
    in_words = {3: "three", 12: "twelve"}[len(catalogue)]
    assert f"The {in_words} signals, canary against stable" in dashboard_json(board)


def test_the_closing_and_the_card_count_the_list(listed):
    settings, catalogue = listed
    verdict = judge(parse_scenario(_scenario([s.name for s in catalogue]), catalogue))
    decision = {"decision": "proceed", "signals": {name: v.to_dict() for name, v in verdict.signals.items()}}
    stages = [{"stage": p, "outcome": "proceed", "holds": 0, "weight_verified": True, "share_ok": True,
               "decisions": [decision]} for p in (1, 5, 25, 50, 100)]
    n = len(catalogue)
    line = release_oneliner("1.4.0", stages, 372)
    assert line.endswith(f"; {n}/{n} green") and "queue_depth=" in line
    if n == 3:
        assert "; p95=~90ms, 5xx=0.20%, queue_depth=" in line  # the router pack's, in the runbook's words
    criteria = success_criteria((1, 5, 25, 50, 100), stages, {"ok": True, "files": 1, "minimum_files": 1,
                                                             "missing": []})
    assert criteria["each_stage_green_at_proceed"]["ok"] and criteria["final_signals_green"]["ok"]
    assert "queue_depth=" in deployment_summary("1.4.0", stages, 372)
    card = card_markdown(settings)
    assert f"## The {n} thresholds" in card and card.count("\n| ") == n + 1


def test_the_drill_judges_p95_and_5xx_by_role_and_says_what_it_could_not():
    samples = [DrillSample(kind="get", status=200, latency_ms=300.0, version="1.4.0", expected=True)] * 200
    router = load_settings(THREE).policy.catalogue()
    assert evaluate(samples, "1.4.0", 0, 200, router)["failures"][0].startswith("p95 300 ms > 200 ms")
    gauges_only = load_settings(policy(signals=[{"name": "queue_depth", **QUEUE_DEPTH}])).policy.catalogue()
    drill = evaluate(samples, "1.4.0", 0, 200, gauges_only)
    assert drill["ok"] and drill["unchecked"] == ["p95 (no signal with role latency)",
                                                  "5xx (no signal with role errors)"]


def test_the_evidence_minimum_counts_the_lists_preflight_files():
    from golive.completeness import check_completeness

    assert check_completeness("takeoff", "1.4.0", [100], 8, [])["minimum_files"] == 40
    assert check_completeness("takeoff", "1.4.0", [100], 3, [])["minimum_files"] == 30
    assert check_completeness("end", "1.4.0", [100], 12, [])["minimum_files"] == 50
