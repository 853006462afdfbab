"""The safety net on real parts: a go-live at 25 % whose process is killed, or that is cancelled
through the Prefect API, ends with the sandbox's weight at 0, by the flow's own hooks and by the
rollback deployment's trigger (the second net). The seconds are printed (`-s` shows them). On
the way: `prefect deploy` installs the net and the Monday schedule, a stage waits for
`golive approve`, and a second run of a release that is going live is refused."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest
import yaml

from cli.demo import demo_settings
from cli.deployments import SILENCE_SECONDS, SILENT_RUNS_AUTOMATION
from golive import layout
from golive.settings import merge_settings
from sandbox.processes import alive, children, start_ticks, title
from sandbox.release_repo import create_release_repo
from tests.deployments._prefect import UUID, approve, client, final, flow_run_pid, paused_stage, run, wait, wait_for

pytestmark = pytest.mark.sandbox

KILL_TO_ZERO_BOUND = 120  # the worker reports the crash within seconds; a new process rolls back
CANCEL_TO_ZERO_BOUND = 30
# The endings are under test, not the judge: a busy machine's latency must not end the go-live first.
LATENCY_UNJUDGED = {name: {"threshold": 5000} for name in ("api_p95_ms", "event_loop_p95_ms", "gc_pause_avg_ms")}


@pytest.fixture
def go_live_at_25(prefect, deployed, sandbox, signing_key, github, tmp_path):
    """Starts go-live/v1.4.0 on stages 25 → 100 with a long dwell and an evidence folder of the
    test's own, and returns (flow run id, evidence folder) once the canary serves 25 %. Before and
    after: weight 0 and no go-live locks, whatever another test left."""
    release = "1.4.0"  # the version the sandbox's canary serves
    _free_go_live_locks(prefect)
    sandbox.set_weight(0)

    def start(approve_each_stage: bool = False, approver: str | None = None):
        settings = demo_settings(release, sandbox.golive_settings(), 600, 4, str(tmp_path / "evidence"))
        settings.pop("release")
        repo = create_release_repo(tmp_path / "release" / "spark", release, "1.3.2")
        settings = merge_settings(settings, {"policy": {"stages": [25, 100], "signals": LATENCY_UNJUDGED,
                                                        "shadow": {"enabled": False}}, "process": {
            "blast_radius_seconds": 2, "signing": {**signing_key, "sigstore": "off"}, "git": {"repo": str(repo)},
            "github": {"repository": github.repository, "api_url": github.url}}})
        config = tmp_path / "golive.yaml"
        config.write_text(yaml.safe_dump(settings))
        params = json.dumps({"release": release, "config": str(config), "blocks": None,
                             "approve_each_stage": approve_each_stage})
        run_id = UUID.search(run(prefect, sys.executable, "-m", "prefect", "deployment", "run", "go-live/v1.4.0",
                                 "--params", params)).group()
        if approve_each_stage:
            paused = paused_stage(prefect, run_id)
            assert paused is not None, _read(prefect, run_id).state
            assert sandbox.weight() == 0  # the stage waits for a person before it moves traffic
            assert approve(prefect, str(paused.id), approver) == 0
        wait_for(lambda: sandbox.weight() == 25 or final(_read(prefect, run_id)), 240, "the canary at 25 %", 0.5)
        assert sandbox.weight() == 25, _read(prefect, run_id).state
        return run_id, tmp_path / "evidence" / f"v{release}"

    try:
        yield start
    finally:
        sandbox.set_weight(0)
        _free_go_live_locks(prefect)


def _read(env: dict, run_id: str):
    with client(env) as prefect:
        return prefect.read_flow_run(run_id)


def _free_go_live_locks(env: dict) -> None:
    """A killed run's slots outlive it until their lease runs out; the next test needs them."""
    with client(env) as prefect:
        for limit in prefect.read_global_concurrency_limits(limit=200):
            if limit.name.startswith("go-live-"):
                prefect.delete_global_concurrency_limit_by_name(limit.name)


def _py_spy_children(pid: int) -> list[int]:
    """The py-spy processes `pid` started."""
    return [child for child in children(pid) if "py-spy" in title(child)]


def _trigger_rollback(env: dict, dead_run: str, timeout: float):
    """The rollback run the deployment trigger started for `dead_run`, once it ended."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    def started():
        with client(env) as prefect:
            runs = prefect.read_flow_runs(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["default"])))
        return [r for r in runs if r.parameters.get("crashed_run") == f"prefect.flow-run.{dead_run}"]

    wait_for(lambda: bool(started()), timeout, f"a rollback run for {dead_run}", 0.5)
    (rollback,) = started()
    return wait(env, str(rollback.id), final, timeout=timeout)


def test_prefect_deploy_installs_the_safety_net_and_the_monday_game_day(prefect, deployed):
    """The silent-runs automation, the rollback's trigger, and game day on Mondays at ten in the
    team's zone (the scheduler has made the next runs)."""
    with client(prefect) as prefect_api:
        (automation,) = prefect_api.read_automations_by_name(SILENT_RUNS_AUTOMATION)
        rollback = prefect_api.read_deployment_by_name("rollback/default")
        go_live = prefect_api.read_deployment_by_name("go-live/v1.4.0")
    assert automation.enabled and automation.trigger.within.total_seconds() == SILENCE_SECONDS
    assert automation.trigger.posture.value == "Proactive"
    assert automation.actions[0].state.value == "CRASHED"
    assert go_live.job_variables["env"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "30"
    triggers = [a for a in _automations(prefect) if str(rollback.id) in json.dumps(a, default=str)]
    assert triggers, "no automation runs rollback/default"
    assert {"prefect.flow-run.Crashed", "prefect.flow-run.Cancelled"} <= set(triggers[0]["trigger"]["expect"])
    _assert_mondays_at_ten(prefect, "Europe/Istanbul")


def _assert_mondays_at_ten(env: dict, zone: str) -> None:
    from zoneinfo import ZoneInfo

    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with client(env) as prefect_api:
        deployment = prefect_api.read_deployment_by_name("game-day/monday")
        assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [("0 10 * * 1", zone)]
        deadline = time.monotonic() + 60
        while not (runs := prefect_api.read_flow_runs(deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=["monday"])))) and time.monotonic() < deadline:
            time.sleep(0.5)
    starts = sorted(r.expected_start_time.astimezone(ZoneInfo(zone)) for r in runs)
    assert len(starts) >= 2
    assert all((s.weekday(), s.hour, s.minute) == (0, 10, 0) for s in starts)
    assert all((b - a).days == 7 for a, b in zip(starts, starts[1:]))


def _automations(env: dict) -> list[dict]:
    with client(env) as prefect:
        return [a.model_dump(mode="json") for a in prefect.read_automations()]


def test_an_approved_then_cancelled_go_live_ends_at_weight_zero(prefect, go_live_at_25, sandbox):
    from prefect.states import Cancelling

    run_id, folder = go_live_at_25(approve_each_stage=True, approver="alice")
    assert yaml.safe_load((folder / layout.approval(25)).read_text())["approver"] == "alice"
    with client(prefect) as prefect_api:
        prefect_api.set_flow_run_state(run_id, Cancelling(), force=True)
    seconds = wait_for(lambda: sandbox.weight() == 0, CANCEL_TO_ZERO_BOUND + 30, "weight 0 after the cancel")
    print(f"\ncancel → weight 0: {seconds:.1f} s")
    assert seconds <= CANCEL_TO_ZERO_BOUND
    assert wait(prefect, run_id, final, timeout=120).state.is_cancelled()
    rolled = _trigger_rollback(prefect, run_id, 120)
    assert rolled.state.is_completed(), rolled.state.message
    assert sandbox.weight() == 0
    assert any("cancel" in p.read_text().lower() for p in folder.glob(layout.ROLLBACKS))


def test_a_second_run_is_refused_and_a_killed_go_live_ends_at_weight_zero(prefect, go_live_at_25, sandbox):
    run_id, folder = go_live_at_25()
    same = json.dumps(_read(prefect, run_id).parameters)
    second = UUID.search(run(prefect, sys.executable, "-m", "prefect", "deployment", "run", "go-live/v1.4.0",
                             "--params", same)).group()
    refused = wait(prefect, second, final)
    assert refused.state.name == "Refused"
    assert "is already being" in refused.state.message and run_id in refused.state.message
    assert sandbox.weight() == 25  # the refused run touched nothing

    pid = flow_run_pid(_read(prefect, run_id))
    wait_for(lambda: len(_py_spy_children(pid)) == 2, 30, "the stage's profilers of stable and canary")
    profilers = {child: start_ticks(child) for child in _py_spy_children(pid)}
    os.kill(pid, signal.SIGKILL)
    seconds = wait_for(lambda: sandbox.weight() == 0, KILL_TO_ZERO_BOUND, "weight 0 after the kill")
    print(f"\nprocess killed → weight 0: {seconds:.1f} s")
    assert not [p for p, ticks in profilers.items() if alive(p, ticks)]  # none left sampling the services
    assert wait(prefect, run_id, final, timeout=120).state.is_crashed()
    rolled = _trigger_rollback(prefect, run_id, 120)
    assert rolled.state.is_completed(), rolled.state.message
    assert sandbox.weight() == 0
    assert any("crash" in p.read_text().lower() for p in folder.glob(layout.ROLLBACKS))
