"""How a go-live ends: one rule, one table, and the README says the same."""

from __future__ import annotations

from pathlib import Path

from golive.outcome import ENDINGS, ending_of
from golive.triggers import STOPS

PROCEEDED = [{"stage": p, "outcome": "proceed"} for p in (1, 5, 25, 50, 100)]


def test_every_stage_proceeded_and_every_criterion_met_is_live():
    assert ending_of(PROCEEDED, []).name == "Live"


def test_a_stage_rollback_ends_as_its_rollback_ended():
    rolled = [*PROCEEDED[:2], {"stage": 25, "outcome": "rollback", "rollback": "RolledBack"}]
    failed = [*PROCEEDED[:2], {"stage": 25, "outcome": "rollback", "rollback": "RollbackFailed"}]
    assert ending_of(rolled, []).name == "RolledBack"
    assert ending_of(failed, []).name == "RollbackFailed"


def test_a_stage_rollback_of_unknown_outcome_is_never_called_safe():
    assert ending_of([{"stage": 25, "outcome": "rollback"}], []).name == "RollbackFailed"


def test_criteria_unmet_at_100_end_as_their_rollback_ended():
    assert ending_of(PROCEEDED, ["evidence_complete"], "RolledBack").name == "RolledBack"
    assert ending_of(PROCEEDED, ["evidence_complete"], None).name == "RollbackFailed"


def test_only_live_succeeds_and_every_ending_says_where_the_traffic_is():
    assert [e.name for e in ENDINGS.values() if e.succeeded] == ["Live"]
    assert all(e.traffic and e.next_step for e in ENDINGS.values())


def test_the_readme_tables_match_the_code():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert all(f"| `{e.name}` | {e.traffic} | {e.next_step} |" in readme for e in ENDINGS.values())
    assert all(f"| `{t.id}` | {t.fires_when} |" in readme for t in STOPS)


def test_a_run_fenced_off_or_rolled_back_by_another_is_superseded_never_live():
    assert ending_of(PROCEEDED, [], None, "rolled back while it ran (rollback_x.txt)").name == "Superseded"
    assert ending_of([{"stage": 5, "outcome": "superseded"}], []).name == "Superseded"
    assert ending_of(PROCEEDED, ["no_rollback"], None, "fenced off").name == "Superseded"  # no criteria rollback
    assert ending_of([{"stage": 25, "outcome": "rollback", "rollback": "RolledBack"}], [], None, "x").name == "RolledBack"
