"""The closing attaches a Live release's supply-chain files to its GitHub release (the fake
GitHub): once, then never again as long as they are the same; `golive evidence verify --release`
reads them back and checks them against each other, with the GPG signature of SHA256SUMS."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from cli.main import main
from golive import layout
from golive.closing import success_criteria
from golive.evidence import EvidenceLedger
from golive.models import StageResult
from golive.ritual import go_nogo_text, provenance_statement
from golive.settings import load_settings
from golive.signals import SIGNAL_NAMES
from golive.signing import SigningKey
from tests.fakes.gnupg import throwaway_gpg_home

RELEASE = "1.4.0"
ATTACHED = ["SHA256SUMS", "SHA256SUMS.asc", "build_provenance_1.4.0.json", "go_nogo_signed_1.4.0.txt",
            "go_nogo_signed_1.4.0.txt.dsse.json", "manifest.json", "sbom_1.4.0.json", "signing_key.pub.pem"]


def _live(folder, key: SigningKey) -> None:
    """The evidence a Live go-live of one stage leaves: the ritual's files sealed, then the stage's."""
    import hashlib

    ledger = EvidenceLedger(folder)
    sbom = ledger.write_text(layout.sbom(RELEASE), json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6"}))
    statement = provenance_statement(RELEASE, {sbom.name: hashlib.sha256(sbom.read_bytes()).hexdigest()}, "urn:test",
                                     {}, None, "t0", "t1", "run")
    ledger.write_json(layout.build_provenance(RELEASE), key.envelope(json.dumps(statement).encode()))
    checklist = go_nogo_text(RELEASE, "t1", [("preflight", True, "ok")])
    ledger.write_text(layout.go_nogo(RELEASE), checklist)
    ledger.write_json(layout.dsse_envelope(layout.go_nogo(RELEASE)), key.envelope(checklist.encode(), "text/plain"))
    ledger.write_text(layout.PUBLIC_KEY, key.public_pem())
    ledger.seal("release-ritual", key)
    decision = {"decision": "proceed", "signals": {n: {"verdict": "pass"} for n in SIGNAL_NAMES}}
    stage = StageResult(stage=100, outcome="proceed", weight_verified=True, share_ok=True, decisions=[decision],
                        started_at=time.time() - 900, ended_at=time.time()).model_dump()
    ledger.write_json(layout.stage_record(100), stage)
    ledger.write_json(layout.SUCCESS_CRITERIA, success_criteria(
        [100], [stage], {"ok": True, "files": 60, "minimum_files": 50, "missing": []}))
    ledger.seal("go-live", key)


def _repo(tmp_path) -> str:
    """A work tree with one commit and no remote: the closing tags it there."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q",
                                  "--allow-empty", "-m", "release"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    return str(repo)


@pytest.fixture
def gpg(monkeypatch):
    with throwaway_gpg_home() as home:
        monkeypatch.setenv("GNUPGHOME", home.path)
        yield home


def test_the_closing_attaches_the_release_files_once_and_they_verify_from_the_outside(
        github, gpg, signing_key, tmp_path, monkeypatch, capsys, caplog):
    from flows.closing import closing

    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    github.tags.add(f"v{RELEASE}")  # as the closing's push leaves it on GitHub
    key = SigningKey.from_file(signing_key["key_path"])
    _live(tmp_path / f"v{RELEASE}", key)
    cfg = load_settings({"release": RELEASE, "policy": {"stages": [100], "shadow": {"enabled": False}}, "process": {
        "evidence_root": str(tmp_path), "git": {"repo": _repo(tmp_path)},
        "signing": {**signing_key, "gpg_key": gpg.fingerprint},
        "github": {"repository": github.repository, "api_url": github.url, "release_assets": True}}})

    state = closing(cfg, return_state=True)
    assert state.name == "Closed", state.message
    release = github.release_of(f"v{RELEASE}")
    assert sorted(a.name for a in github.assets.values() if a.release_id == release["id"]) == ATTACHED
    record = EvidenceLedger(cfg.evidence_dir).read_json(layout.release_assets())
    assert record["release_created"] and {a["action"] for a in record["assets"]} == {"uploaded"}

    before = dict(github.assets)
    again = closing(cfg, return_state=True)
    assert again.name == "Closed" and github.assets == before  # the manifest at Live has not changed
    record = EvidenceLedger(cfg.evidence_dir).read_json(layout.release_assets())
    assert {a["action"] for a in record["assets"]} == {"skipped"}

    capsys.readouterr()
    assert main(["evidence", "verify", "--release", f"v{RELEASE}", "--key", signing_key["public_key_path"],
                 "--repository", github.repository, "--api-url", github.url, "--gpg-key", gpg.fingerprint]) == 0
    assert f"{github.repository} v{RELEASE}: verifies: 8 files" in capsys.readouterr().out
    evidence = b"".join(p.read_bytes() for p in cfg.evidence_dir.iterdir() if p.is_file())
    assert github.token not in caplog.text and github.token.encode() not in evidence


def test_a_dry_run_asks_github_nothing_and_a_missing_ritual_file_is_named(github, signing_key, tmp_path,
                                                                          monkeypatch):
    from flows.attest import attach_release_evidence

    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    folder = tmp_path / f"v{RELEASE}"
    _live(folder, SigningKey.from_file(signing_key["key_path"]))
    (folder / layout.sbom(RELEASE)).unlink()
    cfg = load_settings({"release": RELEASE, "process": {"evidence_root": str(tmp_path), "git": {"repo": None},
                                                         "github": {"repository": github.repository,
                                                                    "api_url": github.url, "release_assets": True}}})
    record, problems = attach_release_evidence(cfg, folder, dry_run=True)
    assert record["would_attach"] == sorted(set(ATTACHED) - {"SHA256SUMS.asc", "sbom_1.4.0.json"})
    assert problems == ["release assets: sbom_1.4.0.json is not in the evidence"] and github.calls == []


@pytest.mark.parametrize("case", ["no git repository", "the tag step failed"])
def test_nothing_is_attached_without_a_tag_pushed_and_the_closing_says_why(github, signing_key, tmp_path,
                                                                          monkeypatch, case):
    from flows.closing import closing

    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    _live(tmp_path / f"v{RELEASE}", SigningKey.from_file(signing_key["key_path"]))
    repo = None if case == "no git repository" else _repo(tmp_path)
    if repo:  # a tag of the same name at another commit: golive never moves a tag
        subprocess.run(["git", "-C", repo, "tag", f"v{RELEASE}", "HEAD"], check=True)
        subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit",
                        "-q", "--allow-empty", "-m", "later"], check=True)
    cfg = load_settings({"release": RELEASE, "policy": {"stages": [100], "shadow": {"enabled": False}}, "process": {
        "evidence_root": str(tmp_path), "git": {"repo": repo}, "signing": signing_key,
        "github": {"repository": github.repository, "api_url": github.url, "release_assets": True}}})
    state = closing(cfg, return_state=True)
    why = "no git repository (process.git.repo), so no tag was pushed" if repo is None else "the tag step failed"
    assert state.name == "ClosedPartially" and f"release assets: not attached: {why}" in state.message
    assert EvidenceLedger(cfg.evidence_dir).read_json(layout.release_assets())["skipped"] == why
    assert github.releases == {} and not any("/releases" in path for _, path in github.calls)
