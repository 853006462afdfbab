"""The scheduled freeze flow on a budget it cannot measure (a signal list with no errors role)
ends `Unknown` failed in one line, every run, with no traceback and no freeze written; the
writer's lock is named by golive.layout."""

from __future__ import annotations

from golive import layout


def test_a_list_without_an_errors_signal_is_one_failed_line_not_a_traceback(tmp_path, monkeypatch):
    import flows.error_budget_freeze as freeze_flow

    def no_errors_role(*_args, **_kwargs):
        raise ValueError("policy.signals: no signal has role errors (a ratio with counts): the error budget "
                         "cannot be measured")

    monkeypatch.setattr(freeze_flow, "measure_error_counts", no_errors_role)
    state = freeze_flow.error_budget_freeze(settings={"process": {"evidence_root": str(tmp_path)}},
                                            return_state=True)
    assert (state.type.value, state.name) == ("FAILED", "Unknown")
    assert state.message.startswith("the budget cannot be measured: ")
    assert "policy.signals: no signal has role errors" in state.message and "\n" not in state.message
    assert not (tmp_path / "error-budget" / layout.BUDGET_FREEZE).exists()


def test_the_freeze_writers_lock_is_the_layouts_name(tmp_path):
    from flows.error_budget_freeze import _FolderLock

    with _FolderLock(tmp_path / "error-budget"):
        assert (tmp_path / "error-budget" / layout.BUDGET_LOCK).exists()
