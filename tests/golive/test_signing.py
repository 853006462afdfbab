"""The evidence chain, DSSE signing, completeness and the flight-check rules: pure, no servers."""

from __future__ import annotations

import base64
import stat

import pytest

from golive import layout
from golive.blast_radius import DrillSample, evaluate
from cli.main import main
from golive.completeness import check_completeness
from golive.evidence import MANIFEST, EvidenceLedger
from golive.models import Check, GitState, WeightReading
from golive.preflight import git_checks, router_check, summary
from golive.ritual import go_nogo_text, provenance_statement
from golive.signing import SigningError, SigningKey, generate_key, verify_envelope
from golive.verify import verify_folder


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> SigningKey:
    private_path, _ = generate_key(tmp_path_factory.mktemp("key"))
    return SigningKey.from_file(private_path)


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


# -- the hash chain -------------------------------------------------------------------------------


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


# -- DSSE and keys --------------------------------------------------------------------------------


def test_an_envelope_verifies_only_for_its_payload_and_key(key, other_key):
    envelope = key.envelope(b'{"a": 1}')
    assert verify_envelope(envelope, key.public_key) == ("application/vnd.in-toto+json", b'{"a": 1}')
    forged = {**envelope, "payload": base64.b64encode(b'{"a": 2}').decode()}
    with pytest.raises(SigningError, match="no signature verifies"):
        verify_envelope(forged, key.public_key)
    with pytest.raises(SigningError, match="no signature verifies"):
        verify_envelope(envelope, other_key.public_key)
    retyped = {**envelope, "payloadType": "text/plain"}  # the type is signed too (PAE)
    with pytest.raises(SigningError):
        verify_envelope(retyped, key.public_key)


def test_keys_init_makes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path, capsys):
    assert main(["keys", "init", "--dir", str(tmp_path)]) == 0
    private_path = tmp_path / "signing_key.pem"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert "BEGIN PUBLIC KEY" in (tmp_path / "signing_key.pub.pem").read_text()
    assert "PRIVATE" not in capsys.readouterr().out.replace("private key:", "")
    assert main(["keys", "init", "--dir", str(tmp_path)]) == 2
    assert "a key is already there" in capsys.readouterr().err


def test_a_passphrase_protected_key_needs_its_passphrase(tmp_path, monkeypatch):
    monkeypatch.setenv("GOLIVE_SIGNING_KEY_PASSPHRASE", "correct horse")
    private_path, _ = generate_key(tmp_path)
    assert b"ENCRYPTED" in private_path.read_bytes()
    assert SigningKey.from_file(private_path).keyid
    monkeypatch.setenv("GOLIVE_SIGNING_KEY_PASSPHRASE", "wrong")
    with pytest.raises(SigningError, match="passphrase"):
        SigningKey.from_file(private_path)


def test_a_missing_key_says_how_to_make_one(tmp_path):
    with pytest.raises(SigningError, match="golive keys init"):
        SigningKey.from_file(tmp_path / "absent.pem")


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


# -- completeness and the ritual's documents ------------------------------------------------------


def test_completeness_names_what_is_missing_and_counts_against_the_runbook():
    files = [layout.SETTINGS, layout.PREFLIGHT, *(layout.preflight_check(f"promql_s{i}_stable") for i in range(8))]
    result = check_completeness("takeoff", "1.4.0", [1, 100], 8, files)
    assert not result["ok"] and result["files"] == 10 and result["minimum_files"] == 40
    assert layout.go_nogo("1.4.0") in result["missing"]
    assert f"{layout.preflight_promql_files('canary')} (0 of 8)" in result["missing"]
    assert layout.preflight_promql_files("stable") not in " ".join(result["missing"])
    end = check_completeness("end", "1.4.0", [1, 100], 8, files)
    assert layout.judge_look_files(100) in end["missing"] and end["minimum_files"] == 50
    with pytest.raises(ValueError, match="point: expected one of takeoff, end"):
        check_completeness("landing", "1.4.0", [100], 8, files)


def test_provenance_is_an_in_toto_statement_with_a_slsa_predicate():
    statement = provenance_statement("1.4.0", {"sbom_1.4.0.json": "ab" * 32}, "urn:golive:builder:ci", {"x": 1},
                                     {"url": "/srv/spark.git", "branch": "main", "commit": "c0ffee"},
                                     "2026-11-27T09:00:00Z", "2026-11-27T09:00:09Z", "run-1")
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [{"name": "sbom_1.4.0.json", "digest": {"sha256": "ab" * 32}}]
    (dependency,) = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert dependency == {"uri": "git+file:///srv/spark.git@refs/heads/main", "digest": {"gitCommit": "c0ffee"}}
    assert statement["predicate"]["buildDefinition"]["externalParameters"] == {"release": "1.4.0", "x": 1}


def test_the_go_nogo_checklist_is_go_only_when_every_line_is():
    go = go_nogo_text("1.4.0", "now", [("config", True, "valid"), ("router", True, "weight 0")])
    assert go.splitlines()[-1] == "DECISION: GO" and "[   GO] router  weight 0" in go
    nogo = go_nogo_text("1.4.0", "now", [("config", True, "valid"), ("canary_version", False, "serves 1.3.2")])
    assert nogo.splitlines()[-1] == "DECISION: NO-GO" and "[NO-GO] canary_version  serves 1.3.2" in nogo


# -- flight-check rules ---------------------------------------------------------------------------


def _git(**changes) -> GitState:
    facts = dict(repo=".", commit="c0ffee", branch="main", remote_url="/srv/spark.git", dirty=[], tag="v1.4.0",
                 tag_local=False, tag_remote=False)
    return GitState(**{**facts, **changes})


def test_git_checks_want_a_clean_tree_and_no_release_tag_anywhere():
    assert [c.ok for c in git_checks(_git())] == [True, True]
    dirty, _ = git_checks(_git(dirty=["service.py"]))
    assert (dirty.ok, dirty.detail) == (False, "1 uncommitted: service.py")
    _, tagged = git_checks(_git(tag_remote=True))
    assert (tagged.ok, tagged.detail) == (False, "v1.4.0 already exists on the remote")
    skipped = git_checks(None, configured=False)
    assert all(c.ok and c.skipped for c in skipped)


def test_the_router_must_start_at_weight_zero():
    assert router_check(WeightReading(in_force=0, at=0)).ok
    assert router_check(WeightReading(in_force=5, at=0)).detail.startswith(
        "weight 5 in force, expected 0: the canary still holds users (a go-live that died?). Roll it back with")
    assert router_check(None, "connection refused").detail == "unreachable: connection refused"


def test_one_failed_check_or_an_overrun_budget_is_no_go():
    checks = [Check(name="config", ok=True, detail="valid"), Check(name="canary_version", ok=False, detail="serves 1.3.2")]
    result = summary(checks, 3.0, 90)
    assert (result["decision"], result["failed"]) == ("NO-GO", ["canary_version"])
    slow = summary(checks[:1], 95.0, 90)
    assert (slow["decision"], slow["reasons"]) == ("NO-GO", ["budget: took 95 s of 90 s"])


def test_the_blast_radius_fails_when_stable_saw_a_single_request():
    samples = [DrillSample("order", 201, 40.0, "1.4.0", True), DrillSample("order-replay", 409, 30.0, "1.4.0", True),
               *(DrillSample("quote", 200, 20.0, "1.4.0", True) for _ in range(98))]
    assert evaluate(samples, "1.4.0", stable_requests=0, canary_requests=100)["ok"]
    leaked = evaluate(samples, "1.4.0", stable_requests=1, canary_requests=99)
    assert leaked["failures"] == ["stable received 1 drill requests"]


def test_the_blast_radius_limits_hold_beyond_the_doubt_of_a_small_sample():
    def drill(slow: int, errors: int, n: int = 80) -> dict:
        samples = ([DrillSample("quote", 200, 250.0, "1.4.0", True)] * slow
                   + [DrillSample("quote", 503, 5.0, "1.4.0", False)] * errors
                   + [DrillSample("quote", 200, 20.0, "1.4.0", True)] * (n - slow - errors))
        return evaluate(samples, "1.4.0", 0, n)

    assert drill(slow=5, errors=0)["ok"]  # p95 just over 200 ms on 80 requests: noise
    assert drill(slow=20, errors=0)["failures"] == [
        "p95 250 ms > 200 ms (20 of 80 requests slower, more than 5 % beyond doubt)"]
    assert not any(f.startswith("5xx") for f in drill(slow=0, errors=1)["failures"])  # one in 80
    assert any(f.startswith("5xx 6.25% > 1% (5 of 80)") for f in drill(slow=0, errors=5)["failures"])
