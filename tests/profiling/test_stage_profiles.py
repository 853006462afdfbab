"""The stage's profiles never stand in the way of the stage: a rollback is written before any
profiler is stopped, and a profiler that cannot start is a line in the record, not the stage's end."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prefect.states import Completed

import flows.canary_stage as canary_stage
import tasks.profiler as profiler
from flows.canary_stage import _StageProfiles, StageRun
from golive import layout
from golive.evidence import EvidenceLedger
from golive.models import RollbackReport, StageResult
from golive.profiles import PROFILER_LIMIT_CAP_SECONDS, profile_notes, profiler_time_limit
from golive.settings import load_settings
from golive.warroom import WarRoomRow
from tasks.evidence import ReleaseFolder, add_war_room_row
from tasks.profiler import ProfileSampling, TakenProfile

# A profiler that ignores its stop signal, as a py-spy stuck writing its file would.
_DEAF = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


class _Folder:
    def __init__(self, path: str):
        self.records, self.path = [], path

    def record(self, name, data):
        self.records.append(name)

    def seal(self, _by):
        pass

    def __str__(self):
        return self.path


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


def _stage(settings, percent: int = 25) -> StageRun:
    stage = object.__new__(StageRun)
    stage.settings, stage.percent, stage.generation = settings, percent, 7
    stage.folder, stage.logger = _Folder(str(settings.process.evidence_root)), logging.getLogger("test")
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
        return Completed(data=_rolled_back())

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


RECORD = "rollback_20261204T100000Z_000000.txt"


def _rolled_back() -> RollbackReport:
    return RollbackReport(reason="p95 breached", stage=25, triggered_by="canary-stage 25%", dry_run=False, steps=[],
                          weight_before=25, weight_after=0, verified=True, seconds_to_weight_zero=1.0,
                          breach_detected_at=None, evidence_file=RECORD)


def _burning_summary(signals: list[str]) -> dict:
    """A stage's profile summary as `_StageProfiles.write` gives it for a canary burning in `burn`."""
    burn = {"frame": "burn (app/service.py)", "caller": "quote (app/service.py)", "canary_self_share": 0.41,
            "stable_self_share": 0.0, "points": 41.0}
    return {"files": {"diff": "profile_stage_25_diff.json"}, "not_taken": {}, "signals": signals,
            "diff": {"comparable": True, "reason": "1 frame(s) grew beyond noise", "grown": [burn]},
            "recommendations": [{"rule": "sync-frame-on-loop", "frame": burn["frame"],
                                 "advice": "`burn` in `quote()` holds 41% of canary self time: move it to an executor",
                                 "evidence": ["profile_stage_25_diff.json: grown[0]"]}]}


def _stage_in(tmp_path, summary: dict, decided: bool) -> StageRun:
    stage = _stage(_settings(tmp_path))
    stage.folder = ReleaseFolder(path=str(tmp_path))
    stage.result.profile = summary
    if decided:  # the gate's Rollback: its row is in the war room already
        stage.result.decisions = [{"decision": "rollback"}]
        add_war_room_row(str(tmp_path), WarRoomRow.from_verdict(datetime.now(timezone.utc), 25, "Rollback", {}))
    EvidenceLedger(tmp_path).write_text(RECORD, "ROLLBACK v1.4.0\nweight after:   0\n")
    return stage


def test_a_rollback_on_loop_lag_gets_the_grown_frames_and_advice_on_its_row_and_at_the_end_of_its_record(tmp_path):
    stage = _stage_in(tmp_path, _burning_summary(["event_loop_p95_ms"]), decided=True)

    stage.rollback_in_war_room({}, RECORD)

    text = (tmp_path / RECORD).read_text()
    assert text.startswith("ROLLBACK v1.4.0\nweight after:   0\n")  # what was written at weight 0 stays
    added = text.split("\n", 3)[3]
    assert added.startswith("profile of the stage, canary vs stable (written after weight 0, at ")
    assert "profile_stage_25_diff.json" in added.splitlines()[0]
    assert "grown in the canary: `burn` in `quote()` 41% of canary self time (stable 0%, +41 points)" in added
    assert "advice: `burn` in `quote()` holds 41%" in added and "[evidence: profile_stage_25_diff.json: grown[0]]" \
        in added
    (row,) = json.loads((tmp_path / layout.WAR_ROOM_JSON).read_text())
    assert row["Decision"] == "Rollback" and row["profile"] == profile_notes(_burning_summary(["event_loop_p95_ms"]))
    table = (tmp_path / layout.WAR_ROOM_MD).read_text()
    assert "- 25% Rollback at " in table and "`burn` in `quote()`" in table.split("Profiles at these decisions")[1]
    assert "burn" not in (tmp_path / layout.WAR_ROOM_CSV).read_text()


def test_a_rollback_no_gate_decided_gets_its_row_and_one_not_on_a_profiled_signal_no_profile_note(tmp_path):
    stage = _stage_in(tmp_path, _burning_summary([]), decided=False)  # a critical alert on 5xx, say

    stage.rollback_in_war_room({}, RECORD)

    (row,) = json.loads((tmp_path / layout.WAR_ROOM_JSON).read_text())
    assert (row["Stage"], row["Decision"]) == ("25%", "Rollback") and "profile" not in row
    assert (tmp_path / RECORD).read_text() == "ROLLBACK v1.4.0\nweight after:   0\n"


def test_a_profiler_that_cannot_start_is_a_line_and_the_one_that_started_is_still_stopped(tmp_path, monkeypatch):
    started = []

    def start_profiling(track, url, pid, rate_hz, py_spy, limit):
        if track == "canary":
            raise OSError(24, "Too many open files")
        started.append(ProfileSampling(track=track, pid=4242, rate_hz=rate_hz, started_at=time.time()))
        return started[-1]

    def html_metrics(url, metric):
        raise ValueError("could not convert string to float: '<html>'")

    def json_array_version(url):
        raise AttributeError("'list' object has no attribute 'get'")

    stopped = []
    monkeypatch.setattr(canary_stage, "start_profiling", start_profiling)
    monkeypatch.setattr(canary_stage.read_gc_pauses, "fn", html_metrics)
    monkeypatch.setattr(canary_stage.check_version, "fn", json_array_version)
    monkeypatch.setattr(canary_stage, "tell_to_stop", lambda sampling: stopped.append(sampling.track))
    profiles = _stage(_settings(tmp_path, {"pyroscope_url": "http://127.0.0.1:1"})).profiles

    profiles.start()

    assert [s.track for s in profiles.samplings] == ["stable", "canary"] and profiles.samplings[0] is started[0]
    assert profiles.samplings[1].problem == "canary: the profiler could not start: OSError: [Errno 24] Too many " \
        "open files"
    assert profiles.gc_before == {"stable": None, "canary": None} and profiles.versions["stable"] == "unknown"
    taken = profiles.stop()
    assert stopped == ["stable", "canary"] and [t.track for t in taken] == ["stable", "canary"]
    assert taken[1].problem.startswith("canary: the profiler could not start")


def test_a_hold_whose_profilers_cannot_restart_still_writes_its_profile_record(tmp_path, monkeypatch):
    def start_profiling(*_args):
        raise RuntimeError("mkdtemp: No space left on device")

    monkeypatch.setattr(canary_stage, "start_profiling", start_profiling)
    profiles = _stage(_settings(tmp_path, {"gc_pause_metric": None})).profiles
    record = profiles.cut({"event_loop_p95_ms": {"verdict": "breach"}}, ["breach:event_loop_p95_ms"], 1)

    assert record is None  # nothing had been sampled before this Hold
    assert [s.problem for s in profiles.samplings] == [
        f"{track}: the profiler could not start: RuntimeError: mkdtemp: No space left on device"
        for track in ("stable", "canary")]
    assert profiles.cut({}, [], 2)["not_taken"] == {s.track: s.problem for s in profiles.samplings}


def test_a_py_spy_that_cannot_be_executed_is_a_problem_not_an_error(tmp_path):
    not_a_program = tmp_path / "py-spy"
    not_a_program.write_bytes(b"\x00\x01 not an executable")
    not_a_program.chmod(0o755)
    ours = f"golive-profile-canary-{os.getpid()}-*"
    scratches = set(Path(tempfile.gettempdir()).glob(ours))

    sampling = profiler.start_profiling.fn("canary", "http://127.0.0.1:1", 4242, 20, str(not_a_program), 60)

    assert sampling.profiler_pid is None and sampling.problem.startswith("canary: py-spy could not be started: ")
    assert set(Path(tempfile.gettempdir()).glob(ours)) == scratches  # its scratch removed


def test_the_scratch_of_a_go_live_that_died_is_swept_and_a_running_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = tmp_path / f"golive-profile-canary-{dead.pid}-abc123"
    running = tmp_path / f"golive-profile-stable-{os.getppid()}-def456"
    mine = tmp_path / f"golive-profile-canary-{os.getpid()}-ghi789"
    unnamed = tmp_path / "golive-profile-canary-xyz"  # made before folders carried their go-live's pid
    for folder in (gone, running, mine, unnamed):
        folder.mkdir()
        (folder / "py-spy.log").write_text("py-spy> Sampling process 20 times a second")

    assert profiler.sweep_scratch_of_dead_go_lives(tmp_path) == [gone]
    assert not gone.exists() and running.exists() and mine.exists() and unnamed.exists()


def test_the_profilers_own_limit_covers_the_stage_with_its_holds_and_approval_and_is_capped():
    assert profiler_time_limit(1800, 1200, 3600) == 2 * (1800 + 1200 + 3600) + 300
    assert profiler_time_limit(600, 0, 0) == 1500
    assert profiler_time_limit(7 * 24 * 3600, 1200, 3600) == PROFILER_LIMIT_CAP_SECONDS


def test_a_long_stage_with_a_maximum_dwell_gives_its_profiler_the_hold_budget_and_approval_wait_within_the_cap(
        tmp_path, monkeypatch):
    limits = []
    monkeypatch.setattr(canary_stage, "start_profiling",
                        lambda track, url, pid, rate, py_spy, limit: limits.append(limit) or ProfileSampling(
                            track=track, problem="not here"))
    policy = {"dwell_seconds": 600, "max_dwell_seconds": 1200, "hold_budget_seconds": 900,
              "approval_timeout_seconds": 1800}
    settings = load_settings({"release": "1.4.0", "policy": policy,
                              "process": {"evidence_root": str(tmp_path), "profiling": {"gc_pause_metric": None}}})
    _stage(settings).profiles.start()
    assert limits == [2 * (1200 + 900 + 1800) + 300] * 2

    week = load_settings({"release": "1.4.0", "policy": {**policy, "max_dwell_seconds": 7 * 24 * 3600},
                          "process": {"evidence_root": str(tmp_path), "profiling": {"gc_pause_metric": None}}})
    limits.clear()
    _stage(week).profiles.start()
    assert limits == [PROFILER_LIMIT_CAP_SECONDS] * 2


def test_a_profile_cut_short_by_its_own_limit_counts_only_the_seconds_it_sampled(tmp_path):
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    (tmp_path / "speedscope").write_text("{}")
    with profiler._LOCK:
        profiler._RUNNING[finished.pid] = finished
    sampling = ProfileSampling(track="stable", pid=1, profiler_pid=finished.pid, output=str(tmp_path / "speedscope"),
                               rate_hz=20, started_at=time.time() - 100, max_seconds=30)
    taken = profiler.stop_profiling.fn(sampling)
    assert taken.output and taken.seconds == pytest.approx(30, abs=0.01)


def _taken(tmp_path, track: str) -> TakenProfile:
    frames = [{"name": "handle", "file": "server.py"}, {"name": "burn", "file": "service.py"}]
    output = tmp_path / f"{track}.speedscope"
    output.write_text(json.dumps({"shared": {"frames": frames},
                                  "profiles": [{"type": "sampled", "samples": [[0, 1]] * 300 + [[0]] * 300}]}))
    return TakenProfile(track=track, output=str(output), seconds=30.0, rate_hz=20, started_at=1000.0, ended_at=1030.0)


def _pushes_recorded(monkeypatch, seconds_each: float = 0.0) -> list:
    pushes = []

    def push_profile(url, app, profile, tags, started_at, ended_at, rate_hz, timeout, auth_secret_block, return_state):
        pushes.append((tags["track"], tags["stage"], timeout, auth_secret_block))
        time.sleep(seconds_each)
        return Completed(data="pushed")

    monkeypatch.setattr(canary_stage, "push_profile", push_profile)
    return pushes


def test_a_holds_profiles_go_to_pyroscope_only_once_the_stage_has_ended(tmp_path, monkeypatch):
    pushes = _pushes_recorded(monkeypatch)
    profiles = _stage(_settings(tmp_path, {"pyroscope_url": "http://127.0.0.1:1", "gc_pause_metric": None,
                                           "pyroscope_auth_secret_block": "pyroscope-login"})).profiles

    record = profiles.write([_taken(tmp_path, "stable"), _taken(tmp_path, "canary")],
                            {"event_loop_p95_ms": {"verdict": "breach"}}, ["breach:event_loop_p95_ms"], hold=1)

    assert record["files"]["diff"] and pushes == []
    profiles.push()
    assert pushes == [("stable", "25", canary_stage.PYROSCOPE_TIMEOUT_SECONDS, "pyroscope-login"),
                      ("canary", "25", canary_stage.PYROSCOPE_TIMEOUT_SECONDS, "pyroscope-login")]
    profiles.push()
    assert len(pushes) == 2  # each profile once


def test_the_pushes_of_a_stage_stop_at_their_budget(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(canary_stage, "PYROSCOPE_BUDGET_SECONDS", 0.2)
    pushes = _pushes_recorded(monkeypatch, seconds_each=0.3)  # the first push alone spends the budget
    profiles = _stage(_settings(tmp_path, {"pyroscope_url": "http://127.0.0.1:1", "gc_pause_metric": None})).profiles
    for hold in (1, 2):
        profiles.write([_taken(tmp_path, "stable"), _taken(tmp_path, "canary")], {}, [], hold=hold)

    with caplog.at_level(logging.WARNING):
        profiles.push()

    assert [push[0] for push in pushes] == ["stable"] and pushes[0][2] <= 0.2 and pushes[0][3] is None
    assert caplog.text.count("profile not pushed: the 0.2 s for Pyroscope are spent") == 3
