"""Every bad setting is refused in one line naming the field and the rule; one row per input."""

from __future__ import annotations

import math

import pytest

from cli.main import main
from golive.settings import SettingsError, load_settings


BASE = {"release": "1.4.0"}


INF, NAN = math.inf, math.nan


SEMVER = "is not a SemVer 2.0 version (MAJOR.MINOR.PATCH[-pre][+build])"


ROWS = [
    # the release names a folder, a tag and a deployment: a version and nothing else
    ({"release": "1/../../../escaped"}, f"release: '1/../../../escaped' {SEMVER}"),
    ({"release": "1.4.0/../../.golive/keys"}, f"release: '1.4.0/../../.golive/keys' {SEMVER}"),
    ({"release": "1.4"}, f"release: '1.4' {SEMVER}"),
    ({"release": "v1.4.0"}, f"release: 'v1.4.0' {SEMVER}"),
    ({"release": "1.4.0\nweight after: 0"}, f"release: '1.4.0\\nweight after: 0' {SEMVER}"),
    ({"release": "01.4.0"}, f"release: '01.4.0' {SEMVER}"),
    ({"release": "1." + "0" * 200 + ".0"}, "release: '1.000000000000000000000000000000000000… is longer than 128 characters"),
    # signal overrides: typed, in range, from their enums, unique
    ({"signals": {"api_p95_ms": {"threshold": INF}}}, "signals.api_p95_ms.threshold: expected a finite number >= 0, got inf"),
    ({"signals": {"api_p95_ms": {"threshold": -5}}}, "signals.api_p95_ms.threshold: expected a finite number >= 0, got -5"),
    ({"signals": {"api_p95_ms": {"threshold": "abc"}}}, "signals.api_p95_ms.threshold: expected a finite number >= 0, got 'abc'"),
    ({"signals": {"api_p95_ms": {"threshold": NAN}}}, "signals.api_p95_ms.threshold: expected a finite number >= 0, got nan"),
    ({"signals": {"api_p95_ms": {"rule": "bogus"}}},
     "signals.api_p95_ms.rule: expected one of max, below, max_ratio_to_baseline, got 'bogus'"),
    ({"signals": {"api_p95_ms": {"kind": "bogus"}}},
     "signals.api_p95_ms.kind: expected one of quantile, ratio, gauge, rate, got 'bogus'"),
    ({"signals": {"api_p95_ms": {"name": "http_5xx_pct"}}},
     "signals.api_p95_ms.name: 'http_5xx_pct' is already another signal's name"),
    ({"signals": {"api_p95_ms": {"name": "../p95"}}},
     "signals.api_p95_ms.name: expected a name of letters, digits and _, got '../p95'"),
    ({"signals": {"api_p95_ms": {"colour": "red"}}}, "signals.api_p95_ms.colour: unknown field"),
    ({"signals": {"http_5xx_pct": {"total_query": None}}},
     "signals.http_5xx_pct.bad_query: bad_query and total_query are given together or not at all"),
    ({"signals": {"api_p95_ms": {"request_derived": "yes"}}},
     "signals.api_p95_ms.request_derived: expected true or false, got 'yes'"),
    ({"signals": {"api_p95_ms": 5}}, "signals.api_p95_ms: Input should be a valid dictionary"),
    # the judge's policy
    ({"judge": {"min_seconds": NAN}}, "judge.min_seconds: expected a finite number >= 0, got nan"),
    ({"judge": {"breach_alpha": 5}}, "judge.breach_alpha: expected a level in (0, 1), got 5"),
    ({"judge": {"deviation_alpha": INF}}, "judge.deviation_alpha: expected a level in (0, 1), got inf"),
    ({"judge": {"lean_alpha": 0}}, "judge.lean_alpha: expected a level in (0, 1), got 0"),
    ({"judge": {"min_intervals": 2.5}}, "judge.min_intervals: expected a whole number >= 1, got 2.5"),
    ({"judge": {"critical_ratio": 0.5}}, "judge.critical_ratio: expected a ratio >= 1, got 0.5"),
    ({"judge": {"level_comparison_max_percent": 150}},
     "judge.level_comparison_max_percent: expected a percentage in [0, 100], got 150"),
    ({"judge": {"min_requests": True}}, "judge.min_requests: expected a finite number >= 0, got True"),
    # windows, budgets and tolerances
    ({"dwell_seconds": INF}, "dwell_seconds: Input should be a finite number"),
    ({"hold_budget_seconds": INF}, "hold_budget_seconds: Input should be a finite number"),
    ({"weight_tolerance_points": INF}, "weight_tolerance_points: Input should be a finite number"),
    ({"interval_seconds": NAN}, "interval_seconds: Input should be a finite number"),
    ({"first_night": {"hour_seconds": INF}}, "first_night.hour_seconds: Input should be a finite number"),
    # the closing's tag message, checked at load rather than at the closing
    ({"tag_message": "{nope}"}, "tag_message: {nope} is not a field of the message (use {green}, {total}, {release})"),
    ({"tag_message": "Canary {green"}, "tag_message: 'Canary {green': expected '}' before end of string"),
    ({"tag_message": "{release:d}"}, "tag_message: {release}: Unknown format code 'd' for object of type 'str'"),
]


@pytest.mark.parametrize(("data", "error"), ROWS, ids=[r[1].split(":")[0] + f"-{i}" for i, r in enumerate(ROWS)])
def test_a_bad_setting_is_one_line_naming_the_field(data, error):
    with pytest.raises(SettingsError) as exc:
        load_settings({**BASE, **data})
    assert str(exc.value) == error
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("release", ["1.4.0", "0.0.0", "2.0.0-rc.1", "1.0.0-alpha.beta+exp.sha.5114f85", "10.20.30+build.7"])
def test_semver_versions_are_releases(release):
    assert load_settings({"release": release}).release == release


def test_a_release_folder_that_is_a_link_out_of_the_evidence_root_is_refused(tmp_path):
    root, elsewhere = tmp_path / "evidence", tmp_path / "keys"
    root.mkdir()
    elsewhere.mkdir()
    (root / "v1.4.0").symlink_to(elsewhere)
    with pytest.raises(SettingsError, match=r"^release: the folder .*v1\.4\.0 leaves evidence_root"):
        load_settings({"release": "1.4.0", "evidence_root": str(root)})


@pytest.mark.parametrize(("argv", "error"), [
    (["rollback", "--reason", "x"], "the following arguments are required: --release"),
    (["close"], "the following arguments are required: --release"),
    (["rollback", "--reason", "x", "--release", "1/../../x"], f"argument --release: '1/../../x' {SEMVER}"),
    (["flight-check", "--release", "1.4"], f"argument --release: '1.4' {SEMVER}"),
    (["deployment", "add", "1.5; rm"], f"argument release: '1.5; rm' {SEMVER}"),
])
def test_the_command_line_refuses_a_release_in_one_line_and_writes_nothing(argv, error, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(error)
    assert list(tmp_path.iterdir()) == []


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
