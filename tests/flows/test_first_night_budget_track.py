"""One track freezes: a first night measuring another track than process.budget.track calls for
the freeze (budget-low) but leaves freeze.json to the error-budget policy, which reads the
budget's track; on the budget's own track the night freezes itself."""

from __future__ import annotations

from prefect import flow

from golive import layout
from golive.settings import load_settings
from golive.slo import PERIOD


def _low_budget(_prometheus, _policy, _track, windows, _at):
    # 5 % of the period's requests failed against a 99.9 % objective: the budget is long gone.
    return {name: ([50.0, 1000.0] if name == PERIOD else [1.0, 1000.0]) for name in windows}


def _hour(tmp_path, monkeypatch, night_track: str) -> tuple[dict, bool]:
    import flows.first_night as night_flow
    from tasks.evidence import ReleaseFolder

    monkeypatch.setattr(night_flow, "measure_error_counts", _low_budget)
    monkeypatch.setattr(night_flow, "snapshot_signals", lambda *_args: {})
    monkeypatch.setattr(night_flow, "announce", lambda *_args, **_kwargs: None)
    monkeypatch.setattr(night_flow, "_report", lambda *_args: None)
    cfg = load_settings({"release": "1.4.0", "process": {"evidence_root": str(tmp_path),
                                                         "first_night": {"track": night_track}}})
    evidence = ReleaseFolder.of(cfg)

    @flow
    def one_hour() -> dict:
        return night_flow._measure_hour(cfg, evidence, cfg.process.first_night, 1, 0.0)

    record = one_hour()
    return record, (tmp_path / cfg.process.budget.folder / layout.BUDGET_FREEZE).exists()


def test_a_night_on_another_track_leaves_the_freeze_to_the_budget_policy(tmp_path, monkeypatch):
    record, frozen = _hour(tmp_path, monkeypatch, night_track="stable")
    assert "freeze" in record["actions"] and not frozen
    assert record["taken"] == ["hour 1: freeze left to the error-budget policy (track canary, not the night's stable)"]


def test_a_night_on_the_budget_track_freezes(tmp_path, monkeypatch):
    record, frozen = _hour(tmp_path, monkeypatch, night_track="canary")
    assert "freeze" in record["actions"] and frozen
