"""The evidence ledger: what it writes, where, and what a dying write leaves."""

from __future__ import annotations

import json
import os
import re
import threading

import pytest

from golive.evidence import MANIFEST_LOCK, EvidenceLedger, EvidenceLockError


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


def _sealed(tmp_path) -> EvidenceLedger:
    ledger = EvidenceLedger(tmp_path / "v1")
    ledger.write_json("a.json", {"v": 1})
    ledger.seal("preflight")
    return ledger


def _raised_within(seconds: float, call) -> BaseException | None:
    """What `call` raised, run in a thread of its own; a call still running after `seconds` fails
    the test instead of hanging the suite (the thread is a daemon, left to the process's end)."""
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            raised.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert raised, f"still running after {seconds:g} s"
    return raised[0]


def test_a_dangling_symlink_for_a_lock_is_refused_at_once(tmp_path):
    ledger = _sealed(tmp_path)
    os.symlink(tmp_path / "nowhere", ledger.folder / MANIFEST_LOCK)
    error = _raised_within(5, lambda: ledger.seal("go-live"))
    assert isinstance(error, EvidenceLockError)
    assert re.search(r"\.manifest\.lock: not a lock file .*a symbolic link", str(error))
    assert len(ledger.chain()) == 1


def test_a_folder_where_the_lock_goes_is_one_error_line(tmp_path):
    ledger = _sealed(tmp_path)
    (ledger.folder / MANIFEST_LOCK).mkdir()
    os.utime(ledger.folder / MANIFEST_LOCK, (0, 0))  # old enough that it would be broken as stale
    with pytest.raises(EvidenceLockError, match=r"\.manifest\.lock: not a lock file .*a folder"):
        ledger.seal("go-live")
    assert (ledger.folder / MANIFEST_LOCK).is_dir()


def test_the_wait_for_a_lock_ends_even_when_the_lock_keeps_vanishing(tmp_path, monkeypatch):
    ledger = _sealed(tmp_path)
    (ledger.folder / MANIFEST_LOCK).write_text("")
    monkeypatch.setattr(EvidenceLedger, "_break_if_stale", lambda self, lock: True)  # "released meanwhile", for ever

    def wait() -> None:
        with ledger._locked(wait_seconds=0.2):
            pass

    error = _raised_within(5, wait)
    assert isinstance(error, EvidenceLockError) and "for over 0.2 s" in str(error)


def _write_while(folder, stop: threading.Event) -> None:
    ledger = EvidenceLedger(folder)
    count = 0
    while not stop.is_set():
        ledger.write_bytes(f"sub/file_{count % 40}.txt", os.urandom(64) * 64)
        count += 1


def test_seal_and_verify_survive_a_writer_working_beside_them(tmp_path):
    from golive.signing import SigningKey, generate_key
    from golive.verify import verify_folder

    key = SigningKey.from_file(generate_key(tmp_path / "key")[0])
    folder = tmp_path / "v1"
    folder.mkdir()
    stop = threading.Event()
    writer = threading.Thread(target=_write_while, args=(folder, stop))
    writer.start()
    try:
        for _ in range(40):
            EvidenceLedger(folder).seal("go-live", key)
            verify_folder(folder, key.public_key)
    finally:
        stop.set()
        writer.join()
    EvidenceLedger(folder).seal("go-live", key)
    assert verify_folder(folder, key.public_key).problems == []
