"""The judge as a task, so that every judgement is a run in the Prefect UI. It touches nothing:
the decision is `golive.judge`, a pure function."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from golive.judge import judge
from golive.scenario import Scenario


@task(name="judge the signals", cache_policy=NO_CACHE)
def judge_window(scenario: Scenario) -> dict:
    """Proceed / hold / rollback for one window, in docs/judge.md's form.

    Args:
        scenario: the window's judge input, with its catalogue and policy.
    """
    return judge(scenario).to_dict()
