"""The evidence folder: files written by plain functions, whole, tried again only after an error
that passes; sealing (a task) never yields a quietly unsigned link when the signing key fails."""

from __future__ import annotations

import errno
import json
import os
from datetime import datetime, timezone

import pytest
from prefect import Task

from golive import layout
from golive.evidence import MANIFEST, EvidenceLedger
from golive.models import Check
from golive.settings import SigningSettings
from golive.warroom import WarRoomRow
from tasks.evidence import (UnsignedSealError, add_war_room_row, inspect_folder, list_evidence, read_stage_records,
                            record, seal)


def test_a_failing_key_stops_the_seal_and_writes_no_link(tmp_path):
    folder = tmp_path / "v1.4.0"
    EvidenceLedger(folder).write_json("preflight.json", {"decision": "GO"})
    with pytest.raises(UnsignedSealError, match="preflight: evidence not sealed, the signing key fails"):
        seal.fn(str(folder), "preflight", SigningSettings(key_path=str(tmp_path / "absent.pem")))
    assert not (folder / MANIFEST).exists()


def test_evidence_is_written_and_read_by_plain_functions_and_sealed_by_a_task():
    for plain in (record, add_war_room_row, list_evidence, read_stage_records, inspect_folder):
        assert not isinstance(plain, Task), plain.__name__
    assert isinstance(seal, Task)


def test_a_record_is_a_readable_file_of_its_kind(tmp_path):
    folder = str(tmp_path / "v1.4.0")
    record(folder, "check.json", Check(name="config", ok=True, detail="fine"))
    record(folder, "data.json", {"decision": "GO"})
    record(folder, "note.txt", "GO\n")
    record(folder, "picture.png", b"\x89PNG")
    assert json.loads((tmp_path / "v1.4.0" / "check.json").read_text())["name"] == "config"
    assert json.loads((tmp_path / "v1.4.0" / "data.json").read_text()) == {"decision": "GO"}
    assert (tmp_path / "v1.4.0" / "note.txt").read_text() == "GO\n"
    assert (tmp_path / "v1.4.0" / "picture.png").read_bytes() == b"\x89PNG"
    assert list_evidence(folder) == ["check.json", "data.json", "note.txt", "picture.png"]


def _failing_first(monkeypatch, errors: list[int]) -> list[str]:
    """Each file write raises OSError(errno) for each of `errors` in turn, then writes; the names
    asked for."""
    original, calls = EvidenceLedger.write_bytes, []

    def write(self, name, data):
        calls.append(name)
        if errors:
            code = errors.pop(0)
            raise OSError(code, os.strerror(code), name)
        return original(self, name, data)

    monkeypatch.setattr(EvidenceLedger, "write_bytes", write)
    monkeypatch.setattr("tasks.evidence.time.sleep", lambda _s: None)
    return calls


def test_a_write_that_meets_a_passing_error_is_tried_again(tmp_path, monkeypatch):
    calls = _failing_first(monkeypatch, [errno.ESTALE, errno.EAGAIN])
    record(str(tmp_path), "preflight.json", {"decision": "GO"})
    assert calls == ["preflight.json"] * 3
    assert json.loads((tmp_path / "preflight.json").read_text()) == {"decision": "GO"}


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO])
def test_a_full_or_refused_disk_fails_the_write_at_once(tmp_path, monkeypatch, code):
    calls = _failing_first(monkeypatch, [code])
    with pytest.raises(OSError) as exc:
        record(str(tmp_path), "preflight.json", {"decision": "GO"})
    assert exc.value.errno == code and calls == ["preflight.json"]


def test_a_retried_war_room_file_never_repeats_a_row(tmp_path, monkeypatch):
    folder = str(tmp_path)
    add_war_room_row(folder, WarRoomRow.from_verdict(datetime.now(timezone.utc), 1, "Proceed", {}))
    calls = _failing_first(monkeypatch, [errno.EAGAIN])  # the rows' own file, first
    add_war_room_row(folder, WarRoomRow.from_verdict(datetime.now(timezone.utc), 5, "Proceed", {}))
    assert calls == [layout.WAR_ROOM_JSON, layout.WAR_ROOM_JSON, layout.WAR_ROOM_MD, layout.WAR_ROOM_CSV]
    rows = json.loads((tmp_path / layout.WAR_ROOM_JSON).read_text())
    assert len(rows) == 2
    table = [line for line in (tmp_path / layout.WAR_ROOM_MD).read_text().splitlines() if line.startswith("|")]
    assert len(table) == 2 + 2  # header, rule, one line a row
