"""The preflight's rules: from what each check saw to GO or NO-GO, one function a check.

The tasks gather facts (a weight, a version, a git state); these functions say what those facts
mean for a release, so every rule of the runbook's T-10 minutes is in this one file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from golive.models import Check, GitState, ServiceCheck, WeightReading
from golive.settings import PolicySettings

__all__ = ["config_check", "evidence_folder_check", "git_checks", "promql_check", "router_check",
           "scrape_targets_check", "service_check", "signing_key_check", "stable_version_check", "summary",
           "traffic_check"]


def config_check(policy: PolicySettings) -> Check:
    return Check(name="config", ok=True, detail=f"valid: stages {'/'.join(map(str, policy.stages))} %, "
                 f"dwell {policy.dwell_seconds:g}/{policy.final_dwell_seconds:g} s, "
                 f"interval {policy.interval_seconds:g} s",
                 facts={"thresholds": {s.name: {"rule": s.rule, "threshold": s.threshold} for s in policy.catalogue()},
                        "judge_policy": asdict(policy.judge_policy())})


def promql_check(signal: str, track: str, window_seconds: float, queries: Mapping[str, str],
                 values: Mapping[str, float | None] | None, error: str | None = None) -> Check:
    """Prometheus accepts the signal's queries for the track and answers its value with a number."""
    name = f"promql_{signal}_{track}"
    if values is None:
        return Check(name=name, ok=False, detail=f"refused or unanswered: {error}", facts={"queries": dict(queries)})
    ok = values["value"] is not None
    detail = f"{signal}[{track}] = {values['value']:.4g}" if ok else f"{signal}[{track}]: no value over {window_seconds:g} s"
    return Check(name=name, ok=ok, detail=detail, facts={"queries": dict(queries), "values": dict(values)})


def scrape_targets_check(targets: Sequence[Mapping] | None, error: str | None = None) -> Check:
    """Some target is scraped and every one is up (a target down is a signal with no data later).
    `targets` are Prometheus' active targets as its API lists them."""
    if targets is None:
        return Check(name="scrape_targets", ok=False, detail=f"Prometheus does not answer: {error}")
    down = [f"{t['scrapeUrl']} ({t.get('lastError') or t['health']})" for t in targets if t["health"] != "up"]
    ok = bool(targets) and not down
    detail = f"{len(targets)} targets up" if ok else (f"down: {', '.join(down)}" if down else "no active targets")
    return Check(name="scrape_targets", ok=ok, detail=detail,
                 facts={"targets": [{"url": t["scrapeUrl"], "health": t["health"]} for t in targets]})


def traffic_check(window_seconds: float, queries: Mapping[str, str], values: Mapping[str, float | None] | None,
                  error: str | None = None) -> Check:
    """The traffic-share queries answer and see users' requests: without them no split can be verified."""
    if values is None:
        return Check(name="traffic", ok=False, detail=f"refused or unanswered: {error}", facts={"queries": dict(queries)})
    ok = bool(values["total"])
    detail = (f"{values['total']:.0f} user requests in {window_seconds:g} s" if ok
              else f"no user requests measured in {window_seconds:g} s")
    return Check(name="traffic", ok=ok, detail=detail, facts={"queries": dict(queries), "values": dict(values)})


def signing_key_check(keyid: str | None, source: str | None, error: str | None = None) -> Check:
    """The key loads and a probe signed with it verifies (`keyid` is None when it did not)."""
    if keyid is None:
        return Check(name="signing_key", ok=False, detail=str(error))
    return Check(name="signing_key", ok=True, detail=f"P-256 key {keyid[:16]}… signs and verifies",
                 facts={"keyid": keyid, "source": source})


def router_check(reading: WeightReading | None, error: str | None = None, pin_problem: str | None = None) -> Check:
    """Reachable, at weight 0 (a go-live starts with every user on stable), and its canary pin
    readable when one is set (the drills could not reach the canary without it)."""
    if pin_problem:
        return Check(name="router", ok=False, detail=pin_problem)
    if reading is None:
        return Check(name="router", ok=False, detail=f"unreachable: {error}")
    ok = reading.in_force == 0
    detail = f"weight {reading.in_force} in force" + ("" if ok else (
        ", expected 0: the canary still holds users (a go-live that died?). Roll it back with "
        "`golive rollback --release R --reason R`, or run the go-live again with recover"))
    return Check(name="router", ok=ok, detail=detail, facts={"weight_in_force": reading.in_force})


def service_check(name: str, result: ServiceCheck) -> Check:
    return Check(name=name, ok=result.ok, detail=result.detail, facts={"url": result.url, "version": result.version})


def stable_version_check(result: ServiceCheck, release: str) -> Check:
    """Stable answers with a version other than the release: the version a rollback returns to."""
    ok = result.ok and result.version != release
    detail = result.detail if not result.ok else (
        f"serves {result.version} (the rollback target)" if ok else f"already serves {release}: nothing to roll back to")
    return Check(name="stable_version", ok=ok, detail=detail, facts={"url": result.url, "version": result.version})


def git_checks(state: GitState | None, error: str | None = None, configured: bool = True) -> list[Check]:
    """The work tree is clean (what is tagged is what was tested) and `v<release>` is nowhere yet."""
    if not configured:
        skipped = {"ok": True, "skipped": True, "detail": "no repository configured (process.git.repo)"}
        return [Check(name="git_clean", **skipped), Check(name="release_tag_absent", **skipped)]
    if state is None:
        return [Check(name="git_clean", ok=False, detail=str(error)),
                Check(name="release_tag_absent", ok=False, detail=str(error))]
    facts = state.model_dump()
    clean = Check(name="git_clean", ok=not state.dirty, facts=facts,
                  detail=f"clean at {(state.commit or '?')[:12]} on {state.branch}" if not state.dirty else
                  f"{len(state.dirty)} uncommitted: {', '.join(state.dirty[:5])}{' …' if len(state.dirty) > 5 else ''}")
    where = [w for w, present in (("locally", state.tag_local), ("on the remote", state.tag_remote)) if present]
    absent = Check(name="release_tag_absent", ok=not where, facts=facts,
                   detail=f"{state.tag} already exists {' and '.join(where)}" if where else
                   f"{state.tag} not yet tagged" + ("" if state.tag_remote is not None else " (no remote to ask)"))
    return [clean, absent]


def evidence_folder_check(folder: Path, writable_error: str | None, files: Sequence[str],
                          run_started: float) -> Check:
    """Writable, and holding nothing but what this run wrote (a fresh release's folder)."""
    if writable_error:
        return Check(name="evidence_folder", ok=False, detail=f"{folder} is not writable: {writable_error}")
    older = [name for name in files if (folder / name).stat().st_mtime < run_started - 1]
    ok = not older
    detail = f"{folder} writable and fresh" if ok else f"{folder} holds {len(older)} files of an earlier attempt"
    return Check(name="evidence_folder", ok=ok, detail=detail, facts={"earlier_files": older[:20]})


def summary(checks: Sequence[Check], elapsed_seconds: float, budget_seconds: float) -> dict:
    failed = [c.name for c in checks if not c.ok]
    over = elapsed_seconds > budget_seconds
    reasons = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    if over:
        reasons.append(f"budget: took {elapsed_seconds:.0f} s of {budget_seconds:g} s")
    return {
        "decision": "GO" if not reasons else "NO-GO",
        "elapsed_seconds": round(elapsed_seconds, 2),
        "budget_seconds": budget_seconds,
        "failed": failed + (["budget"] if over else []),
        "reasons": reasons,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail, "skipped": c.skipped} for c in checks},
    }
