"""Completeness: what is missing, counted against the runbook."""

from __future__ import annotations

import pytest

from golive import layout
from golive.completeness import check_completeness


def test_completeness_names_what_is_missing_and_counts_against_the_runbook():
    files = [layout.SETTINGS, layout.PREFLIGHT, *(layout.preflight_check(f"promql_s{i}_stable") for i in range(8))]
    result = check_completeness("takeoff", "1.4.0", [1, 100], 8, files)
    assert not result["ok"] and result["files"] == 10 and result["minimum_files"] == 40
    assert layout.go_nogo("1.4.0") in result["missing"]
    assert f"{layout.preflight_promql_files('canary')} (0 of 8)" in result["missing"]
    assert layout.preflight_promql_files("stable") not in " ".join(result["missing"])
    end = check_completeness("end", "1.4.0", [1, 100], 8, files)
    assert layout.judge_look_files(100) in end["missing"] and end["minimum_files"] == 50
    with pytest.raises(ValueError, match="point: expected one of takeoff, end"):
        check_completeness("landing", "1.4.0", [100], 8, files)
