"""The war room says what the judge says: each cell its value, threshold, verdict and evidence."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from golive import warroom
from golive.judge import judge
from golive.scenario import parse_scenario
from golive.warroom import COLUMNS, WarRoomRow, to_csv, to_markdown
from tests.golive.builders import healthy, set_counts

AT = datetime(2026, 11, 30, 10, 0, 7, tzinfo=timezone.utc)

SIGNALS = {
    "api_p95_ms": {"canary": 141.2, "baseline": 139.0, "verdict": "pass"},
    "http_5xx_pct": {"canary": 0.3, "baseline": 0.2, "verdict": "pass"},
    "csp_violations_per_min": {"canary": 11.0, "baseline": 10.0, "verdict": "pass"},
    "gc_pause_avg_ms": {"canary": None, "baseline": None, "verdict": "nodata"},
}


def _row(scenario: dict, decision: str = "Proceed") -> dict:
    verdict = judge(parse_scenario(scenario))
    signals = {name: v.to_dict() for name, v in verdict.signals.items()}
    return warroom.WarRoomRow.from_verdict(AT, 25, decision, signals, scenario["signals"])


def test_a_cell_carries_value_threshold_verdict_and_evidence():
    row = _row(healthy())
    cell = row["cells"]["p95"]
    assert cell["threshold"] == "≤ 200" and cell["verdict"] == "pass"
    assert cell["evidence"].startswith("10 intervals, ")
    assert row["cells"]["5xx%"]["evidence"] == "20 events in 10000 requests; stable 60 in 30000"
    assert row["p95"] == cell["value"]  # the flat column the demo's screen reads is unchanged


def test_a_point_estimate_over_the_rule_that_the_judge_passes_reads_within_noise():
    signals = {"csp_violations_per_min": {"verdict": "pass", "canary": 3.0, "baseline": 1.0, "threshold": 1.1,
                                          "rule": "<= baseline x 1.1", "detail": "no significant difference"}}
    series = {"csp_violations_per_min": {"canary": [{"value": 3, "bad": 1, "total": 20}],
                                         "baseline": [{"value": 1, "bad": 5, "total": 900}]}}
    row = warroom.WarRoomRow.from_verdict(AT, 1, "Proceed", signals, series)
    assert warroom.cell_summary(row, "cspΔ") == "+200% / ≤ +10% within noise (1 events in 20 requests; stable 5 in 900)"


def test_too_little_traffic_reads_insufficient_with_what_was_seen():
    scenario = set_counts(healthy(), "http_5xx_pct", "canary", 0, 5)
    cell = _row(scenario, "Hold")["cells"]["5xx%"]
    assert cell["verdict"] == "insufficient"
    assert cell["evidence"] == "0 events in 50 requests; stable 60 in 30000"


def test_a_breach_reads_breach():
    scenario = set_counts(healthy(), "http_5xx_pct", "canary", 80, 1000)
    assert _row(scenario, "Rollback")["cells"]["5xx%"]["verdict"] == "breach"


def test_markdown_html_and_the_channel_say_the_same():
    row = json.loads(json.dumps(_row(healthy())))  # as war_room.json holds it
    markdown, page = warroom.to_markdown([row]), warroom.to_html([row], "War room v1.4.0")
    assert "130 / ≤ 200 pass (10 intervals, " in markdown
    assert "pass" in page and "10 intervals, " in page and "<title>War room v1.4.0</title>" in page
    message = warroom.channel_message("1.4.0", "proceed", 25, "8/8 green\nover 10 intervals", row)
    first, table, reason = message.splitlines()
    assert first == "golive v1.4.0 at 25%: PROCEED"
    assert "p95 130 / ≤ 200 pass" in table and table.endswith("Decision Proceed")
    assert reason == "reason: 8/8 green over 10 intervals"


def test_a_holds_profile_lines_follow_the_table_and_stay_out_of_the_csv():
    hold = {**_row(healthy(), "Hold"), "profile": ["grown in the canary: `burn` in `quote()` 41% <of> self time"]}
    rows = [json.loads(json.dumps(_row(healthy()))), hold]
    markdown, page = warroom.to_markdown(rows), warroom.to_html(rows)
    assert markdown.split("Profiles at these decisions (canary vs stable):\n")[1] == (
        "- 25% Hold at 10:00:07\n  - grown in the canary: `burn` in `quote()` 41% <of> self time\n")
    assert "<li>grown in the canary: `burn` in `quote()` 41% &lt;of&gt; self time</li>" in page
    assert "burn" not in to_csv(rows) and list(warroom.to_frame(rows).columns) == COLUMNS


def test_a_shadow_rows_own_checks_follow_the_table_under_their_heading_and_stay_out_of_the_csv():
    shadow = {**_row(healthy(), "Hold"), "Stage": "shadow", "shadow": ["consistency drift: pass: 84 <pairs>"]}
    rows = [shadow, {**_row(healthy(), "Hold"), "profile": ["grown in the canary: `burn`"]}]
    markdown, page = warroom.to_markdown(rows), warroom.to_html(rows)
    profiles, shadows = markdown.split("\n\nProfiles at these decisions (canary vs stable):\n")[1].split(
        "\nThe shadow stage's own checks at these decisions:\n")
    assert profiles == "- 25% Hold at 10:00:07\n  - grown in the canary: `burn`\n"
    assert shadows == "- shadow Hold at 10:00:07\n  - consistency drift: pass: 84 <pairs>\n"
    assert ("<h2>The shadow stage&#x27;s own checks at these decisions</h2><ul><li>shadow Hold at 10:00:07<ul>"
            "<li>consistency drift: pass: 84 &lt;pairs&gt;</li>") in page
    assert "drift" not in to_csv(rows) and list(warroom.to_frame(rows).columns) == COLUMNS


def test_signals_left_to_a_later_stage_are_said_under_the_table_and_stay_out_of_the_csv():
    left = {**_row(healthy(), "Proceed"), "Stage": "1%",
            "gate": ["7/8 green; too little traffic here to tell csp_violations_per_min: judged at 5%"]}
    markdown, page = warroom.to_markdown([left]), warroom.to_html([left])
    assert markdown.split("\n\nSignals left to a later stage for lack of traffic:\n")[1] == (
        "- 1% Proceed at 10:00:07\n  - 7/8 green; too little traffic here to tell csp_violations_per_min: "
        "judged at 5%\n")
    assert "<h2>Signals left to a later stage for lack of traffic</h2>" in page
    assert "judged at" not in to_csv([left]) and list(warroom.to_frame([left]).columns) == COLUMNS


def test_rows_written_before_cells_still_render():
    old = {"Time": "10:00:00", "Stage": "5%", "p95": 141.0, "cspΔ": 201.0, "Decision": "Proceed"}
    assert "| 10:00:00 | 5% | 141 | – | – | – | – | +201% | – | – | Proceed |" in warroom.to_markdown([old])
    assert warroom.table_rows([old])[0]["cspΔ"] == "+201%"
    assert "<td>141</td>" in warroom.to_html([old])
    assert warroom.channel_message("1.4.0", "live", None, "all stages green").splitlines() == [
        "golive v1.4.0: LIVE", "reason: all stages green"]


def test_war_room_has_the_runbook_columns_and_formats_cells():
    row = WarRoomRow.from_verdict(datetime(2026, 11, 27, 10, 5, 9, tzinfo=timezone.utc), 25, "Proceed", SIGNALS)
    markdown = to_markdown([row])
    header, _, line = markdown.splitlines()[:3]
    assert header == "| " + " | ".join(COLUMNS) + " |"
    assert COLUMNS == ["Time", "Stage", "p95", "5xx%", "ws_stale", "risk/min", "idem%", "cspΔ", "evloop", "gc",
                       "Decision"]
    assert line == ("| 10:05:09 | 25% | 141 / – pass (–) | 0.30 / – pass (–) | – | – | – | +10% / – pass (–) | – "
                    "| – / – no data (–) | Proceed |")
    csv = to_csv([row]).splitlines()
    assert csv[0] == ",".join(COLUMNS)
    assert csv[1].startswith("10:05:09,25%,141.2,0.3,,,,10,")
