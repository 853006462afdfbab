"""`golive evidence verify` against a tampered folder: one test per way of tampering."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.main import main
from golive.evidence import MANIFEST, MANIFEST_LOCK, EvidenceLedger, EvidenceLockError
from golive.ritual import provenance_statement
from golive.signing import SigningKey, generate_key
from golive.verify import verify_folder
from tests.golive.hostile import FAST, json_values, nested


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


@pytest.mark.parametrize("lock", ["", '{"host": "ci-7", "pid": 4242, "at": 1767225600.5}'])
def test_the_ledgers_own_lock_and_in_progress_files_are_not_evidence(ledger, key, lock):
    (ledger.folder / MANIFEST_LOCK).write_text(lock)
    (ledger.folder / ".stage_1.json.abcd_123.partial").write_text("half")
    (ledger.folder / "sub").mkdir()
    (ledger.folder / "sub" / ".hour_01.json.k2_x9q0z.partial").write_text("{")
    assert verify_folder(ledger.folder, key.public_key).problems == []


def _left_over(folder):
    partial = folder / ".stage_1.json.abcd_123.partial"
    partial.write_text("x")
    os.utime(partial, (0, 0))  # its writer is long gone


@pytest.mark.parametrize(("make", "problem"), [
    (lambda f: (f / MANIFEST_LOCK).write_text("the keys to everything"),
     ".manifest.lock: holds something other than the ledger's lock record"),
    (lambda f: (f / MANIFEST_LOCK).write_text("{}"),
     ".manifest.lock: holds something other than the ledger's lock record"),
    (lambda f: (f / MANIFEST_LOCK).write_text('{"host": "h", "pid": 1, "at": 0, "note": "x"}'),
     ".manifest.lock: holds something other than the ledger's lock record"),
    (lambda f: (f / MANIFEST_LOCK).mkdir(), ".manifest.lock: a folder where the ledger keeps a file of its own"),
    (lambda f: ((f / "sub").mkdir(), (f / "sub" / MANIFEST_LOCK).write_text("")),
     "sub/.manifest.lock: not in the manifest"),
    (lambda f: (f / "notes.partial").write_text("x"), "notes.partial: not in the manifest"),
    (lambda f: ((f / "sub").mkdir(), (f / "sub" / ".a.partial").write_text("x")),
     "sub/.a.partial: not in the manifest"),
    (lambda f: (f / ".stage_1.json.ABCDEFGH.partial").write_text("x"),
     ".stage_1.json.ABCDEFGH.partial: not in the manifest"),
    (_left_over, ".stage_1.json.abcd_123.partial: a write left unfinished"),
])
def test_files_named_like_the_ledgers_scratch_but_not_its_own_are_named(ledger, key, make, problem):
    make(ledger.folder)
    problems = verify_folder(ledger.folder, key.public_key).problems
    assert len(problems) == 1 and problems[0].startswith(problem), problems


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


def _write_sealed(ledger: EvidenceLedger, key: SigningKey, name: str, text: str) -> None:
    ledger.write_text(name, text)
    ledger.seal("hostile", key)


def _statement(subjects) -> bytes:
    return json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": subjects}).encode()


def _link_edit(field, value):
    def edit(ledger: EvidenceLedger, key: SigningKey) -> None:
        manifest = ledger.read_json(MANIFEST)
        manifest["chain"][0][field] = value
        ledger.write_json(MANIFEST, manifest)
    return edit


def _envelope(**fields):
    def write(ledger: EvidenceLedger, key: SigningKey) -> None:
        envelope = {**key.envelope(b"{}"), **fields}
        _write_sealed(ledger, key, "hostile.json", json.dumps(envelope))
    return write


def _signed_statement(subjects):
    def write(ledger: EvidenceLedger, key: SigningKey) -> None:
        _write_sealed(ledger, key, "statement.json", json.dumps(key.envelope(_statement(subjects))))
    return write


@pytest.mark.parametrize(("hostile", "problem"), [
    (_envelope(payload=5), "hostile.json: not a DSSE envelope"),
    (_envelope(payloadType=["x"]), "hostile.json: not a DSSE envelope"),
    (_envelope(payloadType="\ud800"), "hostile.json: not a DSSE envelope"),
    (_envelope(signatures="abc"), "hostile.json: not a DSSE envelope"),
    (_envelope(signatures=[1, None]), "hostile.json: not a DSSE envelope"),
    (_envelope(signatures=[{"keyid": ["a"], "sig": 5}]), "hostile.json: no signature verifies"),
    (_envelope(signatures=[{"keyid": 7, "sig": "@@@"}]), "hostile.json: no signature verifies"),
    (_envelope(signatures=[{"keyid": None, "sig": 5}]), "hostile.json: no signature verifies"),
    (_signed_statement([{"name": "a\x00b", "digest": {"sha256": "0" * 64}}]),
     "statement.json: subject a\\x00b is missing from the folder"),
    (_signed_statement([{"name": "/etc/hostname", "digest": {"sha256": "0" * 64}}]),
     "statement.json: subject /etc/hostname is missing from the folder"),
    (_signed_statement([{"name": 5, "digest": []}]), "statement.json: a subject without a name or a digest"),
    (lambda ledger, key: _write_sealed(ledger, key, "statement.json", json.dumps(
        key.envelope(nested(5000).encode()))), "statement.json: payload is not an in-toto statement"),
    (_link_edit("flow", ["pre", {"flight": None}]), "manifest.json: malformed (link 1: `seq` must be a whole number"),
    (_link_edit("seq", True), "manifest.json: malformed (link 1: `seq` must be a whole number"),
    (_link_edit("signature", {"keyid": {"a": 1}, "sig": [1]}), "manifest.json: link 1 (preflight): no signature"),
    (_link_edit("flow", "preflight\nFAIL nothing"), "manifest.json: link 1 (preflight\\nFAIL nothing): head does not"),
    (_link_edit("sealed_at", float("nan")), "manifest.json: link 1 (preflight): head does not match"),
    (lambda ledger, key: (ledger.folder / MANIFEST).write_text(nested(100000)),
     "manifest.json: malformed (nested too deeply)"),
    (lambda ledger, key: (ledger.folder / MANIFEST).write_bytes(b"\xff\xfe{}"), "manifest.json: malformed (not JSON)"),
])
def test_hostile_json_in_the_folder_is_a_problem_line_never_a_traceback(ledger, key, capsys, hostile, problem):
    hostile(ledger, key)
    problems = verify_folder(ledger.folder, key.public_key).problems
    assert any(p.startswith(problem) for p in problems), problems
    assert all("\n" not in p and "\r" not in p for p in problems)
    assert _cli(ledger, key) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_deeply_nested_json_that_was_sealed_verifies_without_a_traceback(ledger, key):
    _write_sealed(ledger, key, "deep.json", nested(100000))
    _write_sealed(ledger, key, "success_criteria.json", nested(100000))
    assert verify_folder(ledger.folder, key.public_key).problems == []


def test_a_name_cannot_forge_a_line_of_the_verdict(ledger, key, capsys):
    (ledger.folder / "x\nv1.4.0: verifies: 3 files, 3 chain links").write_text("planted")
    assert _cli(ledger, key) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "FAIL x\\nv1.4.0: verifies: 3 files, 3 chain links: not in the manifest"
    assert not any(line.startswith("v1.4.0: verifies") for line in lines)


@pytest.mark.parametrize("head", ["x\nv1.4.0: verifies: 3 files, 3 chain links", "0" * 64 + "\n", "A" * 64])
def test_a_head_that_is_not_a_digest_cannot_forge_a_line_of_the_verdict(ledger, key, capsys, head):
    _link_edit("head", head)(ledger, key)
    assert _cli(ledger, key) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"FAIL {MANIFEST}: malformed (link 1: `head` and `previous` must be digests)"
    assert not any("verifies" in line for line in lines)


def test_a_previous_that_is_not_a_digest_is_malformed(ledger, key):
    _link_edit("previous", "0" * 63 + "g")(ledger, key)
    assert verify_folder(ledger.folder, key.public_key).problems == [
        f"{MANIFEST}: malformed (link 1: `head` and `previous` must be digests)"]


def test_a_folder_name_is_escaped_where_the_verdict_names_it(tmp_path, key, capsys):
    ledger = _folder(tmp_path / "v\n1", key)
    (tmp_path / "pub.pem").write_text(key.public_pem())
    assert main(["evidence", "verify", str(ledger.folder), "--key", str(tmp_path / "pub.pem")]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"{tmp_path}/v\\n1/v1.4.0: verifies")


_LINK_FIELDS = ("seq", "flow", "sealed_at", "files", "previous", "head", "signature")
_ENVELOPE_FIELDS = ("payload", "payloadType", "signatures")


@FAST
@given(place=st.sampled_from(["link", "link signature", "envelope", "envelope signature", "subjects",
                              "subject name", "criteria"]),
       field_index=st.integers(min_value=0, max_value=6), value=json_values)
def test_any_json_anywhere_in_the_folder_is_one_problem_line_at_most_per_check(key, place, field_index, value):
    with tempfile.TemporaryDirectory() as scratch:
        ledger = EvidenceLedger(Path(scratch) / "v1.4.0")
        ledger.write_json("preflight.json", {"decision": "GO"})
        ledger.seal("preflight", key)
        if place.startswith("link"):
            manifest = ledger.read_json(MANIFEST)
            if place == "link":
                manifest["chain"][0][_LINK_FIELDS[field_index]] = value
            else:
                manifest["chain"][0]["signature"] = {"keyid": value, "sig": value}
            (ledger.folder / MANIFEST).write_text(json.dumps(manifest))
        elif place.startswith("envelope"):
            envelope = key.envelope(b"{}")
            if place == "envelope":
                envelope[_ENVELOPE_FIELDS[field_index % 3]] = value
            else:
                envelope["signatures"] = [{"keyid": value, "sig": value}]
            _write_sealed(ledger, key, "hostile.json", json.dumps(envelope))
        elif place == "subjects":
            _write_sealed(ledger, key, "s.json", json.dumps(key.envelope(_statement(value))))
        elif place == "subject name":
            subject = {"name": value, "digest": {"sha256": value}}
            _write_sealed(ledger, key, "s.json", json.dumps(key.envelope(_statement([subject]))))
        else:
            _write_sealed(ledger, key, "success_criteria.json", json.dumps(value))
        report = verify_folder(ledger.folder, key.public_key)
    assert all(isinstance(p, str) and "\n" not in p and "\r" not in p for p in report.problems)
