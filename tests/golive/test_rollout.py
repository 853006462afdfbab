"""The rollout rules: each trigger, the version naming, and a fit canary raising none."""

from __future__ import annotations

import pytest

from golive.models import RolloutObservation
from golive.rollout import RolloutWatch, image_tag, rollout_triggers, same_version
from golive.triggers import trigger


def observed(**changes) -> RolloutObservation:
    return RolloutObservation(**{"source": "deployment shop/spark-canary", "desired": 2, "ready": 2,
                                 "versions": ["1.4.0", "1.4.0"], "restarts": 1, **changes})


@pytest.mark.parametrize("image, tag", [
    ("registry.example.com:5000/shop/spark:1.4.0", "1.4.0"),
    ("spark:v1.4.0@sha256:" + "a" * 64, "v1.4.0"),
    ("registry.example.com:5000/shop/spark", ""),
])
def test_image_tag(image, tag):
    assert image_tag(image) == tag


def test_a_leading_v_names_the_same_release():
    assert same_version("v1.4.0", "1.4.0") and same_version("1.4.0", "v1.4.0")
    assert not same_version("1.4.0-rc1", "1.4.0")


def test_a_fit_canary_raises_nothing():
    assert rollout_triggers(observed(), "v1.4.0", restarts_at_start=1) == {}


@pytest.mark.parametrize("changes", [{"ready": 1}, {"desired": 0, "ready": 0}])
def test_canary_not_ready(changes):
    assert list(rollout_triggers(observed(**changes), "1.4.0", 1)) == ["canary-not-ready"]


@pytest.mark.parametrize("versions", [["1.4.0", "1.3.2"], []])
def test_version_mismatch(versions):
    fired = rollout_triggers(observed(versions=versions), "1.4.0", 1)
    assert list(fired) == ["version-mismatch"]


def test_crash_loop_from_rising_restarts_or_a_crash_reason():
    assert list(rollout_triggers(observed(restarts=4), "1.4.0", 1)) == ["crash-loop"]
    assert list(rollout_triggers(observed(waiting=["CrashLoopBackOff"]), "1.4.0", 1)) == ["crash-loop"]
    assert rollout_triggers(observed(waiting=["ContainerCreating"]), "1.4.0", 1) == {}


def test_unknown_restarts_never_fire():
    assert rollout_triggers(observed(restarts=None), "1.4.0", None) == {}
    assert rollout_triggers(observed(restarts=9), "1.4.0", None) == {}


def test_every_trigger_it_raises_is_in_the_catalogue():
    fired = rollout_triggers(observed(ready=0, versions=["2"], restarts=5), "1.4.0", 1)
    assert [trigger(t).evaluated_by for t in fired] == ["flow", "flow", "flow"]


def test_a_ready_canary_that_serves_no_version_is_a_mismatch():
    assert list(rollout_triggers(observed(versions=[]), "1.4.0", 1)) == ["version-mismatch"]


def test_one_slow_health_answer_is_not_a_canary_that_is_not_ready():
    watch = RolloutWatch("1.4.0", failure_threshold=3)
    assert watch.observe(observed()) == {}
    assert watch.observe(observed(ready=0)) == {}  # one answer slower than its timeout
    assert watch.observe(observed()) == {}  # ready again: the count starts over
    assert watch.observe(observed(ready=0)) == {}
    assert watch.observe(None) == {}  # an observation that could not be made counts as a failure
    fired = watch.observe(observed(ready=1))
    assert list(fired) == ["canary-not-ready"] and "3 observations in a row" in fired["canary-not-ready"]


def test_a_wrong_version_and_rising_restarts_fire_at_once():
    watch = RolloutWatch("1.4.0", failure_threshold=3)
    assert watch.observe(observed(restarts=2)) == {}
    assert list(watch.observe(observed(restarts=3))) == ["crash-loop"]  # compared with the first observation
    assert list(RolloutWatch("1.4.0").observe(observed(versions=["1.3.2"]))) == ["version-mismatch"]
