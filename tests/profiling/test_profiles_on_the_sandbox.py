"""py-spy on the sandbox's real services: a canary that burns CPU in one function is named among
the frames that grew, in the record a Rollback or a Hold writes, and the advice points at it; a
healthy pair gives no advice. Sampling runs 8 s under the load generator at 100 Hz, so that the
healthy pair's little CPU gives enough samples to compare (golive's stages run longer at 20 Hz)."""

from __future__ import annotations

import logging
import time

import pytest

from flows.canary_stage import _StageProfiles
from golive.evidence import EvidenceLedger
from golive.profiles import profile_notes
from golive.settings import load_settings
from tasks.profiler import find_service_pid, start_profiling, stop_profiling

pytestmark = pytest.mark.sandbox
SAMPLE_SECONDS = 8.0
RATE_HZ = 100
BURN = "spark_price_checksum_burn"


def _sample(sandbox) -> list:
    samplings = [start_profiling.fn(track, sandbox.service_url(track), None, RATE_HZ)
                 for track in ("stable", "canary")]
    try:
        refused = [s.problem for s in samplings if s.problem and "ptrace refused" in s.problem]
        if refused:  # a machine that forbids ptrace: what the stage would log, and no profile to test
            pytest.skip(refused[0])
        assert [s.problem for s in samplings] == [None, None]
        time.sleep(SAMPLE_SECONDS)
    finally:
        taken = [stop_profiling.fn(s) for s in samplings]  # stopped even when the test fails
    return taken


def _settings(sandbox, tmp_path):
    return load_settings({**sandbox.golive_settings(), "release": "1.4.0",
                          "process": {"evidence_root": str(tmp_path)}})


def test_the_service_pid_is_the_process_listening_on_its_port(sandbox):
    pid, how = find_service_pid(sandbox.service_url("canary"))
    assert how.startswith("listening on port") and b"--track\x00canary" in open(f"/proc/{pid}/cmdline", "rb").read()
    assert find_service_pid("http://example.com:8080", None)[0] is None
    assert find_service_pid(sandbox.service_url("canary"), 4242) == (4242, "configured pid")


def test_a_cpu_burning_canary_is_named_in_the_rollback_record_and_advised_on(sandbox, canary_weight, tmp_path):
    canary_weight(50)
    sandbox.set_faults("canary", {"cpu_burn_ms": 15})
    profiles = _StageProfiles(_settings(sandbox, tmp_path), 50, str(tmp_path), logging.getLogger("test"))
    profiles.gc_before = profiles.gc_pauses()  # as start() reads them
    taken = _sample(sandbox)
    assert all(t.output and t.seconds >= SAMPLE_SECONDS for t in taken)
    record = profiles.write(taken, {"event_loop_p95_ms": {"verdict": "breach"}}, ["breach:event_loop_p95_ms"])

    assert record["not_taken"] == {} and record["signals"] == ["event_loop_p95_ms"]
    assert record["diff"]["comparable"], record["diff"]["reason"]
    assert BURN in record["diff"]["grown"][0]["frame"]
    (advice,) = [r for r in record["recommendations"] if r["rule"] == "sync-frame-on-loop"]
    assert BURN in advice["frame"] and "executor" in advice["advice"]
    grown, *_ = profile_notes(record)  # the lines the rollback's record and war-room row get
    assert grown.startswith(f"grown in the canary: `{BURN}`")
    ledger = EvidenceLedger(tmp_path)
    assert {"profile_stage_50_canary.speedscope.json", "profile_stage_50_stable.png", "profile_stage_50_diff.json"} \
        <= set(ledger.files())
    diff = ledger.read_json("profile_stage_50_diff.json")
    assert diff["grown"][0]["frame"] == record["diff"]["grown"][0]["frame"]
    assert diff["gc_pauses"]["canary"]["0"]["count"] > 0 and set(diff["gc_pauses"]) == {"stable", "canary"}


def test_a_healthy_canary_gets_no_advice(sandbox, canary_weight, tmp_path):
    canary_weight(50)
    settings = _settings(sandbox, tmp_path)
    record = _StageProfiles(settings, 50, str(tmp_path), logging.getLogger("test")).write(
        _sample(sandbox), {}, [])
    assert record["diff"]["comparable"], record["diff"]["reason"]
    assert record["recommendations"] == [] and record["diff"]["grown"] == []
