"""`golive deployment add 1.5.0`: the next release's go-live deployment, appended to prefect.yaml;
and the server's half of the safety net, installed by `golive server up`, `golive deployment
safety-net` and `prefect deploy` (a build step).

Appended as text after the last one, so the file's comments and anchors stay as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from golive.validation import parse_release

__all__ = ["HEARTBEAT_SECONDS", "SILENCE_SECONDS", "SILENT_RUNS_AUTOMATION", "DeploymentError", "add_release",
           "install_safety_net", "silent_runs_automation"]

HEARTBEAT_SECONDS = 30  # Prefect's minimum
# Three beats missed. A pause shorter than SILENCE_SECONDS - HEARTBEAT_SECONDS (a GC, a busy machine
# whose beat and whose server are both late) is ridden out; a run silent longer is called Crashed
# and rolled back. Calling a slow run Crashed is safe (the rollback fences it at the router, and it
# ends Superseded when it wakes) but costs the release its go-live, so the margin is generous.
SILENCE_SECONDS = 90
SILENT_RUNS_AUTOMATION = "golive: a go-live whose heartbeats stop is Crashed"
# The flows that run inside a go-live's process: the stage's subflow would otherwise stay Running.
_GO_LIVE_FLOWS = ["go-live", "canary-stage"]


class DeploymentError(ValueError):
    """prefect.yaml cannot take the deployment; one line saying why."""


def _entry(release: str) -> str:
    return f"""
  - name: v{release}
    entrypoint: flows/go_live.py:go_live
    description: Take v{release} live, 1 → 5 → 25 → 50 → 100 %, gated on the eight golden signals.
    parameters:
      release: "{release}"
      blocks: *blocks
    work_pool:
      <<: *golive_local
      job_variables:
        env: {{PREFECT_FLOWS_HEARTBEAT_FREQUENCY: "{HEARTBEAT_SECONDS}"}}  # beats the safety net listens for
"""


def add_release(path: Path, release: str) -> None:
    try:
        parse_release(release)
    except ValueError as exc:
        raise DeploymentError(f"release: {exc}") from None
    try:
        text = path.read_text()
    except OSError as exc:
        raise DeploymentError(f"{path}: {exc.strerror}") from None
    deployments = (yaml.safe_load(text) or {}).get("deployments") or []
    if any(d.get("name") == f"v{release}" and d.get("entrypoint", "").endswith(":go_live") for d in deployments):
        raise DeploymentError(f"{path}: go-live/v{release} is already there")
    updated = text.rstrip("\n") + "\n" + _entry(release)
    if len(yaml.safe_load(updated)["deployments"]) != len(deployments) + 1:
        raise DeploymentError(f"{path}: the deployments list is not the file's last section")
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(updated)
    os.replace(partial, path)


def silent_runs_automation():
    """Prefect's "detect zombie flows" automation, for go-live runs: after each heartbeat, another
    one or a final state within SILENCE_SECONDS, or the run is marked Crashed, which fires the
    rollback deployment's trigger."""
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=SILENT_RUNS_AUTOMATION,
        description=f"go-live runs beat every {HEARTBEAT_SECONDS} s (PREFECT_FLOWS_HEARTBEAT_FREQUENCY); "
                    f"{SILENCE_SECONDS} s of silence means the process or its machine is gone.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification({"prefect.resource.role": "flow",
                                                 "prefect.resource.name": _GO_LIVE_FLOWS}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=SILENCE_SECONDS),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"no heartbeat for {SILENCE_SECONDS} s: the run's process is gone")],
    )


def install_safety_net(api_url: str | None = None) -> dict[str, str]:
    """Create the silent-runs automation on the server (PREFECT_API_URL, or `api_url`), or bring
    it up to date; returns its id. Safe to run at every deploy."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    wanted = silent_runs_automation()
    with temporary_settings({PREFECT_API_URL: api_url} if api_url else {}), get_client(sync_client=True) as client:
        found = client.read_automations_by_name(SILENT_RUNS_AUTOMATION)
        if found:
            client.update_automation(found[0].id, wanted)
            for extra in found[1:]:
                client.delete_automation(extra.id)
            return {"automation_id": str(found[0].id)}
        return {"automation_id": str(client.create_automation(wanted))}
