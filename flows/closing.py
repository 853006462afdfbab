"""closing: the release is Live; tag it and lift the freeze, each step with its evidence.

It first reads the release's evidence and refuses, ending `Refused` with one line saying why and
changing nothing, unless it shows the release Live (golive.closing.not_live_because: every stage
proceeded, no rollback, the criteria met, the folder sealed and verifying with the release's key).
The annotated tag `v<release>` carries the runbook's message and is pushed (never forced; a
re-run pushes a tag an earlier push left behind); every open pull request labelled with the
freeze label loses it. With `process.github.release_assets`, the release's SBOM, provenance,
signed go/no-go, manifest at Live and SHA256SUMS become the assets of its GitHub release
(flows/attest.py; attaching again changes nothing), once the tag is pushed: without a git
repository, or when the tag step failed, nothing is attached and the closing says why.
`dry_run` says what it would tag, which pull requests it would touch and what it would attach,
and changes nothing.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed, State

from flows import with_its_clients
from flows.attest import attach_release_evidence
from golive import layout
from golive.card import deployment_summary, fill_release_notes
from golive.closing import final_decision, not_live_because
from golive.settings import GoLiveSettings, SigningSettings
from golive.signing import SigningError, load_public_key
from golive.verify import verify_folder
from tasks.evidence import ReleaseFolder, list_evidence, read_stage_records
from tasks.git_repo import GitError, read_repo_file, tag_release
from tasks.github import GitHubError, lift_freeze
from tasks.signing import load_signing_key


def _evidence_problems(evidence: ReleaseFolder, signing: SigningSettings | None) -> list[str]:
    """What `golive evidence verify` would fail in the folder, with the release's public key (its
    file, else the public half of the signing key)."""
    signing = signing or SigningSettings()
    try:
        if signing.public_path.is_file():
            key = load_public_key(signing.public_path.read_bytes(), str(signing.public_path))
        else:
            key = load_signing_key(signing).public_key
    except OSError as exc:
        return [f"no public key to verify it with: {signing.public_path}: {exc.strerror}"]
    except SigningError as exc:
        return [f"no public key to verify it with: {exc}"]
    report = verify_folder(evidence.path, key, signing.sigstore_identity, signing.sigstore_issuer)
    return report.problems


def _refusal(settings: GoLiveSettings, evidence: ReleaseFolder, stages: list[dict]) -> str | None:
    criteria = evidence.read_json(layout.SUCCESS_CRITERIA) if evidence.has(layout.SUCCESS_CRITERIA) else None
    return not_live_because(settings.release, settings.planned_stages, stages, criteria, list_evidence(evidence.path),
                            _evidence_problems(evidence, settings.process.signing))


@flow(name="closing", flow_run_name="closing v{settings.release}")
@with_its_clients  # its GitHub clients closed when it ends
def closing(settings: GoLiveSettings, dry_run: bool = False) -> State:
    """Tag and push, lift the freeze; ends `Closed`, `ClosedPartially` naming what failed, or
    `Refused` (nothing changed) when the evidence does not show the release Live."""
    logger = get_run_logger()
    process = settings.process
    evidence = ReleaseFolder.of(settings)
    stages = read_stage_records(evidence.path, list(settings.planned_stages))
    refusal = _refusal(settings, evidence, stages)
    if refusal:
        logger.error("%s; nothing tagged, no pull request touched", refusal)
        return Failed(name="Refused", message=refusal)
    final = final_decision(stages) or {"signals": {}}
    green = sum(v.get("verdict") == "pass" for v in final["signals"].values())
    message = process.tag_message.format(green=green, total=len(settings.policy.catalogue()), release=settings.release)
    problems: list[str] = []
    done: dict = {"dry_run": dry_run}

    if process.git.repo is not None:
        try:
            done["tag"] = tag_release(process.git.repo, settings.release, message, process.git.remote, dry_run)
            tag = done["tag"]
            logger.info("%s: %s at %s: %r%s", tag["tag"], tag["done"], tag["commit"][:12], message,
                        f" ({tag['remote']})" if tag["remote"] else "")
        except GitError as exc:
            problems.append(f"tag: {exc}")
        evidence.record(layout.git_tag(dry_run), done.get("tag") or {"error": problems[-1]})

    if process.github is not None:
        try:
            report = lift_freeze(process.github, dry_run)
            done["freeze_lift"] = report.model_dump()
            problems += [f"freeze lift: PR #{n}: {why}" for n, why in report.failed.items()]
            logger.info("%s %s from %s", "would remove" if dry_run else "removed", process.github.freeze_label,
                        ", ".join(f"#{n}" for n in report.pull_requests) or "no pull request")
        except GitHubError as exc:
            problems.append(f"freeze lift: {exc}")
        evidence.record(layout.freeze_lift(dry_run), done.get("freeze_lift") or {"error": problems[-1]})

    if process.github is not None and process.github.release_assets:
        # A release needs its tag on GitHub first; this closing pushes it, so without a tag pushed
        # here nothing is attached.
        if process.git.repo is None:
            skipped = "no git repository (process.git.repo), so no tag was pushed"
        else:
            skipped = "the tag step failed" if "tag" not in done else None
        if skipped:
            done["release_assets"], failed = {"tag": f"v{settings.release}", "skipped": skipped}, [
                f"release assets: not attached: {skipped}"]
        else:
            done["release_assets"], failed = attach_release_evidence(settings, evidence.path, dry_run)
        problems += failed
        evidence.record(layout.release_assets(dry_run), done["release_assets"])
        logger.info("release assets of v%s: %s", settings.release,
                    "; ".join(failed) or ("would attach them (dry run)" if dry_run else "on the release"))

    if not dry_run:
        # The runbook's one-liner in the team's release notes (their template, or a bare one).
        try:
            template = read_repo_file(process.git.repo, layout.RELEASE_NOTES_TEMPLATE) if process.git.repo else None
            elapsed = stages[-1]["ended_at"] - stages[0]["started_at"]
            evidence.record(layout.release_notes(settings.release), fill_release_notes(
                template or f"# v{settings.release}\n", deployment_summary(settings.release, stages, elapsed)))
        except Exception as exc:  # noqa: BLE001 - notes that cannot be filled must not undo a tag or a lifted freeze
            problems.append(f"release notes: {exc}")

    done["problems"] = problems
    evidence.record(layout.closing(dry_run), done)
    if not dry_run:
        evidence.seal("closing")
    if problems:
        return Completed(name="ClosedPartially", message="; ".join(problems))
    return Completed(name="Closed", message=f"v{settings.release} closed" + (" (dry run)" if dry_run else ""))

