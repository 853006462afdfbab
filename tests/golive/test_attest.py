"""The pure rules of supply-chain files: SHA256SUMS, what attaching does with each asset, which
names GitHub keeps, the project's SBOM narrowed to its runtime, the manifest at Live; and a
release's files checked against each other."""

from __future__ import annotations

import hashlib
import json

import pytest

from golive.attest import (
    CHECKSUMS, LocalFile, RemoteAsset, build_statement, checksums_text, decide, manifest_at_live, media_type,
    name_problem, parse_checksums, project_sbom, requires_dist, runtime_closure, unmet_requirements,
)
from golive.signing import SigningKey, generate_key
from golive.verify import verify_release_folder

A, B = "a" * 64, "b" * 64


def test_checksums_list_every_file_but_themselves_and_signatures_sorted_and_read_back():
    text = checksums_text({"b.whl": B, "a.cdx.json": A, CHECKSUMS: B, "SHA256SUMS.asc": A})
    assert text == f"{A}  a.cdx.json\n{B}  b.whl\n"
    assert parse_checksums(text) == ({"a.cdx.json": A, "b.whl": B}, [])
    assert parse_checksums(f"{A} *x.tar.gz\n")[0] == {"x.tar.gz": A}  # sha256sum's binary mode


def test_a_bad_or_repeated_checksum_line_is_a_problem_naming_its_line():
    _, problems = parse_checksums(f"{A}  a\nnot a line\n{B}  a\n")
    assert problems == ["SHA256SUMS: line 2 is not `<sha256>  <name>`", "SHA256SUMS: a is listed twice"]


LOCAL = LocalFile("x.cdx.json", A, 10)


@pytest.mark.parametrize("remote, action", [
    (None, "upload"),  # 1. not on the release
    (RemoteAsset(1, "x.cdx.json", 0, "starter"), "replace"),  # 2. an upload that failed part way
    (RemoteAsset(1, "x.cdx.json", 11, digest=A), "replace"),  # 3. another size
    (RemoteAsset(1, "x.cdx.json", 10), "compare"),  # 4. no digest from GitHub: the bytes decide
    (RemoteAsset(1, "x.cdx.json", 10, digest=A), "skip"),  # 5. the same sha256
    (RemoteAsset(1, "x.cdx.json", 10, digest=B), "replace"),  # 6. other bytes
])
def test_each_rule_of_attaching_a_file(remote, action):
    decision = decide(LOCAL, remote)
    assert decision.action == action
    if action == "replace" and remote.digest:
        assert decision.old_sha256 == remote.digest  # what was replaced is recorded


def test_github_digests_are_read_only_as_sha256():
    asset = RemoteAsset.from_api({"id": 7, "name": "a", "size": 3, "state": "uploaded", "digest": f"sha256:{A}"})
    assert asset.digest == A
    assert RemoteAsset.from_api({"id": 7, "name": "a", "size": 3, "digest": "md5:abc"}).digest is None


@pytest.mark.parametrize("name", ["golive-0.1.0-py3-none-any.whl", "SHA256SUMS.asc", "sbom_1.4.0.json",
                                  "go_nogo_signed_1.4.0.txt.dsse.json"])
def test_names_github_keeps(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["release notes.md", "a/b.json", ".hidden", "trailing.", "sbom_1.4.0+b.json",
                                  "é.json"])
def test_names_github_would_rewrite_are_refused_naming_them(name):
    assert name_problem(name).startswith(f"{name}: GitHub would rename it")


@pytest.mark.parametrize("name, kind", [
    ("golive-0.1.0.cdx.json", "application/vnd.cyclonedx+json"), ("sbom_1.4.0.json", "application/vnd.cyclonedx+json"),
    ("golive-0.1.0.intoto.jsonl", "application/vnd.in-toto+json"),
    ("build_provenance_1.4.0.json", "application/vnd.in-toto+json"),
    ("build_provenance_1.4.0.sigstore.json", "application/vnd.dev.sigstore.bundle.v0.3+json"),
    ("SHA256SUMS.asc", "application/pgp-signature"), (CHECKSUMS, "text/plain"),
    ("golive-0.1.0.tar.gz", "application/gzip"), ("manifest.json", "application/json"),
])
def test_each_asset_is_uploaded_with_its_media_type(name, kind):
    assert media_type(name) == kind


def test_requirements_reached_without_an_extra_and_through_the_extras_asked_for():
    requires = {
        "httpx": [("httpcore", frozenset(), None), ("h2", frozenset(), "http2"), ("rich", frozenset(), "cli")],
        "httpcore": [("h11", frozenset(), None)], "h11": [], "h2": [("hpack", frozenset(), None)], "hpack": [],
        "rich": [], "pytest": [],
    }
    assert runtime_closure(requires, [("httpx", frozenset(), None), ("pytest", frozenset(), "test")]) == {
        "httpx", "httpcore", "h11"}
    assert runtime_closure(requires, [("HTTPX", frozenset({"http2"}), None)]) == {"httpx", "httpcore", "h11", "h2",
                                                                                  "hpack"}
    assert unmet_requirements(requires, [("httpx", frozenset({"cli"}), None), ("spark-db", frozenset(), "db")]) == []
    requires["httpcore"] = [("h11", frozenset(), None), ("anyio", frozenset(), None)]
    assert unmet_requirements(requires, [("httpx", frozenset(), None), ("Spark_DB", frozenset(), None)]) == [
        "anyio", "spark-db"]
    assert requires_dist("Name: x\nRequires-Dist: httpx>=0.27\nRequires-Dist: pytest; extra == 'test'\n") == [
        "httpx>=0.27", "pytest; extra == 'test'"]


def test_the_project_sbom_keeps_its_root_and_only_what_it_reaches():
    document = {
        "bomFormat": "CycloneDX", "specVersion": "1.6",
        "metadata": {"component": {"bom-ref": "root-component", "name": "spark-client", "version": "1.4.0"}},
        "components": [{"bom-ref": f"{n}==1", "name": n, "version": "1"} for n in ("httpx", "h11", "pytest", "rich")],
        "dependencies": [{"ref": "root-component", "dependsOn": ["httpx==1", "pytest==1"]},
                         {"ref": "httpx==1", "dependsOn": ["h11==1", "rich==1"]}, {"ref": "h11==1"},
                         {"ref": "pytest==1"}, {"ref": "rich==1"}],
    }
    sbom = project_sbom(document, {"httpx", "h11"}, ["httpx"])
    assert sbom["metadata"] == document["metadata"] and sbom["specVersion"] == "1.6"
    assert [c["name"] for c in sbom["components"]] == ["httpx", "h11"]
    assert sbom["dependencies"] == [{"ref": "root-component", "dependsOn": ["httpx==1"]},
                                    {"ref": "h11==1", "dependsOn": []}, {"ref": "httpx==1", "dependsOn": ["h11==1"]}]
    with pytest.raises(ValueError, match="no root component"):
        project_sbom({"components": []}, set(), [])


def test_the_manifest_a_release_carries_ends_at_the_go_lives_last_link():
    chain = [{"flow": f} for f in ("flight-check", "release-ritual", "go-live", "closing", "first-night")]
    assert [link["flow"] for link in manifest_at_live({"algorithm": "sha256", "chain": chain})["chain"]] == [
        "flight-check", "release-ritual", "go-live"]
    assert manifest_at_live({"chain": chain[:2]})["chain"] == chain[:2]  # no go-live sealed: all of it


@pytest.fixture(scope="module")
def key(tmp_path_factory) -> SigningKey:
    return SigningKey.from_file(generate_key(tmp_path_factory.mktemp("key"))[0])


def _release_folder(folder, key) -> None:
    """A build's files as golive attest leaves them, without the build."""
    files = {"spark-1.4.0-py3-none-any.whl": b"wheel", "spark-1.4.0.cdx.json": b'{"bomFormat": "CycloneDX"}'}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    subjects = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    statement = build_statement("spark", "1.4.0", subjects, None, "urn:test", {}, "t0", "t1", "i")
    (folder / "spark-1.4.0.intoto.jsonl").write_text(json.dumps(key.envelope(json.dumps(statement).encode())) + "\n")
    (folder / CHECKSUMS).write_text(checksums_text({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                                    for p in folder.iterdir()}))


def test_a_release_whose_files_agree_verifies(tmp_path, key):
    _release_folder(tmp_path, key)
    report = verify_release_folder(tmp_path, key.public_key)
    assert report.problems == [] and (report.files, report.signatures) == (4, 1)


def test_an_sbom_no_signed_provenance_names_fails(tmp_path, key):
    _release_folder(tmp_path, key)
    (tmp_path / "other.cdx.json").write_text("{}")
    (tmp_path / CHECKSUMS).write_text((tmp_path / CHECKSUMS).read_text() + checksums_text(
        {"other.cdx.json": hashlib.sha256(b"{}").hexdigest()}))
    assert verify_release_folder(tmp_path, key.public_key).problems == [
        "other.cdx.json: an SBOM no signed provenance names"]


def test_a_detached_signature_nobody_checks_is_not_good(tmp_path, key):
    _release_folder(tmp_path, key)
    (tmp_path / "SHA256SUMS.asc").write_text("-----BEGIN PGP SIGNATURE-----\n")
    assert verify_release_folder(tmp_path, key.public_key).problems == [
        "SHA256SUMS.asc: not checked (no OpenPGP checker given)"]
    assert verify_release_folder(tmp_path, key.public_key, check_signature=lambda s, d: "GPG: BAD signature").problems \
        == ["SHA256SUMS.asc: GPG: BAD signature"]


def test_a_missing_signature_fails_when_one_is_asked_for(tmp_path, key):
    _release_folder(tmp_path, key)
    assert verify_release_folder(tmp_path, key.public_key, require_signature=True).problems == [
        "SHA256SUMS.asc: missing (a GPG signature was asked for)"]


def test_a_swapped_file_fails_its_checksum_and_the_provenance(tmp_path, key):
    _release_folder(tmp_path, key)
    (tmp_path / "spark-1.4.0-py3-none-any.whl").write_bytes(b"another wheel")
    assert verify_release_folder(tmp_path, key.public_key).problems == [
        "spark-1.4.0-py3-none-any.whl: does not match SHA256SUMS",
        "spark-1.4.0.intoto.jsonl: subject spark-1.4.0-py3-none-any.whl does not match its sha256"]


def test_a_provenance_signed_by_another_key_is_no_provenance(tmp_path, key, tmp_path_factory):
    _release_folder(tmp_path, key)
    other = SigningKey.from_file(generate_key(tmp_path_factory.mktemp("other"))[0])
    problems = verify_release_folder(tmp_path, other.public_key).problems
    assert problems[0].startswith("spark-1.4.0.intoto.jsonl: no signature verifies with key")
    assert problems[1:] == ["no provenance: no in-toto statement signed with the key names a file here",
                            "spark-1.4.0.cdx.json: an SBOM no signed provenance names",
                            f"spark-1.4.0-py3-none-any.whl: {UNVOUCHED}", f"spark-1.4.0.intoto.jsonl: {UNVOUCHED}"]


UNVOUCHED = "no signature by the key vouches for it (not a subject of the signed provenance, not in the signed manifest)"


def test_a_file_added_with_its_checksum_and_no_signature_fails(tmp_path, key):
    _release_folder(tmp_path, key)
    (tmp_path / "evil-1.4.0-py3-none-any.whl").write_bytes(b"evil")
    (tmp_path / CHECKSUMS).write_text(checksums_text({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                                      for p in tmp_path.iterdir()}))
    assert verify_release_folder(tmp_path, key.public_key).problems == [f"evil-1.4.0-py3-none-any.whl: {UNVOUCHED}"]


def test_a_releases_signed_files_do_not_pass_as_another_release(tmp_path, key):
    _release_folder(tmp_path, key)
    assert verify_release_folder(tmp_path, key.public_key, release="1.4.0").ok
    assert verify_release_folder(tmp_path, key.public_key, release="1.5.0").problems == [
        "spark-1.4.0.intoto.jsonl: its statement is of release 1.4.0, not of 1.5.0"]


@pytest.fixture
def sigstore_says(monkeypatch):
    """sigstore's offline check, made to accept any bundle and answer the payload a test gives."""
    import sigstore.models
    import sigstore.verify

    answer = {}

    class Verifier:
        def verify_dsse(self, bundle, rule):
            return "application/vnd.in-toto+json", answer["payload"]

    monkeypatch.setattr(sigstore.models.Bundle, "from_json", staticmethod(lambda data: data))
    monkeypatch.setattr(sigstore.verify.Verifier, "production", staticmethod(lambda offline: Verifier()))
    return answer


def test_a_sigstore_bundles_statement_is_checked_against_the_files_and_needs_an_identity_to_count(
        tmp_path, key, sigstore_says):
    _release_folder(tmp_path, key)
    (tmp_path / "spark-1.4.0.sigstore.json").write_text("{}")
    statement = build_statement("spark", "1.4.0", {"spark-1.4.0-py3-none-any.whl": "0" * 64}, None, "urn:test", {},
                                "t0", "t1", "i")
    sigstore_says["payload"] = json.dumps(statement).encode()
    report = verify_release_folder(tmp_path, key.public_key, "ci@example.invalid", "https://issuer.example.invalid")
    assert "spark-1.4.0.sigstore.json: subject spark-1.4.0-py3-none-any.whl does not match its sha256" in \
        report.problems
    statement["subject"][0]["digest"]["sha256"] = hashlib.sha256(b"wheel").hexdigest()
    sigstore_says["payload"] = json.dumps(statement).encode()
    named = verify_release_folder(tmp_path, key.public_key, "ci@example.invalid", "https://issuer.example.invalid")
    anyone = verify_release_folder(tmp_path, key.public_key)
    assert named.signatures == 2 and anyone.signatures == 1 and not named.notes
    assert anyone.notes == ["spark-1.4.0.sigstore.json: sigstore bundle verifies, but without --sigstore-identity "
                            "who signed it is unknown; not counted as a signature"]
