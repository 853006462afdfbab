"""process.budget.predict_windows_hours is refused at load, naming the field, when it names no
window or one that is not a positive number of hours (it was taken, and only the rules refused it)."""

from __future__ import annotations

import pytest

from golive.settings import SettingsError, load_settings


@pytest.mark.parametrize("hours", [[], [-1], [0], [1, -6], [1e9]])
def test_the_prediction_windows_are_refused_naming_the_field(hours):
    with pytest.raises(SettingsError, match=r"^process\.budget\.predict_windows_hours: expected one or more hours"):
        load_settings({"release": "1.5.0", "process": {"budget": {"predict_windows_hours": hours}}})


def test_the_prediction_windows_taken_as_given():
    cfg = load_settings({"release": "1.5.0", "process": {"budget": {"predict_windows_hours": [0.5, 6]}}})
    assert cfg.process.budget.predict_windows_hours == (0.5, 6.0)
