"""The pure parts of the spine: settings, evidence ledger, war room, closing, gate."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from golive.evidence import EvidenceLedger
from golive.settings import SettingsError, load_settings
from golive.warroom import COLUMNS, WarRoomRow, to_csv, to_markdown


# -- settings -------------------------------------------------------------------------------------


def test_settings_default_to_the_runbook():
    s = load_settings({"release": "1.4.0"})
    assert s.stages == (1, 5, 25, 50, 100)
    assert (s.dwell_for(25), s.dwell_for(100), s.interval_seconds, s.hold_seconds) == (900, 1800, 60, 600)
    assert str(s.evidence_dir) == "evidence/v1.4.0"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"release": "1.0.0", "stages": [1, 50, 25, 100]}, "stages: expected rising percentages"),
        ({"release": "1.0.0", "stages": [1, 50]}, "stages: the last stage must be 100"),
        ({"release": "1.0.0", "dwell": 3}, "dwell: Extra inputs are not permitted"),
        ({"release": "1.0.0", "hold_seconds": 100}, "hold_seconds: 100 s is shorter than the judge's minimum"),
        ({"release": "1.0.0", "judge": {"patience": 1}}, "judge.patience: unknown policy field"),
        ({"release": "1.0.0", "signals": {"latency": {"threshold": 3}}}, "signals.latency: unknown signal"),
        ({"release": ""}, "release: '' is not a SemVer 2.0 version"),
    ],
)
def test_bad_settings_name_the_field_in_one_line(data, message):
    with pytest.raises(SettingsError) as exc:
        load_settings(data)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_settings_from_yaml_with_overrides(tmp_path):
    path = tmp_path / "golive.yaml"
    path.write_text("release: '1.4.0'\ninterval_seconds: 30\nsignals:\n  api_p95_ms: {threshold: 250}\n")
    s = load_settings(path, release="1.5.0", interval_seconds=None)
    assert (s.release, s.interval_seconds) == ("1.5.0", 30)
    assert {sig.name: sig.threshold for sig in s.catalogue()}["api_p95_ms"] == 250


def test_missing_settings_file_is_one_line(tmp_path):
    with pytest.raises(SettingsError, match="No such file"):
        load_settings(tmp_path / "absent.yaml")


# -- evidence ---------------------------------------------------------------------------------------


def test_evidence_names_cannot_escape_the_release_folder(tmp_path):
    with pytest.raises(ValueError, match="inside the release folder"):
        EvidenceLedger(tmp_path / "v1").write_text("../elsewhere.txt", "x")


def test_a_write_that_dies_midway_leaves_the_previous_file(tmp_path, monkeypatch):
    ledger = EvidenceLedger(tmp_path)
    ledger.write_json("a.json", {"v": 1})

    def disk_gone(_fd):
        raise OSError("no space left on device")

    monkeypatch.setattr("golive.evidence.os.fsync", disk_gone)
    with pytest.raises(OSError, match="no space"):
        ledger.write_json("a.json", {"v": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left behind


# -- war room -------------------------------------------------------------------------------------

SIGNALS = {
    "api_p95_ms": {"canary": 141.2, "baseline": 139.0, "verdict": "pass"},
    "http_5xx_pct": {"canary": 0.3, "baseline": 0.2, "verdict": "pass"},
    "csp_violations_per_min": {"canary": 11.0, "baseline": 10.0, "verdict": "pass"},
    "gc_pause_avg_ms": {"canary": None, "baseline": None, "verdict": "nodata"},
}


def test_war_room_has_the_runbook_columns_and_formats_cells():
    row = WarRoomRow.from_verdict(datetime(2026, 11, 27, 10, 5, 9, tzinfo=timezone.utc), 25, "Proceed", SIGNALS)
    markdown = to_markdown([row])
    header, _, line = markdown.splitlines()
    assert header == "| " + " | ".join(COLUMNS) + " |"
    assert COLUMNS == ["Time", "Stage", "p95", "5xx%", "ws_stale", "risk/min", "idem%", "cspΔ", "evloop", "gc",
                       "Decision"]
    assert line == "| 10:05:09 | 25% | 141 | 0.30 | – | – | – | +10% | – | – | Proceed |"
    csv = to_csv([row]).splitlines()
    assert csv[0] == ",".join(COLUMNS)
    assert csv[1].startswith("10:05:09,25%,141.2,0.3,,,,10,")


# -- the observed split -----------------------------------------------------------------------------------------


def test_the_observed_split_is_exact_at_0_and_100_and_within_noise_between():
    from golive.gate import share_verdict

    assert share_verdict(100, 202.66666666666666, 202.66666666666666, 2.0)[2]  # 99.99999999999999 %: exact
    assert not share_verdict(100, 201.0, 202.0, 2.0)[2]  # one request on stable
    assert share_verdict(0, 0.0, 500.0, 2.0)[2] and not share_verdict(0, 1.0, 500.0, 2.0)[2]
    observed, tolerance, ok = share_verdict(25, 240.0, 1000.0, 2.0)
    assert (observed, ok) == (24.0, True) and tolerance == pytest.approx(5.48, abs=0.01)
    assert not share_verdict(25, 150.0, 1000.0, 2.0)[2]
    assert share_verdict(5, 0.0, 0.0, 2.0) == (None, 2.0, False)  # no traffic: not verified
