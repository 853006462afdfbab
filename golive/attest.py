"""The supply-chain files of a build and of a release, and what attaching them to a release does.

A build (`golive attest`) leaves its wheel and sdist, the project's CycloneDX SBOM
(`<name>-<version>.cdx.json`), an in-toto Statement v1 with a SLSA provenance v1 predicate over
the three (`<name>-<version>.intoto.jsonl`: one DSSE envelope a line, as SLSA's generators write
it), its signatures and `SHA256SUMS`. A go-live's release gets the release ritual's files, the
evidence manifest as it stood at Live, and `SHA256SUMS` of them. `SHA256SUMS` lists every file
golive attaches but itself and the detached signatures (`X.asc`), so one file vouches for all of
them, and for nothing else someone put on the release.

Attaching is idempotent by content: an asset of the same name and the same bytes is skipped,
one with other bytes is replaced (old digest → new), one left unfinished by a failed upload
(state `starter`) is removed and uploaded again. Names keep to what GitHub does not rewrite.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from golive import layout
from golive.ritual import provenance_statement
from golive.validation import escape_line

__all__ = [
    "ATTEST_BUILD_TYPE", "CHECKSUMS", "Decision", "LocalFile", "RemoteAsset", "build_statement", "checksums_text",
    "decide", "file_of", "is_signature", "manifest_at_live", "manifest_bytes", "media_type", "name_problem",
    "normal_name", "parse_checksums", "plan", "project_sbom", "release_files", "requires_dist", "runtime_closure",
    "signature_name", "unmet_requirements", "without_secrets",
]

CHECKSUMS = "SHA256SUMS"
SIGNATURE_SUFFIX = ".asc"
ATTEST_BUILD_TYPE = "urn:golive:attest:v1"
# The flow whose last seal made the release Live: the manifest a release carries ends there.
LIVE_FLOW = "go-live"

# GitHub keeps an asset's name as given only when it is made of these (it rewrites the rest,
# and leading or trailing dots), so a name outside them would not be the name SHA256SUMS lists.
_ASSET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHECKSUM_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")

# By how the name ends, most specific first.
_MEDIA_TYPES = (
    (layout.CYCLONEDX_SUFFIX, "application/vnd.cyclonedx+json"),
    (layout.IN_TOTO_LINES_SUFFIX, "application/vnd.in-toto+json"),
    (layout.SIGSTORE_BUNDLE_SUFFIX, "application/vnd.dev.sigstore.bundle.v0.3+json"),
    (layout.DSSE_SUFFIX, "application/vnd.dsse.envelope.v1+json"),
    (SIGNATURE_SUFFIX, "application/pgp-signature"),
    (".whl", "application/zip"),
    (".tar.gz", "application/gzip"),
    (".pem", "application/x-pem-file"),
    (".txt", "text/plain"),
    (".json", "application/json"),
)


def media_type(name: str) -> str:
    """The media type an asset is uploaded with: CycloneDX for an SBOM, in-toto for a provenance,
    sigstore's bundle type, PGP for a detached signature, text for SHA256SUMS."""
    if name == CHECKSUMS:
        return "text/plain"
    if name.startswith("sbom_") and name.endswith(".json"):
        return "application/vnd.cyclonedx+json"
    if name.startswith("build_provenance_") and name.endswith(".json") and not name.endswith(
            layout.SIGSTORE_BUNDLE_SUFFIX):
        return "application/vnd.in-toto+json"
    return next((kind for suffix, kind in _MEDIA_TYPES if name.endswith(suffix)), "application/octet-stream")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be an asset's name as it is (GitHub would rename it), or None."""
    if _ASSET_NAME.fullmatch(name) and not name.endswith("."):
        return None
    return (f"{escape_line(name)}: GitHub would rename it (an asset's name keeps to letters, digits, '.', '-', '_', "
            f"and neither starts nor ends with '.'); not attached")


def signature_name(name: str) -> str:
    return name + SIGNATURE_SUFFIX


def is_signature(name: str) -> bool:
    return name.endswith(SIGNATURE_SUFFIX)


def checksums_text(digests: Mapping[str, str]) -> str:
    """`SHA256SUMS` as `sha256sum` writes it (digest, two spaces, name), sorted by name, so the same
    files give the same bytes; itself and the signatures are never listed."""
    return "".join(f"{digests[name]}  {name}\n" for name in sorted(digests)
                   if name != CHECKSUMS and not is_signature(name))


def parse_checksums(text: str) -> tuple[dict[str, str], list[str]]:
    """The names and digests a `SHA256SUMS` lists (text or binary mode lines), and one problem a
    line that is not `<sha256> <mode><name>` or names a file twice."""
    digests: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        match = _CHECKSUM_LINE.fullmatch(line)
        if match is None:
            problems.append(f"{CHECKSUMS}: line {number} is not `<sha256>  <name>`")
        elif match[2] in digests:
            problems.append(f"{CHECKSUMS}: {escape_line(match[2])} is listed twice")
        else:
            digests[match[2]] = match[1]
    return digests, problems


# Environment variables a build, its backend and the SBOM tool never need: tokens, passwords,
# passphrases (the GitHub token, the GPG and signing keys' passphrases among them), secrets.
_SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|PASSPHRASE|SECRET|CREDENTIAL|PRIVATE_KEY|API_KEY", re.IGNORECASE)


def without_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without the variables whose names say they hold a secret."""
    return {name: value for name, value in environ.items() if not _SECRET_NAME.search(name)}


def requires_dist(metadata: str) -> list[str]:
    """The `Requires-Dist` lines of a distribution's METADATA, as written."""
    return [line.removeprefix("Requires-Dist:").strip() for line in metadata.splitlines()
            if line.startswith("Requires-Dist:")]


def normal_name(name: str) -> str:
    """A distribution's name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


# A requirement of a distribution, its environment marker already evaluated: the name it asks
# for, with which extras, and the extra of the asking distribution that turns it on (None: always).
Edge = tuple[str, frozenset[str], "str | None"]


def runtime_closure(requires: Mapping[str, Sequence[Edge]], roots: Iterable[Edge]) -> set[str]:
    """The installed distributions (by normal name) that `roots`, the project's requirements that
    hold without an extra, reach: each one's requirements that hold with no extra, and those of
    the extras asked of it. `requires` maps every installed distribution to its requirements."""
    return _walk(requires, roots)[0]


def unmet_requirements(requires: Mapping[str, Sequence[Edge]], roots: Iterable[Edge]) -> list[str]:
    """The distributions (by normal name) `roots` reach that are not installed: an SBOM of this
    environment leaves them out."""
    return sorted(_walk(requires, roots)[1])


def _walk(requires: Mapping[str, Sequence[Edge]], roots: Iterable[Edge]) -> tuple[set[str], set[str]]:
    frontier = [(normal_name(name), extra) for name, extras, when in roots if when is None
                for extra in (None, *extras)]
    seen: set[tuple[str, str | None]] = set()
    reached: set[str] = set()
    missing: set[str] = set()
    while frontier:
        name, extra = frontier.pop()
        if name not in requires:
            missing.add(name)
            continue
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        reached.add(name)
        frontier += [(normal_name(dependency), wanted) for dependency, extras, when in requires[name]
                     if when == extra for wanted in (None, *extras)]
    return reached, missing


def project_sbom(document: Mapping, reached: Iterable[str], direct: Iterable[str]) -> dict:
    """The project's SBOM from the CycloneDX document `cyclonedx-py environment --pyproject` made
    of the environment it was built in: the project stays the document's subject
    (`metadata.component`, from its pyproject.toml), and of the environment's components only
    those its runtime requirements reach (`reached`, golive.attest.runtime_closure; `direct` are
    its own requirements) remain, so the build's tools, test libraries and the extras nobody
    asked for are not listed as parts of the wheel. cyclonedx-py draws an edge for every
    requirement, extras' too; the edges left are those between what remains."""
    root_ref = document.get("metadata", {}).get("component", {}).get("bom-ref")
    if not root_ref:
        raise ValueError("the CycloneDX document names no root component (metadata.component)")
    reached, direct = {normal_name(n) for n in reached}, {normal_name(n) for n in direct}
    components = [c for c in document.get("components", []) if isinstance(c, dict)
                  and normal_name(str(c.get("name", ""))) in reached]
    kept = {c.get("bom-ref"): normal_name(str(c.get("name", ""))) for c in components}
    graph = {entry.get("ref"): list(entry.get("dependsOn", [])) for entry in document.get("dependencies", [])
             if isinstance(entry, dict)}
    narrowed = {key: value for key, value in document.items() if key not in ("components", "dependencies")}
    narrowed["components"] = components
    narrowed["dependencies"] = [{"ref": root_ref, "dependsOn": sorted(r for r, n in kept.items() if n in direct)}] + [
        {"ref": ref, "dependsOn": sorted(d for d in graph.get(ref, []) if d in kept)} for ref in sorted(kept)]
    return narrowed


def build_statement(name: str, version: str, subjects: Mapping[str, str], git: Mapping | None, builder_id: str,
                    parameters: Mapping, started_on: str, finished_on: str, invocation_id: str) -> dict:
    """The build's provenance: the release ritual's in-toto statement (golive.ritual), its build
    type the build's own, its subjects the artifacts and the SBOM."""
    statement = provenance_statement(version, subjects, builder_id, {"project": name, **parameters}, git,
                                     started_on, finished_on, invocation_id)
    statement["predicate"]["buildDefinition"]["buildType"] = ATTEST_BUILD_TYPE
    return statement


def manifest_at_live(manifest: Mapping) -> dict:
    """The evidence manifest as it stood when the release went Live: its chain up to the go-live's
    last link (whose head the go-live published), or all of it when no go-live sealed there. The
    closing and the first night add links later; this part never changes, so a release carries
    one manifest however often the closing runs."""
    chain = list(manifest.get("chain", []))
    ends = [i for i, link in enumerate(chain) if isinstance(link, dict) and link.get("flow") == LIVE_FLOW]
    return {**manifest, "chain": chain[: ends[-1] + 1] if ends else chain}


def manifest_bytes(manifest: Mapping) -> bytes:
    """A manifest as the evidence ledger writes it."""
    return (json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n").encode()


def release_files(release: str, present: Iterable[str]) -> tuple[list[str], list[str]]:
    """The release ritual's files a go-live's release carries (those in `present`) and the ones it
    should carry that are missing: the SBOM, the provenance (and its sigstore bundle when the
    ritual signed keyless), the signed go/no-go with its envelope, the public key."""
    present = set(present)
    provenance = layout.build_provenance(release)
    go_nogo = layout.go_nogo(release)
    required = [layout.sbom(release), provenance, go_nogo, layout.dsse_envelope(go_nogo), layout.PUBLIC_KEY]
    optional = [layout.sigstore_bundle(provenance)]
    return ([n for n in required + optional if n in present], [n for n in required if n not in present])


@dataclass(frozen=True)
class LocalFile:
    name: str
    sha256: str
    size: int


def file_of(path: Path, name: str | None = None) -> LocalFile:
    data = path.read_bytes()
    return LocalFile(name or path.name, hashlib.sha256(data).hexdigest(), len(data))


@dataclass(frozen=True)
class RemoteAsset:
    """A release asset as GitHub describes it; `digest` is the sha256 (GitHub's `sha256:` dropped),
    None where GitHub gives none."""
    id: int
    name: str
    size: int
    state: str = "uploaded"
    digest: str | None = None

    @classmethod
    def from_api(cls, asset: Mapping) -> RemoteAsset:
        digest = asset.get("digest")
        digest = digest.removeprefix("sha256:") if isinstance(digest, str) and digest.startswith("sha256:") else None
        return cls(id=int(asset["id"]), name=str(asset["name"]), size=int(asset.get("size") or 0),
                   state=str(asset.get("state") or "uploaded"),
                   digest=digest if digest and _SHA256.fullmatch(digest) else None)


@dataclass(frozen=True)
class Decision:
    """What to do with one file: `upload` (not there), `skip` (same bytes), `replace` (remove the
    asset there, then upload), or `compare` (GitHub gave no digest: download it and decide again)."""
    name: str
    action: str
    reason: str
    old_sha256: str | None = None


def decide(local: LocalFile, remote: RemoteAsset | None) -> Decision:
    """The rules, in order: no asset of that name → upload; an unfinished one (not `uploaded`) →
    replace it; another size → replace; no digest to compare → compare; the same sha256 → skip;
    another sha256 → replace."""
    if remote is None:
        return Decision(local.name, "upload", "not on the release")
    if remote.state != "uploaded":
        return Decision(local.name, "replace", f"an unfinished upload (state {escape_line(remote.state)}) was there")
    if remote.size != local.size:
        return Decision(local.name, "replace", f"other bytes ({remote.size} bytes there, {local.size} here)",
                        remote.digest)
    if remote.digest is None:
        return Decision(local.name, "compare", "GitHub gives no digest: its bytes are compared")
    if remote.digest == local.sha256:
        return Decision(local.name, "skip", "same bytes")
    return Decision(local.name, "replace", "other bytes", remote.digest)


def plan(local: Sequence[LocalFile], remote: Sequence[RemoteAsset]) -> list[Decision]:
    """A decision for each local file, against the release's asset of the same name."""
    by_name = {asset.name: asset for asset in remote}
    return [decide(file, by_name.get(file.name)) for file in local]
