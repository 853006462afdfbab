"""Prefect's UI: the war room and the release summary as artifacts.

Artifacts are copies of what the evidence folder holds, for people watching the UI. A Prefect
API that does not answer (a server restarting) must not stop a stage or a rollback over a copy:
each is published at most once, and a failure is logged, never raised.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from golive.stage import stage_name
from golive.warroom import cell_text, columns
from tasks.logs import run_logger


# Outside a run (`golive rollback` with no server to record it) Prefect calls an artifact
# deprecated; it is stored all the same, and the warning tells an operator nothing.
warnings.filterwarnings("ignore", message="Artifact creation outside of a flow or task run is deprecated",
                        category=FutureWarning)


def _key(text: str) -> str:
    # Artifact keys: lowercase letters, digits and dashes.
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _publish(what: str, create: Callable[[], object]) -> bool:
    """`create()` an artifact; False (logged) when the API would not take it."""
    try:
        create()
        return True
    except Exception as exc:  # noqa: BLE001 - a copy for the UI; the evidence on disk is the record
        run_logger().warning("the %s artifact was not published (the Prefect API: %s); the evidence folder has it",
                       what, f"{type(exc).__name__}: {exc}"[:300])
        return False


@task(name="publish the war room", cache_policy=NO_CACHE)
def publish_war_room(release: str, rows: list[dict], summary_markdown: str) -> None:
    _publish("war room", lambda: create_table_artifact(rows, key=_key(f"war-room-v{release}"),
                                                       description=f"War room, v{release}"))
    _publish("release summary", lambda: create_markdown_artifact(summary_markdown, key=_key(f"release-v{release}"),
                                                                 description=f"Release v{release}"))


@task(name="link the evidence folder", cache_policy=NO_CACHE)
def link_evidence(release: str, folder: str) -> None:
    _publish("evidence link", lambda: create_link_artifact(f"file://{folder}", link_text=f"evidence v{release}",
                                                           key=_key(f"evidence-v{release}")))


def head_artifact_key(folder_name: str) -> str:
    """The key of the artifact that keeps an evidence folder's chain head."""
    return _key(f"evidence-head-{folder_name}")


def publish_chain_head(folder_name: str, seq: int, head: str, flow_name: str) -> bool:
    """The evidence chain's head, kept outside the folder: `golive evidence verify --expect-head`
    against it proves no link was cut from the end. False when the API did not take it (the run's
    final state message carries the head too)."""
    return _publish("evidence chain head", lambda: create_markdown_artifact(
        f"`{head}` (link {seq}, sealed by {flow_name})", key=head_artifact_key(folder_name),
        description=f"Evidence chain head of {folder_name}: verify with --expect-head"))


@task(name="publish the stage's signals", cache_policy=NO_CACHE)
def publish_stage(release: str, percent: int, decision: str, reason: str, signals: dict, war_room_row: dict) -> None:
    """The stage's decision as a table: each signal's canary and stable value against its rule."""
    table = [{"signal": name, "canary": v.get("canary"), "stable": v.get("baseline"), "rule": v.get("rule"),
              "verdict": v.get("verdict"), "detail": v.get("detail")} for name, v in signals.items()]
    row = " | ".join(f"{c} {cell_text(c, war_room_row.get(c))}" for c in columns([war_room_row]))
    _publish("stage", lambda: create_table_artifact(
        table, key=_key(f"stage-{percent}-v{release}"),
        description=f"v{release} stage {stage_name(percent)}: {decision.upper()} ({reason}). War room: {row}"))
