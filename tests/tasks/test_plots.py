"""Pictures in the evidence: a stage's snapshots drawn as one PNG per signal, and the war room page."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from golive import layout, plots, warroom
from golive.evidence import EvidenceLedger
from golive.judge import judge
from golive.scenario import parse_scenario
from golive.signals import CATALOGUE
from tasks.plots import plot_stage
from tests.golive.builders import healthy, set_counts

PNG = b"\x89PNG\r\n\x1a\n"
T0 = 1_800_000_000.0


def _snapshot(scenario: dict, start: float, decision: str) -> dict:
    verdict = judge(parse_scenario(scenario)).to_dict()
    count = len(scenario["signals"]["api_p95_ms"]["canary"])
    times = [start + 3.0 * (k + 1) for k in range(count)]
    return {"stage_percent": 25, "window": [start, times[-1]], "decision": decision, "verdict": verdict,
            "thresholds": {s.name: {"rule": s.rule, "threshold": s.threshold} for s in CATALOGUE},
            "series": {"timestamps": times, "scenario": scenario}}


def _stage_folder(tmp_path) -> tuple[EvidenceLedger, list[dict]]:
    ledger = EvidenceLedger(tmp_path / "v1.4.0")
    held = _snapshot(set_counts(healthy(5), "http_5xx_pct", "canary", 30, 1000), T0, "hold")
    proceeded = _snapshot(healthy(5), T0 + 15, "proceed")
    ledger.write_json(layout.snapshot(25), held)
    ledger.write_json(layout.snapshot(25, 1), proceeded)
    row = warroom.WarRoomRow.from_verdict(datetime.now(timezone.utc), 25, "Proceed", proceeded["verdict"]["signals"],
                                          proceeded["series"]["scenario"]["signals"])
    ledger.write_json(layout.WAR_ROOM_JSON, [json.loads(json.dumps(row))])
    return ledger, [held, proceeded]


def test_the_series_spans_the_stage_in_seconds_with_each_decision(tmp_path):
    _ledger, snapshots = _stage_folder(tmp_path)
    frame = plots.stage_frame(snapshots, "http_5xx_pct")
    assert list(frame["seconds"]) == [3.0 * k for k in range(1, 11)]
    assert list(frame["canary"][:5]) == [3.0] * 5 and list(frame["canary"][5:]) == [0.2] * 5
    assert plots.stage_decisions(snapshots) == [(15.0, "hold"), (30.0, "proceed")]


def test_each_signal_is_one_png_and_the_war_room_a_page(tmp_path):
    _stage_folder(tmp_path)
    written = plot_stage.fn(str(tmp_path / "v1.4.0"), 25)
    assert written == [layout.signal_plot(25, s.name) for s in CATALOGUE] + [layout.WAR_ROOM_HTML]
    for name in written[:-1]:
        assert (tmp_path / "v1.4.0" / name).read_bytes().startswith(PNG)
    page = (tmp_path / "v1.4.0" / layout.WAR_ROOM_HTML).read_text()
    assert page.startswith("<!doctype html>") and "War room v1.4.0" in page and "pass" in page


def test_a_stage_without_snapshots_draws_nothing_and_never_fails(tmp_path):
    assert plot_stage.fn(str(tmp_path / "v1.4.0"), 5) == []
