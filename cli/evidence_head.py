"""The evidence chain's head as Prefect holds it, for `golive evidence verify --from-prefect RUN_ID`:
outside the folder, so a cut at the folder's end cannot also rewrite it."""

from __future__ import annotations

import re
import uuid

__all__ = ["HeadNotFound", "published_head"]

_HEAD = re.compile(r"\bevidence head ([0-9a-f]{64})\b")
_ARTIFACT_HEAD = re.compile(r"`([0-9a-f]{64})`")


class HeadNotFound(Exception):
    """Prefect holds no chain head for the run and folder; the message says what was looked at."""


def _runs_under(client, run_id: uuid.UUID) -> list[uuid.UUID]:
    """The run and every sub-flow run below it: each may have sealed the folder."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    found, parents = [run_id], [run_id]
    while parents:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=parents)))
        parents = [child.id for child in children if child.id not in found]
        found += parents
    return found


def published_head(run_ref: str, folder_name: str) -> tuple[str, str]:
    """The head the run published last, and where it was read: the run's final state message
    (`… evidence head <sha256>`), else the newest `evidence-head-<folder>` artifact the run (or a
    sub-flow of it) created. HeadNotFound in one line otherwise."""
    import httpx
    from prefect.exceptions import ObjectNotFound

    try:
        run_id = uuid.UUID(run_ref)
    except ValueError:
        raise HeadNotFound(f"--from-prefect: {run_ref!r} is not a flow run id") from None
    try:
        return _read_head(run_id, folder_name)
    except ObjectNotFound:
        raise HeadNotFound(f"--from-prefect: no flow run {run_id} on this Prefect server") from None
    except httpx.HTTPError as exc:
        raise HeadNotFound(f"--from-prefect: the Prefect API cannot be read: {type(exc).__name__}: {exc}") from None


def _read_head(run_id: uuid.UUID, folder_name: str) -> tuple[str, str]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from tasks.artifacts import head_artifact_key

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        said = _HEAD.findall(run.state.message or "") if run.state else []
        if said:
            return said[-1], f"the final state of flow run {run.name!r}"
        key = head_artifact_key(folder_name)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]),
                                           flow_run_id=ArtifactFilterFlowRunId(any_=_runs_under(client, run_id))),
            sort=ArtifactSort.CREATED_DESC, limit=1)
    for artifact in artifacts:
        found = _ARTIFACT_HEAD.search(str(artifact.data))
        if found:
            return found.group(1), f"artifact {key} of flow run {run.name!r}"
    raise HeadNotFound(f"--from-prefect: flow run {run.name!r} ({run_id}) published no head of {folder_name}: "
                       f"not in its state message, no artifact {key}")
