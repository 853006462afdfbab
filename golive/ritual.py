"""The green button's documents: the build provenance statement and the go/no-go checklist.

Provenance is an in-toto Statement v1 (https://in-toto.io/Statement/v1) carrying a SLSA
provenance v1 predicate (https://slsa.dev/provenance/v1): what was built (subjects by sha256),
how (build type, external parameters), from what (the git commit) and by whom (builder id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["BUILD_TYPE", "go_nogo_checks", "go_nogo_text", "provenance_statement"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:golive:release-ritual:v1"


def provenance_statement(
    release: str,
    subjects: Mapping[str, str],
    builder_id: str,
    parameters: Mapping,
    git: Mapping | None,
    started_on: str,
    finished_on: str,
    invocation_id: str,
) -> dict:
    """`subjects` maps a name to its sha256; `git` holds `url` and `commit` (None without a repository)."""
    dependencies = []
    if git and git.get("commit"):
        url = git.get("url") or "."
        url = url if "://" in url else Path(url).resolve().as_uri()  # a local path as a file: URI
        dependencies.append({"uri": f"git+{url}@refs/heads/{git.get('branch') or 'HEAD'}",
                             "digest": {"gitCommit": git["commit"]}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in sorted(subjects.items())],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"release": release, **parameters},
                "internalParameters": {},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": builder_id},
                "metadata": {"invocationId": invocation_id, "startedOn": started_on, "finishedOn": finished_on},
            },
        },
    }


def go_nogo_text(release: str, at: str, checks: Sequence[tuple[str, bool, str]]) -> str:
    """The runbook's checklist: one line a check (`[GO]`/`[NO-GO]`, name, what was seen), then
    the decision. Signed as it stands, so it is plain text a person can read."""
    width = max((len(name) for name, _, _ in checks), default=0)
    lines = [f"GO / NO-GO checklist — v{release}", f"filled at {at} from the preflight evidence", ""]
    lines += [f"[{'GO' if ok else 'NO-GO':>5}] {name:<{width}}  {detail}" for name, ok, detail in checks]
    decision = "GO" if checks and all(ok for _, ok, _ in checks) else "NO-GO"
    lines += ["", f"DECISION: {decision}"]
    return "\n".join(lines) + "\n"


def go_nogo_checks(preflight: Mapping, blast_radius: Mapping | None, sbom: Mapping,
                   provenance_keyid: str | None) -> list[tuple[str, bool, str]]:
    """The checklist's lines from the preflight summary, the drill and the ritual's own results."""
    lines = [(name, check["ok"], ("skipped: " if check.get("skipped") else "") + check["detail"])
             for name, check in preflight["checks"].items()]
    lines.append(("preflight budget", preflight["elapsed_seconds"] <= preflight["budget_seconds"],
                  f"{preflight['elapsed_seconds']:.1f} s of {preflight['budget_seconds']:g} s"))
    if blast_radius is None:
        lines.append(("micro blast radius", False, "not run"))
    else:
        lines.append(("micro blast radius", blast_radius["ok"],
                      f"{blast_radius['requests']} requests, {100 * blast_radius['success_ratio']:.1f}% as expected, "
                      f"p95 {blast_radius['p95_ms']} ms, 5xx {blast_radius['http_5xx_pct']:.2f}%, "
                      f"stable reached {blast_radius['stable_requests']}"
                      + (f" ({'; '.join(blast_radius['failures'])})" if blast_radius["failures"] else "")))
    lines.append(("SBOM", sbom["valid"], f"{sbom['name']} CycloneDX {sbom['spec_version']}, {sbom['components']} "
                  f"components, sha256 {sbom['sha256'][:16]}…, {sbom['validation']}"))
    lines.append(("build provenance", provenance_keyid is not None,
                  f"signed, key {provenance_keyid[:16]}…" if provenance_keyid else "not signed"))
    return lines
