"""The evidence folder: every result written as a readable file, whole or not at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from golive.evidence import EvidenceLedger


@task(name="record evidence", retries=2, retry_delay_seconds=0.5, cache_policy=NO_CACHE)
def record(folder: str, name: str, content: Any) -> str:
    """Write `content` (a model or JSON-able data as indented JSON, a str as text) to folder/name."""
    ledger = EvidenceLedger(folder)
    if isinstance(content, BaseModel):
        content = content.model_dump(mode="json")
    path = ledger.write_text(name, content) if isinstance(content, str) else ledger.write_json(name, content)
    return str(path)


@task(name="seal the evidence (manifest)", cache_policy=NO_CACHE)
def seal(folder: str) -> dict[str, str]:
    """Write manifest.json with the sha256 of every evidence file."""
    return EvidenceLedger(Path(folder)).write_manifest()


@task(name="add a row to the war room", retries=2, retry_delay_seconds=0.5, cache_policy=NO_CACHE)
def add_war_room_row(folder: str, row: dict) -> list[dict]:
    """Append one decision to war_room.json and rewrite war_room.md and war_room.csv from it."""
    from golive import warroom

    ledger = EvidenceLedger(folder)
    rows = ledger.read_json("war_room.json") if ledger.path("war_room.json").exists() else []
    rows.append(row)
    ledger.write_json("war_room.json", rows)
    ledger.write_text("war_room.md", warroom.to_markdown(rows))
    ledger.write_text("war_room.csv", warroom.to_csv(rows))
    return rows


@task(name="read the stage records", cache_policy=NO_CACHE)
def read_stage_records(folder: str, stages: list[int]) -> list[dict]:
    """The stage_<pct>.json files written so far, in stage order (the closing's source of truth)."""
    ledger = EvidenceLedger(folder)
    return [ledger.read_json(f"stage_{p}.json") for p in stages if ledger.path(f"stage_{p}.json").exists()]
