"""A rollback step is a final state whatever it is: a Prefect task's run, or a plain function
(the evidence writes) called directly, its error carried in a Failed state, never raised."""

from __future__ import annotations

from flows.rollback import _failure, _step
from tasks.evidence import record


def test_a_plain_step_is_called_directly_and_completes_with_its_result(tmp_path):
    state = _step(record, str(tmp_path), "rollback_note.txt", "weight 0\n")
    assert state.is_completed() and state.result() == str(tmp_path / "rollback_note.txt")
    assert (tmp_path / "rollback_note.txt").read_text() == "weight 0\n"


def test_a_plain_step_that_fails_is_a_failed_state_naming_its_error(tmp_path):
    state = _step(record, str(tmp_path), "../outside.txt", "no")
    assert state.is_failed()
    assert "evidence names stay inside the release folder" in _failure(state)
    assert not (tmp_path.parent / "outside.txt").exists()
