"""Supply chain: a build's attestations, and a release's files attached to its GitHub release.

`attest_build` is what `golive attest` (and so CI, on every build) runs: the project's wheel and
sdist, its CycloneDX SBOM, an in-toto provenance over the three signed with the local key as a
DSSE envelope (and keyless with sigstore where an identity token and the network are there),
`SHA256SUMS` with a detached GPG signature when a key is named, every one of them verified in
the same run. `attach_to_release` is what `golive attest --attach` and the closing run: the
files become the assets of the tag's release, by content (golive.attest), with `SHA256SUMS` of
those files and its GPG signature; an asset golive did not put there is named as a problem and
never listed or signed.

Plain functions, not Prefect flows: a CI build needs no Prefect server; the closing calls them
inside its own run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from golive import layout
from golive.attest import (
    CHECKSUMS, Decision, LocalFile, RemoteAsset, build_statement, checksums_text, decide, file_of,
    manifest_at_live, manifest_bytes, media_type, name_problem, plan, release_files, signature_name,
)
from golive.evidence import MANIFEST, EvidenceLedger
from golive.settings import GitHubSettings, GoLiveSettings
from golive.signing import SigningKey
from golive.validation import escape_line
from golive.verify import SignatureCheck, VerifyReport, verify_release_folder
from tasks.distributions import build_distributions, build_environment
from tasks.github import GitHubError
from tasks.github_releases import AssetOutcome, AttachReport, ReleaseAssets
from tasks.gpg import GpgError, fingerprint_of, sign_detached, verify_detached
from tasks.sbom import write_project_sbom
from tasks.sigstore_signing import sign_keyless

__all__ = ["OUTPUTS", "attach_release_evidence", "attach_to_release", "attest_build", "check_out",
           "evidence_release_files", "gpg_check"]

# What a build's folder may hold from an earlier run, and so may be replaced by the next one.
OUTPUTS = (*layout.BUILD_OUTPUTS, layout.PUBLIC_KEY)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def gpg_check(expected: str | None = None, signers: dict[str, str] | None = None) -> SignatureCheck:
    """A detached-signature check by gpg for golive.verify: good by the key `expected` names, or,
    when none is named, by a key the user's keyring trusts fully; each good signature's key is
    put in `signers` by the signature's file name, so the caller can say who signed."""
    def check(signature: Path, signed: Path) -> str | None:
        try:
            verdict = verify_detached(signature, signed, expected)
        except GpgError as exc:
            return str(exc)
        if verdict.ok and signers is not None:
            signers[signature.name] = verdict.fingerprint
        return None if verdict.ok else f"GPG: {verdict.reason}"
    return check


def attest_build(project: Path, out: Path, key: SigningKey, gpg_fingerprint: str | None = None,
                 sigstore: bool = True, git: Mapping | None = None,
                 allow_incomplete_sbom: bool = False) -> tuple[dict, VerifyReport]:
    """Build, describe, sign and verify into `out`; what was made, and the verification's report.

    The files are made in a new folder beside `out` that takes its place once all are written:
    a build that fails leaves the earlier one as it was, never half of a new one. `out` must be
    golive's own (ValueError naming the first file that is not one of its outputs)."""
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the build from the rest of CI
    try:
        made, report = _attest_into(project, staging, key, gpg_fingerprint, sigstore, git, allow_incomplete_sbom)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(staging, out)
            shutil.rmtree(old)
        else:
            os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return made, report


def _attest_into(project: Path, out: Path, key: SigningKey, gpg_fingerprint: str | None, sigstore: bool,
                 git: Mapping | None, allow_incomplete_sbom: bool) -> tuple[dict, VerifyReport]:
    started = _now()
    env = build_environment(project)
    dist = build_distributions(project, out, env)
    stem = dist.stem
    sbom = write_project_sbom(out / (stem + layout.CYCLONEDX_SUFFIX), project, dist.metadata, env,
                              allow_incomplete_sbom)
    subjects = {path.name: file_of(path).sha256 for path in (dist.wheel, dist.sdist, out / sbom["name"])}
    statement = build_statement(
        dist.name, dist.version, subjects, git, builder_id="urn:golive:attest",
        parameters={"wheel": "pip wheel --no-deps --no-build-isolation", "sdist": "PEP 517 build_sdist"},
        started_on=started, finished_on=_now(), invocation_id=str(uuid.uuid4()))
    statement_json = json.dumps(statement, sort_keys=True)
    provenance = stem + layout.IN_TOTO_LINES_SUFFIX
    (out / provenance).write_text(json.dumps(key.envelope(statement_json.encode()), sort_keys=True) + "\n")
    (out / layout.PUBLIC_KEY).write_text(key.public_pem())
    keyless = (sign_keyless.fn(str(out), f"{stem}.json", statement_json) if sigstore
               else {"signed": False, "reason": "off (--no-sigstore)"})
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    (out / CHECKSUMS).write_text(checksums_text({name: file_of(out / name).sha256 for name in files}))
    if gpg_fingerprint:
        sign_detached(out / CHECKSUMS, gpg_fingerprint)
    report = verify_release_folder(out, key.public_key, check_signature=gpg_check(gpg_fingerprint),
                                   require_signature=gpg_fingerprint is not None, release=dist.version)
    made = {"name": dist.name, "version": dist.version, "files": sorted([*files, CHECKSUMS] + (
        [signature_name(CHECKSUMS)] if gpg_fingerprint else [])), "sbom": sbom, "provenance": provenance,
        "subjects": subjects, "keyid": key.keyid, "sigstore": keyless, "gpg": gpg_fingerprint}
    return made, report


def check_out(out: Path) -> None:
    """ValueError naming the first entry of `out` that is not a file `golive attest` makes: the
    folder is replaced whole, so it must hold nothing else."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ValueError("not a folder")
    if not out.exists():
        return
    for entry in sorted(out.iterdir()):
        if not (entry.is_file() and not entry.is_symlink() and any(entry.match(p) for p in OUTPUTS)):
            raise ValueError(f"{escape_line(entry.name)}: not a file golive attest makes; --out must be its own folder")


def evidence_release_files(folder: Path, release: str, staging: Path) -> tuple[dict[str, Path], list[str]]:
    """The files a go-live's release carries, by asset name: the release ritual's, from the
    evidence, and the evidence manifest as it stood at Live (written into `staging`); and the
    ritual's files that are missing from the evidence."""
    ledger = EvidenceLedger(folder)
    present, missing = release_files(release, ledger.files())
    files = {name: folder / name for name in present}
    manifest = {"algorithm": "sha256", "chain": ledger.chain()}
    (staging / MANIFEST).write_bytes(manifest_bytes(manifest_at_live(manifest)))
    files[MANIFEST] = staging / MANIFEST
    return files, missing


def _signature_there(assets: ReleaseAssets, remote: Mapping[str, RemoteAsset], name: str, signed: Path,
                     fingerprint: str, staging: Path) -> bool:
    """Whether the release already holds a good signature of `signed`'s bytes by the key (a new
    signature would differ only in its time); it is kept in `staging` when it is."""
    there = remote.get(signature_name(name))
    if there is None or there.state != "uploaded":
        return False
    target = staging / signature_name(name)
    try:
        assets.download(there.id, target)
    except GitHubError:
        return False
    if verify_detached(target, signed, fingerprint).ok:
        return True
    target.unlink(missing_ok=True)
    return False


def attach_to_release(github: GitHubSettings, tag: str, files: Mapping[str, Path], staging: Path,
                      gpg_key: str | None = None, signed: Sequence[str] = (CHECKSUMS,),
                      title: str | None = None, prior_signatures: Mapping[str, Path] | None = None) -> AttachReport:
    """Attach `files` (asset name → file) to the release of `tag` (the tag must be on GitHub), made
    as a draft when there is none and published once every file is on it, with
    `SHA256SUMS` over those files (an asset of the release that is none of them is a problem,
    never listed or signed) and, with `gpg_key`, a detached signature of each
    of `signed` (a good one already on the release, or in `prior_signatures` by name, is kept:
    a new signature would differ only in its time). An asset of the same bytes is skipped, one of
    other bytes replaced, an unfinished one cleared; a stale signature of a replaced file is
    removed. Each file's outcome is in the report, and every failure is one of its problems
    (nothing raised past a GitHubError or a GpgError that stops it all)."""
    report = AttachReport(repository=github.repository, tag=tag)
    prior_signatures = prior_signatures or {}
    usable = {}
    for name, path in files.items():
        if problem := name_problem(name):
            report.assets.append(AssetOutcome(name=name, action="refused", reason=problem))
            report.problems.append(problem)
        else:
            usable[name] = path
    fingerprint = fingerprint_of(gpg_key) if gpg_key else None
    assets = ReleaseAssets(github, tag)
    release = assets.find_or_create(name=title or tag)
    report.release_id, report.release_created = release["id"], assets.created
    remote = assets.remote()

    # SHA256SUMS vouches for what golive attaches, never for what someone else put on the release.
    ours = {*usable, CHECKSUMS, *map(signature_name, signed)}
    for name in sorted(set(remote) - ours):
        report.problems.append(f"{escape_line(name)}: on the release but not a file golive attaches; "
                               f"left there, not in {CHECKSUMS}, not signed")
    local = {name: file_of(path, name) for name, path in usable.items()}
    sums = staging / CHECKSUMS
    sums.write_text(checksums_text({name: f.sha256 for name, f in local.items()}))
    paths = {**usable, CHECKSUMS: sums}
    local[CHECKSUMS] = file_of(sums)

    decisions = {d.name: _settled(assets, local[d.name], d, remote) for d in plan(list(local.values()),
                                                                              list(remote.values()))}
    for name in signed:
        if name not in local:
            continue
        asc = signature_name(name)
        if fingerprint is None:
            if asc in remote and decisions[name].action != "skip":  # it signed the bytes being replaced
                assets.delete(remote[asc].id)
                report.assets.append(AssetOutcome(name=asc, action="removed", old_sha256=remote[asc].digest,
                                                  reason=f"it signed the {name} replaced, and no GPG key is named"))
            continue
        if decisions[name].action == "skip" and _signature_there(assets, remote, name, paths[name], fingerprint,
                                                                 staging):
            local[asc] = file_of(staging / asc)
            decisions[asc] = Decision(asc, "skip", f"a good signature of the same {name} by {fingerprint}")
        else:
            prior = prior_signatures.get(name)
            if prior is not None and prior.is_file() and verify_detached(prior, paths[name], fingerprint).ok:
                shutil.copyfile(prior, staging / asc)  # the build's own signature of these very bytes
            else:
                sign_detached(paths[name], fingerprint, staging / asc)
            local[asc] = file_of(staging / asc)
            decisions[asc] = _settled(assets, local[asc], decide(local[asc], remote.get(asc)), remote)
        paths[asc] = staging / asc

    failed = False
    for name, decision in decisions.items():
        outcome = assets.put(local[name], paths[name].read_bytes(), media_type(name), decision, remote.get(name))
        report.assets.append(outcome)
        if outcome.action == "failed":
            report.problems.append(f"{name}: {outcome.reason}")
            failed = True
    if assets.release.get("draft") is True and failed:
        report.problems.append(f"the release of {tag} stays a draft: not all its files are on it")
    elif assets.release.get("draft") is True:
        assets.publish()
        report.published = True
    return report


def _settled(assets: ReleaseAssets, local: LocalFile, decision: Decision,
             remote: Mapping[str, RemoteAsset]) -> Decision:
    """`decision`, its bytes compared when GitHub gave no digest."""
    if decision.action != "compare":
        return decision
    there = remote[local.name]
    return decide(local, RemoteAsset(there.id, there.name, there.size, there.state, assets.download(there.id)))


def attach_release_evidence(settings: GoLiveSettings, folder: str | Path,
                            dry_run: bool = False) -> tuple[dict, list[str]]:
    """The closing's step: the release's supply-chain files from its evidence (the ritual's SBOM,
    provenance, signed go/no-go and public key, the manifest as it stood at Live) attached to the
    GitHub release of `v<release>`, with SHA256SUMS and its GPG signature when
    `process.signing.gpg_key` names a key. The record for the evidence, and the problems (a
    ritual file missing, an asset that could not be put). A dry run says what it would attach
    and asks GitHub nothing."""
    github, release = settings.process.github, settings.release
    tag = f"v{release}"
    with tempfile.TemporaryDirectory(prefix="golive-release-assets-") as staging:
        files, missing = evidence_release_files(Path(folder), release, Path(staging))
        problems = [f"release assets: {name} is not in the evidence" for name in missing]
        if dry_run:
            return {"tag": tag, "dry_run": True, "would_attach": sorted([*files, CHECKSUMS]),
                    "missing": missing}, problems
        try:
            report = attach_to_release(github, tag, files, Path(staging), settings.process.signing.gpg_key,
                                       title=tag)
        except Exception as exc:  # noqa: BLE001 - assets that cannot be attached must not undo a tag or a lifted freeze
            why = str(exc) if isinstance(exc, (GitHubError, GpgError)) else f"{type(exc).__name__}: {exc}"
            return {"tag": tag, "error": why, "missing": missing}, [*problems, f"release assets: {why}"]
    return ({**report.model_dump(), "missing": missing},
            problems + [f"release assets: {problem}" for problem in report.problems])
