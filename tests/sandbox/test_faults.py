"""The service's fault switches: all or nothing, and one per catalogued fault."""

from __future__ import annotations

import pytest

from sandbox.faults import FaultError, Faults


def test_fault_update_is_all_or_nothing():
    faults = Faults()
    with pytest.raises(FaultError, match="error_rate: expected a number in \\[0, 1\\]"):
        faults.update({"latency_ms": 10, "error_rate": 2})
    assert faults.active() == {}
    faults.update({"latency_ms": "25"})
    assert faults.active() == {"latency_ms": 25.0}


def test_every_fault_in_the_catalogue_is_a_switch_of_the_service():
    from dataclasses import fields

    from sandbox.faults import FAULTS

    assert [f.name for f in fields(Faults)] == list(FAULTS)


def test_the_paper_fill_delay_is_milliseconds_up_to_10_seconds():
    faults = Faults()
    faults.update({"paper_fill_delay_ms": 8})
    assert faults.active() == {"paper_fill_delay_ms": 8.0}
    with pytest.raises(FaultError, match="^paper_fill_delay_ms: expected a number in \\[0, 10000\\]"):
        faults.update({"paper_fill_delay_ms": 10_001})
    assert faults.active() == {"paper_fill_delay_ms": 8.0}
