"""chaos-scenario: a named fault switched on for a window; the gate must see it, and it must pass.

On the sandbox the canary's fault switch turns it on; the eight signals are read over the
window and judged like a stage (it must not proceed), then the fault goes off and the scenario's
signal must come back under its threshold. On a real system a configured command runs instead
(`game_day.chaos_commands`), its exit code and output recorded.
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from golive import layout
from golive.drills import CHAOS_SCENARIOS, chaos_command_verdict, chaos_verdict, pick_scenario
from golive.settings import GoLiveSettings
from tasks.evidence import ReleaseFolder
from tasks.faults import run_command, switch_fault_on, switch_faults_off
from tasks.gate import judge_window
from tasks.prometheus import query_signals

SETTLE_SECONDS = 1.5

# pick_scenario is the core's; the game-day flow still imports it from here.
__all__ = ["chaos_scenario", "pick_scenario"]


def _judge(settings: GoLiveSettings, start: float, end: float) -> dict:
    time.sleep(max(0.0, end + SETTLE_SECONDS - time.time()))
    window = query_signals(settings.prometheus, settings.policy, 50, start, end)
    return judge_window(window.scenario)


@flow(name="chaos-scenario", flow_run_name="chaos {name}")
def chaos_scenario(settings: GoLiveSettings, folder: str, name: str) -> dict:
    scenario = CHAOS_SCENARIOS[name]
    game_day = settings.process.game_day
    if name in game_day.chaos_commands or settings.target.canary_admin_url is None:
        command = game_day.chaos_commands.get(name)
        run = run_command(command) if command is not None else None
        result = chaos_command_verdict(name, command, run["exit_code"] if run else None)
        if run:
            result["run"] = run
    else:
        interval = settings.policy.interval_seconds
        min_intervals = settings.policy.judge_policy().min_intervals
        count = max(min_intervals, round(game_day.chaos_window_seconds / interval))
        switch_fault_on(settings.target.canary_admin_url, scenario.faults)
        start = time.time()
        try:
            during = _judge(settings, start, start + count * interval)
        finally:
            switch_faults_off(settings.target.canary_admin_url)
        cleared = time.time()
        after = _judge(settings, cleared + interval, cleared + interval * (1 + min_intervals))
        result = chaos_verdict(scenario, during, after)
    result["inputs"] = {"scenario": name, "what": scenario.what, "faults": scenario.faults,
                        "expect": f"{scenario.signal}: the gate does not proceed; mended after"}
    evidence = ReleaseFolder(path=folder, signing=settings.process.signing)
    evidence.record(layout.chaos(name), result)
    evidence.seal("chaos-scenario")
    if not result["ok"]:
        get_run_logger().error("chaos %s: %s", name, "; ".join(result["failures"]))
    return result
