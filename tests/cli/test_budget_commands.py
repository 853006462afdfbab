"""`golive budget status` and `golive budget override`: the freeze as recorded, and a person's
override written only when it names who and why."""

from __future__ import annotations

import json

from cli.main import main
from golive.error_budget import Freeze, record_change


def test_status_says_not_frozen_then_frozen_with_exit_3(tmp_path, capsys):
    assert main(["budget", "status", "--evidence-root", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("not frozen: no freeze ever recorded")
    frozen = Freeze(frozen=True, since=1_800_000_000, reason="error budget 7 % < 10 %", remaining=0.07,
                    exhaustion_seconds={"1h": 20_400.0, "6h": None})
    record_change(tmp_path / "error-budget", frozen, "freeze")
    assert main(["budget", "status", "--evidence-root", str(tmp_path)]) == 3
    out = capsys.readouterr().out
    assert "FROZEN since 2027-01-15 08:00:00 UTC: error budget 7 % < 10 %" in out
    assert "budget left 7.0 % (line 10 %); gone in 5 h 40 m" in out


def test_override_is_recorded_and_refused_without_who(tmp_path, capsys):
    assert main(["budget", "override", "--evidence-root", str(tmp_path), "--release", "1.5.0",
                 "--who", " ", "--why", "hotfix"]) == 2
    assert capsys.readouterr().err.strip() == ("golive budget override: --who: an override names who decided "
                                               "and why; who is empty")
    assert list(tmp_path.iterdir()) == []  # nothing half-written, not even its folder
    assert main(["budget", "override", "--evidence-root", str(tmp_path), "--release", "1.5.0",
                 "--who", "me", "--why", "w" * 2001]) == 2
    assert capsys.readouterr().err == "golive budget override: --why: String should have at most 2000 characters\n"
    assert list(tmp_path.iterdir()) == []
    assert main(["budget", "override", "--evidence-root", str(tmp_path), "--release", "1.5.0",
                 "--who", "Ayşe", "--why", "hotfix"]) == 0
    recorded = json.loads((tmp_path / "error-budget" / "override_1.5.0.json").read_text())
    assert (recorded["release"], recorded["who"], recorded["why"]) == ("1.5.0", "Ayşe", "hotfix")


def test_a_file_where_the_evidence_root_should_be_is_one_line(tmp_path, capsys):
    (tmp_path / "evidence").write_text("x")
    assert main(["budget", "override", "--evidence-root", str(tmp_path / "evidence"), "--release", "1.5.0",
                 "--who", "me", "--why", "hotfix"]) == 2
    folder = tmp_path / "evidence" / "error-budget"
    assert capsys.readouterr().err == f"golive budget override: {folder}: Not a directory\n"
    assert main(["budget", "status", "--evidence-root", str(tmp_path / "evidence")]) == 2
    assert capsys.readouterr().err == "golive budget status: evidence: not a folder; the freeze cannot be known\n"
