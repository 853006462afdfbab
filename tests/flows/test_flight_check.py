"""The flight check on the real sandbox: CLEARED or NO-GO, and evidence an auditor can verify."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import shutil
from pathlib import Path

import httpx
import pytest
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client.parser import text_string_to_metric_families

from cli.main import main
from golive import layout
from golive.evidence import MANIFEST
from golive.settings import merge_settings
from golive.signing import SigningKey, generate_key

pytestmark = pytest.mark.sandbox


def _config(sandbox, signing_key: dict, tmp_path: Path) -> Path:
    from sandbox.release_repo import create_release_repo

    # A release repository of its own: another test of the run may have tagged v1.4.0 in the sandbox's.
    repo = create_release_repo(tmp_path / "source", "1.4.0", "1.3.2")
    config = tmp_path / "golive.yaml"
    config.write_text(yaml.safe_dump(merge_settings(sandbox.golive_settings(), {"process": {
        "evidence_root": str(tmp_path / "evidence"), "signing": signing_key, "blast_radius_seconds": 2,
        "git": {"repo": str(repo), "remote": "origin"}}})))
    return config


def _drill_requests(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "spark_http_requests_total" and s.labels.get("source") == "drill")


@pytest.fixture(scope="module")
def cleared(sandbox, signing_key, tmp_path_factory):
    """One flight check of v1.4.0 on the sandbox, through the command line; its output and folder."""
    tmp_path = tmp_path_factory.mktemp("flight-check")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["flight-check", "--release", "1.4.0", "--config", str(_config(sandbox, signing_key, tmp_path))])
    return code, out.getvalue(), tmp_path / "evidence" / "v1.4.0"


def _pem_bodies(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def test_the_sandbox_is_cleared_for_takeoff_with_40_plus_files(cleared):
    code, out, folder = cleared
    assert code == 0, out
    assert "CLEARED FOR TAKEOFF" in out
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(files) >= 40
    assert json.loads((folder / layout.FLIGHT_CHECK).read_text()) | {"elapsed_seconds": 0} == {
        "release": "1.4.0", "cleared": True, "failed": [], "elapsed_seconds": 0}
    assert (folder / layout.go_nogo("1.4.0")).read_text().rstrip().endswith("DECISION: GO")


def test_the_provenance_envelope_verifies_with_plain_cryptography(cleared, signing_key):
    _, _, folder = cleared
    envelope = json.loads((folder / layout.build_provenance("1.4.0")).read_text())
    payload = base64.b64decode(envelope["payload"])
    kind = envelope["payloadType"].encode()
    pae = b"DSSEv1 " + str(len(kind)).encode() + b" " + kind + b" " + str(len(payload)).encode() + b" " + payload
    public_key = serialization.load_pem_public_key(Path(signing_key["public_key_path"]).read_bytes())
    public_key.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))
    statement = json.loads(payload)
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    sbom = next(s for s in statement["subject"] if s["name"] == layout.sbom("1.4.0"))
    assert sbom["digest"]["sha256"] == hashlib.sha256((folder / layout.sbom("1.4.0")).read_bytes()).hexdigest()


def test_the_sbom_is_strictly_valid_cyclonedx_16_and_reproducible(cleared, tmp_path, monkeypatch):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from tasks.sbom import _validated_marker, make_sbom

    _, _, folder = cleared
    first = (folder / layout.sbom("1.4.0")).read_bytes()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(first.decode()) is None
    assert json.loads(first)["specVersion"] == "1.6"
    monkeypatch.setenv("GOLIVE_CACHE_DIR", str(tmp_path / "cache"))  # described anew, not remembered
    # Validated just above: the same bytes are not validated again (some ten CPU seconds).
    marker = _validated_marker(hashlib.sha256(first).hexdigest())
    marker.parent.mkdir(parents=True)
    marker.touch()
    make_sbom.fn(str(tmp_path), "1.4.0")
    assert (tmp_path / layout.sbom("1.4.0")).read_bytes() == first


def test_the_blast_radius_drill_never_reached_stable(cleared, sandbox):
    _, _, folder = cleared
    result = json.loads((folder / layout.MICRO_BLAST_RADIUS).read_text())
    assert result["ok"] and result["requests"] > 10 and result["versions_seen"] == {"1.4.0": result["requests"]}
    # The services' own counters, read here and not through golive: stable never saw a drill request.
    assert _drill_requests(sandbox.service_url("stable")) == 0
    assert _drill_requests(sandbox.service_url("canary")) >= result["requests"]


def test_no_private_key_material_under_evidence(cleared, signing_key):
    _, _, folder = cleared
    private_pem = Path(signing_key["key_path"]).read_text()
    secret_lines = _pem_bodies(private_pem)
    assert secret_lines  # the key has a body to look for
    scanned = [path for path in folder.parent.rglob("*") if path.is_file()]
    assert len(scanned) >= 40 and folder / layout.PUBLIC_KEY in scanned  # the flight check's evidence is there
    for path in scanned:
        text = path.read_text(errors="replace")
        assert "PRIVATE KEY" not in text, path
        assert not any(line in text for line in secret_lines), path


def _verify(folder: Path, public_key: str, capsys) -> tuple[int, str]:
    code = main(["evidence", "verify", str(folder), "--key", public_key])
    return code, capsys.readouterr().out


def test_every_tampered_file_is_named_and_the_untouched_folder_verifies(cleared, signing_key, tmp_path, capsys):
    _, _, folder = cleared
    public_key = signing_key["public_key_path"]
    assert _verify(folder, public_key, capsys)[0] == 0
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        copy = tmp_path / path.name
        shutil.copytree(folder, copy)
        flipped = bytearray((copy / path.name).read_bytes())
        flipped[len(flipped) // 2] ^= 0x01
        (copy / path.name).write_bytes(bytes(flipped))
        code, out = _verify(copy, public_key, capsys)
        named = MANIFEST if path.name == MANIFEST else path.name
        assert code == 1 and f"FAIL {named}" in out, (path.name, out)
        shutil.rmtree(copy)


def test_a_deleted_file_or_a_signature_by_another_key_fails_verification(cleared, signing_key, tmp_path, capsys):
    _, _, folder = cleared
    public_key = signing_key["public_key_path"]
    deleted = tmp_path / "deleted"
    shutil.copytree(folder, deleted)
    (deleted / layout.preflight_check("canary_version")).unlink()
    code, out = _verify(deleted, public_key, capsys)
    assert code == 1 and "FAIL preflight_canary_version.json: missing" in out

    resigned = tmp_path / "resigned"
    shutil.copytree(folder, resigned)
    envelope = json.loads((resigned / layout.build_provenance("1.4.0")).read_text())
    intruder = SigningKey.from_file(generate_key(tmp_path / "intruder")[0])
    forged = intruder.envelope(base64.b64decode(envelope["payload"]), envelope["payloadType"])
    (resigned / layout.build_provenance("1.4.0")).write_text(json.dumps(forged))
    code, out = _verify(resigned, public_key, capsys)
    assert code == 1
    assert "FAIL build_provenance_1.4.0.json: no signature verifies with key" in out


def test_a_canary_serving_another_version_is_no_go_naming_the_check(sandbox, signing_key, tmp_path, capsys):
    config = _config(sandbox, signing_key, tmp_path)
    assert main(["flight-check", "--release", "1.5.0", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "NO-GO: v1.5.0" in out
    assert "  - canary_version: serves 1.4.0, expected 1.5.0" in out
    assert "CLEARED" not in out


def test_a_failed_drill_is_no_go_naming_drill_failed(sandbox, canary_weight, signing_key, tmp_path, capsys):
    sandbox.set_faults("canary", {"error_rate": 0.5})  # half the drill's requests fail on the canary
    code = main(["flight-check", "--release", "1.4.0", "--config", str(_config(sandbox, signing_key, tmp_path))])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "NO-GO" in out and "drill-failed: micro_blast_radius: " in out
    assert sandbox.weight() == 0
