"""Which minimum of canary requests a count signal needs is the signal's `keyed` field, not its
name: renamed, the runbook's idempotency conflicts keep min_keyed_requests; any list can say so."""

from __future__ import annotations

import pytest

from golive.judge import judge
from golive.scenario import parse_scenario
from golive.settings import SettingsError, load_settings
from golive.signal_packs import PACKS
from tests.golive.builders import healthy, set_counts

MINIMUMS = {"min_requests": 1000, "min_keyed_requests": 5}


def _verdict(changes: dict, name: str):
    catalogue = load_settings({"release": "1.4.0", "policy": {"signals": changes}}).policy.catalogue()
    scenario = set_counts(healthy(intervals=10), "idempotency_conflict_pct", "canary", 0, 25)  # 250 in all
    scenario["signals"][name] = scenario["signals"].pop("idempotency_conflict_pct")
    scenario["policy"] = MINIMUMS
    return judge(parse_scenario(scenario, catalogue)).signals[name]


def test_the_runbook_pack_marks_its_idempotency_signal_keyed_and_no_other():
    assert [s.name for s in PACKS["runbook"].signals if s.keyed] == ["idempotency_conflict_pct"]


def test_a_renamed_keyed_signal_keeps_the_keyed_minimum():
    assert _verdict({"idempotency_conflict_pct": {"name": "idem_pct"}}, "idem_pct").verdict == "pass"


def test_a_signal_not_keyed_needs_the_requests_minimum_whatever_its_name():
    verdict = _verdict({"idempotency_conflict_pct": {"keyed": False}}, "idempotency_conflict_pct")
    assert verdict.verdict == "insufficient"
    assert verdict.detail.startswith("too little traffic to tell: 250 canary requests (need 1000")


def test_keyed_is_true_or_false():
    with pytest.raises(SettingsError, match=r"^policy\.signals\.idempotency_conflict_pct\.keyed: expected true or "
                                            r"false, got 'yes'$"):
        load_settings({"release": "1.4.0", "policy": {"signals": {"idempotency_conflict_pct": {"keyed": "yes"}}}})
