"""Game day and its drills on the real sandbox."""

from __future__ import annotations

import json
import threading
import time

import pytest

from golive import layout
from golive.settings import load_settings, merge_settings
from golive.signing import load_public_key
from golive.verify import verify_folder
from tests.flows.helpers import flow_settings

pytestmark = pytest.mark.sandbox


def _settings(sandbox, signing_key, tmp_path, **game_day) -> dict:
    settings = flow_settings(sandbox, signing_key, tmp_path, [100])
    # The chaos window sees the canary's own probes only (no users at weight 0): 15 s of them, on a
    # busy machine too, reach the compressed minimum the judge needs to tell a fifth of them failing.
    return merge_settings(settings, {
        "policy": {"judge": {**settings["policy"]["judge"], "min_requests": 10}},
        "process": {"game_day": {"burst_requests": 60, "outbox_window_seconds": 6, "outbox_interval_seconds": 1,
                                 "outbox_lag_window_seconds": 2, "chaos_window_seconds": 15, **game_day}}})


def test_game_day_passes_on_a_healthy_system_and_writes_the_weekly_record(sandbox, canary_weight, signing_key,
                                                                         tmp_path):
    from flows.game_day import game_day

    state = game_day(settings=_settings(sandbox, signing_key, tmp_path), scenario="error-burst", return_state=True)
    (folder,) = (tmp_path / "game-day").iterdir()
    assert (state.type.value, state.name) == ("COMPLETED", "Passed"), state.message
    (weekly,) = folder.glob(layout.drill_records())
    lines = weekly.read_text().splitlines()
    assert [line.split()[0] for line in lines[1:6]] == ["Rollback:", "Chaos:", "Contract:", "Idempotency:", "Outbox:"]
    assert all(" PASS " in line + " " for line in lines[1:6]) and lines[-1] == "RESULT: PASS"
    chaos = json.loads((folder / layout.chaos("error-burst")).read_text())
    assert chaos["during"]["decision"] != "proceed" and chaos["inputs"]["faults"] == {"error_rate": 0.2}
    assert json.loads((folder / layout.CONTRACT_CHECK).read_text())["failures"] == []
    assert (folder / layout.OUTBOX_SMOKE_PLOT).read_bytes().startswith(b"\x89PNG")
    (drill,) = folder.glob(layout.ROLLBACK_DRILLS)
    assert "PASS: nothing changed" in drill.read_text() and sandbox.weight() == 0
    public_key = load_public_key(open(signing_key["public_key_path"], "rb").read())
    assert verify_folder(folder, public_key).problems == []


def test_broken_idempotency_fails_the_burst_and_counts_the_duplicates(sandbox, canary_weight, signing_key, tmp_path):
    from flows.idempotency_burst import idempotency_burst

    sandbox.set_faults("canary", {"idempotency_broken": 1})
    result = idempotency_burst(load_settings(_settings(sandbox, signing_key, tmp_path)), str(tmp_path / "drill"),
                               requests=40, parallel=8)
    assert not result["ok"] and result["created"] == 40 and result["duplicates"] == 39
    assert result["failures"][0] == "DUPLICATE ORDERS: 40 of 40 requests with one key succeeded (39 duplicates)"


def test_a_slow_database_fails_the_outbox_smoke_and_a_pulsed_one_shows_teeth(sandbox, canary_weight, signing_key,
                                                                             tmp_path):
    from flows.outbox_smoke import outbox_smoke

    settings = load_settings(_settings(sandbox, signing_key, tmp_path))
    canary_weight(50)  # orders enough to queue behind a slow database
    sandbox.set_faults("canary", {"slow_db_ms": 1000})
    slow = outbox_smoke(settings, str(tmp_path / "slow"), window_seconds=8, interval_seconds=1)
    sandbox.clear_faults("canary")
    assert not slow["ok"] and any(f.startswith("p50 ") for f in slow["failures"]), slow["failures"]
    assert slow["worst"]["max"] < 60

    time.sleep(5)  # the worker catches up
    stop = threading.Event()

    def pulse() -> None:
        while not stop.is_set():
            sandbox.set_faults("canary", {"slow_db_ms": 1000})
            stop.wait(3)
            sandbox.clear_faults("canary")
            stop.wait(3)

    pulsing = threading.Thread(target=pulse, daemon=True)
    pulsing.start()
    try:
        pulsed = outbox_smoke(settings, str(tmp_path / "pulsed"), window_seconds=18, interval_seconds=0.5)
    finally:
        stop.set()
        pulsing.join(timeout=10)
    assert pulsed["teeth"]["found"], pulsed["teeth"]
