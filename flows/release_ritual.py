"""release-ritual: the green button. SBOM, signed build provenance, signed go/no-go checklist.

The provenance is an in-toto statement over the SBOM and the source tree, in a DSSE envelope
signed with the local key (and with sigstore keyless when an identity and the network are
there). The go/no-go checklist is filled from the preflight and drill evidence and signed as
it reads.
"""

from __future__ import annotations

import json
import platform
import uuid
from datetime import datetime, timezone

from prefect import flow, get_run_logger

import golive
from golive import layout
from golive.ritual import go_nogo_checks, go_nogo_text, provenance_statement
from golive.settings import GoLiveSettings
from tasks.evidence import ReleaseFolder
from tasks.git_repo import read_git_state, source_tree_digest
from tasks.sbom import make_sbom
from tasks.signing import publish_public_key, sign_into_evidence
from tasks.sigstore_signing import sign_keyless


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@flow(name="release-ritual", flow_run_name="release ritual v{settings.release}")
def release_ritual(settings: GoLiveSettings) -> dict:
    """Write the SBOM, the signed provenance and the signed go/no-go; returns release_ritual.json."""
    logger = get_run_logger()
    evidence = ReleaseFolder.of(settings)
    folder = evidence.path
    release, process = settings.release, settings.process
    started = _now()

    described = make_sbom.submit(folder, release, process.sbom_environment)  # the longest step, while git is read
    git, source = None, {}
    if process.git.repo is not None:
        state = read_git_state(process.git.repo, release, process.git.remote)
        git = {"url": state.remote_url, "branch": state.branch, "commit": state.commit}
        if state.commit:
            source[f"source@{state.commit}.tar"] = source_tree_digest(process.git.repo, state.commit)
    sbom = described.result()
    subjects = {sbom.name: sbom.sha256, **source}
    statement = provenance_statement(
        release, subjects, builder_id=f"urn:golive:builder:{platform.node() or 'local'}",
        parameters={"stages": list(settings.policy.stages), "canary_url": settings.target.canary_url,
                    "golive_version": golive.__version__},
        git=git, started_on=started, finished_on=_now(), invocation_id=str(uuid.uuid4()),
    )
    statement_json = json.dumps(statement, indent=2, sort_keys=True)
    provenance_name = layout.build_provenance(release)
    keyid = sign_into_evidence(folder, provenance_name, statement_json, process.signing)
    keyless = ({"signed": False, "reason": "off (process.signing.sigstore)"} if process.signing.sigstore == "off"
               else sign_keyless(folder, provenance_name, statement_json))
    publish_public_key(folder, process.signing)

    preflight = evidence.read_json(layout.PREFLIGHT)
    blast = evidence.read_json(layout.MICRO_BLAST_RADIUS) if evidence.has(layout.MICRO_BLAST_RADIUS) else None
    checks = go_nogo_checks(preflight, blast, sbom.model_dump(), keyid)
    checklist = go_nogo_text(release, _now(), checks)
    go = all(ok for _, ok, _ in checks)
    checklist_name = layout.go_nogo(release)
    evidence.record(checklist_name, checklist)
    sign_into_evidence(folder, layout.dsse_envelope(checklist_name), checklist, process.signing,
                       payload_type="text/plain")

    result = {
        "decision": "GO" if go else "NO-GO",
        "failed": [name for name, ok, _ in checks if not ok],
        "sbom": sbom.model_dump(),
        "provenance": {"name": provenance_name, "keyid": keyid, "subjects": subjects},
        "sigstore": keyless,
        "go_nogo": checklist_name,
    }
    evidence.record(layout.RELEASE_RITUAL, result)
    evidence.seal("release-ritual")
    if not keyless["signed"]:
        logger.info("sigstore keyless: %s; the local-key signature stands", keyless["reason"])
    logger.info("release ritual v%s: %s", release, result["decision"])
    return result
