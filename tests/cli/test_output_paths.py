"""`golive rules`, `golive dashboard` and `golive card` write where --out says, or refuse in one
line (exit 2) before anything is written; and they name the service they used."""

from __future__ import annotations

import os

import pytest
import yaml

from cli.main import main

UNWRITABLE = "/sys/golive-test-output"


def _bad_outs(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    (tmp_path / "a-folder").mkdir()
    return {"a folder": (tmp_path / "a-folder", "a folder; name a file to write"),
            "a missing parent": (tmp_path / "missing" / "out", f"{tmp_path / 'missing'} does not exist"),
            "a parent that is a file": (a_file / "out", f"{a_file} is not a folder")}


@pytest.mark.parametrize("command", ["rules", "dashboard"])
@pytest.mark.parametrize("case", ["a folder", "a missing parent", "a parent that is a file"])
def test_a_bad_out_is_one_line_and_nothing_written(tmp_path, capsys, command, case):
    out, reason = _bad_outs(tmp_path)[case]
    before = sorted(tmp_path.rglob("*"))
    assert main([command, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"golive {command}: --out {out}: {reason}\n")
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.skipif(not os.path.ismount("/sys"), reason="no /sys mounted here")
@pytest.mark.parametrize("command", ["rules", "dashboard"])
def test_an_unwritable_out_is_one_line(capsys, command):
    assert main([command, "--out", UNWRITABLE]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"golive {command}: --out {UNWRITABLE}") and err.count("\n") == 1


def test_a_bad_png_is_refused_before_the_dashboard_is_written(tmp_path, capsys):
    out = tmp_path / "board.json"
    assert main(["dashboard", "--out", str(out), "--png", str(tmp_path / "missing" / "p.png")]) == 2
    assert capsys.readouterr().err == f"golive dashboard: --png {tmp_path / 'missing' / 'p.png'}: " \
                                      f"{tmp_path / 'missing'} does not exist\n"
    assert not out.exists()


@pytest.mark.parametrize("command", ["rules", "dashboard"])
def test_rules_and_dashboard_name_the_service_they_used(tmp_path, capsys, command):
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump({"target": {"service": "payments"}}))
    assert main([command, "--out", str(tmp_path / "out"), "--config", str(config)]) == 0
    assert capsys.readouterr().out.startswith(f"{command} for payments: ")
    assert main([command, "--out", str(tmp_path / "out"), "--config", str(config), "--service", "ledger"]) == 0
    assert capsys.readouterr().out.startswith(f"{command} for ledger: ")


def test_a_settings_error_is_exit_2(tmp_path, capsys):
    config = tmp_path / "golive.yaml"
    config.write_text("policy: {dwell_seconds: '900'}\n")
    assert main(["rules", "--out", str(tmp_path / "out"), "--config", str(config)]) == 2
    assert capsys.readouterr().err == "golive rules: policy.dwell_seconds: Input should be a valid number\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["a file", "a missing parent", "a parent that is a file", "unwritable"])
def test_a_bad_card_folder_is_one_line_and_nothing_written(tmp_path, capsys, case):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    out, reason = {"a file": (a_file, "not a folder"),
                   "a missing parent": (tmp_path / "missing" / "card", f"{tmp_path / 'missing'} does not exist"),
                   "a parent that is a file": (a_file / "card", f"{a_file} is not a folder"),
                   "unwritable": (UNWRITABLE, None)}[case]
    if case == "unwritable" and not os.path.ismount("/sys"):
        pytest.skip("no /sys mounted here")
    before = sorted(tmp_path.rglob("*"))
    assert main(["card", "--release", "1.4.0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"golive: --out {out}") and err.count("\n") == 1
    if reason:
        assert err == f"golive: --out {out}: {reason}\n"
    assert sorted(tmp_path.rglob("*")) == before
