"""The judge as a task, so that every judgement is a run in the Prefect UI. It touches nothing:
the decision is `golive.judge`, a pure function."""

from __future__ import annotations

from dataclasses import replace

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.judge import judge
from golive.scenario import Scenario
from golive.signals import Signal


@task(name="judge the signals", cache_policy=NO_CACHE)
def judge_window(scenario: Scenario, catalogue: tuple[Signal, ...] | None = None) -> dict:
    """Proceed / hold / rollback for one window, in docs/judge.md's form.

    Args:
        scenario: the window's judge input, with its catalogue and policy.
        catalogue: replaces the scenario's catalogue when given (callers that still pass it).
    """
    return judge(scenario if catalogue is None else replace(scenario, catalogue=catalogue)).to_dict()
