"""`golive evidence verify`: everything an auditor checks in a release's folder, offline.

The manifest's hash chain (each link's head, its link to the one before, its signature), every
file against the newest hash the chain holds for it, the release's records against each other
(a one-liner or success criteria that say "no rollback" beside a rollback sealed before them),
every DSSE envelope against the trusted public key (and, for `X.dsse.json`, that its payload is
exactly the file `X`), the subjects of in-toto statements against the files they name, and
sigstore bundles against the public-good trust root shipped with `sigstore` (no network).

Nothing in the folder goes unaccounted for: every regular file at any depth (dotfiles and a
sub-folder's `manifest.json` included) must be in the chain, a symbolic link is refused, and a
subject of a signed statement that is not in the folder is a failure. Only the ledger's own
scratch is passed over, and only while it holds what the ledger puts there
(`golive.evidence.scratch_problem`). The chain itself can only show what it holds: links cut
from its end are found by comparing its last head with the head published outside the folder at
the last seal (`expect_head`).

The folder is outside input: whatever a file holds (any JSON type, any depth, any name) ends as
a problem line, never an exception, and every line is escaped so no name can start a line of
its own.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from golive import layout
from golive.attest import CHECKSUMS, is_signature, parse_checksums, signature_name
from golive.closing import records_disagree
from golive.evidence import (
    LINK_PAYLOAD_TYPE, MANIFEST, EvidenceLedger, MalformedManifest, chain_links, latest_hashes, link_head, read_regular,
    scratch_problem, sha256_file,
)
from golive.signing import SigningError, key_id, load_public_key, verify_envelope
from golive.validation import escape_line

__all__ = ["SIGSTORE_BUNDLE_SUFFIX", "SignatureCheck", "VerifyReport", "describe_key", "verdict", "verify_folder",
           "verify_release_folder"]

SIGSTORE_BUNDLE_SUFFIX = layout.SIGSTORE_BUNDLE_SUFFIX
# The provenance names the release's source tree by its `git archive` digest; that archive is
# rebuilt from the repository, never stored in the folder.
_SOURCE_ARCHIVE_SUBJECT = re.compile(r"^source@[0-9a-f]{7,64}\.tar$")


@dataclass
class VerifyReport:
    files: int = 0
    links: int = 0
    signatures: int = 0
    head: str | None = None  # the hash of the chain's last link
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what an auditor should know that is no failure

    @property
    def ok(self) -> bool:
        return not self.problems


def _is_envelope(data: object) -> bool:
    return isinstance(data, dict) and {"payload", "payloadType", "signatures"} <= data.keys()


def _read_chain(folder: Path) -> list[dict]:
    """The manifest's links, each checked for shape, so later checks never meet a surprise type."""
    return chain_links(json.loads(read_regular(folder / MANIFEST)))


def _check_chain(folder: Path, public_key: ec.EllipticCurvePublicKey,
                 report: VerifyReport) -> list[dict] | None:
    """The chain's links, each checked; None when there is no chain to read."""
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
    except RecursionError:
        report.problems.append(f"{MANIFEST}: malformed (nested too deeply)")
        return None
    except ValueError:  # not JSON, not UTF-8
        report.problems.append(f"{MANIFEST}: malformed (not JSON)")
        return None
    if not chain:
        report.problems.append(f"{MANIFEST}: no links")
    previous = None
    for link in chain:
        where = f"{MANIFEST}: link {link['seq']} ({link['flow']})"
        if link["previous"] != previous:
            report.problems.append(f"{where}: does not follow the link before it")
        try:
            content_matches = link_head(link) == link["head"]
        except (ValueError, TypeError, RecursionError):  # a value JSON cannot write back (NaN is allowed)
            content_matches = False
        if not content_matches:
            report.problems.append(f"{where}: head does not match its content")
        signature = link.get("signature")
        if signature is None:
            report.problems.append(f"{where}: unsigned")
        else:
            envelope = {"payload": base64.b64encode(link["head"].encode("utf-8", "surrogatepass")).decode(),
                        "payloadType": LINK_PAYLOAD_TYPE, "signatures": [signature]}
            try:
                verify_envelope(envelope, public_key)
                report.signatures += 1
            except SigningError as exc:
                report.problems.append(f"{where}: {exc}")
        previous = link["head"]
    report.links = len(chain)
    report.head = previous
    return chain


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


def _check_statement(folder: Path, name: str, payload: bytes, report: VerifyReport, release: str | None = None) -> None:
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
    except (ValueError, KeyError, TypeError, RecursionError):
        report.problems.append(f"{name}: payload is not an in-toto statement")
        return
    if not isinstance(subjects, list):
        report.problems.append(f"{name}: payload is not an in-toto statement")
        return
    if release is not None and (named := _release_of(statement)) != release:
        report.problems.append(f"{name}: its statement is of release {escape_line(str(named))[:40]}, "
                               f"not of {release}" if named is not None else f"{name}: its statement names no release")
    for subject in subjects:
        subject_name = subject.get("name") if isinstance(subject, dict) else None
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if not isinstance(subject_name, str) or not subject_name or not isinstance(digest, dict):
            report.problems.append(f"{name}: a subject without a name or a digest")
            continue
        if _SOURCE_ARCHIVE_SUBJECT.match(subject_name):
            continue
        actual = _digest(folder, subject_name) if _names_a_file_inside(folder, subject_name) else None
        if actual is None:
            report.problems.append(f"{name}: subject {subject_name} is missing from the folder")
        elif actual != digest.get("sha256"):
            report.problems.append(f"{name}: subject {subject_name} does not match its sha256")


def _release_of(statement: object) -> str | None:
    """The release a provenance statement was made for (its build's `release` parameter)."""
    try:
        release = statement["predicate"]["buildDefinition"]["externalParameters"]["release"]
    except (KeyError, TypeError):
        return None
    return release if isinstance(release, str) else None


def _names_a_file_inside(folder: Path, name: str) -> bool:
    """`name` is a relative path that stays in `folder` (no NUL, no `..` out, no absolute path)."""
    if "\0" in name:
        return False
    try:
        return folder.resolve() in (folder / name).resolve().parents
    except (OSError, ValueError):
        return False


def _digest(folder: Path, name: str) -> str | None:
    """The sha256 of the regular file `name` in `folder`; None when there is none to read (gone,
    a symbolic link, a folder, a special file)."""
    try:
        return sha256_file(folder / name)
    except (OSError, ValueError):
        return None


def _json_file(folder: Path, name: str) -> object | None:
    """`name` decoded as JSON; None when it does not read or decode (any depth, any bytes)."""
    try:
        return json.loads(read_regular(folder / name))
    except (OSError, ValueError, RecursionError):
        return None


def _check_envelope(folder: Path, name: str, envelope: dict, public_key, report: VerifyReport,
                    release: str | None = None) -> bool:
    """Whether the envelope verifies; what it signs is checked too."""
    try:
        payload_type, payload = verify_envelope(envelope, public_key)
    except SigningError as exc:
        report.problems.append(f"{name}: {exc}")
        return False
    report.signatures += 1
    if name.endswith(layout.DSSE_SUFFIX):
        signed_name = name.removesuffix(layout.DSSE_SUFFIX)
        try:
            signed = read_regular(folder / signed_name)
        except OSError:
            report.problems.append(f"{name}: signs {signed_name}, which is missing")
        else:
            if signed != payload:
                report.problems.append(f"{signed_name}: differs from what {name} signed")
    if payload_type == "application/vnd.in-toto+json":
        _check_statement(folder, name, payload, report, release)
    return True


def _check_sigstore_bundle(folder: Path, name: str, identity: str | None, issuer: str | None,
                           report: VerifyReport, release: str | None = None) -> bool:
    """Whether the bundle verifies; the statement it signs is checked against the files as a DSSE
    envelope's is. Without an identity a bundle proves only that someone signed it, so it is not
    counted as a signature, and the report says so."""
    from sigstore.models import Bundle
    from sigstore.verify import Verifier, policy

    try:
        bundle = Bundle.from_json(read_regular(folder / name))
        rule = policy.Identity(identity=identity, issuer=issuer) if identity else policy.UnsafeNoOp()
        payload_type, payload = Verifier.production(offline=True).verify_dsse(bundle, rule)
    except Exception as exc:  # sigstore raises many types; each is "does not verify" to an auditor
        report.problems.append(f"{name}: sigstore bundle does not verify ({type(exc).__name__}: {exc})")
        return False
    if payload_type == "application/vnd.in-toto+json":
        _check_statement(folder, name, payload, report, release)
    if identity:
        report.signatures += 1
    else:
        report.notes.append(f"{name}: sigstore bundle verifies, but without --sigstore-identity who signed it is "
                            f"unknown; not counted as a signature")
    return True


def _survey(folder: Path, report: VerifyReport):
    """The folder's files (EvidenceLedger.survey); None, with the problem said, when it is no folder."""
    if not folder.is_dir() or folder.is_symlink():
        report.problems.append(f"{escape_line(folder)}: not a folder")
        return None
    return EvidenceLedger(folder).survey()


def verdict(report: VerifyReport) -> str:
    """`verifies`, or `does NOT verify (N problems)`: how the command sums a report up."""
    count = len(report.problems)
    return "verifies" if report.ok else f"does NOT verify ({count} problem{'s' if count > 1 else ''})"


def verify_folder(folder: str | Path, public_key: ec.EllipticCurvePublicKey,
                  sigstore_identity: str | None = None, sigstore_issuer: str | None = None,
                  expect_head: str | None = None) -> VerifyReport:
    """Every problem in `folder`, one line each naming the file; an empty list means it verifies.

    `expect_head` is the chain head published at the last seal; without it, links cut from the
    end of the chain (with their files) cannot be told from a shorter go-live.
    """
    folder = Path(folder)
    report = VerifyReport()
    if (survey := _survey(folder, report)) is None:
        return report
    present, refused, scratch = survey
    report.files = len(present)
    report.problems += [f"{name}: a symbolic link or special file, refused as evidence" for name in refused]
    report.problems += [problem for name in scratch if (problem := scratch_problem(folder, name))]
    chain = _check_chain(folder, public_key, report)
    if chain is not None:
        _check_files(folder, chain, present, refused, expect_head, report)
        for name in present:
            if name.endswith(SIGSTORE_BUNDLE_SUFFIX):
                _check_sigstore_bundle(folder, name, sigstore_identity, sigstore_issuer, report)
            elif name.endswith(".json") and _is_envelope(data := _json_file(folder, name)):
                _check_envelope(folder, name, data, public_key, report)
    report.problems = [escape_line(problem) for problem in report.problems]
    return report


def _check_files(folder: Path, chain: list[dict], present: list[str], refused: list[str], expect_head: str | None,
                 report: VerifyReport) -> None:
    """Every file against the chain's newest digest for it, and the records against each other."""
    recorded = latest_hashes(chain)
    if expect_head is not None:
        _check_head([link["head"] for link in chain], expect_head.strip().lower(), report)
    for name in sorted(recorded):
        if name in refused:
            continue
        if name not in present:
            report.problems.append(f"{name}: missing")
        elif (digest := _digest(folder, name)) is None:
            report.problems.append(f"{name}: missing (gone while the folder was read)")
        elif digest != recorded[name]:
            report.problems.append(f"{name}: changed (sha256 differs from the manifest)")
    report.problems += [f"{name}: not in the manifest" for name in present if name not in recorded]
    sealed_order = list(dict.fromkeys(name for link in chain for name in link["files"]))
    report.problems += records_disagree(sealed_order, *_claims(folder, recorded))


def _claims(folder: Path, recorded: dict) -> tuple[str | None, dict | None]:
    """The one-liner's text and the success criteria, where the chain holds them and they read."""
    oneliner = None
    if layout.RELEASE_ONELINER in recorded:
        try:
            oneliner = read_regular(folder / layout.RELEASE_ONELINER).decode("utf-8")
        except (OSError, ValueError):
            pass  # an unreadable record is reported by the hash checks
    criteria = _json_file(folder, layout.SUCCESS_CRITERIA) if layout.SUCCESS_CRITERIA in recorded else None
    return oneliner, criteria if isinstance(criteria, dict) else None


def describe_key(public_key: ec.EllipticCurvePublicKey) -> str:
    return f"P-256 key {key_id(public_key)[:16]}…"


# A detached signature's check, given by the caller (GnuPG is an outside program): None when
# `signature` is a good signature of `signed`, else why not.
SignatureCheck = Callable[[Path, Path], "str | None"]


def verify_release_folder(folder: str | Path, public_key: ec.EllipticCurvePublicKey,
                          sigstore_identity: str | None = None, sigstore_issuer: str | None = None,
                          expect_head: str | None = None, check_signature: SignatureCheck | None = None,
                          require_signature: bool = False, release: str | None = None) -> VerifyReport:
    """Every problem in the files of a release (downloaded into `folder`, or a build's
    `golive attest` folder), checked against each other, one line each naming the file.

    `SHA256SUMS` must list every file but itself and the `.asc` signatures, each with its sha256;
    every DSSE envelope (`.json`, or a line of `.intoto.jsonl`) must verify with `public_key`, and
    the subjects of its in-toto statement must be files here with those digests; every SBOM
    (`*.cdx.json`, the ritual's `sbom_*.json`) must be such a subject; sigstore bundles verify
    offline; each `X.asc` is checked over `X` by `check_signature` (without one it is a problem:
    unchecked is not good), and with `require_signature` `SHA256SUMS.asc` must be there. An
    evidence `manifest.json` (the chain as it stood at Live) must verify as a chain, and the
    files it names that are here must match it. Every other file must be vouched for by a
    signature made with `public_key`: a subject of a statement, a file a verified envelope signs
    or is, a file of the verified chain, or the public key itself; SHA256SUMS alone vouches for
    nothing, since anyone who can add a file can rewrite it. With `release`, every statement must
    name that release (a release's signed files do not pass as another's).
    """
    folder = Path(folder)
    report = VerifyReport()
    if (survey := _survey(folder, report)) is None:
        return report
    present, refused, _ = survey
    if (folder / MANIFEST).is_file() and not (folder / MANIFEST).is_symlink():
        present = sorted([*present, MANIFEST])
    report.files = len(present)
    report.problems += [f"{name}: a symbolic link or special file, refused" for name in refused]
    _check_checksums(folder, present, report)
    if require_signature and signature_name(CHECKSUMS) not in present:
        report.problems.append(f"{signature_name(CHECKSUMS)}: missing (a GPG signature was asked for)")
    vouched: set[str] = set()
    if MANIFEST in present:
        before = len(report.problems)
        chain = _check_chain(folder, public_key, report)
        if chain is not None:
            if expect_head is not None:
                _check_head([link["head"] for link in chain], expect_head.strip().lower(), report)
            recorded = latest_hashes(chain)
            for name in present:
                if name in recorded and _digest(folder, name) != recorded[name]:
                    report.problems.append(f"{name}: differs from the evidence manifest")
                elif name in recorded and len(report.problems) == before:
                    vouched.add(name)
            if len(report.problems) == before:
                vouched.add(MANIFEST)
    attested: set[str] = set()
    for name in present:
        if name.endswith(SIGSTORE_BUNDLE_SUFFIX):
            _check_sigstore_bundle(folder, name, sigstore_identity, sigstore_issuer, report, release)
        elif is_signature(name):
            _check_detached(folder, name, present, check_signature, report)
        elif name.endswith(layout.IN_TOTO_LINES_SUFFIX):
            if found := _check_envelope_lines(folder, name, public_key, report, release):
                attested |= found
                vouched.add(name)
        elif name.endswith(".json") and name != MANIFEST and _is_envelope(data := _json_file(folder, name)):
            if _check_envelope(folder, name, data, public_key, report, release):
                attested |= _subjects(data)
                vouched |= {name, name.removesuffix(layout.DSSE_SUFFIX)}
    if not attested:
        report.problems.append("no provenance: no in-toto statement signed with the key names a file here")
    report.problems += [f"{name}: an SBOM no signed provenance names" for name in present
                        if _is_sbom(name) and name not in attested]
    if _is_the_key(folder, public_key):
        vouched.add(layout.PUBLIC_KEY)
    report.problems += [f"{name}: no signature by the key vouches for it (not a subject of the signed provenance, "
                        f"not in the signed manifest)" for name in present
                        if name not in vouched | attested and name != CHECKSUMS and not is_signature(name)
                        and not name.endswith(SIGSTORE_BUNDLE_SUFFIX) and not _is_sbom(name)]
    report.problems = [escape_line(problem) for problem in report.problems]
    return report


def _is_the_key(folder: Path, public_key: ec.EllipticCurvePublicKey) -> bool:
    """Whether the folder's public key file holds `public_key` itself."""
    try:
        return key_id(load_public_key(read_regular(folder / layout.PUBLIC_KEY))) == key_id(public_key)
    except (OSError, SigningError, ValueError):
        return False


def _is_sbom(name: str) -> bool:
    return name.endswith(layout.CYCLONEDX_SUFFIX) or (name.startswith("sbom_") and name.endswith(".json"))


def _subjects(envelope: dict) -> set[str]:
    """The subject names of the in-toto statement in a verified envelope (none for another payload)."""
    try:
        if envelope["payloadType"] != "application/vnd.in-toto+json":
            return set()
        subjects = json.loads(base64.b64decode(envelope["payload"]))["subject"]
        return {s["name"] for s in subjects if isinstance(s, dict) and isinstance(s.get("name"), str)}
    except (ValueError, KeyError, TypeError, RecursionError):
        return set()


def _check_detached(folder: Path, name: str, present: list[str], check_signature: SignatureCheck | None,
                    report: VerifyReport) -> None:
    signed = name.removesuffix(".asc")
    if signed not in present:
        report.problems.append(f"{name}: signs {signed}, which is missing")
    elif check_signature is None:
        report.problems.append(f"{name}: not checked (no OpenPGP checker given)")
    elif (why := check_signature(folder / name, folder / signed)) is not None:
        report.problems.append(f"{name}: {why}")
    else:
        report.signatures += 1


def _check_checksums(folder: Path, present: list[str], report: VerifyReport, checksums: str = CHECKSUMS) -> None:
    if checksums not in present:
        report.problems.append(f"{checksums}: missing")
        return
    try:
        listed, problems = parse_checksums(read_regular(folder / checksums).decode("utf-8"))
    except (OSError, ValueError):
        report.problems.append(f"{checksums}: unreadable (not UTF-8 text)")
        return
    report.problems += problems
    for name, digest in sorted(listed.items()):
        if name not in present:
            report.problems.append(f"{name}: listed in {checksums}, missing")
        elif _digest(folder, name) != digest:
            report.problems.append(f"{name}: does not match {checksums}")
    report.problems += [f"{name}: not in {checksums}" for name in present
                        if name not in listed and name != checksums and not is_signature(name)]


def _check_envelope_lines(folder: Path, name: str, public_key, report: VerifyReport,
                          release: str | None = None) -> set[str]:
    """Each line of an in-toto JSON-lines file is a DSSE envelope; the subjects of those that verify."""
    try:
        lines = read_regular(folder / name).decode("utf-8").splitlines()
    except (OSError, ValueError):
        report.problems.append(f"{name}: unreadable (not UTF-8 text)")
        return set()
    found: set[str] = set()
    for number, line in enumerate(filter(str.strip, lines), 1):
        try:
            envelope = json.loads(line)
        except (ValueError, RecursionError):
            envelope = None
        if not _is_envelope(envelope):
            report.problems.append(f"{name}: line {number} is not a DSSE envelope")
            continue
        if _check_envelope(folder, name, envelope, public_key, report, release):
            found |= _subjects(envelope)
    return found
