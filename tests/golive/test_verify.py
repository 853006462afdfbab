"""`golive evidence verify` against a tampered folder: one test per way of tampering."""

from __future__ import annotations

import json
import os

import pytest

from cli.main import main
from golive.evidence import MANIFEST, MANIFEST_LOCK, EvidenceLedger, EvidenceLockError
from golive.ritual import provenance_statement
from golive.signing import SigningKey, generate_key
from golive.verify import verify_folder


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> SigningKey:
    private_path, _ = generate_key(tmp_path_factory.mktemp("key"))
    return SigningKey.from_file(private_path)


@pytest.fixture
def ledger(tmp_path, key) -> EvidenceLedger:
    ledger = EvidenceLedger(tmp_path / "v1.4.0")
    ledger.write_json("preflight.json", {"decision": "GO"})
    ledger.seal("preflight", key)
    ledger.write_json("stage_1.json", {"decision": "proceed"})
    ledger.seal("canary-stage 1%", key)
    ledger.write_text("rollback_20260101T000000Z.txt", "ROLLBACK v1.4.0\n")
    ledger.seal("rollback", key)
    return ledger


def _cli(ledger: EvidenceLedger, key: SigningKey, *extra: str) -> int:
    public = ledger.folder.parent / "pub.pem"
    public.write_text(key.public_pem())
    return main(["evidence", "verify", str(ledger.folder), "--key", str(public), *extra])


def test_an_untouched_folder_verifies_and_its_head_is_the_last_link(ledger, key):
    report = verify_folder(ledger.folder, key.public_key, expect_head=ledger.chain()[-1]["head"])
    assert report.problems == [] and report.links == 3 and report.head == ledger.chain()[-1]["head"]


def test_links_cut_from_the_end_fail_against_the_published_head(ledger, key, capsys):
    published = ledger.chain()[-1]["head"]
    manifest = ledger.read_json(MANIFEST)
    manifest["chain"] = manifest["chain"][:2]
    ledger.write_json(MANIFEST, manifest)
    (ledger.folder / "rollback_20260101T000000Z.txt").unlink()
    assert verify_folder(ledger.folder, key.public_key).ok  # the cut is invisible without the head
    kept = manifest["chain"][-1]["head"]
    code = _cli(ledger, key, "--expect-head", published)
    out = capsys.readouterr().out
    assert code == 1
    assert (f"FAIL {MANIFEST}: the chain ends at {kept} but {published} was published "
            "(it is not in the chain: links were cut or rewritten)") in out


def test_a_head_published_before_later_links_says_so(ledger, key):
    first = ledger.chain()[0]["head"]
    [problem] = verify_folder(ledger.folder, key.public_key, expect_head=first).problems
    assert problem.endswith("(it is link 1 of 3: links were added after it)")


def test_an_added_dotfile_is_named(ledger, key):
    (ledger.folder / ".hidden").write_text("x\n")
    assert verify_folder(ledger.folder, key.public_key).problems == [".hidden: not in the manifest"]


def test_the_ledgers_own_lock_and_in_progress_files_are_not_evidence(ledger, key):
    (ledger.folder / MANIFEST_LOCK).write_text("{}")
    (ledger.folder / ".stage_1.json.abcd_123.partial").write_text("half")
    assert verify_folder(ledger.folder, key.public_key).ok


def test_a_manifest_in_a_sub_folder_is_named(ledger, key):
    (ledger.folder / "sub").mkdir()
    (ledger.folder / "sub" / MANIFEST).write_text('{"chain": []}')
    assert verify_folder(ledger.folder, key.public_key).problems == [f"sub/{MANIFEST}: not in the manifest"]


def test_a_file_replaced_by_a_symlink_is_refused(ledger, key, tmp_path):
    outside = tmp_path / "copy.json"
    outside.write_bytes((ledger.folder / "stage_1.json").read_bytes())
    (ledger.folder / "stage_1.json").unlink()
    os.symlink(outside, ledger.folder / "stage_1.json")
    assert verify_folder(ledger.folder, key.public_key).problems == [
        "stage_1.json: a symbolic link or special file, refused as evidence"]


def test_a_linked_sub_folder_is_refused(ledger, key, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", ledger.folder / "more")
    assert verify_folder(ledger.folder, key.public_key).problems == [
        "more: a symbolic link or special file, refused as evidence"]


@pytest.mark.parametrize("text, reason", [
    ("{not json", "not JSON"),
    ("[]", "expected an object with a `chain` list"),
    ('{"chain": [1]}', "link 1 is not an object"),
    ('{"chain": [{"files": "x", "head": "h", "previous": null}]}', "link 1: `files` must map names to sha256 digests"),
    ('{"chain": [{"files": {}, "head": 5, "previous": null}]}', "link 1: `head` and `previous` must be digests"),
])
def test_a_malformed_manifest_is_one_fail_line(ledger, key, capsys, text, reason):
    (ledger.folder / MANIFEST).write_text(text)
    code = _cli(ledger, key)
    out = capsys.readouterr().out
    assert code == 1
    assert [line for line in out.splitlines() if line.startswith("FAIL")] == [f"FAIL {MANIFEST}: malformed ({reason})"]


def test_a_provenance_subject_missing_from_the_folder_fails(ledger, key):
    statement = provenance_statement("1.4.0", {"sbom.cdx.json": "a" * 64, "source@0123abc.tar": "b" * 64},
                                     builder_id="urn:test", parameters={}, git=None, started_on="t",
                                     finished_on="t", invocation_id="i")
    ledger.write_json("build_provenance_1.4.0.json", key.envelope(json.dumps(statement).encode()))
    ledger.seal("release-ritual", key)
    assert verify_folder(ledger.folder, key.public_key).problems == [
        "build_provenance_1.4.0.json: subject sbom.cdx.json is missing from the folder"]


def test_a_lock_held_by_a_live_writer_is_waited_for_and_a_dead_ones_is_broken(ledger, key):
    lock = ledger.folder / MANIFEST_LOCK
    lock.write_text(json.dumps({"host": os.uname().nodename, "pid": os.getpid(), "at": 0}))
    with pytest.raises(EvidenceLockError, match="held by"):
        with ledger._locked(wait_seconds=0.2):
            pass
    lock.write_text(json.dumps({"host": os.uname().nodename, "pid": 2 ** 22 + 12345, "at": 0}))
    link = ledger.seal("go-live", key)
    assert link["seq"] == 4 and not lock.exists()


def test_a_nameless_lock_left_by_an_older_writer_is_broken(ledger, key):
    lock = ledger.folder / MANIFEST_LOCK
    lock.write_text("")
    os.utime(lock, (0, 0))
    assert ledger.seal("go-live", key)["seq"] == 4 and not lock.exists()


@pytest.fixture(scope="module")
def other_key(tmp_path_factory) -> SigningKey:
    private_path, _ = generate_key(tmp_path_factory.mktemp("other-key"))
    return SigningKey.from_file(private_path)


def _folder(tmp_path, key: SigningKey):
    ledger = EvidenceLedger(tmp_path / "v1.4.0")
    ledger.write_json("preflight.json", {"decision": "GO"})
    ledger.seal("preflight", key)
    ledger.write_text("notes.txt", "stage 1 fine\n")
    ledger.write_json("notes.txt.dsse.json", key.envelope(b"stage 1 fine\n", "text/plain"))
    ledger.seal("canary-stage 1%", key)
    return ledger


def test_each_seal_appends_a_link_that_names_the_one_before(tmp_path, key):
    ledger = _folder(tmp_path, key)
    first, second = ledger.chain()
    assert (first["seq"], first["previous"], list(first["files"])) == (1, None, ["preflight.json"])
    assert second["previous"] == first["head"]
    assert sorted(second["files"]) == ["notes.txt", "notes.txt.dsse.json"]  # only what is new
    report = verify_folder(ledger.folder, key.public_key)
    assert report.problems == [] and (report.links, report.signatures) == (2, 3)


def test_a_rewritten_file_is_recorded_again_by_the_next_link(tmp_path, key):
    ledger = _folder(tmp_path, key)
    ledger.write_json("preflight.json", {"decision": "GO", "rerun": True})
    assert verify_folder(ledger.folder, key.public_key).problems == [
        "preflight.json: changed (sha256 differs from the manifest)"]
    ledger.seal("go-live", key)
    assert verify_folder(ledger.folder, key.public_key).ok


def test_an_edited_deleted_or_extra_file_is_named(tmp_path, key):
    ledger = _folder(tmp_path, key)
    (ledger.folder / "preflight.json").unlink()
    ledger.write_text("late.txt", "added after the seal\n")
    problems = verify_folder(ledger.folder, key.public_key).problems
    assert problems == ["preflight.json: missing", "late.txt: not in the manifest"]


def test_a_signed_file_that_differs_from_its_envelope_is_named(tmp_path, key):
    ledger = _folder(tmp_path, key)
    ledger.write_text("notes.txt", "stage 1 NOT fine\n")
    ledger.seal("cover-up", key)  # even re-sealed, the signed statement no longer matches
    assert verify_folder(ledger.folder, key.public_key).problems == [
        "notes.txt: differs from what notes.txt.dsse.json signed"]


def test_a_rewritten_manifest_breaks_the_chain(tmp_path, key):
    ledger = _folder(tmp_path, key)
    manifest = ledger.read_json(MANIFEST)
    manifest["chain"][0]["files"]["preflight.json"] = "0" * 64
    ledger.write_json(MANIFEST, manifest)
    problems = verify_folder(ledger.folder, key.public_key).problems
    assert f"{MANIFEST}: link 1 (preflight): head does not match its content" in problems


def test_links_signed_by_another_key_or_unsigned_fail(tmp_path, key, other_key):
    ledger = _folder(tmp_path, other_key)
    ledger.write_text("more.txt", "x\n")
    ledger.seal("rollback")  # no key at hand
    problems = verify_folder(ledger.folder, key.public_key).problems
    assert any(p.startswith(f"{MANIFEST}: link 1 (preflight): no signature verifies with key") for p in problems)
    assert f"{MANIFEST}: link 3 (rollback): unsigned" in problems
    assert any(p.startswith("notes.txt.dsse.json: no signature verifies") for p in problems)


def test_evidence_verify_exits_1_and_names_the_file(tmp_path, key, capsys):
    ledger = _folder(tmp_path, key)
    (tmp_path / "pub.pem").write_text(key.public_pem())
    assert main(["evidence", "verify", str(ledger.folder), "--key", str(tmp_path / "pub.pem")]) == 0
    assert "verifies: 3 files, 2 chain links, 3 signatures" in capsys.readouterr().out
    (ledger.folder / "notes.txt").write_text("stage 1 fine.\n")
    assert main(["evidence", "verify", str(ledger.folder), "--key", str(tmp_path / "pub.pem")]) == 1
    out = capsys.readouterr().out
    assert "FAIL notes.txt: changed (sha256 differs from the manifest)" in out
    assert main(["evidence", "verify", str(ledger.folder), "--key", str(tmp_path / "absent.pem")]) == 2
