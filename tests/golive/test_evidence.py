"""The evidence ledger: what it writes, where, and what a dying write leaves."""

from __future__ import annotations

import json

import pytest

from golive.evidence import EvidenceLedger


def test_evidence_names_cannot_escape_the_release_folder(tmp_path):
    with pytest.raises(ValueError, match="inside the release folder"):
        EvidenceLedger(tmp_path / "v1").write_text("../elsewhere.txt", "x")


def test_a_write_that_dies_midway_leaves_the_previous_file(tmp_path, monkeypatch):
    ledger = EvidenceLedger(tmp_path)
    ledger.write_json("a.json", {"v": 1})

    def disk_gone(_fd):
        raise OSError("no space left on device")

    monkeypatch.setattr("golive.evidence.os.fsync", disk_gone)
    with pytest.raises(OSError, match="no space"):
        ledger.write_json("a.json", {"v": 2})
    assert json.loads((tmp_path / "a.json").read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left behind
