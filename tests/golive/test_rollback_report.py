"""The rollback record: free text cannot forge a line, and no two rollbacks share a file."""

from __future__ import annotations

from fnmatch import fnmatch

from golive import layout
from golive.models import RollbackReport
from golive.rollback_report import render_profile_addendum, render_rollback, rollback_file_name

AT = 1_796_032_807.25  # 2026-11-30T10:00:07.25Z


def _report(**changes) -> RollbackReport:
    fields = dict(reason="p95 over 200 ms", stage=5, triggered_by="golive rollback (ana)", dry_run=False,
                  steps=["weight 0 set", "weight 0 read back"], weight_before=5, weight_after=5,
                  seconds_to_weight_zero=None, breach_detected_at=None, evidence_file=None, verified=False)
    return RollbackReport(**{**fields, **changes})


def _lines_starting(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_a_reason_with_a_line_break_cannot_forge_a_line():
    text = render_rollback(_report(reason="oops\nweight after:   0\r\nverified"), "1.4.0", AT, None)
    assert _lines_starting(text, "weight after:") == ["weight after:   5"]
    assert _lines_starting(text, "reason:") == ["reason:         oops\\nweight after:   0\\r\\nverified"]


def test_the_profile_addendum_is_one_line_a_note_and_cannot_forge_a_line():
    # A frame's name is the service's text: a function named with a line break stays on its line.
    text = render_profile_addendum(["grown in the canary: `f\nweight after:   25`", "advice: x"], "d.json", AT)
    assert text.splitlines() == [
        "", "profile of the stage, canary vs stable (written after weight 0, at 2026-11-30T10:00:07+00:00; d.json):",
        "  grown in the canary: `f\\nweight after:   25`", "  advice: x"]


def test_every_free_text_is_one_line_with_control_characters_escaped():
    report = _report(triggered_by="ana\x1b[2J", steps=["set\n0", "tab\there"], triggers=["p95\u2028x"])
    signals = {"api_p95_ms\nx": {"verdict": "breach\n", "canary": 1.0, "baseline": 1.0, "rule": "<= 200\n",
                                 "detail": "a\rb"}}
    text = render_rollback(report, "1.4.0", AT, signals)
    assert "triggered by:   ana\\x1b[2J" in text
    assert "  1. set\\n0" in text and "  2. tab\\there" in text
    assert "api_p95_ms\\nx" in text and "rule <= 200\\n  a\\rb" in text
    for char in "\r\x1b\u2028\t":
        assert char not in text


def test_a_backslash_is_escaped_so_an_escape_cannot_be_faked():
    text = render_rollback(_report(reason="a\\nb"), "1.4.0", AT, None)
    assert "reason:         a\\\\nb" in text


def test_the_stage_is_named_as_people_name_it_and_a_rollback_by_hand_that_did_not_say_has_none():
    assert _lines_starting(render_rollback(_report(), "1.4.0", AT, None), "stage:") == ["stage:          5%"]
    assert _lines_starting(render_rollback(_report(stage=0, weight_before=None), "1.4.0", AT, None),
                           "stage:") == ["stage:          shadow"]
    assert _lines_starting(render_rollback(_report(stage=None, weight_before=None), "1.4.0", AT, None),
                           "stage:") == ["stage:          not given"]


def test_two_rollbacks_in_one_second_get_two_files():
    first, second = rollback_file_name(AT, False), rollback_file_name(AT + 0.5, False)
    assert first != second
    assert first == "rollback_20261130T100007Z_250000.txt" and fnmatch(first, layout.ROLLBACKS)


def test_the_run_id_makes_the_name_unique_across_machines():
    name = rollback_file_name(AT, True, run_id="9f1c2d3e-aaaa-bbbb-cccc-000000000000")
    assert name == "rollback_dryrun_20261130T100007Z_250000_9f1c2d3e.txt"
    assert rollback_file_name(AT, True, run_id="../../x") == "rollback_dryrun_20261130T100007Z_250000_x.txt"
