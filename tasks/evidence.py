"""The evidence folder: every result written as a readable file, whole or not at all.

Writing and reading the folder are plain functions, not Prefect tasks: a go-live writes over a
hundred files, and a task run each (three state events and a log line, all stored by the server)
cost more than the write and showed nothing the file does not. Sealing is a task: one visible
step per flow, which signs the chain and publishes its head.
"""

from __future__ import annotations

import errno
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from golive import layout
from golive.evidence import EvidenceLedger
from golive.settings import GoLiveSettings, SigningSettings
from golive.signing import SigningError
from tasks.artifacts import publish_chain_head
from tasks.logs import run_logger
from tasks.signing import load_signing_key

__all__ = [
    "ReleaseFolder", "UnsignedSealError", "add_war_room_row", "append_text", "inspect_folder", "list_evidence",
    "read_stage_records", "record", "seal", "update_war_room_row",
]


class ReleaseFolder(BaseModel):
    """A folder of evidence and the key that seals it, so a flow names neither at each write.

    `record` and `seal` call the functions of the same names (`seal` is a Prefect task); the
    folder itself is plain data and may be passed to a subflow.
    """

    path: str
    signing: SigningSettings | None = None

    @classmethod
    def of(cls, settings: GoLiveSettings) -> ReleaseFolder:
        """The release's own folder, sealed with the release's key."""
        return cls(path=str(settings.evidence_dir), signing=settings.process.signing)

    def __str__(self) -> str:
        return self.path

    @property
    def ledger(self) -> EvidenceLedger:
        return EvidenceLedger(self.path)

    def has(self, name: str) -> bool:
        return self.ledger.path(name).exists()

    def read_json(self, name: str) -> Any:
        return self.ledger.read_json(name)

    def record(self, name: str, content: Any) -> str:
        """Write `content` as `name` (see `record`); returns the file's path."""
        return record(self.path, name, content)

    def seal(self, flow_name: str) -> dict:
        """Append `flow_name`'s link to the manifest, signed with this folder's key when usable."""
        return seal(self.path, flow_name, self.signing)


# An error that passes by itself: a busy or stale handle on a network file system. A full disk, a
# read-only or refused folder does not, and waiting on it would only delay a rollback behind it.
TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE})
RETRY_DELAYS = (0.2, 0.5)


def _written(write: Callable[[], Path]) -> Path:
    """One whole-file write, tried again after a transient error only. Each file is retried on its
    own, never a read-modify-write, so a retry cannot append a row twice."""
    for delay in RETRY_DELAYS:
        try:
            return write()
        except OSError as exc:
            if exc.errno not in TRANSIENT_ERRNOS:
                raise
        time.sleep(delay)
    return write()


def record(folder: str, name: str, content: Any) -> str:
    """Write `content` (a model or JSON-able data as indented JSON, a str as text, bytes as they
    are) to folder/name; returns the file's path."""
    ledger = EvidenceLedger(folder)
    if isinstance(content, BaseModel):
        content = content.model_dump(mode="json")
    if isinstance(content, bytes):
        return str(_written(lambda: ledger.write_bytes(name, content)))
    if isinstance(content, str):
        return str(_written(lambda: ledger.write_text(name, content)))
    return str(_written(lambda: ledger.write_json(name, content)))


class UnsignedSealError(SigningError):
    """The signing key failed and `process.signing.required` is true: no unsigned seal is written."""


@task(name="seal the evidence", cache_policy=NO_CACHE)
def seal(folder: str, flow_name: str, signing: SigningSettings | None = None) -> dict:
    """Append this flow's link to the manifest's hash chain, signed with the key.

    A key that fails raises UnsignedSealError, unless `signing.required` is false: then the link
    is written unsigned with a warning (and `evidence verify` names it).
    """
    signer = None
    if signing is not None:
        try:
            signer = load_signing_key(signing)
        except SigningError as exc:
            if signing.required:
                raise UnsignedSealError(f"{flow_name}: evidence not sealed, the signing key fails: {exc}") from None
            run_logger().warning("evidence sealed unsigned (process.signing.required is false): %s", exc)
    link = EvidenceLedger(Path(folder)).seal(flow_name, signer)
    publish_chain_head(Path(folder).name, link["seq"], link["head"], flow_name)
    return {k: v for k, v in link.items() if k != "files"} | {"files": len(link["files"])}


def add_war_room_row(folder: str, row: dict) -> list[dict]:
    """Append one decision to the war room's rows and rewrite its table and CSV from them."""
    from golive import warroom  # pandas, loaded by the flows that decide only

    ledger = EvidenceLedger(folder)
    rows = ledger.read_json(layout.WAR_ROOM_JSON) if ledger.path(layout.WAR_ROOM_JSON).exists() else []
    rows.append(row)
    _written(lambda: ledger.write_json(layout.WAR_ROOM_JSON, rows))
    _written(lambda: ledger.write_text(layout.WAR_ROOM_MD, warroom.to_markdown(rows)))
    _written(lambda: ledger.write_text(layout.WAR_ROOM_CSV, warroom.to_csv(rows)))
    return rows


def update_war_room_row(folder: str, stage: str, decision: str, changes: dict) -> bool:
    """Add `changes` to the last row of `stage` (`25%`) that decided `decision` and rewrite the
    table from the rows; False when there is no such row (nothing is written)."""
    from golive import warroom

    ledger = EvidenceLedger(folder)
    rows = ledger.read_json(layout.WAR_ROOM_JSON) if ledger.path(layout.WAR_ROOM_JSON).exists() else []
    mine = [row for row in rows if row.get("Stage") == stage and row.get("Decision") == decision]
    if not mine:
        return False
    mine[-1].update(changes)
    _written(lambda: ledger.write_json(layout.WAR_ROOM_JSON, rows))
    _written(lambda: ledger.write_text(layout.WAR_ROOM_MD, warroom.to_markdown(rows)))
    return True


def append_text(folder: str, name: str, text: str) -> str:
    """`text` added at the end of the text file `name` (written whole again, through a rename)."""
    ledger = EvidenceLedger(folder)
    before = ledger.path(name).read_text(encoding="utf-8") if ledger.path(name).exists() else ""
    return str(_written(lambda: ledger.write_text(name, before + text)))


def read_stage_records(folder: str, stages: list[int]) -> list[dict]:
    """The stage records written so far, in stage order (the closing's source of truth)."""
    ledger = EvidenceLedger(folder)
    return [ledger.read_json(layout.stage_record(p)) for p in stages if ledger.path(layout.stage_record(p)).exists()]


def inspect_folder(folder: str) -> dict:
    """Whether a file can be written in `folder` (created if absent), and the evidence already there."""
    ledger = EvidenceLedger(folder)
    try:
        probe = ledger.write_text(".write-probe", "ok\n")
        probe.unlink()
        error = None
    except OSError as exc:
        error = exc.strerror or str(exc)
    return {"writable_error": error, "files": ledger.files()}


def list_evidence(folder: str) -> list[str]:
    """The evidence files in `folder`, relative names, sorted."""
    return EvidenceLedger(folder).files()
