"""The `process.profiling` settings: on by default at a modest rate, Pyroscope off, bad input one line."""

from __future__ import annotations

import pytest

from golive.settings import SettingsError, load_settings


def test_profiling_is_on_at_20_hz_and_pyroscope_is_off_by_default():
    profiling = load_settings({"release": "1.4.0"}).process.profiling
    assert (profiling.enabled, profiling.rate_hz, profiling.pyroscope_url, profiling.pids) == (True, 20, None, {})


@pytest.mark.parametrize(("profiling", "message"), [
    ({"pids": {"blue": 1}}, "process.profiling: pids.blue: expected the track stable or canary"),
    ({"pids": {"canary": 0}}, "process.profiling.pids.canary: "),
    ({"rate_hz": 1000}, "process.profiling.rate_hz: "),
    ({"pyroscope_url": "ftp://pyroscope"}, "process.profiling.pyroscope_url: expected an http:// or https:// URL"),
    ({"pyroscope_app": "a b"}, "process.profiling.pyroscope_app: "),
])
def test_bad_profiling_settings_are_one_line_naming_the_field(profiling, message):
    with pytest.raises(SettingsError) as refused:
        load_settings({"release": "1.4.0", "process": {"profiling": profiling}})
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
