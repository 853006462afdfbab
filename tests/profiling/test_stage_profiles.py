"""The stage's profiles never stand in the way of the stage: a rollback is written before any
profiler is stopped, and a profiler that cannot start is a line in the record, not the stage's end."""

from __future__ import annotations

import logging
import subprocess
import sys
import time

import pytest

import flows.canary_stage as canary_stage
import tasks.profiler as profiler
from flows.canary_stage import _StageProfiles, _StageRun
from golive.models import StageResult
from golive.settings import load_settings
from tasks.profiler import ProfileSampling

# A profiler that ignores its stop signal, as a py-spy stuck writing its file would.
_DEAF = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


class _Folder:
    def __init__(self):
        self.records = []

    def record(self, name, data):
        self.records.append(name)

    def seal(self, _by):
        pass

    def __str__(self):
        return "folder"


@pytest.fixture
def deaf_profiler(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", _DEAF], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    with profiler._LOCK:
        profiler._RUNNING[process.pid] = process
    sampling = ProfileSampling(track="canary", pid=process.pid, profiler_pid=process.pid,
                               output=str(tmp_path / "speedscope"), rate_hz=20, started_at=time.time())
    yield sampling, process
    process.kill()
    process.wait()
    with profiler._LOCK:
        profiler._RUNNING.pop(process.pid, None)


def _settings(tmp_path, profiling: dict | None = None):
    return load_settings({"release": "1.4.0", "process": {"evidence_root": str(tmp_path),
                                                          "profiling": profiling or {}}})


def _stage(settings, percent: int = 25) -> _StageRun:
    stage = object.__new__(_StageRun)
    stage.settings, stage.percent, stage.generation = settings, percent, 7
    stage.folder, stage.logger = _Folder(), logging.getLogger("test")
    stage.result = StageResult(stage=percent, outcome="proceed", started_at=time.time(), ended_at=time.time(),
                               generation=7)
    stage.profiles = _StageProfiles(settings, percent, str(settings.process.evidence_root), stage.logger)
    return stage


def test_the_rollback_is_written_before_a_profiler_that_will_not_stop_is_waited_for(
        tmp_path, deaf_profiler, monkeypatch):
    sampling, process = deaf_profiler
    events = []

    def roll_back(**kwargs):
        events.append(("roll_back", process.poll() is None, kwargs["generation"]))
        return "rolled"

    def stop_profiling(sampling, return_state):
        events.append(("stop", sampling.track))
        return stop_profiling_task(sampling, return_state=return_state)

    stop_profiling_task = canary_stage.stop_profiling
    monkeypatch.setattr(profiler, "STOP_SECONDS", 0.5)  # the deaf profiler is killed after it
    monkeypatch.setattr(canary_stage, "roll_back", roll_back)
    monkeypatch.setattr(canary_stage, "rollback_outcome", lambda _state: "RolledBack")
    monkeypatch.setattr(canary_stage, "stop_profiling", stop_profiling)
    monkeypatch.setattr(canary_stage, "plot_stage", lambda *_args: None)
    stage = _stage(_settings(tmp_path))
    stage.profiles.samplings = [sampling]

    result = stage.end("rollback", "p95 breached", ["breach:latency_p95_ms"])

    assert events == [("roll_back", True, 7), ("stop", "canary")]
    assert result.outcome == "rollback" and result.rollback == "RolledBack"
    assert process.poll() is not None  # killed once it ignored the stop signal
    assert result.profile["not_taken"] == {"canary": "canary: py-spy wrote no profile (the process may have ended)"}
