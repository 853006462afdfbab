"""`golive deployment add 1.5.0`: the next release's go-live deployment, appended to prefect.yaml;
and the server's half of the safety net, installed by `golive server up`, `golive deployment
safety-net` and `prefect deploy` (a build step).

Appended as text after the last one, so the file's comments and anchors stay as they are.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import yaml

from golive.validation import escape_line, parse_release

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


# Far more than a prefect.yaml holds; a file past it (or a device that never ends) is not one.
MAX_FILE_BYTES = 1 << 20


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
    """Append go-live/v<release> to the deployments of `path`; DeploymentError, in one line
    naming the file, for a file that is not a prefect.yaml it can append to (nothing written)."""
    try:
        parse_release(release)
    except ValueError as exc:
        raise DeploymentError(f"release: {exc}") from None
    shown = escape_line(path)
    try:
        if path.is_symlink():
            raise DeploymentError(f"{shown}: a symbolic link; name the file it points to (it is replaced whole)")
        if path.exists() and not path.is_file():
            raise DeploymentError(f"{shown}: not a file")
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise DeploymentError(f"{shown}: larger than {MAX_FILE_BYTES // 1024} KiB, not a prefect.yaml")
        text = data.decode("utf-8")
    except OSError as exc:
        raise DeploymentError(f"{shown}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DeploymentError(f"{shown}: not UTF-8 text (byte {exc.start})") from None
    deployments = _deployments(text, shown)
    if any(d.get("name") == f"v{release}" and d.get("entrypoint", "").endswith(":go_live") for d in deployments):
        raise DeploymentError(f"{shown}: go-live/v{release} is already there")
    updated = text.rstrip("\n") + "\n" + _entry(release)
    if len(_deployments(updated, shown)) != len(deployments) + 1:
        raise DeploymentError(f"{shown}: the deployments list is not the file's last section")
    # A scratch file of its own (O_EXCL, never a link), renamed over the file when whole.
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(updated)
        os.chmod(partial, stat.S_IMODE(path.stat().st_mode))
        os.replace(partial, path)
    except OSError as exc:
        Path(partial).unlink(missing_ok=True)
        raise DeploymentError(f"{shown}: {exc.strerror}") from None


def _deployments(text: str, shown: str) -> list[dict]:
    """The `deployments` of a prefect.yaml, each checked for the fields read here."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise DeploymentError(f"{shown}: invalid YAML{where} ({escape_line(exc.problem)})") from None
    except yaml.YAMLError as exc:
        raise DeploymentError(f"{shown}: invalid YAML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise DeploymentError(f"{shown}: nested too deeply") from None
    data = {} if data is None else data
    deployments = data.get("deployments") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(deployments, list | None):
        raise DeploymentError(f"{shown}: expected a mapping with a `deployments` list")
    for index, deployment in enumerate(deployments or []):
        if not isinstance(deployment, dict):
            raise DeploymentError(f"{shown}: deployments[{index}]: expected a mapping")
        for field in ("name", "entrypoint"):
            if not isinstance(deployment.get(field, ""), str):
                raise DeploymentError(f"{shown}: deployments[{index}].{field}: expected text")
    return deployments or []


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
