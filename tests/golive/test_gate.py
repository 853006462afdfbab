"""The observed traffic split against the weight."""

from __future__ import annotations

import pytest


def test_the_observed_split_is_exact_at_0_and_100_and_within_noise_between():
    from golive.gate import share_verdict

    assert share_verdict(100, 202.66666666666666, 202.66666666666666, 2.0)[2]  # 99.99999999999999 %: exact
    assert share_verdict(100, 202.66666666666666, 202.66666666666666, 2.0)[0] == 100.0  # and recorded as 100
    assert share_verdict(25, 1.0, 3.0, 2.0)[0] == 33.333333
    assert not share_verdict(100, 201.0, 202.0, 2.0)[2]  # one request on stable
    assert share_verdict(0, 0.0, 500.0, 2.0)[2] and not share_verdict(0, 1.0, 500.0, 2.0)[2]
    observed, tolerance, ok = share_verdict(25, 240.0, 1000.0, 2.0)
    assert (observed, ok) == (24.0, True) and tolerance == pytest.approx(5.48, abs=0.01)
    assert not share_verdict(25, 150.0, 1000.0, 2.0)[2]
    assert share_verdict(5, 0.0, 0.0, 2.0) == (None, 2.0, False)  # no traffic: not verified
