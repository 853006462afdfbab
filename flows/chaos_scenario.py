"""chaos-scenario: a named fault switched on for a window; the gate must see it, and it must pass.

On the sandbox the canary's fault switch turns it on; the eight signals are read over the
window and judged like a stage (it must not proceed), then the fault goes off and the scenario's
signal must come back under its threshold. On a real system a configured command runs instead
(`game_day.chaos_commands`), its exit code and output recorded.
"""

from __future__ import annotations

import random
import time

from prefect import flow, get_run_logger

from golive import layout
from golive.drills import CHAOS_SCENARIOS
from golive.settings import GoLiveSettings
from tasks.evidence import ReleaseFolder
from tasks.faults import run_command, switch_fault_on, switch_faults_off
from tasks.gate import judge_window
from tasks.prometheus import query_signals

SETTLE_SECONDS = 1.5


def pick_scenario(name: str | None, seed: int | None) -> tuple[str, int | None]:
    """The named scenario, or one chosen at random with a recorded seed."""
    if name:
        if name not in CHAOS_SCENARIOS:
            raise ValueError(f"scenario: expected one of {', '.join(CHAOS_SCENARIOS)}, got {name!r}")
        return name, None
    seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
    return random.Random(seed).choice(sorted(CHAOS_SCENARIOS)), seed


def _judge(settings: GoLiveSettings, start: float, end: float) -> dict:
    time.sleep(max(0.0, end + SETTLE_SECONDS - time.time()))
    window = query_signals(settings, 50, start, end)
    return judge_window(window.scenario, settings.catalogue())


@flow(name="chaos-scenario", flow_run_name="chaos {name}")
def chaos_scenario(settings: GoLiveSettings, folder: str, name: str) -> dict:
    scenario = CHAOS_SCENARIOS[name]
    game_day = settings.game_day
    if name in game_day.chaos_commands or settings.canary_admin_url is None:
        command = game_day.chaos_commands.get(name)
        if command is None:
            result = {"ok": False, "failures": [f"no fault switch and no command for {name}"], "summary": "not run"}
        else:
            run = run_command(command)
            result = {"ok": run["exit_code"] == 0, "run": run, "summary": f"`{command}` exit {run['exit_code']}",
                      "failures": [] if run["exit_code"] == 0 else [f"`{command}` exited {run['exit_code']}"]}
    else:
        interval = settings.interval_seconds
        count = max(settings.judge_policy().min_intervals, round(game_day.chaos_window_seconds / interval))
        switch_fault_on(settings.canary_admin_url, scenario.faults)
        start = time.time()
        try:
            during = _judge(settings, start, start + count * interval)
        finally:
            switch_faults_off(settings.canary_admin_url)
        cleared = time.time()
        after = _judge(settings, cleared + interval, cleared + interval * (1 + settings.judge_policy().min_intervals))
        seen = during["signals"][scenario.signal]
        mended = after["signals"][scenario.signal]
        failures = []
        if during["decision"] == "proceed" or seen["verdict"] == "pass":
            failures.append(f"the gate let {scenario.signal} pass during {name}")
        elif seen["baseline"] is not None and seen["canary"] is not None and seen["canary"] <= seen["baseline"]:
            failures.append(f"{scenario.signal} was no worse on the canary than on stable during {name}")
        if mended["verdict"] == "breach":
            failures.append(f"{scenario.signal} still over its threshold after the fault went off")
        result = {"ok": not failures, "failures": failures,
                  "summary": f"{name}: gate {during['decision'].upper()} during ({scenario.signal} {seen['verdict']}), "
                             f"{mended['verdict']} after",
                  "during": {"decision": during["decision"], "reason": during["reason"], "signal": seen},
                  "after": {"decision": after["decision"], "signal": mended}}
    result["inputs"] = {"scenario": name, "what": scenario.what, "faults": scenario.faults,
                        "expect": f"{scenario.signal}: the gate does not proceed; mended after"}
    evidence = ReleaseFolder(path=folder, signing=settings.signing)
    evidence.record(layout.chaos(name), result)
    evidence.seal("chaos-scenario")
    if not result["ok"]:
        get_run_logger().error("chaos %s: %s", name, "; ".join(result["failures"]))
    return result
