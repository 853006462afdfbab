"""Prefect's UI: the war room and the release summary as artifacts."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE


def _key(text: str) -> str:
    # Artifact keys: lowercase letters, digits and dashes.
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


@task(name="publish the war room", cache_policy=NO_CACHE)
def publish_war_room(release: str, rows: list[dict], summary_markdown: str) -> None:
    create_table_artifact(rows, key=_key(f"war-room-v{release}"), description=f"War room, v{release}")
    create_markdown_artifact(summary_markdown, key=_key(f"release-v{release}"), description=f"Release v{release}")


@task(name="link the evidence folder", cache_policy=NO_CACHE)
def link_evidence(release: str, folder: str) -> None:
    create_link_artifact(f"file://{folder}", link_text=f"evidence v{release}", key=_key(f"evidence-v{release}"))
