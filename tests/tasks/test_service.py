"""The sandbox canary's rollout as golive reads it from outside the process."""

from __future__ import annotations

import socket

import pytest

from golive.rollout import rollout_triggers
from tasks.service import read_service_rollout


@pytest.mark.sandbox
def test_the_sandbox_canary_is_fit_and_serves_the_release(sandbox):
    observation = read_service_rollout.fn(sandbox.service_url("canary"))
    assert (observation.desired, observation.ready, observation.versions) == (1, 1, ["1.4.0"])
    assert rollout_triggers(observation, "1.4.0") == {}
    assert list(rollout_triggers(observation, "1.5.0")) == ["version-mismatch"]


def test_a_canary_that_does_not_answer_is_not_ready_and_names_no_wrong_version():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once closed
    observation = read_service_rollout.fn(f"http://127.0.0.1:{port}")
    assert observation.versions == []
    assert list(rollout_triggers(observation, "1.4.0")) == ["canary-not-ready"]  # silence is not another version
    assert "no answer" in observation.detail
