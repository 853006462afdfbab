"""A person in the loop: the input a paused stage waits for (Prefect UI or `golive approve`)."""

from __future__ import annotations

from prefect.input import RunInput


class StageApproval(RunInput):
    """Raise the canary to the next stage?"""

    approve: bool
    approver: str
    reason: str = ""
