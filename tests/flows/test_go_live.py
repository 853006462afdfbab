"""The go-live spine's gates on the real sandbox: rollback, hold, silent Prometheus, the human gate."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import httpx
import pytest
import yaml

from cli.main import main
from golive import layout
from golive.signals import readiness_queries
from tests.flows.helpers import EvidenceWatcher, flow_settings, stage_started

pytestmark = pytest.mark.sandbox


def run_go_live(settings: dict):
    from flows.go_live import go_live

    return go_live(settings["release"], settings=settings, return_state=True)


def war_room(folder: Path) -> list[dict]:
    return json.loads((folder / layout.WAR_ROOM_JSON).read_text())


def test_a_breach_at_25_percent_rolls_back_to_stable(sandbox, canary_weight, signing_key, tmp_path):
    settings = flow_settings(sandbox, signing_key, tmp_path, [25, 100], profiling=True)
    folder = tmp_path / "v1.4.0"
    with EvidenceWatcher(folder, stage_started(25), lambda: sandbox.set_faults("canary", {"latency_ms": 400})):
        state = run_go_live(settings)

    assert (state.type.value, state.name) == ("FAILED", "RolledBack")
    assert "breach:api_p95_ms" in state.message
    assert sandbox.weight() == 0
    served = {httpx.get(f"{sandbox.router_url}/version").json()["version"] for _ in range(100)}
    assert served == {"1.3.2"}  # stable takes all traffic
    (record,) = folder.glob(layout.ROLLBACKS)
    text = record.read_text()
    assert "breach:api_p95_ms" in text and "stage:          25%" in text
    # The stage that rolled back profiled both tracks, and its record says what the profiles showed.
    assert all((folder / layout.profile_speedscope(25, track)).exists() for track in ("stable", "canary"))
    assert json.loads((folder / layout.stage_record(25)).read_text())["profile"]
    seconds = float(re.search(r"seconds from the breaching interval to weight 0: ([\d.]+)", text).group(1))
    assert seconds <= 10
    assert [r["Decision"] for r in war_room(folder)][-1] == "Rollback"
    # It stood on latency: what the profiles showed is on its war-room row and ends its record.
    assert war_room(folder)[-1]["profile"]
    assert "\nprofile of the stage, canary vs stable (written after weight 0, at " in text


def test_rollback_dry_run_changes_nothing_and_a_real_one_is_safe_twice(sandbox, canary_weight, tmp_path, capsys):
    canary_weight(25)
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump({"release": "1.4.0", **sandbox.golive_settings(),
                                      "process": {"evidence_root": str(tmp_path)}}))
    assert main(["rollback", "--release", "1.4.0", "--reason", "drill", "--stage", "25", "--dry-run",
                 "--config", str(config)]) == 0
    assert "would set the canary weight 25 → 0 (dry run: not changed)" in capsys.readouterr().out
    assert sandbox.weight() == 25

    from flows.rollback import rollback

    first = rollback(reason="test", stage=25, release="1.4.0", config=str(config))
    second = rollback(reason="test again", stage=25, release="1.4.0", config=str(config))
    assert (first.weight_before, first.weight_after, first.verified) == (25, 0, True)
    assert (second.weight_after, second.verified) == (0, True)  # weight 0 written again: harmless
    assert second.steps[0].startswith("took the traffic target: generation")  # newer than the first's
    assert second.fence.generation == first.fence.generation + 1
    assert second.steps[1].startswith("set the canary weight to 0")
    assert sandbox.weight() == 0
    assert len(list((tmp_path / "v1.4.0").glob(layout.ROLLBACKS))) >= 2  # the dry run's too


def test_prometheus_gone_mid_stage_holds_then_rolls_back_never_proceeds(signing_key, tmp_path):
    import os

    from sandbox.control import Sandbox

    own = Sandbox.up(tmp_path / "sandbox", free_ports=True, owner_pid=os.getpid(), rate=20, probe_rate=5,
                     ready_queries=readiness_queries())
    try:
        prometheus = next(c for c in own.status() if c.name == "prometheus")
        settings = flow_settings(own, signing_key, tmp_path / "evidence", [25, 100], policy={"hold_budget_seconds": 9})
        folder = tmp_path / "evidence" / "v1.4.0"
        first_look = lambda f: any(f.glob(layout.judge_look(25, 1, 1)))  # noqa: E731
        with EvidenceWatcher(folder, first_look, lambda: os.kill(prometheus.pid, signal.SIGKILL)):
            state = run_go_live(settings)
        decisions = [r["Decision"] for r in war_room(folder) if r["Stage"] == "25%"]
        assert decisions[:-1] and set(decisions[:-1]) == {"Hold"}
        assert decisions[-1] == "Rollback"
        assert state.name == "RolledBack"
        assert json.loads((folder / layout.stage_record(25)).read_text())["triggers"] == ["metrics-unreachable"]
    finally:
        own.down()


def test_a_stage_rejected_with_golive_approve_rolls_back(sandbox, canary_weight, signing_key, tmp_path):
    import threading
    import time

    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    settings = flow_settings(sandbox, signing_key, tmp_path, [100],
                             policy={"approve_each_stage": True, "approval_timeout_seconds": 120})
    answered = threading.Event()

    def reject() -> None:
        paused = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
        with get_client(sync_client=True) as client:
            while not answered.is_set():
                for run in client.read_flow_runs(flow_run_filter=paused):
                    main(["approve", str(run.id), "--approver", "bob", "--reject", "--reason", "not tonight"])
                    answered.set()
                time.sleep(0.5)

    thread = threading.Thread(target=reject, daemon=True)
    thread.start()
    try:
        state = run_go_live(settings)
    finally:
        answered.set()
        thread.join(timeout=10)
    folder = tmp_path / "v1.4.0"
    assert json.loads((folder / layout.approval(100)).read_text()) | {"at": 0} == {
        "approve": False, "approver": "bob", "reason": "not tonight", "at": 0}
    assert json.loads((folder / layout.stage_record(100)).read_text())["triggers"] == ["manual-abort"]
    assert state.name == "RolledBack"
    assert sandbox.weight() == 0
