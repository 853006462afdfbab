"""closing: the release is Live; tag it and lift the freeze, each step with its evidence.

The annotated tag `v<release>` carries the runbook's message and is pushed (never forced); every
open pull request labelled with the freeze label loses it. `dry_run` says what it would tag and
which pull requests it would touch, and changes nothing.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from golive import layout
from golive.closing import final_decision
from golive.settings import GoLiveSettings
from golive.signals import CATALOGUE
from tasks.evidence import ReleaseFolder, read_stage_records
from tasks.git_repo import GitError, tag_release
from tasks.github import GitHubError, lift_freeze


@flow(name="closing", flow_run_name="closing v{settings.release}")
def closing(settings: GoLiveSettings, dry_run: bool = False) -> State:
    """Tag and push, lift the freeze; ends `Closed`, or `ClosedPartially` naming what failed."""
    logger = get_run_logger()
    evidence = ReleaseFolder.of(settings)
    final = final_decision(read_stage_records(evidence.path, list(settings.stages))) or {"signals": {}}
    green = sum(v.get("verdict") == "pass" for v in final["signals"].values())
    message = settings.tag_message.format(green=green, total=len(CATALOGUE), release=settings.release)
    problems: list[str] = []
    done: dict = {"dry_run": dry_run}

    if settings.git.repo is not None:
        try:
            done["tag"] = tag_release(settings.git.repo, settings.release, message, settings.git.remote, dry_run)
            verb = "would tag" if dry_run else "tagged"
            logger.info("%s %s at %s: %r%s", verb, done["tag"]["tag"], done["tag"]["commit"][:12], message,
                        f", pushed to {done['tag']['remote']}" if done["tag"]["remote"] and not dry_run else "")
        except GitError as exc:
            problems.append(f"tag: {exc}")
        evidence.record(layout.git_tag(dry_run), done.get("tag") or {"error": problems[-1]})

    if settings.github is not None:
        try:
            report = lift_freeze(settings.github, dry_run)
            done["freeze_lift"] = report.model_dump()
            problems += [f"freeze lift: PR #{n}: {why}" for n, why in report.failed.items()]
            logger.info("%s %s from %s", "would remove" if dry_run else "removed", settings.github.freeze_label,
                        ", ".join(f"#{n}" for n in report.pull_requests) or "no pull request")
        except GitHubError as exc:
            problems.append(f"freeze lift: {exc}")
        evidence.record(layout.freeze_lift(dry_run), done.get("freeze_lift") or {"error": problems[-1]})

    done["problems"] = problems
    evidence.record(layout.closing(dry_run), done)
    if not dry_run:
        evidence.seal("closing")
    if problems:
        return Completed(name="ClosedPartially", message="; ".join(problems))
    return Completed(name="Closed", message=f"v{settings.release} closed" + (" (dry run)" if dry_run else ""))

