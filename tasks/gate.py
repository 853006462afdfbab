"""The judge as a task, so that every judgement is a run in the Prefect UI. It touches nothing:
the decision is `golive.judge`, a pure function."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.judge import judge
from golive.scenario import parse_scenario
from golive.signals import Signal


@task(name="judge the signals", cache_policy=NO_CACHE)
def judge_window(scenario: dict, catalogue: tuple[Signal, ...]) -> dict:
    """Proceed / hold / rollback for one window (contracts/judge.md's verdict)."""
    return judge(parse_scenario(scenario, catalogue)).to_dict()
