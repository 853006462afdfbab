"""`golive evidence verify`: everything an auditor checks in a release's folder, offline.

The manifest's hash chain (each link's head, its link to the one before, its signature), every
file against the newest hash the chain holds for it, the release's records against each other
(a one-liner or success criteria that say "no rollback" beside a rollback sealed before them), every DSSE envelope against the trusted
public key (and, for `X.dsse.json`, that its payload is exactly the file `X`), the subjects of
in-toto statements against the files they name, and sigstore bundles against the public-good
trust root shipped with `sigstore` (no network).

Nothing in the folder goes unaccounted for: every regular file at any depth (dotfiles and a
sub-folder's `manifest.json` included) must be in the chain, a symbolic link is refused, and a
subject of a signed statement that is not in the folder is a failure. The chain itself can only
show what it holds: links cut from its end are found by comparing its last head with the head
published outside the folder at the last seal (`expect_head`).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from golive import layout
from golive.closing import records_disagree
from golive.evidence import LINK_PAYLOAD_TYPE, MANIFEST, EvidenceLedger, latest_hashes, link_head, sha256_file
from golive.signing import SigningError, key_id, verify_envelope

__all__ = ["SIGSTORE_BUNDLE_SUFFIX", "VerifyReport", "describe_key", "verify_folder"]

SIGSTORE_BUNDLE_SUFFIX = layout.SIGSTORE_BUNDLE_SUFFIX
# The provenance names the release's source tree by its `git archive` digest; that archive is
# rebuilt from the repository, never stored in the folder.
_SOURCE_ARCHIVE_SUBJECT = re.compile(r"^source@[0-9a-f]{7,64}\.tar$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class MalformedManifest(ValueError):
    """The manifest is not a chain of links; the message says where."""


@dataclass
class VerifyReport:
    files: int = 0
    links: int = 0
    signatures: int = 0
    head: str | None = None  # the hash of the chain's last link
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _is_envelope(data: object) -> bool:
    return isinstance(data, dict) and {"payload", "payloadType", "signatures"} <= data.keys()


def _read_chain(folder: Path) -> list[dict]:
    """The manifest's links, each checked for shape, so later checks never meet a surprise type."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    if not isinstance(manifest, dict) or not isinstance(manifest.get("chain"), list):
        raise MalformedManifest("expected an object with a `chain` list")
    for index, link in enumerate(manifest["chain"], 1):
        if not isinstance(link, dict):
            raise MalformedManifest(f"link {index} is not an object")
        files = link.get("files")
        if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and _SHA256.match(v) for k, v in files.items()):
            raise MalformedManifest(f"link {index}: `files` must map names to sha256 digests")
        if not isinstance(link.get("head"), str) or not isinstance(link.get("previous"), (str, type(None))):
            raise MalformedManifest(f"link {index}: `head` and `previous` must be digests")
        if "signature" in link and not isinstance(link["signature"], dict):
            raise MalformedManifest(f"link {index}: `signature` must be an object")
    return manifest["chain"]


def _check_chain(folder: Path, public_key: ec.EllipticCurvePublicKey, report: VerifyReport) -> dict | None:
    """The newest digest of each file as the chain records it; None when there is no chain to read."""
    if not (folder / MANIFEST).is_file() or (folder / MANIFEST).is_symlink():
        report.problems.append(f"{MANIFEST}: missing")
        return None
    try:
        chain = _read_chain(folder)
    except OSError as exc:
        report.problems.append(f"{MANIFEST}: unreadable ({exc.strerror})")
        return None
    except MalformedManifest as exc:
        report.problems.append(f"{MANIFEST}: malformed ({exc})")
        return None
    except ValueError:  # not JSON, not UTF-8
        report.problems.append(f"{MANIFEST}: malformed (not JSON)")
        return None
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
    report.head = previous
    return latest_hashes(chain)


def _check_head(chain_heads: list[str], expected: str, report: VerifyReport) -> None:
    """The published head must be the chain's last: fewer links means some were cut."""
    last = chain_heads[-1] if chain_heads else None
    if last == expected:
        return
    if expected in chain_heads:
        where = f"it is link {chain_heads.index(expected) + 1} of {len(chain_heads)}: links were added after it"
    else:
        where = "it is not in the chain: links were cut or rewritten"
    report.problems.append(f"{MANIFEST}: the chain ends at {last} but {expected} was published ({where})")


def _check_statement(folder: Path, name: str, payload: bytes, report: VerifyReport) -> None:
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
    except (ValueError, KeyError, TypeError):
        report.problems.append(f"{name}: payload is not an in-toto statement")
        return
    if not isinstance(subjects, list):
        report.problems.append(f"{name}: payload is not an in-toto statement")
        return
    for subject in subjects:
        subject_name = subject.get("name") if isinstance(subject, dict) else None
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if not isinstance(subject_name, str) or not subject_name or not isinstance(digest, dict):
            report.problems.append(f"{name}: a subject without a name or a digest")
            continue
        if _SOURCE_ARCHIVE_SUBJECT.match(subject_name):
            continue
        target = folder / subject_name
        inside = folder.resolve() in target.resolve().parents
        if not inside or target.is_symlink() or not target.is_file():
            report.problems.append(f"{name}: subject {subject_name} is missing from the folder")
        elif sha256_file(target) != digest.get("sha256"):
            report.problems.append(f"{name}: subject {subject_name} does not match its sha256")


def _check_envelope(folder: Path, name: str, envelope: dict, public_key, report: VerifyReport) -> None:
    try:
        payload_type, payload = verify_envelope(envelope, public_key)
    except SigningError as exc:
        report.problems.append(f"{name}: {exc}")
        return
    report.signatures += 1
    if name.endswith(layout.DSSE_SUFFIX):
        signed_file = folder / name.removesuffix(layout.DSSE_SUFFIX)
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
                  sigstore_identity: str | None = None, sigstore_issuer: str | None = None,
                  expect_head: str | None = None) -> VerifyReport:
    """Every problem in `folder`, one line each naming the file; an empty list means it verifies.

    `expect_head` is the chain head published at the last seal; without it, links cut from the
    end of the chain (with their files) cannot be told from a shorter go-live.
    """
    folder = Path(folder)
    report = VerifyReport()
    if not folder.is_dir() or folder.is_symlink():
        report.problems.append(f"{folder}: not a folder")
        return report
    present, refused = EvidenceLedger(folder).survey()
    report.files = len(present)
    report.problems += [f"{name}: a symbolic link or special file, refused as evidence" for name in refused]
    recorded = _check_chain(folder, public_key, report)
    if recorded is None:
        return report
    if expect_head is not None:
        _check_head([link["head"] for link in _read_chain(folder)], expect_head.strip().lower(), report)
    for name in sorted(recorded):
        if name in refused:
            continue
        if name not in present:
            report.problems.append(f"{name}: missing")
        elif sha256_file(folder / name) != recorded[name]:
            report.problems.append(f"{name}: changed (sha256 differs from the manifest)")
    report.problems += [f"{name}: not in the manifest" for name in present if name not in recorded]
    sealed_order = list(dict.fromkeys(name for link in _read_chain(folder) for name in link["files"]))
    report.problems += records_disagree(sealed_order, *_claims(folder, recorded))
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


def _claims(folder: Path, recorded: dict) -> tuple[str | None, dict | None]:
    """The one-liner's text and the success criteria, where the chain holds them and they read."""
    oneliner = criteria = None
    try:
        if layout.RELEASE_ONELINER in recorded:
            oneliner = (folder / layout.RELEASE_ONELINER).read_text(encoding="utf-8")
        if layout.SUCCESS_CRITERIA in recorded:
            criteria = json.loads((folder / layout.SUCCESS_CRITERIA).read_bytes())
    except (OSError, ValueError, RecursionError):
        pass  # an unreadable record is reported by the hash checks above
    return oneliner, criteria if isinstance(criteria, dict) else None


def describe_key(public_key: ec.EllipticCurvePublicKey) -> str:
    return f"P-256 key {key_id(public_key)[:16]}…"
