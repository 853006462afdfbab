"""Arguments that make no sense are refused in one line, exit 2, before anything is written or
started; an argument given explicitly is the one used."""

from __future__ import annotations

import pytest
import yaml

from cli.main import _target_settings, build_parser, main


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "golive.yaml"
    path.write_text(yaml.safe_dump({"process": {"evidence_root": str(tmp_path / "from-file")}}))
    return path


@pytest.mark.parametrize(("option", "value", "error"), [
    ("--hours", "-3", "--hours: expected a whole number of hours from 1 to 168, got -3"),
    ("--hours", "0", "--hours: expected a whole number of hours from 1 to 168, got 0"),
    ("--hours", "100000", "--hours: expected a whole number of hours from 1 to 168, got 100000"),
    ("--hour-seconds", "0", "--hour-seconds: expected seconds in (0, 3600], got 0"),
    ("--hour-seconds", "-1.5", "--hour-seconds: expected seconds in (0, 3600], got -1.5"),
    ("--hour-seconds", "nan", "--hour-seconds: expected seconds in (0, 3600], got nan"),
    ("--hour-seconds", "inf", "--hour-seconds: expected seconds in (0, 3600], got inf"),
])
def test_first_night_refuses_a_night_of_no_hours_in_one_line(tmp_path, config, capsys, monkeypatch, option, value,
                                                             error):
    monkeypatch.chdir(tmp_path)
    assert main(["first-night", "--release", "1.4.0", "--config", str(config), option, value]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"golive: {error}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["golive.yaml"]


def _settings(*argv: str):
    args = build_parser().parse_args(["close", "--release", "1.4.0", *argv])
    return _target_settings(args, release=args.release)


def test_an_explicit_evidence_root_wins_over_the_files(tmp_path, config):
    assert _settings("--config", str(config), "--evidence-root", str(tmp_path / "given")).evidence_dir == (
        tmp_path / "given" / "v1.4.0")
    assert _settings("--config", str(config)).evidence_dir == tmp_path / "from-file" / "v1.4.0"


def test_an_explicit_evidence_root_keeps_the_other_process_overrides(tmp_path, config):
    args = build_parser().parse_args(["flight-check", "--config", str(config), "--evidence-root", str(tmp_path / "e")])
    settings = _target_settings(args, release="1.4.0", process={"blast_radius_seconds": 7.0})
    assert (settings.process.evidence_root, settings.process.blast_radius_seconds) == (str(tmp_path / "e"), 7.0)
