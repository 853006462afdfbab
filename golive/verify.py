"""`golive evidence verify`: everything an auditor checks in a release's folder, offline.

The manifest's hash chain (each link's head, its link to the one before, its signature), every
file against the newest hash the chain holds for it, every DSSE envelope against the trusted
public key (and, for `X.dsse.json`, that its payload is exactly the file `X`), the subjects of
in-toto statements against the files they name, and sigstore bundles against the public-good
trust root shipped with `sigstore` (no network).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from golive.evidence import LINK_PAYLOAD_TYPE, MANIFEST, EvidenceLedger, latest_hashes, link_head, sha256_file
from golive.signing import SigningError, key_id, verify_envelope

__all__ = ["SIGSTORE_BUNDLE_SUFFIX", "VerifyReport", "describe_key", "verify_folder"]

SIGSTORE_BUNDLE_SUFFIX = ".sigstore.json"


@dataclass
class VerifyReport:
    files: int = 0
    links: int = 0
    signatures: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _is_envelope(data: object) -> bool:
    return isinstance(data, dict) and {"payload", "payloadType", "signatures"} <= data.keys()


def _check_chain(ledger: EvidenceLedger, public_key: ec.EllipticCurvePublicKey, report: VerifyReport) -> dict:
    try:
        chain = ledger.chain()
    except (OSError, KeyError, ValueError):
        report.problems.append(f"{MANIFEST}: missing or unreadable")
        return {}
    if not chain:
        report.problems.append(f"{MANIFEST}: no links")
    previous = None
    for link in chain:
        where = f"{MANIFEST}: link {link.get('seq')} ({link.get('flow')})"
        if link.get("previous") != previous:
            report.problems.append(f"{where}: does not follow the link before it")
        if link_head(link) != link.get("head"):
            report.problems.append(f"{where}: head does not match its content")
        signature = link.get("signature")
        if signature is None:
            report.problems.append(f"{where}: unsigned")
        else:
            envelope = {"payload": base64.b64encode(str(link.get("head")).encode()).decode(),
                        "payloadType": LINK_PAYLOAD_TYPE, "signatures": [signature]}
            try:
                verify_envelope(envelope, public_key)
                report.signatures += 1
            except SigningError as exc:
                report.problems.append(f"{where}: {exc}")
        previous = link.get("head")
    report.links = len(chain)
    return latest_hashes(chain)


def _check_statement(folder: Path, name: str, payload: bytes, report: VerifyReport) -> None:
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
    except (ValueError, KeyError, TypeError):
        report.problems.append(f"{name}: payload is not an in-toto statement")
        return
    for subject in subjects:
        target = folder / subject.get("name", "")
        if subject.get("name") and target.is_file() and sha256_file(target) != subject.get("digest", {}).get("sha256"):
            report.problems.append(f"{name}: subject {subject['name']} does not match its sha256")


def _check_envelope(folder: Path, name: str, envelope: dict, public_key, report: VerifyReport) -> None:
    try:
        payload_type, payload = verify_envelope(envelope, public_key)
    except SigningError as exc:
        report.problems.append(f"{name}: {exc}")
        return
    report.signatures += 1
    if name.endswith(".dsse.json"):
        signed_file = folder / name.removesuffix(".dsse.json")
        if not signed_file.is_file():
            report.problems.append(f"{name}: signs {signed_file.name}, which is missing")
        elif signed_file.read_bytes() != payload:
            report.problems.append(f"{signed_file.name}: differs from what {name} signed")
    if payload_type == "application/vnd.in-toto+json":
        _check_statement(folder, name, payload, report)


def _check_sigstore_bundle(folder: Path, name: str, identity: str | None, issuer: str | None,
                           report: VerifyReport) -> None:
    from sigstore.models import Bundle
    from sigstore.verify import Verifier, policy

    try:
        bundle = Bundle.from_json((folder / name).read_bytes())
        rule = policy.Identity(identity=identity, issuer=issuer) if identity else policy.UnsafeNoOp()
        Verifier.production(offline=True).verify_dsse(bundle, rule)
        report.signatures += 1
    except Exception as exc:  # sigstore raises many types; each is "does not verify" to an auditor
        report.problems.append(f"{name}: sigstore bundle does not verify ({type(exc).__name__}: {exc})")


def verify_folder(folder: str | Path, public_key: ec.EllipticCurvePublicKey,
                  sigstore_identity: str | None = None, sigstore_issuer: str | None = None) -> VerifyReport:
    """Every problem in `folder`, one line each naming the file; an empty list means it verifies."""
    folder = Path(folder)
    report = VerifyReport()
    if not folder.is_dir():
        report.problems.append(f"{folder}: not a folder")
        return report
    ledger = EvidenceLedger(folder)
    recorded = _check_chain(ledger, public_key, report)
    present = ledger.files()
    report.files = len(present)
    for name in sorted(recorded):
        if name not in present:
            report.problems.append(f"{name}: missing")
        elif sha256_file(folder / name) != recorded[name]:
            report.problems.append(f"{name}: changed (sha256 differs from the manifest)")
    report.problems += [f"{name}: not in the manifest" for name in present if name not in recorded]
    for name in present:
        if name.endswith(SIGSTORE_BUNDLE_SUFFIX):
            _check_sigstore_bundle(folder, name, sigstore_identity, sigstore_issuer, report)
        elif name.endswith(".json"):
            try:
                data = json.loads((folder / name).read_bytes())
            except ValueError:
                continue
            if _is_envelope(data):
                _check_envelope(folder, name, data, public_key, report)
    return report


def describe_key(public_key: ec.EllipticCurvePublicKey) -> str:
    return f"P-256 key {key_id(public_key)[:16]}…"
