"""A person in the loop: the input a paused stage waits for (Prefect UI or `golive approve`)."""

from __future__ import annotations

from prefect.input import RunInput


class StageApproval(RunInput):
    """Raise the canary to the next stage?"""

    approve: bool
    approver: str
    reason: str = ""


def resume_stage(run_id: str, approve: bool, approver: str, reason: str = "") -> str:
    """Answer the paused stage of go-live run `run_id` (or the paused stage run itself); returns
    the name of the run answered. LookupError when nothing under it waits."""
    from uuid import UUID

    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    try:
        wanted = UUID(run_id)
    except ValueError:
        raise LookupError(f"{run_id}: not a flow run id") from None
    answer = {"approve": approve, "approver": approver, "reason": reason}
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(wanted)
        except ObjectNotFound:
            raise LookupError(f"{run_id}: no such flow run") from None
        if run.state_type != StateType.PAUSED:
            paused = FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[wanted]),
                                   state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
            children = client.read_flow_runs(flow_run_filter=paused)
            if not children:
                raise LookupError(f"{run.name} ({run_id}) is {run.state_name} and no stage under it waits for approval")
            run = children[0]
        client.resume_flow_run(run.id, run_input=answer)
    return f"{run.name} ({run.id})"
