"""Sealing the evidence: a signing key that fails never yields a quietly unsigned link."""

from __future__ import annotations

import pytest

from golive.evidence import MANIFEST, EvidenceLedger
from golive.settings import SigningSettings
from tasks.evidence import UnsignedSealError, seal


def test_a_failing_key_stops_the_seal_and_writes_no_link(tmp_path):
    folder = tmp_path / "v1.4.0"
    EvidenceLedger(folder).write_json("preflight.json", {"decision": "GO"})
    with pytest.raises(UnsignedSealError, match="preflight: evidence not sealed, the signing key fails"):
        seal.fn(str(folder), "preflight", SigningSettings(key_path=str(tmp_path / "absent.pem")))
    assert not (folder / MANIFEST).exists()
