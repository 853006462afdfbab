"""`golive evidence verify` fails a folder whose records tell two stories: a Live one-liner and
criteria beside a rollback sealed before them (what a paused go-live that woke after its
rollback used to write), and passes the same records in the order a real night writes them."""

from __future__ import annotations

import pytest

from golive import layout
from golive.evidence import EvidenceLedger
from golive.signing import SigningKey, generate_key
from golive.verify import verify_folder

ROLLBACK = "rollback_20261204T010203Z_000000_abcd1234.txt"
LIVE_ONELINER = "v1.4.0 canary: 1%→5%→25%→50%→100% in 2m10s, holds=0, rollback=0; p95=~141ms; 8/8 green\n"


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> SigningKey:
    private_path, _ = generate_key(tmp_path_factory.mktemp("key"))
    return SigningKey.from_file(private_path)


def _sealed(folder, key, writes):
    ledger = EvidenceLedger(folder)
    for flow, files in writes:
        for name, content in files.items():
            ledger.write_json(name, content) if isinstance(content, dict) else ledger.write_text(name, content)
        ledger.seal(flow, key)
    return ledger


def test_a_live_oneliner_sealed_after_a_rollback_fails_verify(tmp_path, key):
    ledger = _sealed(tmp_path / "v1.4.0", key, [
        ("canary-stage 5%", {layout.stage_record(5): {"stage": 5, "outcome": "proceed"}}),
        ("rollback", {ROLLBACK: "ROLLBACK v1.4.0\noutcome:        RolledBack\n"}),
        ("go-live", {layout.RELEASE_ONELINER: LIVE_ONELINER,
                     layout.SUCCESS_CRITERIA: {"no_rollback": {"ok": True, "records": []}}}),
    ])
    report = verify_folder(ledger.folder, key.public_key)
    assert not report.ok
    assert any(p.startswith(f"{layout.RELEASE_ONELINER}: says rollback=0, but {ROLLBACK}") for p in report.problems)
    assert any(p.startswith(f"{layout.SUCCESS_CRITERIA}: says no_rollback is met") for p in report.problems)


def test_a_rollback_after_live_is_a_later_event_and_verifies(tmp_path, key):
    ledger = _sealed(tmp_path / "v1.4.0", key, [
        ("go-live", {layout.RELEASE_ONELINER: LIVE_ONELINER,
                     layout.SUCCESS_CRITERIA: {"no_rollback": {"ok": True, "records": []}}}),
        ("rollback", {ROLLBACK: "ROLLBACK v1.4.0 (error-budget-burn)\n"}),
    ])
    assert verify_folder(ledger.folder, key.public_key).problems == []
