"""The blocks a deployment loads make the same settings as a YAML file."""

from __future__ import annotations

import pytest

from golive.settings import SettingsError, load_settings


def test_blocks_make_the_same_settings_as_the_equivalent_mapping():
    from blocks import CanaryPolicy, PrometheusSource, TrafficTarget, settings_from_blocks

    CanaryPolicy(stages=[25, 100], dwell_seconds=600, final_dwell_seconds=1200, interval_seconds=30,
                 hold_seconds=300, judge={"min_requests": 50}).save("policy-test", overwrite=True)
    PrometheusSource(url="http://127.0.0.1:29090").save("prometheus-test", overwrite=True)
    TrafficTarget(control_url="http://127.0.0.1:28070", canary_url="http://127.0.0.1:28082",
                  stable_url="http://127.0.0.1:28081").save("target-test", overwrite=True)

    from_blocks = settings_from_blocks("1.4.0", policy="policy-test", prometheus="prometheus-test",
                                       target="target-test")
    from_mapping = load_settings({
        "release": "1.4.0", "stages": [25, 100], "dwell_seconds": 600, "final_dwell_seconds": 1200,
        "interval_seconds": 30, "hold_seconds": 300, "judge": {"min_requests": 50},
        "prometheus_url": "http://127.0.0.1:29090",
        "router": {"kind": "sandbox", "control_url": "http://127.0.0.1:28070"},
        "canary_url": "http://127.0.0.1:28082", "stable_url": "http://127.0.0.1:28081",
    })
    assert from_blocks == from_mapping


def test_a_bad_policy_block_fails_naming_the_field():
    from blocks import CanaryPolicy, PrometheusSource, TrafficTarget, settings_from_blocks

    CanaryPolicy(stages=[25, 50]).save("policy-bad", overwrite=True)
    PrometheusSource().save("prometheus-default", overwrite=True)
    TrafficTarget().save("target-default", overwrite=True)
    with pytest.raises(SettingsError, match="stages: the last stage must be 100"):
        settings_from_blocks("1.4.0", policy="policy-bad", prometheus="prometheus-default", target="target-default")
